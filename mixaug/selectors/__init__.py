"""Anchor selectors: which labelled examples go into each prompt."""

from collections.abc import Callable

from mixaug.errors import ConfigError
from mixaug.records import Example
from mixaug.selectors.base import AnchorSelector
from mixaug.selectors.uniform import RandomAnchorSelector

STRATEGIES: dict[str, Callable[..., AnchorSelector]] = {"random": RandomAnchorSelector}
"""Anchor strategies by name."""


def make_selector(
    name: str, examples: list[Example], *, k: int = 2, seed: int = 0
) -> AnchorSelector:
    """Build the selector called ``name``.

    Raises:
        ConfigError: for an unknown name, listing the valid ones.
    """
    if name not in STRATEGIES:
        msg = f"Unknown anchor strategy {name!r}; use one of {', '.join(sorted(STRATEGIES))}."
        raise ConfigError(msg)
    return STRATEGIES[name](examples, k=k, seed=seed)


__all__ = ["STRATEGIES", "AnchorSelector", "RandomAnchorSelector", "make_selector"]
