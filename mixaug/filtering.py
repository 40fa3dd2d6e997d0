"""Filter synthetic records: dedup, calibration, critic, then a policy.

:class:`RecordFilter` is a runnable over one batch of records. In order:

1. **dedup** (:class:`~mixaug.dedup.Deduplicator`): exact and near copies of eval
   texts (leakage), of the record's anchors, of training texts and of earlier
   synthetic records are dropped (reasons ``exact_eval``, ``near_anchor``, ...);
2. **calibration** (:class:`~mixaug.chains.CalibrationStep`): the soft label is
   recalibrated, the raw one kept in ``soft_label_raw``;
3. **critic** (:func:`~mixaug.chains.critic.build_critic_chain`): fluency and label
   consistency from an LLM judge, and a zero-shot relabel;
4. **rules and policy**: each rule (:mod:`mixaug.filter_rules`; by default the
   critic's ``low_fluency``, ``inconsistent_label``, ``label_disagreement``) flags a
   record, and the policy drops, down-weights or keeps (flagged) it.

Every rejected record is returned with its reasons, to be written to a rejects
file; nothing is dropped silently.

Example:
    >>> f = RecordFilter(spec=get_spec("sst2"), dedup=Deduplicator(train=["a gem"]))
    >>> out = f.invoke(records)  # doctest: +SKIP
    >>> out.kept, out.rejected  # doctest: +SKIP
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseLanguageModel
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from typing_extensions import override

from mixaug.chains.calibrate import CalibrationReport, CalibrationStep
from mixaug.chains.critic import JudgeCheck
from mixaug.config import FilterConfig, LLMConfig, PolicyConfig
from mixaug.dedup import Deduplicator
from mixaug.errors import ConfigError, DataError
from mixaug.filter_rules import CRITIC_REASONS as CRITIC_REASONS
from mixaug.filter_rules import Rule, critic_rules
from mixaug.filter_rules import disagreement as disagreement
from mixaug.records import CriticScores, Example, SyntheticRecord
from mixaug.specs import TaskSpec


class Rejected(BaseModel):
    """A removed record and why."""

    model_config = ConfigDict(extra="forbid")

    record: SyntheticRecord
    reasons: list[str]
    duplicate_of: str | None = None
    """The text a duplicate copies."""
    similarity: float | None = None
    """Cosine with ``duplicate_of`` (1 for exact copies)."""

    def to_json_dict(self) -> dict[str, Any]:
        """The record's fields plus a ``reject`` object (one rejects-file line)."""
        reject: dict[str, Any] = {"reasons": self.reasons}
        if self.duplicate_of is not None:
            reject["duplicate_of"] = self.duplicate_of
            reject["similarity"] = round(float(self.similarity or 0.0), 6)
        return {**self.record.model_dump(mode="json"), "reject": reject}


class FilterOutcome(BaseModel):
    """One batch through the filter."""

    kept: list[SyntheticRecord] = Field(default_factory=list)
    rejected: list[Rejected] = Field(default_factory=list)


