"""The anchor-selector interface: a LangChain example selector that can be seeded."""

from __future__ import annotations

import random
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from langchain_core.example_selectors import BaseExampleSelector
from pydantic import BaseModel, ConfigDict

from mixaug.errors import DataError

if TYPE_CHECKING:
    from mixaug.records import Example
    from mixaug.selectors.index import AnchorIndex


class NoOptions(BaseModel):
    """A strategy that takes no options."""

    model_config = ConfigDict(extra="forbid")


class AnchorSelector(BaseExampleSelector):
    """Chooses the k anchors of one prompt, deterministically under a seed.

    Subclasses implement :meth:`select_examples`; ``input_variables`` may carry
    hints: ``label`` (the class to draw from) and ``query`` (a text to start from).
    With an :class:`~mixaug.selectors.index.AnchorIndex`, :meth:`similarity` gives
    the anchors' mean pairwise cosine similarity.
    """

    strategy: str = "base"
    """The registered name (``--anchors NAME``, ``anchors: {strategy: NAME}``)."""
    embedded: ClassVar[bool] = False
    """Whether the strategy needs an embedded :class:`AnchorIndex` of the pool."""
    Options: ClassVar[type[BaseModel]] = NoOptions
    """The strategy's own options (``anchors: {strategy: NAME, options: {...}}``)."""
    index: AnchorIndex | None = None

    @classmethod
    def create(
        cls,
        examples: list[Example],
        *,
        k: int,
        seed: int,
        index: AnchorIndex | None,
        options: BaseModel,
    ) -> AnchorSelector:
        """A selector over ``examples`` (or ``index`` when :attr:`embedded`) with ``options``."""
        raise NotImplementedError

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


S = TypeVar("S", bound=type[AnchorSelector])

STRATEGIES: dict[str, type[AnchorSelector]] = {}
"""Anchor strategies by name, in registration order."""


def register_selector(cls: S) -> S:
    """Class decorator: make ``cls`` the strategy named ``cls.strategy``."""
    if not isinstance(cls.strategy, str) or not cls.strategy or cls.strategy == "base":
        msg = f"an anchor selector needs a 'strategy' name, got {cls.strategy!r}"
        raise ValueError(msg)
    STRATEGIES[cls.strategy] = cls
    return cls


def check_options(cls: type[AnchorSelector], options: dict[str, Any] | None) -> BaseModel:
    """``options`` checked by strategy ``cls``'s :attr:`~AnchorSelector.Options`.

    Raises:
        ValueError: naming the strategy and the options it takes.
    """
    from pydantic import ValidationError

    from mixaug.errors import describe_validation_error

    opts = dict(options or {})
    takes = sorted(cls.Options.model_fields)
    unknown = sorted(set(opts) - set(takes))
    if unknown and not takes:
        msg = f"Anchor strategy {cls.strategy!r} takes no options, got {unknown}."
        raise ValueError(msg)
    if unknown:
        msg = f"Unknown option(s) {unknown} for {cls.strategy!r}; it takes {takes}."
        raise ValueError(msg)
    try:
        return cls.Options.model_validate(opts)
    except ValidationError as e:
        msg = f"Bad options for anchor strategy {cls.strategy!r}: {describe_validation_error(e)}."
        raise ValueError(msg) from None
