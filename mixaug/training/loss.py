"""Soft-label cross-entropy: the loss GPT3Mix trains the classifier with.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0]])
    >>> float(soft_cross_entropy(logits, torch.tensor([[1.0, 0.0]])))  # doctest: +ELLIPSIS
    0.1269...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mixaug.errors import DataError
from mixaug.records import Example, SyntheticRecord

if TYPE_CHECKING:
    import torch


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of ``-sum_c target_c * log softmax(logits)_c``, optionally weighted.

    Args:
        logits: (B, C) classifier outputs.
        targets: (B, C) target distributions (rows sum to 1; one-hot for real data).
        weights: (B,) per-example weights; the mean is weighted by them.
    """
    import torch

    if logits.shape != targets.shape:
        msg = f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape"
        raise ValueError(msg)
    per_example = -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1)  # (B,)
    if weights is None:
        return per_example.mean()
    return (per_example * weights).sum() / weights.sum().clamp_min(1e-12)


def target_distributions(
    items: Sequence[Example | SyntheticRecord], labels: Sequence[str]
) -> list[list[float]]:
    """Target rows in ``labels`` order: ``soft_label`` for synthetic, one-hot for real.

    Raises:
        DataError: for a label (or soft-label key) outside ``labels``.
    """
    index = {lab: i for i, lab in enumerate(labels)}
    rows: list[list[float]] = []
    for item in items:
        row = [0.0] * len(labels)
        dist = item.soft_label if isinstance(item, SyntheticRecord) else {item.label: 1.0}
        for lab, p in dist.items():
            if lab not in index:
                msg = f"label {lab!r} is not one of the classifier's labels {list(labels)}"
                raise DataError(msg)
            row[index[lab]] = float(p)
        rows.append(row)
    return rows
