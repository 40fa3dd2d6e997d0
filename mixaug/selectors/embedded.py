"""Embedding-based anchor strategies over an :class:`~mixaug.selectors.index.AnchorIndex`.

- ``same-class``: k anchors of one class that are near each other.
- ``mixed-class``: a seed anchor and its nearest neighbours from other classes
  (mixing across the decision boundary).
- ``diverse``: maximal marginal relevance with a tunable λ and an optional class
  filter, over a seeded random sample of candidates (so it spreads over the whole
  class or pool, not one neighbourhood).
- ``similar``: a seed anchor and its nearest neighbours, any class.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import override

from mixaug.errors import ConfigError, DataError
from mixaug.records import Example
from mixaug.selectors.base import AnchorSelector, register_selector
from mixaug.selectors.index import AnchorIndex


class _IndexedSelector(AnchorSelector):
    embedded = True

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
        if index is None:
            msg = f"anchor strategy {cls.strategy!r} needs an index of the pool"
            raise ValueError(msg)
        return cls(index, k=k, seed=seed, **options.model_dump())

    def __init__(self, index: AnchorIndex, k: int = 2, seed: int = 0) -> None:
        super().__init__(k, seed)
        self.index = index
        if len(index) == 0:
            msg = "The anchor pool is empty; give at least k labelled examples."
            raise DataError(msg)
        if k > len(index):
            msg = (
                f"k={k} anchors were asked for but the data has only {len(index)} "
                f"examples; lower --k to at most {len(index)} or add data."
            )
            raise DataError(msg)

    @property
    def pool(self) -> AnchorIndex:
        assert self.index is not None
        return self.index

    @override
    def add_example(self, example: dict[str, str]) -> None:
        msg = f"{type(self).__name__} is built on an index; rebuild it to add examples."
        raise NotImplementedError(msg)

    def _as_dicts(self, positions: list[int]) -> list[dict[str, Any]]:
        return [self.pool.examples[p].model_dump() for p in positions]

    def _seed(self, input_variables: dict[str, Any], label: str | None) -> tuple[int | None, Any]:
        """A starting point: a given query text, or a random pool example."""
        query = input_variables.get("query")
        if query:
            return None, self.pool.embed_query(str(query))
        members = self.pool.by_label[label] if label else range(len(self.pool))
        pos = self._rng.choice(list(members))
        return pos, self.pool.vectors[pos]

    def _class(self, input_variables: dict[str, Any], min_size: int) -> str:
        label = input_variables.get("label")
        if label is not None:
            if str(label) not in self.pool.by_label:
                msg = f"Label {label!r} is not in the anchor pool {self.pool.labels}."
                raise DataError(msg)
            return str(label)
        return self._rng.choice(
            [lab for lab in self.pool.labels if len(self.pool.by_label[lab]) >= min_size]
        )


@register_selector
class SameClassSelector(_IndexedSelector):
    """k anchors of one class that are near each other in embedding space.

    The class is drawn uniformly (or given as ``label``); a random member seeds
    the set and its k-1 nearest same-class neighbours join it.
    """

    strategy = "same-class"

    def __init__(self, index: AnchorIndex, k: int = 2, seed: int = 0) -> None:
        super().__init__(index, k, seed)
        small = {lab: len(m) for lab, m in index.by_label.items() if len(m) < k}
        if small:
            msg = (
                f"same-class needs k={k} examples in every class, but "
                + ", ".join(f"{lab!r} has {n}" for lab, n in sorted(small.items()))
                + f"; lower --k to at most {min(small.values())} or use --anchors random."
            )
            raise DataError(msg)

    @override
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        label = self._class(input_variables, self.k)
        pos, vec = self._seed(input_variables, label)
        start = [pos] if pos is not None else []
        rest = self.pool.nearest(vec, self.k - len(start), label=label, exclude=start)
        return self._as_dicts(start + rest)


@register_selector
class MixedClassSelector(_IndexedSelector):
    """A seed anchor plus its nearest neighbours from other classes.

    Every prompt mixes at least two classes that lie close together: examples
    near the decision boundary.
    """

    strategy = "mixed-class"

    def __init__(self, index: AnchorIndex, k: int = 2, seed: int = 0) -> None:
        super().__init__(index, k, seed)
        if len(index.labels) < 2:
            msg = (
                f"mixed-class needs at least two classes, but the pool has only "
                f"{index.labels}; use --anchors same-class, similar or random."
            )
            raise DataError(msg)
        if k < 2:
            msg = "mixed-class needs k >= 2 (a seed and a neighbour from another class)."
            raise DataError(msg)

    @override
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        label = input_variables.get("label")
        pos, vec = self._seed(input_variables, str(label) if label is not None else None)
        if pos is None:
            # A query text: its nearest example of any class becomes the seed.
            pos = self.pool.nearest(vec, 1)[0]
        seed_label = self.pool.examples[pos].label
        rest = self.pool.nearest(vec, self.k - 1, not_label=seed_label, exclude=[pos])
        return self._as_dicts([pos, *rest])


@register_selector
class DiverseSelector(_IndexedSelector):
    """Maximal marginal relevance with a tunable λ and an optional class filter.

    A random seed anchor is the query; the others are picked one by one from
    ``fetch_k`` random candidates by ``λ·cos(query, c) − (1−λ)·max cos(c, chosen)``.
    λ = 1 is pure relevance, λ = 0 pure diversity. ``class_filter="same"`` keeps
    all anchors in the seed's class. (LangChain's MMR example selector can neither
    filter by class nor set λ.)
    """

    strategy = "diverse"

    class Options(BaseModel):
        """``diverse``'s options."""

        model_config = ConfigDict(extra="forbid")

        mmr_lambda: float = Field(default=0.25, ge=0.0, le=1.0)
        """Relevance weight λ (0 = most diverse)."""
        fetch_k: int = Field(strict=True, default=64, ge=1)
        """Random candidates per selection."""
        class_filter: Literal["any", "same"] = "any"
        """Keep all anchors in one class (``same``) or not (``any``)."""

    def __init__(
        self,
        index: AnchorIndex,
        k: int = 2,
        seed: int = 0,
        *,
        mmr_lambda: float = 0.25,
        fetch_k: int = 64,
        class_filter: str = "any",
    ) -> None:
        super().__init__(index, k, seed)
        if not 0.0 <= mmr_lambda <= 1.0:
            msg = f"diverse: lambda must be between 0 and 1, got {mmr_lambda}."
            raise ConfigError(msg)
        if class_filter not in ("any", "same"):
            msg = f"diverse: class_filter must be 'any' or 'same', got {class_filter!r}."
            raise ConfigError(msg)
        if class_filter == "same" and not any(len(m) >= k for m in index.by_label.values()):
            msg = f"diverse with class_filter 'same' needs a class with at least k={k} examples."
            raise DataError(msg)
        self.mmr_lambda = mmr_lambda
        self.fetch_k = max(fetch_k, k)
        self.class_filter = class_filter

    @override
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        label: str | None = None
        if self.class_filter == "same" or input_variables.get("label") is not None:
            label = self._class(input_variables, self.k)
        members = self.pool.by_label[label] if label else list(range(len(self.pool)))
        seed = self._rng.choice(members)
        others = [m for m in members if m != seed]
        candidates = self._rng.sample(others, min(self.fetch_k, len(others)))
        chosen = [seed]
        vecs = self.pool.vectors
        cand = np.asarray(candidates)
        relevance = vecs[cand] @ vecs[seed]  # (C,)
        redundancy = vecs[cand] @ vecs[seed]  # (C,) max cos to anything chosen
        alive = np.ones(len(cand), dtype=bool)
        lam = self.mmr_lambda
        while len(chosen) < self.k and alive.any():
            score = lam * relevance - (1.0 - lam) * redundancy
            score[~alive] = -np.inf
            j = int(np.argmax(score))
            chosen.append(int(cand[j]))
            alive[j] = False
            redundancy = np.maximum(redundancy, vecs[cand] @ vecs[cand[j]])
        return self._as_dicts(chosen)


@register_selector
class SimilarSelector(_IndexedSelector):
    """A seed example (or ``query`` text) and its nearest neighbours, any class."""

    strategy = "similar"

    @override
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        pos, vec = self._seed(input_variables, None)
        start = [pos] if pos is not None else []
        rest = self.pool.nearest(vec, self.k - len(start), exclude=start)
        return self._as_dicts(start + rest)
