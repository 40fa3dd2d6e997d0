"""Per-record weights learned against a noise-robust loss (SunGen-style reweighting).

SunGen (Gao et al., ICLR 2023) learns one weight per synthetic record by bilevel
optimisation: the inner problem trains a classifier on the weighted records with
cross-entropy; the outer problem moves the weights so that this classifier has a low
*noise-robust* loss over the records. A robust loss (here reverse cross-entropy, which
for a label ``y`` is ``A * (1 - p_y)``) is not dragged by a few confidently mislabelled
records, so records whose label the rest of the data contradicts lose weight.

Two things differ from the paper, because mixaug has what a zero-shot setting lacks:
the seed set's real examples are clean, so they are in both problems with weight 1
(the outer loss is the robust loss over the records plus the cross-entropy over the real
examples, each a mean); and the inner classifier is a softmax regression on the frozen
encoder's features, trained by full-batch gradient descent unrolled through
``inner_steps`` (truncated back-propagation, as the paper), so the whole search costs
well under a second for a few hundred records. The inner classifier is deliberately
weak (few, small steps: close to a weighted class-mean classifier): one that can fit a
single record lets that record lower its own robust loss by weighing more, and then
mislabelled records *gain* weight (measured on clustered data: with 40 steps of size 5
the flipped records ended up above the clean ones in one seed of four).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(8, 16)); real_y = np.array([0, 1] * 4)
    >>> syn = rng.normal(size=(20, 16)); syn_t = np.eye(2)[rng.integers(0, 2, 20)]
    >>> w = sungen_weights(real, real_y, syn, syn_t)
    >>> w.shape, round(float(w.mean()), 6)
    ((20,), 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mixaug.errors import DataError
from mixaug.records import Example, SyntheticRecord

if TYPE_CHECKING:
    import torch


class SunGenConfig(BaseModel):
    """How the weights are searched."""

    model_config = ConfigDict(extra="forbid")

    outer_steps: int = Field(default=50, ge=1)
    """Updates of the weights (Adam)."""
    outer_lr: float = Field(default=0.1, gt=0.0)
    inner_steps: int = Field(default=20, ge=1)
    """Gradient steps of the inner classifier, unrolled and differentiated through."""
    inner_lr: float = Field(default=0.5, gt=0.0)
    """Step size of the inner classifier (features are L2-normalised)."""
    rce_a: float = Field(default=4.0, gt=0.0)
    """``-log 0`` in reverse cross-entropy (``A`` in Wang et al., 2019)."""
    real_weight: float = Field(default=1.0, ge=0.0)
    """Weight of the real examples' cross-entropy in the outer loss."""
    seed: int = Field(default=0, ge=0)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def sungen_weights(
    real_features: np.ndarray,
    real_labels: np.ndarray,
    synthetic_features: np.ndarray,
    synthetic_targets: np.ndarray,
    config: SunGenConfig | None = None,
) -> np.ndarray:
    """One weight per synthetic row, mean 1 (higher: the record is more trustworthy).

    Args:
        real_features: (R, D) encoder features of the real examples.
        real_labels: (R,) their class indices.
        synthetic_features: (N, D) features of the synthetic records.
        synthetic_targets: (N, C) their target distributions (soft or one-hot).
        config: search settings.

    Raises:
        DataError: for empty or mismatched inputs.
    """
    import torch

    cfg = config or SunGenConfig()
    n, c = synthetic_targets.shape if synthetic_targets.ndim == 2 else (0, 0)
    if n == 0 or len(synthetic_features) != n:
        msg = "SunGen needs synthetic features and targets of the same, non-zero length"
        raise DataError(msg)
    if len(real_features) != len(real_labels):
        msg = "real features and labels differ in length"
        raise DataError(msg)
    if len(real_labels) and int(np.max(real_labels)) >= c:
        msg = f"a real label index is outside the {c} classes"
        raise DataError(msg)
    torch.manual_seed(cfg.seed)
    xs = torch.tensor(_normalise(synthetic_features), dtype=torch.float32)
    ts = torch.tensor(synthetic_targets, dtype=torch.float32)
    ys = ts.argmax(dim=1)
    real = np.asarray(real_features, dtype=float).reshape(len(real_labels), xs.shape[1])
    xr = torch.tensor(_normalise(real), dtype=torch.float32)
    yr = torch.tensor(np.asarray(real_labels), dtype=torch.long)
    tr = torch.nn.functional.one_hot(yr, c).float()
    x = torch.cat([xr, xs]) if len(yr) else xs
    t = torch.cat([tr, ts]) if len(yr) else ts
    # Centre the features: a softmax regression from zero then starts unbiased.
    mean = x.mean(dim=0, keepdim=True)
    x, xs, xr = x - mean, xs - mean, xr - mean
    phi = torch.zeros(n, requires_grad=True)
    opt = torch.optim.Adam([phi], lr=cfg.outer_lr)
    real_w = torch.ones(len(yr))
    for _ in range(cfg.outer_steps):
        w = torch.sigmoid(phi)
        w = w / w.mean()  # only the relative weights matter to the inner problem
        weights = torch.cat([real_w, w]) if len(yr) else w
        theta = _inner_fit(x, t, weights, c, cfg)
        p_syn = torch.softmax(xs @ theta[:-1] + theta[-1], dim=1)
        outer = cfg.rce_a * (1.0 - p_syn.gather(1, ys[:, None]).squeeze(1)).mean()
        if len(yr) and cfg.real_weight > 0:
            logp = torch.log_softmax(xr @ theta[:-1] + theta[-1], dim=1)
            outer = outer + cfg.real_weight * -(logp.gather(1, yr[:, None]).mean())
        opt.zero_grad()
        outer.backward()
        opt.step()
    with torch.no_grad():
        w = torch.sigmoid(phi)
        return (w / w.mean()).numpy().astype(float)


