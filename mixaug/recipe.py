"""The recipe and the guard: choose how synthetic records are used, on validation data only.

Given the real training examples, labelled validation examples and a pool of
synthetic records (with their LM label scores), :func:`run_recipe`:

1. splits the validation set in two, stratified and seeded: a **selection** half and
   a **guard** half that no choice has seen;
2. fits the teachers on the real data (:mod:`mixaug.teacher`);
3. scores the selection texts with the LM "as if generated" and picks the labeller
   (calibration, teacher, weights) that labels them best (:func:`~mixaug.labelmix.choose_labeller`);
4. relabels the pool, fills per-class quotas (``ratio`` × the real count of each class,
   or ``ratio`` × the real total spread by the validation prior) and trains a classifier
   for each (ratio, prior, synthetic weight), plus one on the real data alone; the best
   on the selection half wins, the real data alone when nothing beats it;
5. **guard**: trains the winner and the real-data-only classifier with
   ``guard_seeds`` seeds each and reports the gain on the guard half, mean and spread,
   with a plain verdict.

Example:
    >>> result = run_recipe(real, validation, records, llm=llm, spec=spec)  # doctest: +SKIP
    >>> result.report.verdict  # doctest: +SKIP
    'augmentation helps: +4.1 ± 0.9 points on 436 held-out validation examples'
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mixaug.errors import DataError, ModelError
from mixaug.labelmix import (
    Labeller,
    LabellerChoice,
    LabelMixConfig,
    choose_labeller,
    fill_quotas,
    quotas_for,
)
from mixaug.lmscores import LMScores, score_texts
from mixaug.records import Example, SyntheticRecord
from mixaug.specs import TaskSpec
from mixaug.teacher import Teacher

if TYPE_CHECKING:
    from mixaug.training.args import TrainingArguments
    from mixaug.training.features import FeatureCache


class RecipeConfig(BaseModel):
    """What :func:`run_recipe` searches, and how the guard measures."""

    model_config = ConfigDict(extra="forbid")

    ratios: list[float] = Field(default_factory=lambda: [1.0, 2.0, 5.0], min_length=1)
    """Synthetic records per real one (each class's quota)."""
    weights: list[float] = Field(default_factory=lambda: [0.5, 1.0], min_length=1)
    """Loss weights of synthetic records (real ones weigh 1)."""
    sharpen: list[float] = Field(default_factory=lambda: [1.0, 2.0, 4.0], min_length=1)
    """Powers tried on the final soft labels (``p**a`` renormalised; hard labels: none)."""
    priors: list[Literal["real", "validation"]] = Field(
        default_factory=lambda: ["real", "validation"],  # type: ignore[arg-type]
        min_length=1,
    )
    """Quota shapes: the real data's class counts, or the validation set's class prior."""
    teachers: list[Literal["classifier", "centroid", "knn"]] = Field(
        default_factory=lambda: ["classifier", "centroid"]  # type: ignore[arg-type]
    )
    calibrations: list[Literal["none", "batch", "prior", "hidden"]] = Field(
        default_factory=lambda: ["none", "batch", "prior", "hidden"],  # type: ignore[arg-type]
        min_length=1,
    )
    """LM calibrations the labeller may use."""
    hard: bool = False
    """Train on one-hot final labels instead of the soft ones."""
    prior_match: bool = True
    """Rescale the chosen records' soft labels per class so their mean is the class
    share of their labels (:func:`match_label_prior`; ablation ``abl-noprior``)."""
    reweight: Literal["none", "sungen"] = "none"
    """Per-record weights of the chosen records: ``sungen`` learns them against a
    noise-robust loss (:func:`mixaug.training.reweight.sungen_reweight`; bench method
    ``mix-sungen``)."""
    quotas: bool = True
    """Fill per-class quotas of the final label (off: the first records, any class)."""
    guard: bool = True
    """Measure the guard (off for ablation rows, which only need the test score)."""
    labeller: LabelMixConfig | None = None
    """Fix the labeller instead of choosing it (ablations)."""
    fallback: bool = True
    """Let the real data alone win when no setting beats it on the selection half."""
    veto: bool = True
    """Drop the chosen records when the guard half says they do not help (gain <= 0):
    the result is then the real data alone, and the report says so (``vetoed``)."""
    selection_texts: int = Field(default=100, ge=10)
    """Validation texts the LM scores to choose the labeller (at most)."""
    guard_seeds: int = Field(default=3, ge=1)
    guard_share: float = Field(default=0.5, gt=0.0, lt=1.0)
    """Share of the validation set kept for the guard."""
    k: int = Field(default=2, ge=1)
    search: Literal["auto", "validation", "fixed"] = "auto"
    """How the settings are chosen. ``validation``: the search above, on one part of the
    validation set, with the guard on the other. ``fixed``: no search, the shipped
    defaults (``fixed_labeller``, ``fixed_ratio``, ``fixed_weight``, quotas like the real
    data), and the whole validation set is the guard's, since nothing was chosen on it.
    ``auto`` (the default) searches only with at least ``min_search`` validation
    examples: on a few-shot validation set (as many examples as the training set, say)
    a choice among dozens of settings is noise (docs/effect.md, few-shot protocol)."""
    min_search: int = Field(default=200, ge=4)
    """Validation examples ``auto`` needs before it searches."""
    fixed_labeller: LabelMixConfig = Field(default_factory=lambda: LabelMixConfig(sharpen=4.0))
    """The labeller of ``fixed``: ``augment``'s default (prior-calibrated LM × centroid
    teacher, 1:1, label power 4)."""
    fixed_ratio: float = Field(default=5.0, gt=0.0)
    fixed_weight: float = Field(default=1.0, gt=0.0)
    fixed_gate: bool = True
    """``fixed``: use the records only when the labeller knows more than the real data
    alone: on the user's own labelled texts (the real examples, each left out of its own
    teacher, and the validation set), the LM × teacher labels must beat the teacher alone
    by more than chance (:meth:`_Search.gate`). A generator that cannot label the task
    only passes on what the real examples already teach, plus noise."""
    fixed_balance: bool = True
    """``fixed``: give the records the quotas' class shares when the generator could not
    fill them (:func:`balance_to_quotas`), so they never move the class prior the student
    learns; the search instead measures whatever shares it gets."""

    def searches(self, validation_size: int) -> bool:
        """Whether a validation set of ``validation_size`` examples is searched on."""
        if self.search == "auto":
            return validation_size >= self.min_search
        return self.search == "validation"


class GuardReport(BaseModel):
    """The measured effect of the synthetic records on held-out validation data."""

    examples: int
    with_synthetic: list[float]
    without: list[float]
    gain: float
    """Mean accuracy gain in points."""
    spread: float
    """Standard deviation of the per-seed gains in points."""
    verdict: str
    helps: bool


class RecipeReport(BaseModel):
    """What the recipe chose and measured (all on validation data)."""

    labeller: str
    labeller_accuracy: float | None
    """On the selection texts (``None``: a fixed labeller that was not among the candidates)."""
    labeller_candidates: list[dict[str, Any]]
    ratio: float | None
    prior: str | None
    weight: float | None
    sharpen: float | None = None
    """Power chosen for the soft labels (``None``: hard labels or no records used)."""
    selection: list[dict[str, Any]]
    """Selection-half accuracy of every setting tried."""
    synthetic_used: int
    quota_surplus: dict[str, int]
    dropped_disagreeing: int
    label_counts: dict[str, int]
    guard: GuardReport | None
    vetoed: bool = False
    """The guard said the chosen records do not help, so none are used."""
    searched: bool = True
    """Settings chosen on validation (``False``: the fixed defaults, see ``search``)."""
    gate: dict[str, Any] | None = None
    """The fixed recipe's check that the labeller beats the teacher alone (``None``: not
    run); its ``passes`` is ``False`` when the records were dropped for it."""


class RecipeResult(BaseModel):
    """The records to train on (relabelled, quota-filled) and the report."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    records: list[SyntheticRecord]
    training: Any
    """The :class:`~mixaug.training.TrainingArguments` to train on the records with."""
    report: RecipeReport
    selection_set: list[Example]
    guard_set: list[Example]


def split_validation(
    validation: Sequence[Example], share: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """(selection, guard): a stratified, seeded split of ``validation``."""
    by: dict[str, list[Example]] = {}
    for e in validation:
        by.setdefault(e.label, []).append(e)
    rng = random.Random(seed * 7919 + 17)
    sel: list[Example] = []
    guard: list[Example] = []
    for lab in sorted(by):
        xs = list(by[lab])
        rng.shuffle(xs)
        cut = round(len(xs) * share)
        guard += xs[:cut]
        sel += xs[cut:]
    if not sel or not guard:
        msg = "the validation set is too small to split for the guard; give more examples"
        raise DataError(msg)
    return sel, guard


def record_scores(records: Sequence[SyntheticRecord], labels: Sequence[str]) -> LMScores:
    """LM label log-scores of records from their inline soft labels and label mass."""
    logp = np.empty((len(records), len(labels)))
    for r, rec in enumerate(records):
        raw = rec.soft_label_raw or rec.soft_label
        mass = max(rec.label_mass, 1e-6)
        logp[r] = [math.log(max(raw.get(c, 0.0) * mass, 1e-30)) for c in labels]
    return LMScores(logp)


def anchored(
    real: Sequence[Example], texts: Sequence[str], k: int, seed: int
) -> list[tuple[list[Example], str]]:
    """Each text with ``k`` random real anchors (never the text itself), seeded."""
    rng = random.Random(seed)
    out = []
    for t in texts:
        others = [e for e in real if e.text != t]
        out.append((rng.sample(others, min(k, len(others))), t))
    return out


def _relabel(
    records: Sequence[SyntheticRecord], probs: np.ndarray, labels: Sequence[str], hard: bool
) -> list[SyntheticRecord]:
    out = []
    for rec, p in zip(records, probs, strict=True):
        dist = {c: float(v) for c, v in zip(labels, p, strict=True)}
        top = max(dist, key=lambda c: dist[c])
        if hard:
            dist = {c: 1.0 if c == top else 0.0 for c in labels}
        else:
            s = sum(dist.values())
            dist = {c: v / s for c, v in dist.items()}
            top = max(dist, key=lambda c: dist[c])
        out.append(
            rec.model_copy(
                update={
                    "soft_label": dist,
                    "label": top,
                    "soft_label_raw": rec.soft_label_raw or rec.soft_label,
                }
            )
        )
    return out


def match_label_prior(
    records: Sequence[SyntheticRecord], labels: Sequence[str], iterations: int = 100
) -> list[SyntheticRecord]:
    """Rescale soft labels per class so their mean equals the records' label shares.

    A labeller less sure than it is right gives soft labels whose mean is flatter than
    the class shares of its own argmax labels; training on them teaches the student a
    flatter class prior than the records hold. Per-class factors ``w`` (found by
    iterative proportional fitting) make ``mean_i normalise(p_i * w)`` equal the label
    shares; each record keeps its label (a record whose argmax would move keeps the
    old argmax tied at the top).

    Example:
        >>> recs = match_label_prior(records, ["negative", "positive"])  # doctest: +SKIP
    """
    if not records:
        return []
    p = np.array([[r.soft_label.get(c, 0.0) for c in labels] for r in records])
    top = np.array([labels.index(r.label) for r in records])
    share = np.bincount(top, minlength=len(labels)) / len(records)
    share = np.maximum(share, 1e-6)
    w = np.ones(len(labels))
    for _ in range(iterations):
        q = p * w
        q /= q.sum(axis=1, keepdims=True)
        m = np.maximum(q.mean(axis=0), 1e-12)
        w *= share / m
        w /= w.sum()
    q = p * w
    q /= q.sum(axis=1, keepdims=True)
    out = []
    for rec, row, t in zip(records, q, top, strict=True):
        row = row.copy()
        row[t] = max(row[t], row.max())  # the record's label stays its argmax
        row /= row.sum()
        dist = {c: float(v) for c, v in zip(labels, row, strict=True)}
        out.append(rec.model_copy(update={"soft_label": dist}))
    return out


def balance_to_quotas(
    records: Sequence[SyntheticRecord], quotas: Mapping[str, int], max_weight: float = 3.0
) -> list[SyntheticRecord]:
    """Records whose label mass has the shares of ``quotas``: trimmed, or up-weighted.

    A generator that wrote 8 records of one class and 20 of the other would teach the
    student a 30/70 prior from a balanced task. Each class gets the mass ``F × quota``,
    with ``F`` as large as the short classes allow when each of their records weighs at
    most ``max_weight``: a full class keeps its first ``F × quota`` records at their
    weight, a short one keeps all of its records, weighted up to its mass. A class with
    no record at all cannot be balanced and is left out of ``F``.

    Example:
        >>> out = balance_to_quotas(records, {"negative": 10, "positive": 10})  # doctest: +SKIP
    """
    by: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by.setdefault(r.label, []).append(i)
    wanted = {c: q for c, q in quotas.items() if q > 0 and by.get(c)}
    if not wanted:
        return list(records)
    f = min(1.0, *(max_weight * len(by[c]) / q for c, q in wanted.items()))
    keep: set[int] = set()
    weights: dict[str, float] = {}
    for c, q in wanted.items():
        mass, have = f * q, by[c]
        if len(have) >= mass:
            keep |= set(have[: max(1, round(mass))])
        else:
            keep |= set(have)
            weights[c] = mass / len(have)
    keep |= {i for c, idx in by.items() if c not in wanted for i in idx}  # no quota: kept
    return [
        r.model_copy(update={"weight": r.weight * weights[r.label]}) if r.label in weights else r
        for i, r in enumerate(records)
        if i in keep
    ]


class _Fit:
    """Trains one classifier and scores it (shared encoder features)."""

    def __init__(
        self,
        labels: Sequence[str],
        args: TrainingArguments,
        encoder: str | None,
        cache: FeatureCache,
    ) -> None:
        self.labels = list(labels)
        self.args = args
        self.encoder = encoder
        self.cache = cache

    def __call__(
        self,
        real: Sequence[Example],
        synthetic: Sequence[SyntheticRecord],
        weight: float,
        val: Sequence[Example],
        seed: int,
        evaluate: Sequence[Sequence[Example]] = (),
    ) -> tuple[Any, list[float]]:
        import torch

        from mixaug.training import TextClassifier, TextDataset, Trainer

        args = self.args.model_copy(update={"seed": seed, "synthetic_weight": weight})
        torch.manual_seed(seed)
        model = TextClassifier.from_encoder(
            self.encoder, self.labels, max_length=args.max_length, share_encoder=True
        )
        train = TextDataset.build(list(real), list(synthetic), labels=self.labels)
        vds = TextDataset.build(list(val), labels=self.labels)
        trainer = Trainer(model, args, train, vds, feature_cache=self.cache)
        trainer.train()
        accs = [
            trainer.evaluate(TextDataset.build(list(ev), labels=self.labels))["accuracy"]
            for ev in evaluate
        ]
        return trainer, accs

    def features(self, texts: list[str]) -> np.ndarray:
        """Frozen-encoder features of ``texts`` (through the shared cache)."""
        from mixaug.training import TextClassifier, Trainer

        model = TextClassifier.from_encoder(
            self.encoder, self.labels, max_length=self.args.max_length, share_encoder=True
        )
        trainer = Trainer(model, self.args, feature_cache=self.cache)
        return np.asarray(trainer.text_features(texts).numpy())


def run_recipe(
    real: Sequence[Example],
    validation: Sequence[Example],
    records: Sequence[SyntheticRecord],
    *,
    llm: Any,
    spec: TaskSpec,
    config: RecipeConfig | None = None,
    training: TrainingArguments | None = None,
    encoder: str | None = None,
    feature_cache: FeatureCache | None = None,
    seed: int = 0,
    record_lm: LMScores | None = None,
    score: Callable[[list[tuple[list[Example], str]]], LMScores] | None = None,
    log: Callable[[str], None] | None = None,
) -> RecipeResult:
    """Choose labeller, ratio, quota shape and weight on validation data; guard the result.

    ``record_lm`` are the records' LM scores (default: from their inline soft labels);
    ``score`` scores ``(anchors, text)`` pairs with the LM (default: :func:`score_texts`
    on ``llm``; the bench passes a cached one).

    Raises:
        DataError: for no real examples, or a validation set too small to split.
    """
    cfg = config or RecipeConfig()
    say = log or (lambda _: None)
    if not real:
        msg = "the recipe needs real labelled examples"
        raise DataError(msg)
    args, cache = _frozen(training, feature_cache)
    searched = cfg.searches(len(validation))
    if searched:
        selection, guard = split_validation(validation, cfg.guard_share, seed)
    else:  # nothing is chosen on validation: all of it early-stops and guards
        if not validation:
            msg = "the recipe needs labelled validation examples (for early stopping and the guard)"
            raise DataError(msg)
        selection = guard = list(validation)
        say(
            f"{len(validation)} validation examples: too few to choose settings on "
            f"(a search needs {cfg.min_search}); using the fixed defaults"
        )
    labels = list(spec.label_names)
    scorer = score or (lambda items: score_texts(llm, spec, items))
    fit = _Fit(labels, args, encoder, cache)
    search = _Search(cfg, labels, list(real), selection, fit, seed, scorer, say)
    if searched:
        search.fit_teachers(encoder, args, cache)
        labeller, choices, chosen = search.choose_labeller()
    else:
        labeller, choices, chosen = search.fixed_labeller(encoder, args, cache), [], None
    pools, drop = search.relabel(list(records), labeller, record_lm, encoder, args, cache)
    best, rows = search.settings(pools) if searched else search.fixed_settings(pools)
    used: list[SyntheticRecord] = best["records"]
    gate = None
    if not searched and cfg.fixed_gate and used:
        gate = search.gate(labeller)
        if gate is not None and not gate["passes"]:
            say(
                f"the labeller does not beat the real examples' own teacher on the "
                f"{gate['examples']} labelled texts ({100 * gate['labeller']:.0f}% vs "
                f"{100 * gate['teacher']:.0f}%): no record is used"
            )
            best, used = _real_only(), []

    report = None
    if cfg.guard:  # with vs without, on the held-out half (all of validation when fixed)
        report = guard_gain(
            search.fit,
            real,
            used,
            float(best["weight"]),
            selection,
            guard,
            seed,
            cfg.guard_seeds,
            benefit_of_doubt=not searched,
        )
        say(report.verdict)
    vetoed = bool(cfg.veto and report is not None and used and not report.helps)
    if vetoed:
        say("the guard vetoed the records: the real data alone is used")
        used = []
    return RecipeResult(
        records=used,
        # The caller's own settings (a fully fine-tuned encoder stays so); the search above
        # ran on frozen features only to make its many fits cheap.
        training=(training or args).model_copy(
            update={"synthetic_weight": float(best["weight"]) or 1.0}
        ),
        report=_report(
            labeller, choices, chosen, best, rows, used, drop, report, vetoed
        ).model_copy(update={"searched": searched, "gate": gate}),
        selection_set=selection,
        guard_set=guard,
    )


def _frozen(
    training: TrainingArguments | None, cache: FeatureCache | None
) -> tuple[TrainingArguments, FeatureCache]:
    """The recipe's training settings (frozen encoder) and its feature cache."""
    from mixaug.training.args import TrainingArguments
    from mixaug.training.features import FeatureCache

    args = training or TrainingArguments(freeze_encoder=True, epochs=30, patience=5)
    return args.model_copy(update={"freeze_encoder": True}), cache or FeatureCache(per_text=True)


def _report(
    labeller: Labeller,
    choices: list[LabellerChoice],
    chosen: LabellerChoice | None,
    best: dict[str, Any],
    rows: list[dict[str, Any]],
    used: list[SyntheticRecord],
    drop: np.ndarray,
    guard: GuardReport | None,
    vetoed: bool,
) -> RecipeReport:
    """What the recipe chose and measured (``used``: the records it returns)."""
    surplus_used: Counter[str] = Counter(best.get("surplus", {})) if used else Counter()
    return RecipeReport(
        labeller=labeller.config.model_copy(
            update={"sharpen": float(best.get("sharpen") or 1.0) if used else 1.0}
        ).describe(),
        labeller_accuracy=round(chosen.accuracy, 4) if chosen else None,
        labeller_candidates=[
            {"name": c.name, "accuracy": round(c.accuracy, 4), "nll": round(c.nll, 4)}
            for c in choices[:8]
        ],
        ratio=float(best["ratio"]) if used else None,
        prior=best["prior"] if used else None,
        weight=float(best["weight"]) if used else None,
        sharpen=float(best["sharpen"]) if used and best.get("sharpen") else None,
        selection=[{k: v for k, v in r.items() if k != "records"} for r in rows],
        synthetic_used=len(used),
        quota_surplus=dict(surplus_used),
        dropped_disagreeing=int(drop.sum()),
        label_counts=dict(sorted(Counter(r.label for r in used).items())),
        guard=guard,
        vetoed=vetoed,
    )


class _Search:
    """The steps of :func:`run_recipe` that choose, all on the selection half."""

    def __init__(
        self,
        cfg: RecipeConfig,
        labels: list[str],
        real: list[Example],
        selection: list[Example],
        fit: _Fit,
        seed: int,
        scorer: Callable[[list[tuple[list[Example], str]]], LMScores],
        say: Callable[[str], None],
    ) -> None:
        self.cfg, self.labels, self.real, self.selection = cfg, labels, real, selection
        self.fit, self.seed, self.scorer, self.say = fit, seed, scorer, say
        self.teachers: dict[str, Teacher] = {}
        self.real_scores: LMScores | None = None
        self.fixed_power: float | None = None
        """The one label power of the ``fixed`` search (the fixed labeller's own)."""

    def fit_teachers(self, encoder: str | None, args: TrainingArguments, cache: Any) -> None:
        for name in self.cfg.teachers:
            self.teachers[name] = Teacher(
                name,
                labels=self.labels,
                encoder=encoder,
                args=args.model_copy(update={"seed": self.seed}),
                feature_cache=cache,
            ).fit(self.real, self.selection)

    def choose_labeller(self) -> tuple[Labeller, list[LabellerChoice], LabellerChoice | None]:
        """The labeller (calibration, teacher, weights) that labels selection texts best."""
        cfg, labels, real = self.cfg, self.labels, self.real
        rng = random.Random(self.seed + 1)
        sel_lm = (
            self.selection
            if len(self.selection) <= cfg.selection_texts
            else rng.sample(self.selection, cfg.selection_texts)
        )
        sel_texts = [e.text for e in sel_lm]
        gold = [e.label for e in sel_lm]
        sel_teacher = {n: t.predict(sel_texts) for n, t in self.teachers.items()}
        try:
            sel_scores = self.scorer(anchored(real, sel_texts, cfg.k, self.seed))
            self.real_scores = self.scorer(
                anchored(real, [e.text for e in real], cfg.k, self.seed + 2)
            )
        except ModelError as e:
            # A model that cannot score texts: its labels can't be checked on validation,
            # so only the teachers compete (or the LM's own labels, with no teacher).
            self.say(f"the LM cannot score validation texts ({e}); choosing among teachers only")
            labeller, choices = self._teachers_only(sel_texts, gold, sel_teacher)
        else:
            labeller, choices = choose_labeller(
                sel_scores,
                gold,
                labels,
                teachers=sel_teacher,
                real_scores=self.real_scores,
                real_labels=[e.label for e in real],
                calibrations=cfg.calibrations,
            )
        if cfg.labeller is not None:
            labeller = Labeller(cfg.labeller, labels=labels)
            if cfg.labeller.calibration == "hidden" and self.real_scores is not None:
                labeller.fit_hidden(self.real_scores, [e.label for e in real])
        chosen = next((c for c in choices if c.config == labeller.config), None)
        self.say(
            f"labeller {labeller.config.describe()}: "
            f"{'?' if chosen is None else f'{100 * chosen.accuracy:.1f}'}% on {len(sel_lm)} "
            "selection texts"
        )
        return labeller, choices, chosen

    def fixed_labeller(self, encoder: str | None, args: TrainingArguments, cache: Any) -> Labeller:
        """``fixed_labeller`` (or ``labeller``), fitted on the real examples alone."""
        cfg, labels, real = self.cfg, self.labels, self.real
        lab_cfg = cfg.labeller or cfg.fixed_labeller
        counts = Counter(e.label for e in real)
        total = sum(counts[c] for c in labels)
        prior = [counts[c] / total for c in labels]
        labeller = Labeller(lab_cfg, labels=labels, target_prior=prior)
        if lab_cfg.teacher != "none" and lab_cfg.teacher_weight > 0:
            self.teachers[lab_cfg.teacher] = Teacher(
                lab_cfg.teacher,
                labels=labels,
                encoder=encoder,
                args=args.model_copy(update={"seed": self.seed}),
                feature_cache=cache,
            ).fit(real, self.selection)
        if lab_cfg.calibration == "hidden":
            try:
                self.real_scores = self.scorer(
                    anchored(real, [e.text for e in real], cfg.k, self.seed + 2)
                )
                labeller.fit_hidden(self.real_scores, [e.label for e in real])
            except (ModelError, DataError) as e:
                self.say(f"hidden-state calibration is not possible here ({e}); using prior")
                labeller = Labeller(
                    lab_cfg.model_copy(update={"calibration": "prior"}),
                    labels=labels,
                    target_prior=prior,
                )
        self.fixed_power = labeller.config.sharpen
        labeller = labeller.with_sharpen(1.0)  # the power is applied per pool, as searched
        self.say(f"labeller {lab_cfg.describe()} (fixed; nothing chosen on validation)")
        return labeller

    def gate(self, labeller: Labeller) -> dict[str, Any] | None:
        """Does the labeller beat the teacher alone on the user's own labelled texts?

        The real examples (scored as if generated, anchors from the others; the centroid
        teacher without the text itself) and the validation texts (teacher from all real
        examples): ``better`` counts texts the labeller gets right and the teacher wrong,
        ``worse`` the reverse, and it passes when ``better - worse`` is at least one
        sign-test standard deviation (``sqrt(better + worse)``, at least 1). ``None``
        when the labeller uses no teacher or the LM cannot score texts.
        """
        cfg, labels, real, val = self.cfg, self.labels, self.real, self.selection
        teacher = self.teachers.get(labeller.config.teacher)
        if teacher is None or labeller.config.lm_weight == 0:
            return None
        try:
            if self.real_scores is None:
                self.real_scores = self.scorer(
                    anchored(real, [e.text for e in real], cfg.k, self.seed + 2)
                )
            val_scores = self.scorer(anchored(real, [e.text for e in val], cfg.k, self.seed))
        except ModelError as e:
            self.say(f"the LM cannot score labelled texts ({e}); the records are used unchecked")
            return None
        hidden = None
        if self.real_scores.hidden is not None and val_scores.hidden is not None:
            hidden = np.concatenate([self.real_scores.hidden, val_scores.hidden])
        pool = LMScores(np.concatenate([self.real_scores.logp, val_scores.logp]), hidden)
        t_rows = np.concatenate([teacher.left_out(), teacher.predict([e.text for e in val])])
        mixed = labeller.combine(pool, t_rows).argmax(1)
        alone = t_rows.argmax(1)
        gold = np.array([labels.index(e.label) for e in [*real, *val]])
        better = int(((mixed == gold) & (alone != gold)).sum())
        worse = int(((mixed != gold) & (alone == gold)).sum())
        return {
            "examples": len(gold),
            "labeller": round(float((mixed == gold).mean()), 4),
            "teacher": round(float((alone == gold).mean()), 4),
            "better": better,
            "worse": worse,
            "passes": better - worse >= max(1.0, math.sqrt(better + worse)),
        }

    def fixed_settings(
        self, pools: dict[float, list[SyntheticRecord]]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The fixed ratio and weight, quotas like the real data: no classifier is trained."""
        cfg, labels = self.cfg, self.labels
        power = self.powers[0]
        counts = Counter(e.label for e in self.real)
        keep, surplus = self._fill(
            pools[power], quotas_for({c: counts[c] for c in labels}, cfg.fixed_ratio, None)
        )
        chosen = [pools[power][i] for i in keep]
        if not cfg.hard and cfg.prior_match:
            chosen = match_label_prior(chosen, labels)
        if cfg.fixed_balance and cfg.quotas:
            quotas = quotas_for({c: counts[c] for c in labels}, cfg.fixed_ratio, None)
            chosen = balance_to_quotas(chosen, quotas)
        if cfg.reweight == "sungen" and chosen:
            from mixaug.training.reweight import SunGenConfig, sungen_reweight

            chosen = sungen_reweight(
                self.real, chosen, labels, self.fit.features, SunGenConfig(seed=self.seed)
            )
        if not chosen:
            best = _real_only()
            return best, [{k: v for k, v in best.items() if k != "records"}]
        row = {"ratio": cfg.fixed_ratio, "prior": "real", "weight": cfg.fixed_weight,
               "sharpen": None if cfg.hard else power, "synthetic": len(chosen),
               "accuracy": None, "surplus": dict(surplus)}  # fmt: skip
        self.say(
            f"fixed: ratio {cfg.fixed_ratio:g}, real prior, weight {cfg.fixed_weight:g}: "
            f"{len(chosen)} records"
        )
        return row | {"records": chosen}, [row]

    def _teachers_only(
        self, texts: list[str], gold: list[str], sel_teacher: dict[str, np.ndarray]
    ) -> tuple[Labeller, list[LabellerChoice]]:
        if not self.teachers:
            none = LabelMixConfig(calibration="none", teacher="none")
            return Labeller(none, labels=self.labels), []
        fake = LMScores(np.zeros((len(texts), len(self.labels))))
        _, choices = choose_labeller(
            fake, gold, self.labels, teachers=sel_teacher, calibrations=["none"]
        )
        choices = [c for c in choices if c.config.lm_weight == 0]
        return Labeller(choices[0].config, labels=self.labels), choices

    def relabel(
        self,
        pool: list[SyntheticRecord],
        labeller: Labeller,
        record_lm: LMScores | None,
        encoder: str | None,
        args: TrainingArguments,
        cache: Any,
    ) -> tuple[dict[float, list[SyntheticRecord]], np.ndarray]:
        """The pool relabelled at every label power, disagreeing records dropped."""
        labels = self.labels
        lm = record_lm if record_lm is not None else record_scores(pool, labels)
        if labeller.config.calibration == "hidden" and lm.hidden is None:
            lm = self.scorer([(list(r.anchors), r.text) for r in pool])
        t_name = labeller.config.teacher
        teacher = self.teachers.get(t_name)
        if teacher is None and t_name != "none" and pool:
            teacher = Teacher(
                t_name, labels=labels, encoder=encoder, args=args, feature_cache=cache
            )
            teacher.fit(self.real, self.selection)
        t_rows = teacher.predict([r.text for r in pool]) if teacher is not None else None
        drop = labeller.disagreements(lm, t_rows) if pool else np.zeros(0, dtype=bool)
        pools: dict[float, list[SyntheticRecord]] = {}
        for a in self.powers:
            probs = (
                labeller.with_sharpen(a).combine(lm, t_rows) if pool else np.zeros((0, len(labels)))
            )
            relabelled = _relabel(pool, probs, labels, self.cfg.hard) if pool else []
            pools[a] = [r for r, d in zip(relabelled, drop, strict=True) if not d]
        return pools, drop

    @property
    def powers(self) -> list[float]:
        if self.cfg.hard:
            return [1.0]
        if self.fixed_power is not None:
            return [self.fixed_power]
        return list(dict.fromkeys(self.cfg.sharpen))

    def settings(
        self, pools: dict[float, list[SyntheticRecord]]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Ratio, quota shape, label power and weight: the best on the selection half."""
        cfg, labels, real, selection = self.cfg, self.labels, self.real, self.selection
        kept_pool = pools[self.powers[0]]  # the argmax, hence the quota fill, is the same
        counts = Counter(e.label for e in real)
        real_prior = {c: counts[c] for c in labels}
        val_prior = Counter(e.label for e in selection)
        _, base = self.fit(real, [], 1.0, selection, self.seed, [selection])
        rows: list[dict[str, Any]] = [
            {"ratio": 0, "prior": None, "weight": 0.0, "sharpen": None, "synthetic": 0,
             "accuracy": base[0]}
        ]  # fmt: skip
        best = rows[0] | {"records": []}
        for prior in cfg.priors:
            if not cfg.quotas and prior != cfg.priors[0]:
                continue  # without quotas the prior changes nothing
            target = None if prior == "real" else {c: val_prior[c] / len(selection) for c in labels}
            for ratio in cfg.ratios:
                keep, surplus = self._fill(kept_pool, quotas_for(real_prior, ratio, target))
                if not keep:
                    continue
                for a in self.powers:
                    chosen = [pools[a][i] for i in keep]
                    if not cfg.hard and cfg.prior_match:
                        chosen = match_label_prior(chosen, labels)
                    if cfg.reweight == "sungen":
                        from mixaug.training.reweight import SunGenConfig, sungen_reweight

                        chosen = sungen_reweight(
                            real, chosen, labels, self.fit.features, SunGenConfig(seed=self.seed)
                        )
                    for w in cfg.weights:
                        _, acc = self.fit(real, chosen, w, selection, self.seed, [selection])
                        row = {"ratio": ratio, "prior": prior, "weight": w,
                               "sharpen": None if cfg.hard else a, "synthetic": len(chosen),
                               "accuracy": acc[0], "surplus": dict(surplus)}  # fmt: skip
                        rows.append(row)
                        better = acc[0] > best["accuracy"] + 1e-9
                        if better or (not cfg.fallback and best["weight"] == 0.0):
                            best = row | {"records": chosen}
        self.say(_chose(best, len(selection)))
        return best, rows

    def _fill(
        self, pool: list[SyntheticRecord], quotas: dict[str, int]
    ) -> tuple[list[int], Counter[str]]:
        if self.cfg.quotas:
            return fill_quotas([r.label for r in pool], quotas)
        return list(range(min(len(pool), sum(quotas.values())))), Counter()


def _real_only() -> dict[str, Any]:
    """The setting "the real data alone" (no record), as the searches report settings."""
    return {"ratio": 0, "prior": None, "weight": 0.0, "sharpen": None, "synthetic": 0,
            "accuracy": None, "records": []}  # fmt: skip


def _chose(best: dict[str, Any], examples: int) -> str:
    what = (
        "the real data alone"
        if best["weight"] == 0.0
        else f"ratio {best['ratio']:g}, {best['prior']} prior, weight {best['weight']:g}"
        + ("" if not best.get("sharpen") else f", sharpen {best['sharpen']:g}")
    )
    return f"chose {what} ({100 * best['accuracy']:.1f}% on {examples} selection examples)"


def guard_gain(
    fit: Callable[..., tuple[Any, list[float]]],
    real: Sequence[Example],
    synthetic: Sequence[SyntheticRecord],
    weight: float,
    selection: Sequence[Example],
    guard: Sequence[Example],
    seed: int,
    seeds: int,
    *,
    benefit_of_doubt: bool = False,
) -> GuardReport:
    """Accuracy on ``guard`` with and without ``synthetic``, over ``seeds`` training seeds.

    With ``benefit_of_doubt`` (the fixed recipe, whose settings were not chosen on
    validation) the records count as not helping only when the gain is below minus one
    standard error of an accuracy difference on ``len(guard)`` examples: on a few dozen
    examples one text is several points, and a coin-flip veto would throw away records
    that help as often as ones that hurt.
    """
    with_s: list[float] = []
    without: list[float] = []
    for i in range(seeds):
        s = seed * 1000 + 101 + i
        _, a = fit(real, [], 1.0, selection, s, [guard])
        without.append(a[0])
        if synthetic:
            _, b = fit(real, synthetic, weight, selection, s, [guard])
            with_s.append(b[0])
        else:
            with_s.append(a[0])
    gains = [100 * (b - a) for a, b in zip(without, with_s, strict=True)]
    gain = statistics.fmean(gains)
    spread = statistics.stdev(gains) if len(gains) > 1 else 0.0
    n = len(guard)
    base = statistics.fmean(without)
    noise = 100 * math.sqrt(2 * max(base * (1 - base), 0.05) / max(n, 1))
    if benefit_of_doubt and synthetic and -noise <= gain <= max(spread, 0.0):
        verdict = (
            f"too few validation examples to tell: {gain:+.1f} ± {spread:.1f} points on {n} "
            f"examples (one standard error here is {noise:.1f}); the records are used"
        )
        helps = True
    elif not synthetic:
        verdict = (
            "augmentation does not help here: the recipe chose the real data alone (no "
            "setting beat it on validation, or the labeller did not beat the real "
            "examples' own teacher), so no synthetic record is used"
        )
        helps = False
    elif gain > spread and gain > 0:
        verdict = (
            f"augmentation helps: {gain:+.1f} ± {spread:.1f} points on {n} held-out "
            "validation examples"
        )
        helps = True
    elif gain > 0:
        verdict = (
            f"augmentation may help: {gain:+.1f} ± {spread:.1f} points on {n} held-out "
            "validation examples (within the spread)"
        )
        helps = True
    else:
        verdict = (
            f"augmentation does not help: {gain:+.1f} ± {spread:.1f} points on {n} held-out "
            "validation examples; train on the real data alone"
        )
        helps = False
    return GuardReport(
        examples=n,
        with_synthetic=[round(x, 5) for x in with_s],
        without=[round(x, 5) for x in without],
        gain=round(gain, 3),
        spread=round(spread, 3),
        verdict=verdict,
        helps=helps,
    )


def choose_record_labeller(
    real: Sequence[Example],
    selection: Sequence[Example],
    *,
    llm: Any,
    spec: TaskSpec,
    seed: int = 0,
    encoder: str | None = None,
    teachers: Sequence[str] = ("classifier", "centroid"),
    max_texts: int = 200,
    k: int = 2,
) -> tuple[Any, list[LabellerChoice]]:
    """A :class:`~mixaug.labelmix.RecordLabeller` whose settings label ``selection`` best.

    The LM scores up to ``max_texts`` selection texts as if generated; the winner's
    bias and centroids are then fitted on the real examples, so records can be
    labelled batch by batch.
    """
    from mixaug.labelmix import RecordLabeller, fit_record_labeller
    from mixaug.training.features import FeatureCache

    cache = FeatureCache(per_text=True)
    rng = random.Random(seed + 1)
    sel = list(selection) if len(selection) <= max_texts else rng.sample(list(selection), max_texts)
    fitted = {
        t: Teacher(t, labels=spec.label_names, encoder=encoder, feature_cache=cache).fit(  # type: ignore[arg-type]
            real, selection
        )
        for t in teachers
    }
    texts = [e.text for e in sel]
    scores = score_texts(llm, spec, anchored(real, texts, k, seed))
    real_scores = score_texts(llm, spec, anchored(real, [e.text for e in real], k, seed + 2))
    best, choices = choose_labeller(
        scores,
        [e.label for e in sel],
        spec.label_names,
        teachers={t: m.predict(texts) for t, m in fitted.items()},
        real_scores=real_scores,
        real_labels=[e.label for e in real],
    )
    cfg = best.config
    lab = fit_record_labeller(
        real, spec, llm, cfg.model_copy(update={"teacher": "none"}), seed=seed, k=k
    )
    return (
        RecordLabeller(lab.labeller, teacher=fitted.get(cfg.teacher), llm=llm, spec=spec),
        choices,
    )


def guard_records(
    real: Sequence[Example],
    validation: Sequence[Example],
    records: Sequence[SyntheticRecord],
    *,
    labels: Sequence[str],
    seed: int = 0,
    weights: Sequence[float] = (0.5, 1.0),
    seeds: int = 3,
    share: float = 0.5,
    training: TrainingArguments | None = None,
    encoder: str | None = None,
    min_search: int = 200,
    fixed_weight: float = 1.0,
) -> tuple[GuardReport, float]:
    """The guard for records already made: (report, the synthetic weight it chose).

    The weight is chosen on one half of ``validation`` (frozen encoder + 2 FC), the
    gain measured on the other half with ``seeds`` training seeds. A validation set of
    fewer than ``min_search`` examples is too small to choose on: the weight stays
    ``fixed_weight`` and the gain is measured on all of it, with the benefit of the
    doubt (:func:`guard_gain`), as :func:`run_recipe`'s ``fixed`` search does.
    """
    if len(validation) < min_search:
        from mixaug.training.args import TrainingArguments
        from mixaug.training.features import FeatureCache

        if not validation:
            msg = "the guard needs labelled validation examples"
            raise DataError(msg)
        args = (
            training or TrainingArguments(freeze_encoder=True, epochs=30, patience=5)
        ).model_copy(update={"freeze_encoder": True})
        fit = _Fit(labels, args, encoder, FeatureCache(per_text=True))
        val = list(validation)
        report = guard_gain(
            fit, real, list(records), fixed_weight, val, val, seed, seeds, benefit_of_doubt=True
        )
        return report, fixed_weight
    sel, held = split_validation(validation, share, seed)
    from mixaug.training.args import TrainingArguments

    args = (training or TrainingArguments(freeze_encoder=True, epochs=30, patience=5)).model_copy(
        update={"freeze_encoder": True}
    )
    from mixaug.training.features import FeatureCache

    fit = _Fit(labels, args, encoder, FeatureCache(per_text=True))
    _, base = fit(real, [], 1.0, sel, seed, [sel])
    best_w, best_acc = 1.0, -1.0
    for w in weights:
        _, acc = fit(real, list(records), w, sel, seed, [sel])
        if acc[0] > best_acc:
            best_w, best_acc = w, acc[0]
    report = guard_gain(fit, real, list(records), best_w, sel, held, seed, seeds)
    return report, best_w
