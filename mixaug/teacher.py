"""A teacher from the real data: labels in the encoder's space, trained on real examples only.

A small generator often writes a good item and gives it the wrong label ("Where was
the Hollywood Theatre located?" -> HUM). A teacher that has seen only the real
labelled examples gives a second opinion (LAMBADA, GAL):

- ``classifier``: the frozen encoder + 2 FC classifier trained on the real data alone
  (what ``noaug`` trains);
- ``centroid``: cosine similarity to each class's mean embedding, softmax over classes;
- ``knn``: a similarity-weighted vote of the nearest real examples.

:mod:`mixaug.labelmix` combines its distribution with the LM's.

Example:
    >>> teacher = Teacher(method="centroid", labels=["negative", "positive"])  # doctest: +SKIP
    >>> teacher.fit(real_examples)  # doctest: +SKIP
    >>> teacher.predict(["a gem of a film"]).round(2)  # doctest: +SKIP
    array([[0.31, 0.69]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mixaug.calibration import centroid_probs, class_centroids
from mixaug.errors import DataError
from mixaug.records import Example

if TYPE_CHECKING:
    from mixaug.training.args import TrainingArguments
    from mixaug.training.features import FeatureCache

TeacherMethod = Literal["classifier", "centroid", "knn"]
TEACHERS: tuple[TeacherMethod, ...] = ("classifier", "centroid", "knn")


class Teacher:
    """Label distributions for texts from a model of the real labelled examples."""

    def __init__(
        self,
        method: TeacherMethod = "classifier",
        *,
        labels: Sequence[str],
        encoder: str | None = None,
        args: TrainingArguments | None = None,
        feature_cache: FeatureCache | None = None,
        temperature: float = 0.05,
        neighbours: int = 5,
    ) -> None:
        if method not in TEACHERS:
            msg = f"unknown teacher {method!r}; choose from {list(TEACHERS)}"
            raise DataError(msg)
        self.method = method
        self.labels = list(labels)
        self.encoder = encoder
        from mixaug.training.args import TrainingArguments

        self.args = args or TrainingArguments(freeze_encoder=True, epochs=30, patience=5)
        self.args = self.args.model_copy(update={"freeze_encoder": True})
        from mixaug.training.features import FeatureCache

        self.cache = feature_cache or FeatureCache(per_text=True)
        self.temperature = temperature
        self.neighbours = neighbours
        self._trainer: Any = None
        self._feats: np.ndarray | None = None
        self._texts: list[str] = []
        self._y: np.ndarray | None = None
        self._centroids: np.ndarray | None = None

    def fit(self, real: Sequence[Example], validation: Sequence[Example] = ()) -> Teacher:
        """Fit on ``real`` (``validation``, if any, early-stops the classifier).

        Raises:
            DataError: for no examples or a label outside ``labels``.
        """
        import torch

        from mixaug.training import TextClassifier, TextDataset, Trainer

        if not real:
            msg = "the teacher needs at least one real labelled example"
            raise DataError(msg)
        bad = sorted({e.label for e in real} - set(self.labels))
        if bad:
            msg = f"teacher examples have labels {bad} outside {self.labels}"
            raise DataError(msg)
        torch.manual_seed(self.args.seed)
        model = TextClassifier.from_encoder(
            self.encoder, self.labels, max_length=self.args.max_length, share_encoder=True
        )
        train = TextDataset.build(list(real), labels=self.labels)
        val = TextDataset.build(list(validation), labels=self.labels) if validation else None
        trainer = Trainer(model, self.args, train, val, feature_cache=self.cache)
        if self.method == "classifier":
            trainer.train()
        self._trainer = trainer
        self._y = np.array([self.labels.index(e.label) for e in real])
        self._texts = [e.text for e in real]
        self._feats = trainer.text_features(self._texts).numpy()
        self._centroids = class_centroids(self._feats, self._y.tolist(), len(self.labels))
        return self

    def left_out(self) -> np.ndarray:
        """Each real example's probabilities from a teacher that did not see it.

        Exact for ``centroid`` (its class centroid without the example); ``knn`` skips the
        example itself; ``classifier`` has no cheap leave-one-out and gives its in-sample
        rows (optimistic, so a comparison against it is strict).
        """
        if self._trainer is None or self._feats is None or self._y is None:
            msg = "call fit() before left_out()"
            raise DataError(msg)
        feats, y, c = self._feats, self._y, len(self.labels)
        if self.method == "classifier":
            return np.asarray(self.predict(self._texts))
        out = np.zeros((len(y), c))
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            if self.method == "centroid":
                cents = class_centroids(feats[keep], y[keep].tolist(), c)
                out[i] = centroid_probs(feats[i : i + 1], cents, self.temperature)[0]
            else:
                saved = self._feats, self._y
                self._feats, self._y = feats[keep], y[keep]
                try:
                    out[i] = self._knn(feats[i : i + 1])[0]
                finally:
                    self._feats, self._y = saved
        return out

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Rows of class probabilities (columns in ``labels`` order)."""
        if self._trainer is None or self._feats is None:
            msg = "call fit() before predict()"
            raise DataError(msg)
        if not texts:
            return np.zeros((0, len(self.labels)))
        from mixaug.training import TextDataset

        if self.method == "classifier":
            ds = TextDataset(
                labels=self.labels,
                texts=list(texts),
                targets=[[1.0] + [0.0] * (len(self.labels) - 1)] * len(texts),
                weights=[1.0] * len(texts),
                synthetic=[False] * len(texts),
            )
            return np.asarray(self._trainer.predict_proba(ds))
        feats = self._trainer.text_features(list(texts)).numpy()
        if self.method == "centroid":
            assert self._centroids is not None
            return centroid_probs(feats, self._centroids, self.temperature)
        return self._knn(feats)

    def _knn(self, feats: np.ndarray) -> np.ndarray:
        assert self._feats is not None and self._y is not None
        a = feats / np.clip(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12, None)
        b = self._feats / np.clip(np.linalg.norm(self._feats, axis=1, keepdims=True), 1e-12, None)
        sims = a @ b.T
        k = min(self.neighbours, b.shape[0])
        top = np.argsort(-sims, axis=1)[:, :k]
        out = np.full((len(a), len(self.labels)), 1e-3)
        for r in range(len(a)):
            for j in top[r]:
                out[r, self._y[j]] += np.exp(sims[r, j] / self.temperature)
        return out / out.sum(axis=1, keepdims=True)
