"""Anchor selectors: which labelled examples go into each prompt.

Strategies by name (``--anchors NAME`` or ``anchors: {strategy: NAME}`` in config):
``random`` (the paper's), ``balanced``, ``targeted`` (aimed at one class; default),
``same-class``, ``mixed-class``, ``diverse`` and ``similar``. The last four embed the
pool (all-MiniLM-L6-v2 by default) into a vector store (Chroma by default).

Example:
    >>> from mixaug.records import Example
    >>> pool = [Example(text="a", label="x"), Example(text="b", label="y")]
    >>> make_selector("balanced", pool, k=2, seed=0).strategy
    'balanced'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mixaug.errors import ConfigError
from mixaug.records import Example
from mixaug.selectors.base import AnchorSelector
from mixaug.selectors.embedded import (
    DiverseSelector,
    MixedClassSelector,
    SameClassSelector,
    SimilarSelector,
)
from mixaug.selectors.embeddings import default_embeddings
from mixaug.selectors.index import AnchorIndex
from mixaug.selectors.uniform import (
    BalancedAnchorSelector,
    RandomAnchorSelector,
    TargetedAnchorSelector,
)

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore

STRATEGIES: dict[str, type[AnchorSelector]] = {
    "random": RandomAnchorSelector,
    "balanced": BalancedAnchorSelector,
    "targeted": TargetedAnchorSelector,
    "same-class": SameClassSelector,
    "mixed-class": MixedClassSelector,
    "diverse": DiverseSelector,
    "similar": SimilarSelector,
}
"""Anchor strategies by name."""

EMBEDDED_STRATEGIES = frozenset({"same-class", "mixed-class", "diverse", "similar"})
"""Strategies that need an :class:`AnchorIndex`."""


def check_strategy(name: str) -> None:
    """Raise :class:`ConfigError` listing the valid names if ``name`` is unknown."""
    if name not in STRATEGIES:
        msg = f"Unknown anchor strategy {name!r}; use one of {', '.join(STRATEGIES)}."
        raise ConfigError(msg)


def make_selector(
    name: str,
    examples: list[Example],
    *,
    k: int = 2,
    seed: int = 0,
    index: AnchorIndex | None = None,
    embeddings: Embeddings | None = None,
    vectorstore: VectorStore | None = None,
    store_dir: str | None = None,
    options: dict[str, Any] | None = None,
) -> AnchorSelector:
    """Build the selector called ``name`` over ``examples``.

    Embedding strategies build an :class:`AnchorIndex` unless ``index`` is given:
    with ``embeddings`` (default: the packaged all-MiniLM-L6-v2), in ``vectorstore``
    (default: a fresh Chroma collection), caching embeddings in ``store_dir``.

    Args:
        name: strategy name.
        examples: the labelled pool.
        k: anchors per prompt.
        seed: seed of the selector's draws.
        index: a prebuilt index (shared between selectors).
        embeddings: embedder for a new index.
        vectorstore: empty vector store for a new index.
        store_dir: persistent embedding cache folder.
        options: strategy options (``diverse``: ``mmr_lambda``, ``fetch_k``, ``class_filter``).

    Raises:
        ConfigError: for an unknown name (listing the valid ones) or bad options.
        DataError: when the pool can't serve the strategy (k too large, one class).
    """
    check_strategy(name)
    opts = dict(options or {})
    if name not in EMBEDDED_STRATEGIES:
        if opts:
            msg = f"Anchor strategy {name!r} takes no options, got {sorted(opts)}."
            raise ConfigError(msg)
        cls: Any = STRATEGIES[name]
        selector: AnchorSelector = cls(examples, k=k, seed=seed, index=index)
        return selector
    if index is None:
        index = AnchorIndex.build(
            examples,
            embeddings or default_embeddings(),
            vectorstore=vectorstore,
            store_dir=store_dir,
        )
    if name == "diverse":
        allowed = {"mmr_lambda", "fetch_k", "class_filter"}
        unknown = sorted(set(opts) - allowed)
        if unknown:
            msg = f"Unknown option(s) {unknown} for 'diverse'; it takes {sorted(allowed)}."
            raise ConfigError(msg)
        return DiverseSelector(index, k=k, seed=seed, **opts)
    if opts:
        msg = f"Anchor strategy {name!r} takes no options, got {sorted(opts)}."
        raise ConfigError(msg)
    indexed: Any = STRATEGIES[name]
    built: AnchorSelector = indexed(index, k=k, seed=seed)
    return built


__all__ = [
    "EMBEDDED_STRATEGIES",
    "STRATEGIES",
    "AnchorIndex",
    "AnchorSelector",
    "BalancedAnchorSelector",
    "DiverseSelector",
    "MixedClassSelector",
    "RandomAnchorSelector",
    "SameClassSelector",
    "SimilarSelector",
    "TargetedAnchorSelector",
    "check_strategy",
    "default_embeddings",
    "make_selector",
]
