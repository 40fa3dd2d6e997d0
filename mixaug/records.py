"""Pydantic records: labelled examples, synthetic records and run summaries.

Example:
    >>> Example(text="a gem of a film", label="positive").label
    'positive'
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

SOFT_LABEL_SOURCES = ("inline", "rescored", "partial", "votes")
"""How a soft label was obtained: read at the generated label position (``inline``),
by a scoring pass over the label words (``rescored``), from a top-k list that missed
some words (``partial``), or from label frequencies over several samples (``votes``)."""


class Example(BaseModel):
    """A labelled text (a training example or an anchor)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    label: str


class LabelledItem(BaseModel):
    """What the soft-label parser makes of one continuation."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    text: str
    """The new item's text."""
    soft_label: dict[str, float]
    """Label -> probability over the spec's labels; sums to 1."""
    generated_label: str | None
    """The label the model wrote, or ``None`` if it wrote none the spec knows."""
    generated_word: str | None = None
    """The word the model wrote at the label position, as written."""
    label_mass: float
    """Probability mass the model put on the label words at the label position."""
    soft_label_source: str
    completion: str = ""
    """The raw continuation the item was parsed from."""
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def label(self) -> str:
        """The argmax of ``soft_label``."""
        return max(self.soft_label, key=lambda k: self.soft_label[k])


class CriticScores(BaseModel):
    """What the critic found for one record (``None``: check off or no answer)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    fluency: float | None = None
    """P(yes): a fluent, natural text of the task's type."""
    consistency: float | None = None
    """P(yes): the record's label fits its text."""
    relabel: dict[str, float] | None = None
    """Zero-shot label distribution for the text."""
    relabel_label: str | None = None
    """Argmax of ``relabel``."""


MAX_WEIGHT = 1000.0
"""The largest training weight a record may carry."""


class SyntheticRecord(BaseModel):
    """One synthetic example, as written to the output JSONL."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: str
    text: str = Field(min_length=1)
    label: str
    """Argmax of ``soft_label``."""
    soft_label: dict[str, float]
    generated_label: str | None
    label_mass: float = Field(ge=0.0, le=1.0 + 1e-6)
    anchors: list[Example]
    anchor_strategy: str
    anchor_similarity: float | None = None
    """Mean pairwise cosine similarity of the anchors (``None`` when not embedded)."""
    model: str
    prompt_hash: str
    seed: int
    task: str
    soft_label_source: str
    soft_label_raw: dict[str, float] | None = None
    """The soft label before calibration (set by a calibration step)."""
    weight: float = Field(default=1.0, ge=0.0, le=MAX_WEIGHT)
    """Training weight (filters may lower it; at most :data:`MAX_WEIGHT`: a larger one
    overflows the loss and trains a model of NaNs)."""
    flags: list[str] = Field(default_factory=list)
    """Filter rules the record tripped but was kept or down-weighted for."""
    critic: CriticScores | None = None
    """The critic's scores, when a critic ran."""
    teacher_label: dict[str, float] | None = None
    """The real-data teacher's distribution, when a labeller used one."""
    prompt_family: str = "mix"
    """The prompt family that made it (``mix``, ``paraphrase``, ``instruct``, ...)."""
    target: dict[str, float] | None = None
    """What the prompt asked for, label -> share (``instruct``/``paraphrase``: one
    label; ``boundary``: the two shares; ``None`` for ``mix`` and ``fewshot``)."""

    @model_validator(mode="after")
    def _check(self) -> SyntheticRecord:
        total = sum(self.soft_label.values())
        if not self.soft_label or not math.isclose(total, 1.0, abs_tol=1e-4):
            msg = f"soft_label must be a distribution summing to 1, got sum {total:.6f}"
            raise ValueError(msg)
        if any(p < 0 for p in self.soft_label.values()):
            msg = "soft_label has a negative probability"
            raise ValueError(msg)
        best = max(self.soft_label.values())
        if self.label not in self.soft_label or self.soft_label[self.label] < best - 1e-9:
            msg = f"label {self.label!r} is not the argmax of soft_label"
            raise ValueError(msg)
        if self.soft_label_source not in SOFT_LABEL_SOURCES:
            msg = f"soft_label_source must be one of {SOFT_LABEL_SOURCES}"
            raise ValueError(msg)
        return self


class RunSummary(BaseModel):
    """What an augmentation run did, printed and written beside the output."""

    model_config = ConfigDict(extra="forbid")

    task: str
    model: str
    seed: int
    k: int
    anchor_strategy: str
    prompt_family: str = "mix"
    mean_anchor_similarity: float | None = None
    """Mean of the records' ``anchor_similarity``."""
    requested: int
    kept: int
    attempts: int
    """Continuations requested from the model (kept + failed)."""
    failures: dict[str, int] = Field(default_factory=dict)
    """Dropped continuations by reason."""
    surplus: int = 0
    """Parsed continuations beyond ``requested`` (the last batch overshot)."""
    parse_rate: float
    """(kept + surplus) / attempts."""
    label_agreement: float | None = None
    """Share of kept records with a generated label whose soft-label argmax agrees."""
    soft_label_sources: dict[str, int] = Field(default_factory=dict)
    label_counts: dict[str, int] = Field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    examples_per_second: float = 0.0
    output: str
    dry_run: bool = False
    complete: bool = True
    """False when the run stopped before ``requested`` records (retry budget)."""
    rejected: int = 0
    """Records the filter removed (see the rejects file and ``filter``)."""
    filter: dict[str, Any] | None = None
    """The filter's summary (counts by rule, critic and calibration reports)."""
    quotas: dict[str, int] | None = None
    """Records asked for per class of the final label (``None``: no quotas)."""
    quota_surplus: dict[str, int] = Field(default_factory=dict)
    """Records dropped because their class was full."""
    labeller: str | None = None
    """How final labels were made (``lm[batch]xclassifier(1:1)``; ``None``: the LM's own)."""
    relabelled: int = 0
    """Records whose final label differs from the LM's own."""
    guard: dict[str, Any] | None = None
    """``--guard``: the measured gain of training with the records (see ``mixaug.recipe``)."""

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return self.model_dump(mode="json")
