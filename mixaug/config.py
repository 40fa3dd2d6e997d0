"""Run configuration from YAML, validated with pydantic.

Example:
    >>> cfg = AugmentConfig.model_validate({"llm": {"model": "smollm2-135m", "mode": "chat"}})
    >>> cfg.llm.temperature
    1.0
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from mixaug.errors import ConfigError, describe_validation_error
from mixaug.models.registry import DEFAULT_MODEL
from mixaug.redact import redact_url
from mixaug.yamlfile import read_yaml


def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):
        msg = "expected a number, not true/false"
        raise ValueError(msg)  # pydantic reports it as an invalid input
    return value


Real = Annotated[float, BeforeValidator(_not_a_bool)]
"""A float setting: ``true``/``false`` are refused (lax pydantic would read them as 1/0)."""

MAX_SEED = 2**32 - 1
"""Largest seed accepted."""

MAX_N = 1_000_000
"""Most records one ``augment`` run makes; split bigger jobs over several ``--out``."""


class PromptConfig(BaseModel):
    """Which prompt family asks for the data.

    ``prompt: paraphrase`` is short for ``{family: paraphrase}``.
    """

    model_config = ConfigDict(extra="forbid")

    family: str = "mix"
    """A registered prompt family (:data:`mixaug.chains.families.FAMILIES`)."""
    items_per_prompt: int = Field(strict=True, default=5, ge=1, le=50)
    """``instruct``: items each prompt asks for."""
    shares: list[int] = Field(default_factory=lambda: [50, 70], min_length=1)
    """``boundary``: percent given to the first anchor's label (drawn per prompt)."""

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return {"family": value} if isinstance(value, str) else value

    @field_validator("family")
    @classmethod
    def _family(cls, v: str) -> str:
        from mixaug.chains.families import FAMILIES

        if v not in FAMILIES:
            msg = f"unknown prompt family {v!r}; use one of {', '.join(FAMILIES)}"
            raise ValueError(msg)
        return v

    @model_validator(mode="after")
    def _check(self) -> PromptConfig:
        bad = [x for x in self.shares if not 0 < x < 100]
        if bad:
            msg = f"shares are percentages strictly between 0 and 100, got {bad}"
            raise ValueError(msg)
        return self