class FilterSummary(BaseModel):
    """Counts of a filter run, by rule, and the calibration report."""

    model_config = ConfigDict(extra="forbid")

    input: int = 0
    kept: int = 0
    dropped: int = 0
    downweighted: int = 0
    flagged_kept: int = 0
    """Kept at full weight with a flag (policy ``keep``)."""
    reasons: dict[str, int] = Field(default_factory=dict)
    """Records that tripped each rule (a record may trip several)."""
    dropped_by: dict[str, int] = Field(default_factory=dict)
    """Dropped records by the rule that dropped them (the first, in rule order)."""
    critic_scored: int = 0
    mean_fluency: float | None = None
    mean_consistency: float | None = None
    relabel_agreement: float | None = None
    """Share of critic-scored records whose zero-shot relabel equals their label."""
    judge: JudgeCheck | None = None
    """How well the critic separated held-out real examples from corrupted ones."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """The critic thresholds used (fitted when ``auto``; 0 when switched off)."""
    disabled_rules: list[str] = Field(default_factory=list)
    """Critic rules switched off because the judge failed its held-out check."""
    critic_checks: list[str] | None = None
    """The critic checks actually run (a switched-off one is not; ``None``: no critic)."""
    calibration: CalibrationReport | None = None
    """Fitted on real training examples."""
    calibration_eval: CalibrationReport | None = None
    """The fitted calibration on labelled evaluation examples."""
    seconds: dict[str, float] = Field(default_factory=dict)


class RecordFilter(RunnableSerializable[list[SyntheticRecord], FilterOutcome]):
    """Dedup, calibrate, criticise and apply the policy to a batch of records.

    Stateful: kept texts join the dedup pool, so later batches are checked against
    them, and :attr:`summary` accumulates counts over batches.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: TaskSpec
    dedup: Deduplicator | None = Field(default=None, exclude=True)
    calibration: CalibrationStep | None = Field(default=None, exclude=True)
    critic: Runnable[Any, CriticScores] | None = Field(default=None, exclude=True)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    """What happens to a record a rule flags, by the rule's reason."""
    rules: list[Rule] | None = None
    """The rules, in order (``None``: the critic's three, from the settings below)."""
    min_fluency: float = 0.5
    min_consistency: float = 0.5
    agreement: str = "majority"
    use_relabel: bool = True
    """Whether the zero-shot relabel votes in the agreement rule."""
    summary: FilterSummary = Field(default_factory=FilterSummary)
    _acc: dict[str, float] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _default_rules(self) -> RecordFilter:
        if self.rules is None:
            self.rules = critic_rules(
                min_fluency=self.min_fluency,
                min_consistency=self.min_consistency,
                agreement=self.agreement,
                use_relabel=self.use_relabel,
            )
        return self

    def action(self, reason: str) -> str:
        """The policy's action for a rule's ``reason`` (else the rule's default)."""
        rule = next((r for r in self.rules or [] if r.reason == reason), None)
        return self.policy.action(reason, rule.default_action if rule else "drop")

    def prime(self, records: Sequence[SyntheticRecord]) -> None:
        """Add records kept earlier (a resumed run) to the dedup pool."""
        if self.dedup is not None:
            self.dedup.add([r.text for r in records])

    @override
    def invoke(
        self, input: list[SyntheticRecord], config: RunnableConfig | None = None, **kwargs: Any
    ) -> FilterOutcome:
        return self._call_with_config(self._run, input, config)

    def _check_labels(self, records: Sequence[SyntheticRecord]) -> None:
        known = set(self.spec.label_names)
        for r in records:
            extra = sorted(set(r.soft_label) - known)
            if extra:
                msg = (
                    f"record {r.id!r} has soft-label labels {extra} that task "
                    f"{self.spec.name!r} does not know (its labels: {sorted(known)})"
                )
                raise DataError(msg)

    def _run(self, records: list[SyntheticRecord]) -> FilterOutcome:
        self._check_labels(records)
        s = self.summary
        s.input += len(records)
        out = FilterOutcome()
        survivors = list(records)
        if self.dedup is not None and survivors:
            t0 = time.perf_counter()
            verdicts = self.dedup.check(
                [r.text for r in survivors], [[a.text for a in r.anchors] for r in survivors]
            )
            kept = []
            for r, v in zip(survivors, verdicts, strict=True):
                if v is None:
                    kept.append(r)
                else:
                    out.rejected.append(
                        Rejected(
                            record=r,
                            reasons=[v.reason],
                            duplicate_of=v.other,
                            similarity=v.similarity,
                        )
                    )
            survivors = kept
            self._tick("dedup", t0)
        if self.calibration is not None and survivors:
            t0 = time.perf_counter()
            survivors = list(self.calibration.batch(survivors))
            self._tick("calibration", t0)
        scores: list[CriticScores | None] = [None] * len(survivors)
        if self.critic is not None and survivors:
            t0 = time.perf_counter()
            scores = list(self.critic.batch(survivors))
            self._tick("critic", t0)
        for r, sc in zip(survivors, scores, strict=True):
            reasons = self._critic_reasons(r, sc)
            if sc is not None:
                r = r.model_copy(update={"critic": sc})
            actions = [self.action(why) for why in reasons]
            if "drop" in actions:
                out.rejected.append(Rejected(record=r, reasons=reasons))
                continue
            update: dict[str, Any] = {"flags": sorted(set(r.flags) | set(reasons))}
            if "downweight" in actions:
                update["weight"] = round(r.weight * self.policy.weight, 6)
                s.downweighted += 1
            elif reasons:
                s.flagged_kept += 1
            out.kept.append(r.model_copy(update=update) if reasons else r)
        self._count(out, [sc for sc in scores if sc is not None])
        return out

    def _critic_reasons(self, r: SyntheticRecord, sc: CriticScores | None) -> list[str]:
        return [rule.reason for rule in self.rules or [] if rule.applies(r, sc)]

    def _tick(self, step: str, t0: float) -> None:
        took = time.perf_counter() - t0
        self.summary.seconds[step] = round(self.summary.seconds.get(step, 0.0) + took, 3)

    def _count(self, out: FilterOutcome, scored: list[CriticScores]) -> None:
        s = self.summary
        s.kept += len(out.kept)
        s.dropped += len(out.rejected)
        reasons = Counter(s.reasons)
        dropped_by = Counter(s.dropped_by)
        for r in out.kept:
            reasons.update(f for f in r.flags if f in {x.reason for x in self.rules or []})
        for rej in out.rejected:
            reasons.update(rej.reasons)
            first = next(
                (w for w in rej.reasons if self.action(w) == "drop"),
                rej.reasons[0],
            )
            dropped_by[first] += 1
        s.reasons = dict(sorted(reasons.items()))
        s.dropped_by = dict(sorted(dropped_by.items()))
        acc = self._acc
        for name, values in (
            ("fluency", [c.fluency for c in scored]),
            ("consistency", [c.consistency for c in scored]),
        ):
            vals = [v for v in values if v is not None]
            acc[name + "_sum"] = acc.get(name + "_sum", 0.0) + sum(vals)
            acc[name + "_n"] = acc.get(name + "_n", 0.0) + len(vals)
        for r in [*out.kept, *(rej.record for rej in out.rejected)]:
            if r.critic is not None and r.critic.relabel_label is not None:
                acc["agree"] = acc.get("agree", 0.0) + (r.critic.relabel_label == r.label)
                acc["relabelled"] = acc.get("relabelled", 0.0) + 1
        s.critic_scored += len(scored)
        s.mean_fluency = _mean(acc, "fluency_sum", "fluency_n")
        s.mean_consistency = _mean(acc, "consistency_sum", "consistency_n")
        s.relabel_agreement = _mean(acc, "agree", "relabelled")


