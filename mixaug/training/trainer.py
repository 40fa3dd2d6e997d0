"""The trainer: soft-label cross-entropy, AdamW with warm-up, early stopping, seeded.

Example:
    >>> model = TextClassifier.from_encoder(None, ["negative", "positive"])  # doctest: +SKIP
    >>> trainer = Trainer(model, TrainingArguments(epochs=3), train_ds, val_ds)  # doctest: +SKIP
    >>> trainer.train().best_step  # doctest: +SKIP
    >>> trainer.evaluate(test_ds)  # doctest: +SKIP
    {'accuracy': 0.81, 'macro_f1': 0.80, 'loss': 0.45, 'examples': 1821}
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field

from mixaug.errors import DataError
from mixaug.training.args import TrainingArguments
from mixaug.training.data import TextDataset
from mixaug.training.features import FeatureCache, encoder_checksum
from mixaug.training.loss import soft_cross_entropy
from mixaug.training.metrics import classification_metrics
from mixaug.training.model import TextClassifier


class TrainOutput(BaseModel):
    """What a training run did."""

    steps: int
    epochs: float
    best_step: int
    best_eval_loss: float | None = None
    stopped_early: bool = False
    seconds: float
    history: list[dict[str, float]] = Field(default_factory=list)
    """One entry per validation: step, train loss, eval loss, eval accuracy."""


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Train a :class:`TextClassifier` on a :class:`TextDataset` (real + synthetic).

    With ``eval_dataset`` the model is validated every epoch (or ``eval_every``
    steps); training stops after ``patience`` validations without a lower loss and
    the best weights are restored. ``freeze_encoder`` trains only the head, on
    encoder features computed once (once across trainers with a shared
    ``feature_cache``).
    """

    def __init__(
        self,
        model: TextClassifier,
        args: TrainingArguments | None = None,
        train_dataset: TextDataset | None = None,
        eval_dataset: TextDataset | None = None,
        *,
        feature_cache: FeatureCache | None = None,
    ) -> None:
        self.model = model
        self.feature_cache = feature_cache
        self._checksum: str | None = None
        self.args = args or TrainingArguments()
        self.train_dataset = train_dataset
        self.eval_dataset = eval_dataset
        for name, ds in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
            if ds is not None and ds.labels != model.config.labels:
                msg = (
                    f"{name} has labels {ds.labels} but the model has {model.config.labels}; "
                    "build both with the same label list."
                )
                raise DataError(msg)
        # id(dataset) -> (dataset, features); holding the dataset keeps its id unique.
        self._features: dict[int, tuple[TextDataset, torch.Tensor]] = {}

    # -- helpers ---------------------------------------------------------------
    def _encode(self, texts: list[str]) -> torch.Tensor:
        """Encoder features of ``texts`` in batches of 64 (the model's mode is kept)."""
        chunks = []
        was_training = self.model.training
        self.model.eval()
        with torch.inference_mode():
            for i in range(0, len(texts), 64):
                chunks.append(self.model.features(**self.model.tokenize(texts[i : i + 64])))
        self.model.train(was_training)  # the head's dropout stays on mid-training
        return torch.cat(chunks).clone()

    def _feats(self, ds: TextDataset) -> torch.Tensor:
        """Encoder features of every text (cached per dataset; frozen mode)."""
        key = id(ds)
        if key in self._features:
            return self._features[key][1]
        cache = self.feature_cache
        if cache is None:
            feats = self._encode(ds.texts)
        else:
            if self._checksum is None:
                self._checksum = encoder_checksum(self.model)
            length = self.model.config.max_length
            shared = FeatureCache.key(self._checksum, length, ds.texts)
            hit = cache.get(shared)
            if hit is not None:
                feats = hit
            elif cache.per_text:
                rows, todo = cache.get_texts(self._checksum, length, ds.texts)
                if todo:
                    new = self._encode([ds.texts[i] for i in todo])
                    cache.put_texts(self._checksum, length, [ds.texts[i] for i in todo], new)
                    for j, i in enumerate(todo):
                        rows[i] = new[j]
                feats = torch.stack([r for r in rows if r is not None])
                cache.put(shared, feats)
            else:
                feats = self._encode(ds.texts)
                cache.put(shared, feats)
        self._features[key] = (ds, feats)
        return feats

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """Frozen-encoder features of ``texts`` (shared through the feature cache)."""
        ds = TextDataset(
            labels=self.model.config.labels,
            texts=list(texts),
            targets=[[1.0] + [0.0] * (len(self.model.config.labels) - 1)] * len(texts),
            weights=[1.0] * len(texts),
            synthetic=[False] * len(texts),
        )
        feats = self._feats(ds)
        del self._features[id(ds)]
        return feats

    def _logits(self, ds: TextDataset, idx: list[int]) -> torch.Tensor:
        if self.args.freeze_encoder:
            return self.model.head(self._feats(ds)[idx])
        return self.model(**self.model.tokenize([ds.texts[i] for i in idx]))

    def _optimizer(self) -> torch.optim.Optimizer:
        a = self.args
        head = list(self.model.head.parameters())
        groups: list[dict[str, Any]] = [{"params": head, "lr": a.head_learning_rate}]
        if not a.freeze_encoder:
            for p in self.model.encoder.parameters():
                p.requires_grad_(True)  # a copy of a once-frozen encoder trains too
            groups.append({"params": list(self.model.encoder.parameters()), "lr": a.learning_rate})
        else:
            for p in self.model.encoder.parameters():
                p.requires_grad_(False)
        return torch.optim.AdamW(groups, weight_decay=a.weight_decay)

    # -- public ------------------------------------------------------------------
    def train(self) -> TrainOutput:
        """Train; returns the history. Deterministic under ``args.seed``."""
        a = self.args
        ds = self.train_dataset
        if ds is None or len(ds) == 0:
            msg = "Trainer.train needs a non-empty train_dataset"
            raise DataError(msg)
        if a.threads:
            torch.set_num_threads(a.threads)
        set_seed(a.seed)
        started = time.perf_counter()
        per_epoch = math.ceil(len(ds) / a.batch_size)
        total = a.max_steps or per_epoch * a.epochs
        opt = self._optimizer()
        sched = _linear_schedule(opt, total, int(total * a.warmup_ratio))
        eval_every = a.eval_every or per_epoch
        gen = torch.Generator().manual_seed(a.seed)
        targets, weights = self._targets(ds)
        keeper = _BestKeeper(self.model.head if a.freeze_encoder else self.model, a)
        step, running, seen = 0, 0.0, 0
        bar = _bar(total, a.progress, "training")
        while step < total and not keeper.stopped:
            order = torch.randperm(len(ds), generator=gen).tolist()
            for i in range(0, len(order), a.batch_size):
                idx = order[i : i + a.batch_size]
                loss = self._step(ds, idx, targets, weights, opt, sched)
                step += 1
                running += loss * len(idx)
                seen += len(idx)
                if bar is not None:
                    bar.update(1)
                if self.eval_dataset is not None and (step % eval_every == 0 or step == total):
                    keeper.update(step, running / max(seen, 1), self.evaluate())
                    running, seen = 0.0, 0
                if step >= total or keeper.stopped:
                    break
        if bar is not None:
            bar.close()
        keeper.restore()
        self.model.eval()
        return TrainOutput(
            steps=step,
            epochs=round(step / per_epoch, 3),
            best_step=keeper.best_step or step,
            best_eval_loss=None if keeper.state is None else round(keeper.best_loss, 5),
            stopped_early=keeper.stopped,
            seconds=round(time.perf_counter() - started, 2),
            history=keeper.history,
        )

    def _targets(self, ds: TextDataset) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets, weights): synthetic rows weighted by ``synthetic_weight`` and smoothed."""
        a = self.args
        targets = torch.tensor(ds.targets, dtype=torch.float32)
        weights = torch.tensor(ds.weights, dtype=torch.float32)
        syn = torch.tensor(ds.synthetic, dtype=torch.bool)
        if syn.any():
            weights[syn] *= a.synthetic_weight
            if a.synthetic_smoothing:
                e = a.synthetic_smoothing
                targets[syn] = (1 - e) * targets[syn] + e / targets.shape[1]
        return targets, weights

    def _step(
        self,
        ds: TextDataset,
        idx: list[int],
        targets: torch.Tensor,
        weights: torch.Tensor,
        opt: torch.optim.Optimizer,
        sched: torch.optim.lr_scheduler.LRScheduler,
    ) -> float:
        """One optimiser step on the rows ``idx``; returns the batch's loss."""
        self.model.train()
        logits = self._logits(ds, idx)
        loss = soft_cross_entropy(logits, targets[idx], weights[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        opt.step()
        sched.step()
        return float(loss.detach())

    @torch.inference_mode()
    def predict_proba(self, dataset: TextDataset) -> list[list[float]]:
        """Class probabilities for every text of ``dataset`` (cached features when frozen)."""
        self.model.eval()
        out: list[list[float]] = []
        for i in range(0, len(dataset), 64):
            idx = list(range(i, min(i + 64, len(dataset))))
            out += torch.softmax(self._logits(dataset, idx).float(), -1).tolist()
        return out

    @torch.inference_mode()
    def evaluate(
        self,
        dataset: TextDataset | None = None,
        *,
        adjustment: Sequence[float] | np.ndarray | None = None,
    ) -> dict[str, float]:
        """``accuracy``, ``macro_f1``, ``mcc``, ``loss`` (cross-entropy) and ``examples``.

        ``adjustment`` is added to the logits first (post-hoc logit adjustment to another
        class prior: :func:`mixaug.training.metrics.prior_adjustment`).
        """
        ds = dataset if dataset is not None else self.eval_dataset
        if ds is None or len(ds) == 0:
            msg = "evaluate needs a non-empty dataset (or an eval_dataset)"
            raise DataError(msg)
        if ds.labels != self.model.config.labels:
            msg = f"dataset labels {ds.labels} differ from the model's {self.model.config.labels}"
            raise DataError(msg)
        self.model.eval()
        shift = None if adjustment is None else torch.tensor(adjustment, dtype=torch.float32)
        preds: list[int] = []
        total = 0.0
        for i in range(0, len(ds), 64):
            idx = list(range(i, min(i + 64, len(ds))))
            logits = self._logits(ds, idx).float()
            if shift is not None:
                logits = logits + shift
            t = torch.tensor([ds.targets[j] for j in idx], dtype=torch.float32)
            total += float(soft_cross_entropy(logits, t)) * len(idx)
            preds += logits.argmax(-1).tolist()
        return {
            **classification_metrics(preds, ds.gold, n_classes=len(ds.labels)),
            "loss": round(total / len(ds), 5),
            "examples": len(ds),
        }


def _bar(total: int, show: bool, desc: str) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    return tqdm(total=total, desc=desc, leave=False)


def _linear_schedule(
    opt: torch.optim.Optimizer, total: int, warmup: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps, then linear decay to zero at ``total``."""

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(opt, schedule)


class _BestKeeper:
    """Early stopping on the evaluation loss, keeping the best weights of ``part``.

    With a frozen encoder only the head changes, so ``part`` is the head alone.
    """

    def __init__(self, part: torch.nn.Module, args: TrainingArguments) -> None:
        self.part, self.args = part, args
        self.best_loss, self.best_step, self.bad = math.inf, 0, 0
        self.state: dict[str, torch.Tensor] | None = None
        self.stopped = False
        self.history: list[dict[str, float]] = []

    def update(self, step: int, train_loss: float, metrics: dict[str, Any]) -> None:
        """Record an evaluation; keep the weights if it is the best, stop on patience."""
        self.history.append(
            {
                "step": step,
                "train_loss": round(train_loss, 5),
                "eval_loss": metrics["loss"],
                "eval_accuracy": metrics["accuracy"],
            }
        )
        if metrics["loss"] < self.best_loss - 1e-6:
            self.best_loss, self.best_step, self.bad = metrics["loss"], step, 0
            self.state = {k: v.detach().clone() for k, v in self.part.state_dict().items()}
        else:
            self.bad += 1
            if self.bad >= self.args.patience and step >= self.args.min_steps:
                self.stopped = True

    def restore(self) -> None:
        """Load the best weights back (if any evaluation ran)."""
        if self.state is not None:
            self.part.load_state_dict(self.state)