class LLMConfig(BaseModel):
    """Which model writes the synthetic items, and how it samples.

    Defaults follow the paper: temperature 1, top_p 1, frequency penalty 0.02,
    about 100 new tokens. API keys never appear here: ``api_key_env`` names the
    environment variable that holds one.
    """

    model_config = ConfigDict(extra="forbid")

    provider: str = "local"
    """A registered provider (:data:`mixaug.providers.PROVIDERS`): ``local``: the
    embedded transformers model (or any local folder/GGUF); ``openai``: OpenAI or any
    OpenAI-compatible server (vLLM, llama.cpp, TGI, Ollama); ``huggingface``:
    langchain-huggingface's pipeline over a local model (no logprobs: soft labels come
    from votes)."""
    model: str = DEFAULT_MODEL
    """Embedded model name, ``.gguf`` file or folder; the served model's name for ``openai``."""
    mode: Literal["completion", "chat"] = "completion"
    """Completion prompt (the paper's) or chat messages."""
    base_url: str | None = None
    """``openai``: the server's ``/v1`` URL (unset: api.openai.com)."""
    api_key_env: str | None = None
    """``openai``: name of the environment variable holding the API key."""
    temperature: Real = Field(default=1.0, ge=0.0, le=2.0)
    top_p: Real = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(strict=True, default=100, ge=8, le=4096)
    frequency_penalty: Real = Field(default=0.02, ge=-2.0, le=2.0)
    top_logprobs: int = Field(strict=True, default=20, ge=1, le=100)
    """Alternatives recorded per token (OpenAI allows at most 20)."""
    timeout: Real = Field(default=60.0, gt=0.0)
    """Seconds per request (``openai``)."""
    max_retries: int = Field(strict=True, default=3, ge=0, le=20)
    """Retries with exponential backoff on 429, 5xx, timeouts and refused connections."""
    concurrency: int = Field(strict=True, default=4, ge=1, le=256)
    """Requests in flight at once (``openai``, ``huggingface``)."""
    batch_size: int = Field(strict=True, default=16, ge=1, le=512)
    """Prompts per batch (one forward loop for ``local``)."""
    threads: int | None = Field(strict=True, default=None, ge=1)
    """CPU threads for ``local`` (``None``: torch's default, or every core for llama.cpp)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """``local`` weight type of the layers: ``float32`` (exact) or ``bfloat16`` (7-50 %
    faster on CPUs with native bfloat16; soft labels move by about 0.01)."""
    engine: Literal["auto", "llamacpp", "transformers"] = "auto"
    """``local``: what runs the model. ``llamacpp``: llama.cpp in process over the GGUF as
    shipped (quantised kernels; 1.5x the transformers engine here; completion mode,
    GGUF files and embedded models; needs ``mixaug[llamacpp]``); ``transformers``: the
    de-quantised model in torch (any HF folder, chat mode, ``dtype``); ``auto``:
    ``llamacpp`` where it can run this config and is installed, else ``transformers``.
    Runs record the engine they resolved to."""
    votes: int = Field(strict=True, default=5, ge=1, le=100)
    """Samples per item for soft labels from votes (providers without logprobs)."""
    score_with_completions: bool = True
    """``openai``: score label words missing from the top-k through the server's
    completions endpoint (off for servers without one, e.g. OpenAI's chat models)."""

    @field_serializer("base_url", when_used="json")
    def _no_credentials(self, url: str | None) -> str | None:
        # Manifests, summaries and fingerprints never hold a URL's password.
        return redact_url(url)

    @model_validator(mode="after")
    def _check(self) -> LLMConfig:
        if self.base_url is not None and not re.match(r"(?i)https?://[^/\s]", self.base_url):
            msg = (
                "base_url must be an http:// or https:// URL (like http://127.0.0.1:8080/v1), "
                f"got {redact_url(self.base_url)!r}"
            )
            raise ValueError(msg)
        env = self.api_key_env
        if env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
            msg = (
                "api_key_env must be the NAME of an environment variable (like "
                "OPENAI_API_KEY), not the key itself"
            )
            raise ValueError(msg)
        from mixaug.providers import PROVIDERS

        PROVIDERS[self.provider].check(self)
        return self

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        from mixaug.providers import PROVIDERS

        if v not in PROVIDERS:
            msg = f"unknown provider {v!r}; use one of {', '.join(PROVIDERS)}"
            raise ValueError(msg)
        return v


class AnchorConfig(BaseModel):
    """How anchors are chosen (``anchors: diverse`` is short for ``{strategy: diverse}``)."""

    model_config = ConfigDict(extra="forbid")

    strategy: str = "targeted"
    """A registered strategy (:data:`mixaug.selectors.STRATEGIES`): targeted (the default:
    aimed at the class furthest from its quota), random (the paper's), balanced,
    same-class, mixed-class, diverse or similar."""
    store: str | None = None
    """A persistent Chroma embedding cache (embed a pool once): a folder, or a Chroma
    server's address ``http://HOST:PORT`` that many workers share (``chroma run``)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The strategy's own options, checked by its ``Options`` model (``diverse``:
    ``mmr_lambda``, ``fetch_k``, ``class_filter``). Written beside ``strategy`` they
    are read as options too (``anchors: {strategy: diverse, mmr_lambda: 0.1}``)."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"strategy": value}
        if isinstance(value, dict):
            own = {"strategy", "store", "options"}
            extra = {k: v for k, v in value.items() if k not in own}
            if extra:
                value = {k: v for k, v in value.items() if k in own}
                value["options"] = {**extra, **dict(value.get("options") or {})}
        return value

    @model_validator(mode="after")
    def _check_options(self) -> AnchorConfig:
        from mixaug.selectors import STRATEGIES, check_options

        cls = STRATEGIES.get(self.strategy)
        if cls is None:
            msg = f"unknown anchor strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}"
            raise ValueError(msg)
        self.options = check_options(cls, self.options).model_dump(exclude_unset=True)
        return self


Action = Literal["drop", "downweight", "keep"]
CriticCheck = Literal["fluency", "consistency", "relabel"]
CRITIC_CHECKS: tuple[CriticCheck, ...] = ("fluency", "consistency", "relabel")


class DedupConfig(BaseModel):
    """Exact and near-duplicate checks (against synthetic, train, anchors, eval)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    near: bool = True
    """Also flag near duplicates by embedding cosine (needs ``mixaug[chroma]``)."""
    threshold: Real = Field(default=0.95, gt=0.0, le=1.0)
    """Cosine at or above which two texts are near duplicates."""


class CriticConfig(BaseModel):
    """The LLM judge and the agreement check."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    llm: LLMConfig | None = None
    """The judge model (unset: the generator's ``llm``)."""
    checks: list[CriticCheck] = Field(default_factory=lambda: list(CRITIC_CHECKS))
    shots: int = Field(strict=True, default=2, ge=0, le=16)
    """Few-shot pairs per judge prompt, made from real training examples."""
    min_fluency: Real | Literal["auto"] = "auto"
    """P(yes, fluent) below which a record is flagged ``low_fluency``; ``auto``: the
    threshold that best separates held-out real texts from word-shuffled ones."""
    min_consistency: Real | Literal["auto"] = "auto"
    """P(yes, label fits) below which a record is flagged ``inconsistent_label``;
    ``auto``: the threshold that best separates real texts with their own label from
    the same texts with another label."""
    validation: int = Field(strict=True, default=40, ge=2, le=1000)
    """Held-out real examples the judge is measured on (and ``auto`` fitted on)."""
    min_auroc: Real = Field(default=0.7, ge=0.5, le=1.0)
    """With an ``auto`` threshold, a rule whose held-out AUROC is below this is switched
    off: a judge little better than chance would drop good records at random."""
    min_relabel_accuracy: Real | Literal["auto"] = "auto"
    """The zero-shot relabel joins the agreement vote only at or above this held-out
    accuracy (``auto``: halfway between chance and perfect)."""

    @model_validator(mode="after")
    def _check(self) -> CriticConfig:
        for name in ("min_fluency", "min_consistency", "min_relabel_accuracy"):
            value = getattr(self, name)
            if value != "auto" and not 0.0 <= float(value) <= 1.0:
                msg = f"{name} must be 'auto' or a probability in [0, 1], got {value}"
                raise ValueError(msg)
        return self

    agreement: Literal["majority", "all", "off"] = "majority"
    """Flag ``label_disagreement`` unless a majority (or all) of the signals
    (soft-label argmax, generated label, zero-shot relabel) agree."""


class PolicyConfig(BaseModel):
    """What happens to a record a critic rule flags (duplicates are always dropped)."""

    model_config = ConfigDict(extra="forbid")

    low_fluency: Action = "drop"
    inconsistent_label: Action = "downweight"
    label_disagreement: Action = "downweight"
    weight: Real = Field(default=0.5, gt=0.0, le=1.0)
    """Factor a down-weighted record's ``weight`` is multiplied by."""
    rules: dict[str, Action] = Field(default_factory=dict)
    """Actions for other rules, by reason (a rule of your own: ``{too_short: drop}``)."""

    def action(self, reason: str, default: str = "drop") -> str:
        """The action for records flagged with ``reason``."""
        named: dict[str, str] = {
            "low_fluency": self.low_fluency,
            "inconsistent_label": self.inconsistent_label,
            "label_disagreement": self.label_disagreement,
        }
        return named.get(reason, self.rules.get(reason, default))


class CalibrationConfig(BaseModel):
    """Calibrating soft labels on real labelled examples scored as if generated."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    method: Literal["temperature", "contextual", "both"] = "temperature"
    examples: int = Field(strict=True, default=100, ge=2)
    """Real training examples the temperature is fitted on (at most)."""
    eval_examples: int = Field(strict=True, default=200, ge=0)
    """Labelled ``--eval`` examples ECE and accuracy are reported on (at most)."""
    content_free: str = "N/A"


class FilterConfig(BaseModel):
    """Dedup, critic, policy and calibration: what runs after generation."""

    model_config = ConfigDict(extra="forbid")

    dedup: DedupConfig = Field(default_factory=DedupConfig)
    critic: CriticConfig = Field(default_factory=CriticConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)


class LoopConfig(BaseModel):
    """The agentic loop (``mixaug loop``): rounds, budgets and how it aims."""

    model_config = ConfigDict(extra="forbid")

    per_round: int = Field(strict=True, default=32, ge=1, le=10_000)
    """Records generated per round (before filtering)."""
    max_rounds: int = Field(strict=True, default=10, ge=1, le=1000)
    budget_tokens: int | None = Field(strict=True, default=None, ge=1)
    """Stop once this many prompt + completion tokens are spent (the last round is
    shrunk to fit, from the tokens a record has cost so far)."""
    budget_seconds: Real | None = Field(default=None, gt=0)
    patience: int = Field(strict=True, default=2, ge=1)
    """Stop after this many rounds without a validation gain of ``min_gain``."""
    min_gain: Real = Field(default=0.0, ge=0.0)
    quota: int | None = Field(strict=True, default=None, ge=1)
    """Stop once every class has this many kept synthetic records."""
    uncertain_margin: Real = Field(default=0.2, ge=0.0, le=1.0)
    """A validation example whose top two class probabilities are closer than this is
    a target, as is one the classifier gets wrong."""
    boundary_share: Real = Field(default=0.5, ge=0.0, le=1.0)
    """Share of a round's prompts spent on anchors around the targets; the rest fill
    under-represented classes (same-class anchors) or are drawn at random."""
    epochs: int = Field(strict=True, default=30, ge=1)
    """Quick classifier (frozen encoder): epochs and early-stopping patience."""
    train_patience: int = Field(strict=True, default=5, ge=1)


Calibration = Literal["none", "batch", "prior", "hidden"]


class LabelMixConfig(BaseModel):
    """How a synthetic record's final label is made (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    calibration: Calibration = "prior"
    teacher: Literal["classifier", "centroid", "knn", "none"] = "centroid"
    lm_weight: Real = Field(default=1.0, ge=0.0, le=5.0)
    teacher_weight: Real = Field(default=1.0, ge=0.0, le=5.0)
    agreement: bool = False
    """Drop records whose LM argmax and teacher argmax differ."""
    hidden_temperature: Real = Field(default=0.05, gt=0.0)
    sharpen: Real = Field(default=1.0, ge=1.0, le=16.0)
    """Power of the final label (``p**sharpen``, renormalised; 1 keeps it as it is). The
    recipe chooses it on validation data: a product of two unsure experts is often too
    flat to train on, and sharpening keeps the label soft but more decided."""

    def describe(self) -> str:
        """A short name, e.g. ``batch+classifier(1:1)``."""
        power = "" if self.sharpen == 1 else f"^{self.sharpen:g}"
        if self.teacher == "none" or self.teacher_weight == 0:
            return f"lm[{self.calibration}]{power}"
        if self.lm_weight == 0:
            return f"teacher[{self.teacher}]{power}"
        agree = "+agree" if self.agreement else ""
        power = "" if self.sharpen == 1 else f"^{self.sharpen:g}"
        return (
            f"lm[{self.calibration}]x{self.teacher}"
            f"({self.lm_weight:g}:{self.teacher_weight:g}){agree}{power}"
        )


class LabelsConfig(BaseModel):
    """Final labels, class quotas and the synthetic records' weight: the effect recipe.

    The shipped defaults are the settings the recipe chose most often on SST-2,
    TREC-6 and CoLA (validation data only; see docs/effect.md).
    """

    model_config = ConfigDict(extra="forbid")

    quotas: Literal["real", "val", "uniform", "off"] = "real"
    """Per-class quotas of the final label: ``n`` spread like the real data's classes
    (``real``), like the validation data's (``val``, needs ``--val``), evenly
    (``uniform``), or none (``off``: whatever the model writes)."""
    labeller: LabelMixConfig | None = Field(default_factory=lambda: LabelMixConfig(sharpen=4.0))
    """How a record's final label is made (``None``: the LM's own soft label). The shipped
    default sharpens the label to the 4th power: the recipe's most frequent choice (13 of 27
    runs on SST-2, TREC-6 and CoLA, validation data only; 2 in 9, 1 in 5), worth +1.4 points
    on average where measured (``abl-nosharpen``, TREC-6 and CoLA; docs/effect.md)."""
    synthetic_weight: Real = Field(default=1.0, ge=0.0, le=10.0)
    """Loss weight of synthetic records when training on them (``mixaug train``, guard)."""


class AugmentConfig(BaseModel):
    """Settings of ``mixaug augment``; command-line flags override them."""

    model_config = ConfigDict(extra="forbid")

    llm: LLMConfig = Field(default_factory=LLMConfig)
    task: str | dict[str, Any] | None = None
    """Built-in task name, spec YAML path, or an inline spec mapping."""
    n: int | None = Field(strict=True, default=None, ge=1, le=MAX_N)
    """Records to make (at most :data:`MAX_N` in one run: a run's plan is held in memory)."""
    k: int = Field(strict=True, default=2, ge=1, le=32)
    seed: int = Field(default=0, ge=0, le=MAX_SEED, strict=True)
    """Random seed, 0 ... 2**32 - 1 (what numpy and the engines take)."""
    anchors: AnchorConfig = Field(default_factory=AnchorConfig)
    """Anchor strategy and its options."""
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    """The prompt family and its options."""
    max_attempts: int | None = Field(strict=True, default=None, ge=1, le=100 * MAX_N)
    """Continuations to try before giving up (default 3n + 16)."""
    loop: LoopConfig = Field(default_factory=LoopConfig)
    """Settings of ``mixaug loop``."""
    filter: FilterConfig | None = None
    """Filter each batch (dedup, critic, calibration) inside ``augment``; rejected
    records go to ``OUT.rejects.jsonl`` and more are generated to reach ``n``."""
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    """Class quotas, final labels (calibration + teacher) and synthetic weight."""


def load_config(path: str | Path | None) -> AugmentConfig:
    """Load and validate a YAML config; ``None`` gives the defaults.

    Raises:
        ConfigError: naming the file and each offending field.
    """
    if path is None:
        return AugmentConfig()
    p = Path(path)
    raw = read_yaml(p, "Config file", ConfigError)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        msg = f"Config file {str(p)!r} must hold a mapping (e.g. 'llm:'), got {type(raw).__name__}."
        raise ConfigError(msg)
    try:
        return AugmentConfig.model_validate(raw)
    except ValidationError as e:
        problems = describe_validation_error(e)
        msg = f"Invalid config {str(p)!r}: {problems}."
        raise ConfigError(msg) from None


def apply_overrides(
    cfg: AugmentConfig, top: dict[str, Any], llm: dict[str, Any], *, source: str = "flags"
) -> AugmentConfig:
    """``cfg`` with top-level and ``llm`` fields replaced (``None`` values ignored).

    Raises:
        ConfigError: naming each field whose new value is invalid.
    """
    data = cfg.model_dump()
    top = dict(top)
    anchor_updates = {
        "strategy": top.pop("anchors", None),
        "store": top.pop("store", None),
    }
    data["anchors"] = {
        **data["anchors"],
        **{k: v for k, v in anchor_updates.items() if v is not None},
    }
    family = top.pop("prompt", None)
    if family is not None:
        data["prompt"] = {**data["prompt"], "family": family}
    data.update({k: v for k, v in top.items() if v is not None})
    data["llm"] = {**data["llm"], **{k: v for k, v in llm.items() if v is not None}}
    try:
        return AugmentConfig.model_validate(data)
    except ValidationError as e:
        problems = describe_validation_error(e)
        msg = f"Invalid settings from {source}: {problems}."
        raise ConfigError(msg) from None
