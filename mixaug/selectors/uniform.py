"""Uniformly random anchors (the paper's default) and class-balanced draws."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from typing_extensions import override

from mixaug.errors import DataError
from mixaug.records import Example
from mixaug.selectors.base import AnchorSelector, register_selector

if TYPE_CHECKING:
    from mixaug.selectors.index import AnchorIndex


def _as_dicts(examples: list[Example] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e.model_dump() if isinstance(e, Example) else dict(e) for e in examples]


def _check_pool(n: int, k: int) -> None:
    if n == 0:
        msg = "The anchor pool is empty; give at least k labelled examples."
        raise DataError(msg)
    if k > n:
        msg = (
            f"k={k} anchors were asked for but the data has only {n} examples; "
            f"lower --k to at most {n} or add data."
        )
        raise DataError(msg)


class _PoolSelector(AnchorSelector):
    """A selector over a plain list of examples (no embeddings needed)."""

    def __init__(
        self,
        examples: list[Example] | list[dict[str, Any]],
        k: int = 2,
        seed: int = 0,
        index: AnchorIndex | None = None,
    ) -> None:
        super().__init__(k, seed)
        self.examples = _as_dicts(examples)
        _check_pool(len(self.examples), k)
        self.index = index
        """Optional: lets :meth:`similarity` report the anchors' cosine."""

    @classmethod
    @override
    def create(
        cls,
        examples: list[Example],
        *,
        k: int,
        seed: int,
        index: AnchorIndex | None,
        options: BaseModel,
    ) -> AnchorSelector:
        return cls(examples, k=k, seed=seed, index=index, **options.model_dump())

    @override
    def add_example(self, example: dict[str, str]) -> None:
        self.examples.append(dict(example))


@register_selector
class RandomAnchorSelector(_PoolSelector):
    """Draws k distinct anchors uniformly from the pool.

    Example:
        >>> sel = RandomAnchorSelector([{"text": "a", "label": "x"},
        ...                             {"text": "b", "label": "y"}], k=2, seed=0)
        >>> sorted(a["text"] for a in sel.select_examples({}))
        ['a', 'b']
    """

    strategy = "random"

    @override
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        return self._rng.sample(self.examples, self.k)


class _ByLabelSelector(_PoolSelector):
    """A pool selector that also keeps its examples grouped by label."""

    def __init__(
        self,
        examples: list[Example] | list[dict[str, Any]],
        k: int = 2,
        seed: int = 0,
        index: AnchorIndex | None = None,
    ) -> None:
        super().__init__(examples, k, seed, index)
        self._by_label: dict[str, list[dict[str, Any]]] = {}
        for e in self.examples:
            self._by_label.setdefault(str(e["label"]), []).append(e)
        self._labels = sorted(self._by_label)

    @override
    def add_example(self, example: dict[str, str]) -> None:
        self.examples.append(dict(example))
        self._by_label.setdefault(str(example["label"]), []).append(dict(example))
        self._labels = sorted(self._by_label)


@register_selector
class BalancedAnchorSelector(_ByLabelSelector):
    """Class-balanced draws: k different classes (cycling when k > classes), one anchor each.

    Example:
        >>> pool = [{"text": t, "label": lab} for t, lab in
        ...         [("a", "x"), ("b", "x"), ("c", "x"), ("d", "y")]]
        >>> sel = BalancedAnchorSelector(pool, k=2, seed=1)
        >>> sorted(a["label"] for a in sel.select_examples({}))
        ['x', 'y']
    """

    strategy = "balanced"

    @override
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        order = self._rng.sample(self._labels, len(self._labels))
        taken: dict[str, set[int]] = {}
        chosen: list[dict[str, Any]] = []
        i = 0
        while len(chosen) < self.k:
            label = order[i % len(order)]
            members = self._by_label[label]
            used = taken.setdefault(label, set())
            i += 1
            if len(used) >= len(members):
                continue
            # Draw positions until a free one comes up: O(1) for a large class.
            pos = self._rng.randrange(len(members))
            while pos in used:
                pos = self._rng.randrange(len(members))
            used.add(pos)
            chosen.append(members[pos])
        return chosen


@register_selector
class TargetedAnchorSelector(_ByLabelSelector):
    """Anchors aimed at one class: up to k of it (placed last), the rest from other classes.

    The class is ``input_variables["label"]`` when given (``augment`` passes the class
    furthest from its quota), else the classes take turns. A small model leans towards
    the label of the anchors it read last, so this is how class quotas get filled.

    Example:
        >>> pool = [{"text": t, "label": lab} for t, lab in
        ...         [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")]]
        >>> sel = TargetedAnchorSelector(pool, k=2, seed=0)
        >>> [a["label"] for a in sel.select_examples({"label": "y"})]
        ['y', 'y']
    """

    strategy = "targeted"

    def __init__(
        self,
        examples: list[Example] | list[dict[str, Any]],
        k: int = 2,
        seed: int = 0,
        index: AnchorIndex | None = None,
    ) -> None:
        super().__init__(examples, k, seed, index)
        self._turn = 0

    @override
    def get_state(self) -> list[Any]:
        return [*super().get_state(), self._turn]

    @override
    def set_state(self, state: list[Any]) -> None:
        super().set_state(state[:3])
        self._turn = int(state[3]) if len(state) > 3 else 0

    @override
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        label = input_variables.get("label")
        if label is None or label not in self._by_label:
            label = self._labels[self._turn % len(self._labels)]
            self._turn += 1
        members = self._by_label[label]
        own = self._rng.sample(members, min(self.k, len(members)))
        rest: list[dict[str, Any]] = []
        if len(own) < self.k:
            others = [e for e in self.examples if e["label"] != label]
            rest = self._rng.sample(others, min(self.k - len(own), len(others)))
        return [*rest, *own]
