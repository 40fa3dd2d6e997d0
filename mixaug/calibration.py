"""Calibrating soft labels: contextual calibration, temperature scaling, and ECE.

- Contextual calibration (Zhao et al. 2021, "Calibrate before use"): divide each
  distribution by the one the model gives a content-free input such as ``"N/A"``,
  then renormalise; this removes the model's prior towards some label words.
- Temperature scaling: ``p_T ∝ p^(1/T)``, with T fitted by minimising the negative
  log-likelihood of real labelled examples scored as if generated.
- Batch calibration, EM prior estimation and prior matching, nearest-centroid
  (hidden-state) labels: pool-level corrections for a biased small model, on arrays.
- Expected calibration error (ECE): the gap between confidence and accuracy,
  averaged over equal-width confidence bins.

Example:
    >>> contextual_calibrate({"pos": 0.8, "neg": 0.2}, {"pos": 0.8, "neg": 0.2})
    {'pos': 0.5, 'neg': 0.5}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mixaug.errors import DataError


def _check(dist: Mapping[str, float], what: str) -> None:
    if not dist:
        msg = f"{what} is empty; it needs a probability for every label."
        raise DataError(msg)
    if any(p < 0 or not math.isfinite(p) for p in dist.values()):
        msg = f"{what} has a negative or non-finite probability: {dict(dist)}."
        raise DataError(msg)


def contextual_calibrate(
    dist: Mapping[str, float], content_free: Mapping[str, float], floor: float = 1e-6
) -> dict[str, float]:
    """Divide ``dist`` by the content-free distribution and renormalise.

    Raises:
        DataError: when the two distributions don't cover the same labels.
    """
    _check(dist, "soft_label")
    _check(content_free, "content-free distribution")
    if set(dist) != set(content_free):
        msg = (
            f"soft_label labels {sorted(dist)} differ from the content-free distribution's "
            f"{sorted(content_free)}."
        )
        raise DataError(msg)
    raw = {k: dist[k] / max(content_free[k], floor) for k in dist}
    total = sum(raw.values())
    if total <= 0:
        return {k: 1.0 / len(dist) for k in dist}
    return {k: v / total for k, v in raw.items()}


def temperature_scale(dist: Mapping[str, float], temperature: float) -> dict[str, float]:
    """``p_T ∝ p^(1/T)``: T > 1 softens, T < 1 sharpens.

    Raises:
        DataError: for a non-positive temperature.
    """
    if not temperature > 0:
        msg = f"temperature must be positive, got {temperature}."
        raise DataError(msg)
    _check(dist, "soft_label")
    logs = {k: math.log(max(p, 1e-12)) / temperature for k, p in dist.items()}
    top = max(logs.values())
    exp = {k: math.exp(v - top) for k, v in logs.items()}
    total = sum(exp.values())
    return {k: v / total for k, v in exp.items()}


def nll(dists: Sequence[Mapping[str, float]], labels: Sequence[str]) -> float:
    """Mean negative log-likelihood of the true labels."""
    if len(dists) != len(labels) or not dists:
        msg = "nll needs one distribution per label, and at least one."
        raise DataError(msg)
    return -sum(math.log(max(d[y], 1e-12)) for d, y in zip(dists, labels, strict=True)) / len(dists)


def fit_temperature(
    dists: Sequence[Mapping[str, float]],
    labels: Sequence[str],
    *,
    low: float = 0.05,
    high: float = 20.0,
    iters: int = 80,
) -> float:
    """The temperature minimising NLL of ``labels`` (golden-section search on log T).

    NLL is convex in 1/T for softmax-of-log-probabilities, so a 1-D search suffices.

    Raises:
        DataError: for mismatched inputs or a label missing from a distribution.
    """
    for dist, y in zip(dists, labels, strict=False):
        if y not in dist:
            msg = f"label {y!r} is not among the soft label's labels {sorted(dist)}."
            raise DataError(msg)

    def loss(log_t: float) -> float:
        t = math.exp(log_t)
        return nll([temperature_scale(dist, t) for dist in dists], labels)

    a, b = math.log(low), math.log(high)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = loss(d)
    return math.exp((a + b) / 2)


def expected_calibration_error(
    dists: Sequence[Mapping[str, float]], labels: Sequence[str], bins: int = 10
) -> float:
    """ECE: Σ_b (n_b / N) · |accuracy_b − confidence_b| over equal-width confidence bins."""
    if len(dists) != len(labels) or not dists:
        msg = "ECE needs one distribution per label, and at least one."
        raise DataError(msg)
    sums = [[0, 0.0, 0.0] for _ in range(bins)]  # count, confidence, correct
    for d, y in zip(dists, labels, strict=True):
        pred = max(d, key=lambda k: d[k])
        conf = d[pred]
        b = min(int(conf * bins), bins - 1)
        sums[b][0] += 1
        sums[b][1] += conf
        sums[b][2] += float(pred == y)
    n = len(dists)
    return sum(abs(c - a) for cnt, c, a in sums if cnt) / n if n else 0.0


def accuracy(dists: Sequence[Mapping[str, float]], labels: Sequence[str]) -> float:
    """Share of distributions whose argmax is the true label."""
    if not dists:
        return 0.0
    hits = sum(max(d, key=lambda k: d[k]) == y for d, y in zip(dists, labels, strict=True))
    return hits / len(dists)


# -- pool-level calibration for a biased small model ------------------------------
# These work on arrays: rows are examples, columns the task's labels in spec order.


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def batch_bias(logp: np.ndarray, labels: Sequence[int] | None = None) -> np.ndarray:
    """The contextual bias of Batch Calibration (Zhou et al., ICLR 2024).

    The mean label log-score over a pool of inputs, with no content-free input.
    Given the pool's true classes (``labels``), the mean of the per-class means, so a
    skewed pool does not pull the bias towards its majority class.

    Example:
        >>> batch_bias(np.log([[0.9, 0.1], [0.6, 0.4]])).round(3).tolist()
        [-0.308, -1.609]
    """
    logp = _log_softmax(np.asarray(logp, dtype=np.float64))
    if labels is None:
        return logp.mean(axis=0)
    y = np.asarray(labels)
    means = [logp[y == c].mean(axis=0) for c in np.unique(y)]
    return np.mean(means, axis=0)


def apply_bias(logp: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``softmax(logp - bias)``: label scores with a bias removed in logit space."""
    return np.exp(_log_softmax(np.asarray(logp, dtype=np.float64) - bias))