def _inner_fit(
    x: torch.Tensor, t: torch.Tensor, weights: torch.Tensor, c: int, cfg: SunGenConfig
) -> torch.Tensor:
    """Softmax regression by unrolled gradient descent (differentiable in ``weights``)."""
    import torch

    theta = torch.zeros(x.shape[1] + 1, c)
    norm = weights.sum()
    for _ in range(cfg.inner_steps):
        p = torch.softmax(x @ theta[:-1] + theta[-1], dim=1)
        g = (p - t) * (weights / norm)[:, None]  # d(weighted mean CE)/d logits
        grad = torch.cat([x.T @ g, g.sum(dim=0, keepdim=True)])
        theta = theta - cfg.inner_lr * grad
    return theta


def sungen_reweight(
    real: Sequence[Example],
    records: Sequence[SyntheticRecord],
    labels: Sequence[str],
    features: Callable[[list[str]], np.ndarray],
    config: SunGenConfig | None = None,
) -> list[SyntheticRecord]:
    """``records`` with their ``weight`` multiplied by learned SunGen weights (mean 1).

    ``features`` maps texts to encoder features (e.g. a frozen-encoder trainer's
    ``text_features``). The records' soft labels are their targets; nothing else changes.
    """
    from mixaug.training.loss import target_distributions

    if not records:
        return []
    index = {lab: i for i, lab in enumerate(labels)}
    unknown = sorted({e.label for e in real} - set(index))
    if unknown:
        msg = f"real examples have labels {unknown} outside {list(labels)}"
        raise DataError(msg)
    texts = [e.text for e in real] + [r.text for r in records]
    feats = np.asarray(features(texts), dtype=float)
    real_f, syn_f = feats[: len(real)], feats[len(real) :]
    real_y = np.array([index[e.label] for e in real], dtype=int)
    targets = np.asarray(target_distributions(list(records), labels), dtype=float)
    w = sungen_weights(real_f, real_y, syn_f, targets, config)
    return [
        r.model_copy(update={"weight": float(r.weight) * float(wi)})
        for r, wi in zip(records, w, strict=True)
    ]
