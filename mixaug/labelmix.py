"""The final label of a synthetic record: calibrated LM scores mixed with a real-data teacher.

A :class:`Labeller` turns the LM's label-word scores of a record (:mod:`mixaug.lmscores`)
into its training target in three steps:

1. **calibration** of the LM part: ``none``; ``batch`` (Batch Calibration: subtract
   the pool's mean label log-score); ``prior`` (shift the pool's mean label
   distribution to a target prior, uniform by default); ``hidden`` (ignore the label
   words: nearest class centroid of the LM's last hidden state, centroids from real
   examples scored the same way);
2. a **teacher** (:class:`~mixaug.teacher.Teacher`, trained on the real data alone);
3. a **product of experts**: ``p ∝ p_lm^a · p_teacher^b`` (``lm_weight`` a,
   ``teacher_weight`` b); with ``agreement`` a record whose LM and teacher argmax
   differ is dropped (reason ``teacher_disagrees``).

:func:`choose_labeller` picks the calibration, teacher and weights that label real
*validation* texts best, so a task where the LM's labels are poor (TREC-6 with a 270M
model) leans on the teacher and one where they are good (SST-2) on the LM.
:func:`fill_quotas` then keeps records in order until each class has its quota.

Example:
    >>> cfg = LabelMixConfig(calibration="batch", teacher="none")
    >>> lab = Labeller(cfg, labels=["negative", "positive"])
    >>> lab.combine(np.log([[0.9, 0.1], [0.7, 0.3]])).round(2).tolist()
    [[0.66, 0.34], [0.34, 0.66]]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from mixaug.calibration import (
    apply_bias,
    batch_bias,
    centroid_probs,
    class_centroids,
    match_prior,
    prior_bias,
)
from mixaug.config import Calibration, LabelMixConfig
from mixaug.errors import DataError, ModelError
from mixaug.lmscores import LMScores, score_texts
from mixaug.records import Example, SyntheticRecord
from mixaug.specs import TaskSpec

CALIBRATIONS: tuple[Calibration, ...] = ("none", "batch", "prior", "hidden")


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, 1e-12, None))


class Labeller:
    """Applies a :class:`LabelMixConfig`; fitted pieces are set by :meth:`fit_hidden`."""

    def __init__(
        self,
        config: LabelMixConfig,
        *,
        labels: Sequence[str],
        target_prior: Sequence[float] | None = None,
    ) -> None:
        self.config = config
        self.labels = list(labels)
        c = len(self.labels)
        self.target_prior = (
            np.full(c, 1.0 / c) if target_prior is None else np.asarray(target_prior, float)
        )
        self.centroids: np.ndarray | None = None
        self.bias: np.ndarray | None = None
        """A fixed LM bias (from :meth:`fit_bias`); unset, a pool calibrates itself."""

    def with_sharpen(self, power: float) -> Labeller:
        """This labeller (fitted pieces shared) with its final labels raised to ``power``."""
        import copy

        other = copy.copy(self)
        other.config = self.config.model_copy(update={"sharpen": power})
        return other

    def fit_bias(self, scores: LMScores, labels: Sequence[str] | None = None) -> Labeller:
        """Fix the ``batch``/``prior`` bias from a reference pool.

        The pool is e.g. real examples scored as if generated; a fixed bias lets records
        be labelled a few at a time. With ``labels`` the batch bias is class-balanced
        (the mean of the class means).
        """
        y = None if labels is None else [self.labels.index(x) for x in labels]
        if self.config.calibration == "batch":
            self.bias = batch_bias(scores.logp, y)
        elif self.config.calibration == "prior":
            self.bias = prior_bias(
                apply_bias(scores.logp, np.zeros(len(self.labels))), self.target_prior
            )
        return self

    def fit_hidden(self, real: LMScores, labels: Sequence[str]) -> Labeller:
        """Class centroids of the LM's hidden states of real examples (``hidden``).

        Raises:
            DataError: when the scores carry no hidden states (a remote model).
        """
        if real.hidden is None:
            msg = "hidden-state calibration needs a local model (no hidden states here)"
            raise DataError(msg)
        y = [self.labels.index(x) for x in labels]
        self.centroids = class_centroids(real.hidden, y, len(self.labels))
        return self

    def lm_probs(self, scores: LMScores | np.ndarray) -> np.ndarray:
        """The LM part, calibrated over the pool ``scores`` (rows: the pool)."""
        cal = self.config.calibration
        if cal == "hidden":
            if not isinstance(scores, LMScores) or scores.hidden is None:
                msg = "hidden-state calibration needs LMScores with hidden states"
                raise DataError(msg)
            if self.centroids is None:
                msg = "call fit_hidden() before labelling with hidden-state calibration"
                raise DataError(msg)
            return centroid_probs(scores.hidden, self.centroids, self.config.hidden_temperature)
        logp = scores.logp if isinstance(scores, LMScores) else np.asarray(scores, float)
        if cal == "none":
            return apply_bias(logp, np.zeros(logp.shape[1]))
        if self.bias is not None:
            return apply_bias(logp, self.bias)
        if cal == "batch":
            return apply_bias(logp, batch_bias(logp))
        return match_prior(apply_bias(logp, np.zeros(logp.shape[1])), self.target_prior)

    def combine(
        self, scores: LMScores | np.ndarray, teacher: np.ndarray | None = None
    ) -> np.ndarray:
        """Final label distributions of a pool (``teacher``: its rows, same order)."""
        cfg = self.config
        use_teacher = cfg.teacher != "none" and cfg.teacher_weight > 0 and teacher is not None
        lm = self.lm_probs(scores) if cfg.lm_weight > 0 or not use_teacher else None
        z = np.zeros((len(lm) if lm is not None else len(teacher), len(self.labels)))  # type: ignore[arg-type]
        if lm is not None:
            z += (cfg.lm_weight if use_teacher else 1.0) * _log(lm)
        if use_teacher:
            assert teacher is not None
            z += cfg.teacher_weight * _log(teacher)
        z *= cfg.sharpen  # p**sharpen, renormalised below
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def disagreements(
        self, scores: LMScores | np.ndarray, teacher: np.ndarray | None
    ) -> np.ndarray:
        """Rows where ``agreement`` drops the record (LM and teacher argmax differ)."""
        n = len(scores.logp) if isinstance(scores, LMScores) else len(scores)
        if not self.config.agreement or teacher is None:
            return np.zeros(n, dtype=bool)
        return self.lm_probs(scores).argmax(1) != teacher.argmax(1)


class LabellerChoice(BaseModel):
    """What :func:`choose_labeller` measured for one candidate on validation texts."""

    config: LabelMixConfig
    name: str
    accuracy: float
    nll: float


def candidate_configs(teachers: Sequence[Any] = ("classifier",)) -> list[LabelMixConfig]:
    """The grid :func:`choose_labeller` searches: LM alone, teacher alone, mixes."""
    out = [LabelMixConfig(calibration=c, teacher="none") for c in CALIBRATIONS]
    for t in teachers:
        out.append(LabelMixConfig(calibration="none", teacher=t, lm_weight=0.0))
        for c in CALIBRATIONS:
            for a, b in ((1.0, 1.0), (1.0, 0.5), (0.5, 1.0)):
                out.append(LabelMixConfig(calibration=c, teacher=t, lm_weight=a, teacher_weight=b))
    return out


def choose_labeller(
    scores: LMScores,
    gold: Sequence[str],
    labels: Sequence[str],
    *,
    teachers: Mapping[str, np.ndarray] | None = None,
    real_scores: LMScores | None = None,
    real_labels: Sequence[str] = (),
    target_prior: Sequence[float] | None = None,
    calibrations: Sequence[str] = CALIBRATIONS,
) -> tuple[Labeller, list[LabellerChoice]]:
    """The candidate that labels ``scores`` (real validation texts) best.

    Ranked by accuracy, then negative log-likelihood. ``teachers`` maps a teacher
    name to its rows for the same texts; ``real_scores`` (the real training examples
    scored the same way) give the hidden-state centroids, without which ``hidden``
    is not tried.

    Raises:
        DataError: for an empty validation set or a gold label outside ``labels``.
    """
    if len(gold) == 0:
        msg = "choosing a labeller needs labelled validation texts"
        raise DataError(msg)
    y = np.array([list(labels).index(g) for g in gold])
    teachers = dict(teachers or {})
    results: list[tuple[Labeller, LabellerChoice]] = []
    for cfg in candidate_configs(list(teachers)):
        if cfg.calibration not in calibrations and cfg.lm_weight > 0:
            continue
        if cfg.calibration == "hidden" and (real_scores is None or real_scores.hidden is None):
            continue
        lab = Labeller(cfg, labels=labels, target_prior=target_prior)
        if cfg.calibration == "hidden":
            assert real_scores is not None
            lab.fit_hidden(real_scores, real_labels)
        p = lab.combine(scores, teachers.get(cfg.teacher))
        acc = float((p.argmax(1) == y).mean())
        nll = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())
        results.append(
            (lab, LabellerChoice(config=cfg, name=cfg.describe(), accuracy=acc, nll=nll))
        )
    results.sort(key=lambda r: (-round(r[1].accuracy, 6), r[1].nll))
    return results[0][0], [r[1] for r in results]


def quotas_for(
    real_counts: Mapping[str, int], ratio: float, prior: Mapping[str, float] | None = None
) -> dict[str, int]:
    """Per-class quotas: ``ratio`` × each class's real count.

    With ``prior`` (a target distribution): ``ratio`` × the real total, spread by it.
    """
    if prior is None:
        return {c: math.ceil(ratio * n) for c, n in real_counts.items()}
    total = ratio * sum(real_counts.values())
    s = sum(prior.values())
    return {c: math.ceil(total * prior.get(c, 0.0) / s) for c in real_counts}


def fill_quotas(labels: Sequence[str], quotas: Mapping[str, int]) -> tuple[list[int], Counter[str]]:
    """Positions kept, in order, until each class has its quota; surplus per class."""
    have: Counter[str] = Counter()
    surplus: Counter[str] = Counter()
    kept: list[int] = []
    for i, lab in enumerate(labels):
        if have[lab] < quotas.get(lab, 0):
            have[lab] += 1
            kept.append(i)
        else:
            surplus[lab] += 1
    return kept, surplus


class RecordLabeller:
    """Gives records their final label as they are made (inside ``augment``).

    Built by :func:`fit_record_labeller`; calling it on a batch returns the records
    relabelled (``soft_label``/``label`` final, the LM's own in ``soft_label_raw``, the
    teacher's in ``teacher_label``) and the ones ``agreement`` drops, with the reason.
    """

    def __init__(
        self,
        labeller: Labeller,
        *,
        teacher: Any = None,
        llm: Any = None,
        spec: TaskSpec | None = None,
    ) -> None:
        self.labeller = labeller
        self.teacher = teacher
        self.llm = llm
        self.spec = spec

    @property
    def name(self) -> str:
        """The labeller's short name."""
        return self.labeller.config.describe()

    def __call__(
        self, records: Sequence[SyntheticRecord]
    ) -> tuple[list[SyntheticRecord], list[tuple[SyntheticRecord, str]]]:
        """Relabel a batch: (kept records, [(dropped record, reason)])."""
        if not records:
            return [], []
        from mixaug.recipe import record_scores

        labels = self.labeller.labels
        lm = record_scores(records, labels)
        if self.labeller.config.calibration == "hidden":
            if self.llm is None or self.spec is None:
                msg = "hidden-state calibration needs the local model to re-read each record"
                raise DataError(msg)
            lm = score_texts(self.llm, self.spec, [(list(r.anchors), r.text) for r in records])
        use_teacher = self.teacher is not None and self.labeller.config.teacher != "none"
        t_rows = self.teacher.predict([r.text for r in records]) if use_teacher else None
        probs = self.labeller.combine(lm, t_rows)
        drop = self.labeller.disagreements(lm, t_rows)
        kept: list[SyntheticRecord] = []
        dropped: list[tuple[SyntheticRecord, str]] = []
        for i, rec in enumerate(records):
            dist = {c: float(p) for c, p in zip(labels, probs[i], strict=True)}
            total = sum(dist.values())
            dist = {c: v / total for c, v in dist.items()}
            new = rec.model_copy(
                update={
                    "soft_label": dist,
                    "label": max(dist, key=lambda c: dist[c]),
                    "soft_label_raw": rec.soft_label_raw or rec.soft_label,
                    "teacher_label": None
                    if t_rows is None
                    else {c: round(float(p), 6) for c, p in zip(labels, t_rows[i], strict=True)},
                }
            )
            (dropped.append((new, "teacher_disagrees")) if drop[i] else kept.append(new))
        return kept, dropped


def fit_record_labeller(
    real: Sequence[Example],
    spec: TaskSpec,
    llm: Any,
    config: LabelMixConfig | None = None,
    *,
    validation: Sequence[Example] = (),
    seed: int = 0,
    encoder: str | None = None,
    reference: int = 200,
    k: int = 2,
) -> RecordLabeller:
    """Fit a :class:`RecordLabeller` on the real data.

    The LM's bias (``batch``/``prior``) and hidden-state centroids come from up to
    ``reference`` real examples scored as if generated (class-balanced); the teacher
    is trained on ``real`` (early-stopped on ``validation`` when given).
    """
    import random

    from mixaug.recipe import anchored
    from mixaug.teacher import Teacher

    cfg = config or LabelMixConfig()
    labels = list(spec.label_names)
    lab = Labeller(cfg, labels=labels)
    if cfg.lm_weight > 0 and cfg.calibration != "none" and len(real) > 1:
        ref = list(real)
        if len(ref) > reference:
            ref = random.Random(seed).sample(ref, reference)
        try:
            scores = score_texts(llm, spec, anchored(real, [e.text for e in ref], k, seed))
        except ModelError:
            # A model that can't score texts: its labels stay uncalibrated.
            lab = Labeller(cfg.model_copy(update={"calibration": "none"}), labels=labels)
        else:
            if cfg.calibration == "hidden" and scores.hidden is not None:
                lab.fit_hidden(scores, [e.label for e in ref])
            elif cfg.calibration == "hidden":
                lab = Labeller(cfg.model_copy(update={"calibration": "batch"}), labels=labels)
                lab.fit_bias(scores, [e.label for e in ref])
            else:
                lab.fit_bias(scores, [e.label for e in ref])
    teacher = None
    if cfg.teacher != "none" and cfg.teacher_weight > 0:
        teacher = Teacher(cfg.teacher, labels=labels, encoder=encoder).fit(real, validation)
    return RecordLabeller(lab, teacher=teacher, llm=llm, spec=spec)