def _mean(acc: dict[str, float], total: str, count: str) -> float | None:
    n = acc.get(count, 0.0)
    return round(acc.get(total, 0.0) / n, 4) if n else None


def build_record_filter(
    config: FilterConfig,
    spec: TaskSpec,
    train: Sequence[Example],
    *,
    llm_config: LLMConfig | None = None,
    eval_examples: Sequence[Example] = (),
    llm: BaseLanguageModel[Any] | None = None,
    scorer: Any = None,
    embed: Any = "auto",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> RecordFilter:
    """A :class:`RecordFilter` as ``config`` says, calibration fitted on ``train``.

    Args:
        config: the ``filter`` section of a config.
        spec: the task spec.
        train: the real labelled training examples (dedup, critic shots, calibration).
        llm_config: the generator's model config (the critic's default judge, and the
            scorer calibration uses).
        eval_examples: evaluation/test examples (leakage; calibration is reported on
            the labelled ones).
        llm: an already built generator (reused when the critic has no model of its own).
        scorer: an already built scorer for ``llm``.
        embed: ``texts -> vectors`` for near duplicates; ``"auto"``: the packaged MiniLM.
        seed: seed for shots and calibration anchors.
        log: progress lines.

    Raises:
        ConfigError: when a step needs what the provider can't give (a scorer).
    """
    from mixaug.providers import build_llm, build_scorer

    say = log or (lambda _: None)
    llm_config = llm_config or LLMConfig()
    if llm is None and scorer is None and (config.calibration.enabled or config.critic.enabled):
        llm = build_llm(llm_config, seed=seed)
        scorer = build_scorer(llm_config, llm)
    summary = FilterSummary()
    dedup = _build_dedup(config, train, eval_examples, embed, seed, say)
    calibration = _build_calibration(config, spec, train, eval_examples, scorer, seed, summary, say)
    crit = config.critic
    fitted = Thresholds()
    critic = None
    if crit.enabled:
        critic, fitted = _build_critic(
            crit, spec, train, llm_config, llm, scorer, seed, summary, say
        )
        summary.thresholds = {k: round(float(v), 4) for k, v in fitted.values().items()}
    return RecordFilter(
        spec=spec, dedup=dedup, calibration=calibration, critic=critic, policy=config.policy,
        min_fluency=fitted.min_fluency, min_consistency=fitted.min_consistency,
        agreement=crit.agreement if crit.enabled else "off", use_relabel=fitted.use_relabel,
        summary=summary,
    )  # fmt: skip


def _build_dedup(
    config: FilterConfig,
    train: Sequence[Example],
    eval_examples: Sequence[Example],
    embed: Any,
    seed: int,
    say: Callable[[str], None],
) -> Deduplicator | None:
    if not config.dedup.enabled:
        return None
    if embed == "auto":
        embed = None
        if config.dedup.near:
            from mixaug.selectors.embeddings import default_embeddings

            embed = default_embeddings().embed_documents
    say(f"indexing {len(train)} training and {len(eval_examples)} eval texts for dedup ...")
    return Deduplicator(
        train=[e.text for e in train],
        eval_texts=[e.text for e in eval_examples],
        embed=embed if config.dedup.near else None,
        threshold=config.dedup.threshold,
        seed=seed,
    )


def _build_calibration(
    config: FilterConfig,
    spec: TaskSpec,
    train: Sequence[Example],
    eval_examples: Sequence[Example],
    scorer: Any,
    seed: int,
    summary: FilterSummary,
    say: Callable[[str], None],
) -> CalibrationStep | None:
    """The calibration step, fitted on ``train`` (and measured on labelled eval examples)."""
    from mixaug.chains.calibrate import SoftLabelCalibrator

    cal_cfg = config.calibration
    if not cal_cfg.enabled:
        return None
    if scorer is None:
        msg = (
            "Calibration scores real examples with the model, but this provider can't "
            "score words (set llm.score_with_completions, or turn calibration off)."
        )
        raise ConfigError(msg)
    cal = SoftLabelCalibrator(
        spec=spec, method=cal_cfg.method, content_free=cal_cfg.content_free, seed=seed
    )
    pool = list(train)
    rng = random.Random(seed)
    fit_on = rng.sample(pool, min(cal_cfg.examples, len(pool)))
    if len(pool) <= cal.k:
        msg = f"Calibration needs more than k={cal.k} training examples, got {len(pool)}."
        raise ConfigError(msg)
    say(f"calibrating soft labels on {len(fit_on)} training examples ...")
    summary.calibration = cal.fit(scorer, fit_on, pool)
    labelled = [e for e in eval_examples if e.label in spec.label_names]
    if labelled and cal_cfg.eval_examples:
        sample = random.Random(seed + 1).sample(labelled, min(cal_cfg.eval_examples, len(labelled)))
        say(f"measuring calibration on {len(sample)} eval examples ...")
        summary.calibration_eval = cal.evaluate(cal.score_examples(scorer, sample, pool))
    return CalibrationStep(calibrator=cal, scorer=scorer)


class Thresholds(BaseModel):
    """The critic's cut-offs, as :func:`fit_thresholds` sets them from the judge check."""

    min_fluency: float = 0.5
    min_consistency: float = 0.5
    use_relabel: bool = True
    disabled_rules: list[str] = Field(default_factory=list)

    def values(self) -> dict[str, float]:
        """The two cut-offs by name (as the summary reports them)."""
        return {"min_fluency": self.min_fluency, "min_consistency": self.min_consistency}


def fit_thresholds(crit: Any, judge: Any, n_labels: int) -> Thresholds:
    """The critic's thresholds from its config and the held-out judge check (pure).

    A threshold set in the config is used as it is; ``auto`` takes the judge check's
    fitted cut-off when its AUROC reaches ``min_auroc``, and otherwise turns the rule
    off (listed in ``disabled_rules``). ``relabel`` is off when the judge relabels
    held-out examples worse than ``min_relabel_accuracy`` (``auto``: halfway between
    chance and perfect).

    Example:
        >>> from mixaug.config import CriticConfig
        >>> fit_thresholds(CriticConfig(enabled=True), None, 2).disabled_rules
        ['low_fluency', 'inconsistent_label', 'relabel_vote']
    """
    out = Thresholds()
    for check, name, rule in (
        ("fluency", "min_fluency", "low_fluency"),
        ("consistency", "min_consistency", "inconsistent_label"),
    ):
        value = getattr(crit, name)
        fitted = getattr(judge, f"{check}_threshold") if judge else None
        auc = getattr(judge, f"{check}_auroc") if judge else None
        if value != "auto":
            setattr(out, name, float(value))
        elif fitted is None or auc is None or auc < crit.min_auroc:
            # Unmeasured, or little better than chance on real data: off, and said so.
            setattr(out, name, 0.0)
            if check in crit.checks:
                out.disabled_rules.append(rule)
        else:
            setattr(out, name, fitted)
    if "relabel" in crit.checks:
        chance = 1.0 / n_labels
        floor = (
            (1.0 + chance) / 2
            if crit.min_relabel_accuracy == "auto"
            else float(crit.min_relabel_accuracy)
        )
        acc = judge.relabel_accuracy if judge else None
        if acc is None or acc < floor:
            out.use_relabel = False
            out.disabled_rules.append("relabel_vote")
    return out


def _build_critic(
    crit: Any,
    spec: TaskSpec,
    train: Sequence[Example],
    llm_config: LLMConfig,
    llm: Any,
    scorer: Any,
    seed: int,
    summary: FilterSummary,
    say: Callable[[str], None],
) -> tuple[Any, Thresholds]:
    """The critic chain (only the checks that passed the held-out check) and thresholds."""
    from mixaug.chains.critic import build_critic_chain, check_judge
    from mixaug.providers import build_llm, build_scorer

    judge, judge_scorer = llm, scorer
    if crit.llm is not None:
        judge = build_llm(crit.llm, seed=seed)
        judge_scorer = build_scorer(crit.llm, judge)
    pool = list(train)
    random.Random(seed).shuffle(pool)
    shot_examples = pool[: crit.shots]
    held_out = pool[crit.shots : crit.shots + crit.validation]
    common: dict[str, Any] = {
        "scorer": judge_scorer,
        "checks": list(crit.checks),
        "seed": seed,
        "top_logprobs": (crit.llm or llm_config).top_logprobs,
    }
    if len(held_out) >= 2:
        say(f"measuring the critic on {len(held_out)} held-out training examples ...")
        t0 = time.perf_counter()
        summary.judge = check_judge(judge, spec, held_out, shots=shot_examples, **common)
        summary.seconds["judge_check"] = round(time.perf_counter() - t0, 3)
    fitted = fit_thresholds(crit, summary.judge, len(spec.label_names))
    summary.disabled_rules.extend(fitted.disabled_rules)
    # A check switched off above would only cost model calls: it is not run.
    off = {"fluency": "low_fluency", "consistency": "inconsistent_label"}
    off["relabel"] = "relabel_vote"
    active: list[str] = [c for c in crit.checks if off[c] not in summary.disabled_rules]
    summary.critic_checks = active
    if len(active) < len(crit.checks):
        skipped = ", ".join(c for c in crit.checks if c not in active)
        say(f"critic: not running {skipped} (failed the held-out check; see disabled_rules)")
    if not active:
        return None, fitted
    common["checks"] = active
    chain = build_critic_chain(
        judge, spec, examples=shot_examples, shots=len(shot_examples), **common
    )
    return chain, fitted
