"""Uniformly random anchors: the paper's default strategy."""

from __future__ import annotations

import random
from typing import Any

from typing_extensions import override

from mixaug.errors import DataError
from mixaug.records import Example
from mixaug.selectors.base import AnchorSelector


class RandomAnchorSelector(AnchorSelector):
    """Draws k distinct anchors uniformly from the pool, deterministically per seed.

    Example:
        >>> sel = RandomAnchorSelector([{"text": "a", "label": "x"},
        ...                             {"text": "b", "label": "y"}], k=2, seed=0)
        >>> sorted(a["text"] for a in sel.select_examples({}))
        ['a', 'b']
    """

    strategy = "random"

    def __init__(self, examples: list[Example] | list[dict[str, Any]], k: int = 2, seed: int = 0):
        self.examples: list[dict[str, Any]] = [
            e.model_dump() if isinstance(e, Example) else dict(e) for e in examples
        ]
        if not self.examples:
            msg = "The anchor pool is empty; give at least k labelled examples."
            raise DataError(msg)
        if k < 1:
            msg = f"k must be at least 1, got {k}."
            raise DataError(msg)
        if k > len(self.examples):
            msg = (
                f"k={k} anchors were asked for but the data has only {len(self.examples)} "
                f"examples; lower --k to at most {len(self.examples)} or add data."
            )
            raise DataError(msg)
        self.k = k
        self.seed = seed
        self._rng = random.Random(seed)

    @override
    def add_example(self, example: dict[str, str]) -> None:
        self.examples.append(dict(example))

    @override
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        return self._rng.sample(self.examples, self.k)
