"""Classification metrics (accuracy, macro-F1, Matthews correlation) and logit adjustment.

Example:
    >>> accuracy([0, 1, 1], [0, 1, 0])
    0.666...
    >>> round(macro_f1([0, 1, 1], [0, 1, 0], n_classes=2), 3)
    0.667
    >>> round(mcc([0, 1, 1, 0], [0, 1, 0, 0], n_classes=2), 3)
    0.577
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np


def accuracy(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Share of predictions equal to the gold label."""
    if not gold:
        return 0.0
    return sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)


def macro_f1(pred: Sequence[int], gold: Sequence[int], *, n_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in gold or predictions."""
    scores = []
    for c in range(n_classes):
        tp = sum(p == c and g == c for p, g in zip(pred, gold, strict=True))
        fp = sum(p == c and g != c for p, g in zip(pred, gold, strict=True))
        fn = sum(p != c and g == c for p, g in zip(pred, gold, strict=True))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0


def mcc(pred: Sequence[int], gold: Sequence[int], *, n_classes: int) -> float:
    """Matthews correlation coefficient (GLUE's CoLA metric; Gorodkin's R_K for K classes).

    0 for a constant prediction (the majority class scores 0, not its share).
    """
    n = len(gold)
    if n == 0:
        return 0.0
    correct = sum(p == g for p, g in zip(pred, gold, strict=True))
    p_count, g_count = Counter(pred), Counter(gold)
    cov_pg = correct * n - sum(p_count[c] * g_count[c] for c in range(n_classes))
    cov_pp = n * n - sum(p_count[c] ** 2 for c in range(n_classes))
    cov_gg = n * n - sum(g_count[c] ** 2 for c in range(n_classes))
    if cov_pp == 0 or cov_gg == 0:
        return 0.0
    return cov_pg / math.sqrt(cov_pp * cov_gg)


def classification_metrics(
    pred: Sequence[int], gold: Sequence[int], *, n_classes: int
) -> dict[str, float]:
    """``accuracy``, ``macro_f1`` and ``mcc`` of ``pred``, rounded to 5 places."""
    return {
        "accuracy": round(accuracy(pred, gold), 5),
        "macro_f1": round(macro_f1(pred, gold, n_classes=n_classes), 5),
        "mcc": round(mcc(pred, gold, n_classes=n_classes), 5),
    }


def class_prior(
    labels: Sequence[str], names: Sequence[str], *, smoothing: float = 1.0
) -> np.ndarray:
    """The class shares of ``labels`` over ``names``, Laplace-smoothed (never 0).

    Example:
        >>> class_prior(["a", "a", "b"], ["a", "b"]).round(2).tolist()
        [0.6, 0.4]
    """
    counts = Counter(labels)
    raw = np.array([counts[c] + smoothing for c in names], dtype=float)
    return raw / raw.sum()


def prior_adjustment(
    target: Sequence[float] | np.ndarray, train: Sequence[float] | np.ndarray, tau: float = 1.0
) -> np.ndarray:
    """What post-hoc logit adjustment adds to a classifier's logits: ``τ·(log π_t − log π_s)``.

    Menon et al. (ICLR 2021), "Long-tail learning via logit adjustment": a classifier
    trained on class prior ``train`` (π_s) is moved to the prior ``target`` (π_t) by
    adding the log ratio to its logits. With a balanced training set this is ``log π_t``
    up to a constant.

    Example:
        >>> prior_adjustment([0.75, 0.25], [0.5, 0.5]).round(3).tolist()
        [0.405, -0.693]
    """
    t = np.clip(np.asarray(target, dtype=float), 1e-12, None)
    s = np.clip(np.asarray(train, dtype=float), 1e-12, None)
    return np.asarray(tau * (np.log(t / t.sum()) - np.log(s / s.sum())))
