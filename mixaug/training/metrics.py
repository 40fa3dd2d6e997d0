"""Classification metrics: accuracy and macro-F1.

Example:
    >>> accuracy([0, 1, 1], [0, 1, 0])
    0.666...
    >>> round(macro_f1([0, 1, 1], [0, 1, 0], n_classes=2), 3)
    0.667
"""

from __future__ import annotations

from collections.abc import Sequence


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
