"""The anchor-selector interface: a LangChain example selector that can be seeded."""

from __future__ import annotations

import random
from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from langchain_core.example_selectors import BaseExampleSelector

from mixaug.errors import DataError

if TYPE_CHECKING:
    from mixaug.selectors.index import AnchorIndex


class AnchorSelector(BaseExampleSelector):
    """Chooses the k anchors of one prompt, deterministically under a seed.

    Subclasses implement :meth:`select_examples`; ``input_variables`` may carry
    hints: ``label`` (the class to draw from) and ``query`` (a text to start from).
    With an :class:`~mixaug.selectors.index.AnchorIndex`, :meth:`similarity` gives
    the anchors' mean pairwise cosine similarity.
    """

    strategy: str = "base"
    index: AnchorIndex | None = None

    def __init__(self, k: int, seed: int) -> None:
        if k < 1:
            msg = f"k must be at least 1, got {k}."
            raise DataError(msg)
        self.k = k
        self.seed = seed
        self._rng = random.Random(seed)

    @abstractmethod
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        """Return k anchors as ``{"text", "label"}`` dicts."""

    def get_state(self) -> list[Any]:
        """The selector's random state, JSON-ready (for resumable runs)."""
        version, internal, gauss = self._rng.getstate()
        return [version, list(internal), gauss]

    def set_state(self, state: list[Any]) -> None:
        """Restore a state from :meth:`get_state`."""
        self._rng.setstate((state[0], tuple(state[1]), state[2]))

    def similarity(self, anchors: list[dict[str, Any]]) -> float | None:
        """Mean pairwise cosine similarity of ``anchors`` (``None`` without an index)."""
        if self.index is None:
            return None
        positions = [self.index.position(a) for a in anchors]
        if any(p is None for p in positions):
            return None
        return self.index.mean_pairwise_cosine([p for p in positions if p is not None])
