"""Anchor selectors: which labelled examples go into each prompt.

Strategies by name (``--anchors NAME`` or ``anchors: {strategy: NAME}`` in config):
``random`` (the paper's), ``balanced``, ``targeted`` (aimed at one class; default),
``same-class``, ``mixed-class``, ``diverse`` and ``similar``. The last four embed the
pool (all-MiniLM-L6-v2 by default) into a vector store (Chroma by default). Each is an
:class:`AnchorSelector` subclass registered by name (:func:`register_selector`) that
owns its options (``Options``, a pydantic model; ``anchors: {strategy: diverse,
options: {mmr_lambda: 0.1}}``), so a new strategy is one module.

Example:
    >>> from mixaug.records import Example
    >>> pool = [Example(text="a", label="x"), Example(text="b", label="y")]
    >>> make_selector("balanced", pool, k=2, seed=0).strategy
    'balanced'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mixaug.errors import ConfigError
from mixaug.records import Example
from mixaug.selectors.base import (
    STRATEGIES,
    AnchorSelector,
    NoOptions,
    check_options,
    register_selector,
)

# The built-in strategies register themselves on import, in this order.
# isort: off
from mixaug.selectors.uniform import (
    BalancedAnchorSelector,
    RandomAnchorSelector,
    TargetedAnchorSelector,
)
from mixaug.selectors.embedded import (
    DiverseSelector,
    MixedClassSelector,
    SameClassSelector,
    SimilarSelector,
)

# isort: on
from mixaug.selectors.embeddings import default_embeddings
from mixaug.selectors.index import AnchorIndex

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore

EMBEDDED_STRATEGIES = frozenset(n for n, c in STRATEGIES.items() if c.embedded)
"""The built-in strategies that need an :class:`AnchorIndex` (``STRATEGIES[n].embedded``)."""


def check_strategy(name: str) -> type[AnchorSelector]:
    """The strategy ``name``, or a :class:`ConfigError` listing the valid names."""
    if name not in STRATEGIES:
        msg = f"Unknown anchor strategy {name!r}; use one of {', '.join(STRATEGIES)}."
        raise ConfigError(msg)
    return STRATEGIES[name]


def strategy_options(name: str, options: dict[str, Any] | None) -> BaseModel:
    """``options`` checked against strategy ``name``'s own :attr:`~AnchorSelector.Options`.

    Raises:
        ConfigError: for an unknown strategy, or options it does not take.
    """
    cls = check_strategy(name)
    try:
        return check_options(cls, options)
    except ValueError as e:
        raise ConfigError(str(e)) from None


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
        name: strategy name (a registered one: :data:`STRATEGIES`).
        examples: the labelled pool.
        k: anchors per prompt.
        seed: seed of the selector's draws.
        index: a prebuilt index (shared between selectors).
        embeddings: embedder for a new index.
        vectorstore: empty vector store for a new index.
        store_dir: persistent embedding cache: a folder or a Chroma server (``http://HOST:PORT``).
        options: the strategy's own options (``diverse``: ``mmr_lambda``, ``fetch_k``,
            ``class_filter``).

    Raises:
        ConfigError: for an unknown name (listing the valid ones) or bad options.
        DataError: when the pool can't serve the strategy (k too large, one class).
    """
    cls = check_strategy(name)
    opts = strategy_options(name, options)
    if cls.embedded and index is None:
        index = AnchorIndex.build(
            examples,
            embeddings or default_embeddings(),
            vectorstore=vectorstore,
            store_dir=store_dir,
        )
    return cls.create(examples, k=k, seed=seed, index=index, options=opts)


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
    "NoOptions",
    "check_options",
    "check_strategy",
    "default_embeddings",
    "make_selector",
    "register_selector",
    "strategy_options",
]
