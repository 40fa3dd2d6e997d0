"""Training data: real examples (one-hot) and synthetic records (soft labels), with weights.

Example:
    >>> ds = TextDataset.build([Example(text="a gem", label="positive")],
    ...                        labels=["negative", "positive"])
    >>> ds.targets
    [[0.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, model_validator

from mixaug.errors import DataError
from mixaug.records import Example, SyntheticRecord
from mixaug.training.loss import target_distributions


class TextDataset(BaseModel):
    """Texts with target distributions and per-example weights."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str]
    texts: list[str]
    targets: list[list[float]]
    weights: list[float]
    synthetic: list[bool]

    @model_validator(mode="after")
    def _check(self) -> TextDataset:
        n = len(self.texts)
        if not (len(self.targets) == len(self.weights) == len(self.synthetic) == n):
            msg = "texts, targets, weights and synthetic must have the same length"
            raise ValueError(msg)
        return self

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def gold(self) -> list[int]:
        """The argmax class of each target."""
        return [max(range(len(t)), key=t.__getitem__) for t in self.targets]

    @classmethod
    def build(
        cls,
        real: Sequence[Example],
        synthetic: Sequence[SyntheticRecord] = (),
        *,
        labels: Sequence[str],
        hard_synthetic: bool = False,
    ) -> TextDataset:
        """Real examples as one-hot targets, synthetic records as their soft labels.

        Args:
            real: labelled examples.
            synthetic: records from ``augment`` (their ``weight`` is honoured).
            labels: the classifier's classes, in output order.
            hard_synthetic: use each record's generated label one-hot instead of its
                soft label (records without a generated label are skipped).

        Raises:
            DataError: for a label outside ``labels``.
        """
        syn: list[Example | SyntheticRecord] = []
        for r in synthetic:
            if hard_synthetic:
                if r.generated_label is not None:
                    syn.append(Example(text=r.text, label=r.generated_label))
            else:
                syn.append(r)
        items: list[Example | SyntheticRecord] = [*real, *syn]
        if not items:
            msg = "no training examples"
            raise DataError(msg)
        weights = [float(r.weight) if isinstance(r, SyntheticRecord) else 1.0 for r in items]
        flags = [False] * len(real) + [True] * len(syn)
        return cls(
            labels=list(labels),
            texts=[i.text for i in items],
            targets=target_distributions(items, labels),
            weights=weights,
            synthetic=flags,
        )