def em_prior(
    probs: np.ndarray, train_prior: np.ndarray | None = None, *, iters: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """EM re-estimate of a pool's class prior (Saerens, Latinne & Decaestecker, 2002).

    ``probs`` are posteriors made under ``train_prior`` (uniform by default). Returns
    the estimated prior of the pool and the posteriors adjusted to it.

    Example:
        >>> prior, _ = em_prior(np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2]]))
        >>> prior.round(2).tolist()
        [0.68, 0.32]
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None)
    c = p.shape[1]
    base = np.full(c, 1.0 / c) if train_prior is None else np.asarray(train_prior, float)
    prior = base.copy()
    post = p
    for _ in range(iters):
        post = p * (prior / base)
        post /= post.sum(axis=1, keepdims=True)
        new = post.mean(axis=0)
        if np.abs(new - prior).max() < 1e-8:
            prior = new
            break
        prior = new
    return prior, post


def match_prior(probs: np.ndarray, target: np.ndarray, *, iters: int = 500) -> np.ndarray:
    """Shift posteriors by one log-bias per class so that their mean equals ``target``.

    Prior matching: the pool's average label distribution is made to agree with a
    known class distribution (e.g. the real data's), keeping each row's ranking of
    classes up to that shift.

    Example:
        >>> q = match_prior(np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([0.5, 0.5]))
        >>> q.mean(0).round(4).tolist()
        [0.5, 0.5]
    """
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None))
    return np.exp(_log_softmax(logp - prior_bias(probs, target, iters=iters)))


def prior_bias(probs: np.ndarray, target: np.ndarray, *, iters: int = 500) -> np.ndarray:
    """The log-bias that :func:`match_prior` removes (``apply_bias`` takes it)."""
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None))
    target = np.asarray(target, dtype=np.float64)
    b = np.zeros(logp.shape[1])
    for _ in range(iters):
        mean = np.exp(_log_softmax(logp + b)).mean(axis=0)
        if np.abs(mean - target).max() < 1e-6:
            break
        b += np.log(np.clip(target, 1e-12, None)) - np.log(np.clip(mean, 1e-12, None))
    return -b


def centroid_probs(
    states: np.ndarray, centroids: np.ndarray, temperature: float = 0.05
) -> np.ndarray:
    """Nearest-centroid label distribution: softmax of cosine similarity / temperature.

    Hidden-state calibration (Cho et al., NAACL 2025) uses it on the LM's last hidden
    state at the label position; the encoder teacher on sentence embeddings.
    """
    s = np.asarray(states, dtype=np.float64)
    s = s / np.clip(np.linalg.norm(s, axis=1, keepdims=True), 1e-12, None)
    c = np.asarray(centroids, dtype=np.float64)
    c = c / np.clip(np.linalg.norm(c, axis=1, keepdims=True), 1e-12, None)
    return np.exp(_log_softmax(s @ c.T / temperature))


def class_centroids(states: np.ndarray, labels: Sequence[int], n_classes: int) -> np.ndarray:
    """Mean of the L2-normalised rows of each class (a class without rows: zeros)."""
    s = np.asarray(states, dtype=np.float64)
    s = s / np.clip(np.linalg.norm(s, axis=1, keepdims=True), 1e-12, None)
    y = np.asarray(labels)
    out = np.zeros((n_classes, s.shape[1]))
    for c in range(n_classes):
        if (y == c).any():
            out[c] = s[y == c].mean(axis=0)
    return out
