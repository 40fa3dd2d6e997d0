"""Calibrating soft labels as a chain step.

:class:`SoftLabelCalibrator` scores real labelled examples "as if generated" (the
GPT3Mix prompt over k random anchors, then ``prompt + text + " (<Label type>:"``),
fits a temperature on them, and reports ECE and accuracy before and after.
Contextual calibration divides each distribution by the one the model gives a
content-free text (``"N/A"``) after the *same* anchors. :class:`CalibrationStep`
applies both to synthetic records, keeping the raw soft label in ``soft_label_raw``.

Example:
    >>> cal = SoftLabelCalibrator(spec=get_spec("sst2"))  # doctest: +SKIP
    >>> report = cal.fit(llm, seed_examples, pool)  # doctest: +SKIP
    >>> step = CalibrationStep(calibrator=cal, scorer=llm)  # doctest: +SKIP
    >>> step.batch(records)  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import override

from mixaug.calibration import (
    accuracy,
    contextual_calibrate,
    expected_calibration_error,
    fit_temperature,
    temperature_scale,
)
from mixaug.chains.prompts import render_mix_prompt
from mixaug.errors import DataError
from mixaug.records import Example, SyntheticRecord
from mixaug.softlabels import LabelScorer, normalise, rescore_word_probs
from mixaug.specs import TaskSpec


class CalibrationReport(BaseModel):
    """ECE and accuracy of the soft-label argmax on real examples, before and after."""

    examples: int
    temperature: float
    ece_raw: float
    accuracy_raw: float
    ece_contextual: float
    accuracy_contextual: float
    ece_calibrated: float
    accuracy_calibrated: float


class SoftLabelCalibrator(BaseModel):
    """Contextual calibration plus a fitted temperature, for one task spec."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: TaskSpec
    method: Literal["contextual", "temperature", "both"] = "both"
    content_free: str = "N/A"
    """The content-free text (Zhao et al. 2021 use "N/A")."""
    temperature: float = Field(default=1.0, gt=0.0)
    """Fitted by :meth:`fit`; 1 leaves the distribution as is."""
    k: int = 2
    seed: int = 0

    def _dist(self, scorer: LabelScorer, anchors: Sequence[Example], text: str) -> dict[str, float]:
        prefix = f"{render_mix_prompt(self.spec, anchors)} {text} {self.spec.label_marker}"
        dist, _ = normalise(rescore_word_probs(scorer, prefix, self.spec.words))
        by_word = {w: lab for lab, w in self.spec.mapping.items()}
        return {by_word[w]: p for w, p in dist.items()}

    def content_free_dist(
        self, scorer: LabelScorer, anchors: Sequence[Example]
    ) -> dict[str, float]:
        """The label distribution after ``anchors`` for the content-free text."""
        return self._dist(scorer, anchors, self.content_free)

    def calibrate(
        self, dist: dict[str, float], content_free: dict[str, float] | None
    ) -> dict[str, float]:
        """Apply the configured method to one distribution."""
        out = dict(dist)
        if self.method in ("contextual", "both"):
            if content_free is None:
                msg = "contextual calibration needs the content-free distribution"
                raise DataError(msg)
            out = contextual_calibrate(out, content_free)
        if self.method in ("temperature", "both") and self.temperature != 1.0:
            out = temperature_scale(out, self.temperature)
        return out

    def score_examples(
        self, scorer: LabelScorer, examples: Sequence[Example], pool: Sequence[Example]
    ) -> list[tuple[dict[str, float], dict[str, float], str]]:
        """(raw distribution, content-free distribution, true label) per example."""
        rng = random.Random(self.seed)
        out = []
        for ex in examples:
            others = [p for p in pool if p != ex]
            if len(others) < self.k:
                msg = f"calibration needs at least k={self.k} other examples in the pool"
                raise DataError(msg)
            anchors = rng.sample(others, self.k)
            out.append(
                (
                    self._dist(scorer, anchors, ex.text),
                    self.content_free_dist(scorer, anchors),
                    ex.label,
                )
            )
        return out

    def fit(
        self, scorer: LabelScorer, examples: Sequence[Example], pool: Sequence[Example]
    ) -> CalibrationReport:
        """Fit the temperature on real ``examples`` (anchors drawn from ``pool``).

        Raises:
            DataError: for labels outside the spec or too small a pool.
        """
        known = set(self.spec.label_names)
        bad = sorted({e.label for e in examples} - known)
        if bad:
            msg = f"calibration examples have labels {bad} outside task {self.spec.name!r}"
            raise DataError(msg)
        scored = self.score_examples(scorer, examples, pool)
        return self._fit_scored(scored)

    def _fit_scored(
        self, scored: Sequence[tuple[dict[str, float], dict[str, float], str]]
    ) -> CalibrationReport:
        raw = [r for r, _, _ in scored]
        labels = [y for _, _, y in scored]
        ctx = [contextual_calibrate(r, cf) for r, cf, _ in scored]
        base = ctx if self.method in ("contextual", "both") else raw
        if self.method in ("temperature", "both"):
            self.temperature = fit_temperature(base, labels)
        return self.evaluate(scored)

    def evaluate(
        self, scored: Sequence[tuple[dict[str, float], dict[str, float], str]]
    ) -> CalibrationReport:
        """ECE and accuracy of scored real examples: raw, contextual, and as configured."""
        raw = [r for r, _, _ in scored]
        labels = [y for _, _, y in scored]
        ctx = [contextual_calibrate(r, cf) for r, cf, _ in scored]
        cal = [self.calibrate(r, cf) for r, cf, _ in scored]
        return CalibrationReport(
            examples=len(scored),
            temperature=round(self.temperature, 4),
            ece_raw=round(expected_calibration_error(raw, labels), 4),
            accuracy_raw=round(accuracy(raw, labels), 4),
            ece_contextual=round(expected_calibration_error(ctx, labels), 4),
            accuracy_contextual=round(accuracy(ctx, labels), 4),
            ece_calibrated=round(expected_calibration_error(cal, labels), 4),
            accuracy_calibrated=round(accuracy(cal, labels), 4),
        )


class CalibrationStep(RunnableSerializable[SyntheticRecord, SyntheticRecord]):
    """Calibrate a record's soft label; the raw one is kept in ``soft_label_raw``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    calibrator: SoftLabelCalibrator
    scorer: Any = Field(default=None, exclude=True)
    """Scores the content-free text after the record's anchors (contextual method)."""

    @override
    def invoke(
        self, input: SyntheticRecord, config: RunnableConfig | None = None, **kwargs: Any
    ) -> SyntheticRecord:
        return self._call_with_config(self._apply, input, config)

    def _apply(self, record: SyntheticRecord) -> SyntheticRecord:
        cal = self.calibrator
        missing = set(cal.spec.label_names) ^ set(record.soft_label)
        if missing:
            msg = f"record {record.id}: soft_label labels differ from the task's: {sorted(missing)}"
            raise DataError(msg)
        cf = None
        if cal.method in ("contextual", "both"):
            if self.scorer is None:
                msg = "contextual calibration needs a scorer (a model that can score text)"
                raise DataError(msg)
            cf = cal.content_free_dist(self.scorer, record.anchors)
        raw = record.soft_label_raw or record.soft_label
        soft = cal.calibrate(dict(raw), cf)
        label = max(soft, key=lambda k: soft[k])
        return record.model_copy(
            update={"soft_label": soft, "label": label, "soft_label_raw": dict(raw)}
        )
