"""What a prompt family is, and the registry that names them.

A family is one object that knows how to render a request into a prompt, plan the
requests of a batch, where the model should stop, how to read items out of what it
wrote, and what each request asked for. :func:`register_family` makes a subclass
available by name to the chain, ``augment``, the config (``prompt: NAME``), the CLI
(``--prompt NAME``) and the bench (methods ``NAME-hard``/``NAME-soft``).

Example:
    >>> from mixaug.chains.families import PromptFamily, register_family
    >>> @register_family
    ... class Echo(PromptFamily):  # doctest: +SKIP
    ...     name = "echo"
    ...     ...
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from mixaug.errors import ConfigError
from mixaug.records import Example, LabelledItem
from mixaug.registry import Registry
from mixaug.specs import TaskSpec

if TYPE_CHECKING:
    from mixaug.chains.families.chain import ParseContext


class PromptFamily:
    """One way to ask a model for labelled data.

    Subclasses set :attr:`name` and implement :meth:`render` and :meth:`parse`; the
    other hooks have defaults that fit a family whose prompt ends where the model
    writes one item on one line.
    """

    name: ClassVar[str]
    """The registered name (config ``prompt: NAME``, CLI ``--prompt NAME``)."""
    method: ClassVar[str | None] = None
    """Prefix of the bench methods ``<method>-hard``/``-soft`` (default: :attr:`name`)."""
    system_text: ClassVar[str] = "system"
    """The :class:`~mixaug.specs.PromptTexts` field holding the chat system turn."""
    min_anchors: ClassVar[int] = 1
    """Anchors a request needs at least."""
    recipe_labels: ClassVar[bool] = False
    """Whether the recipe's labeller and quotas were measured on this family and apply
    by default (the others keep their own labels unless asked)."""

    def anchors_per_prompt(self, k: int) -> int:
        """How many anchors a request holds, given the configured ``k``."""
        return k

    def items_per_prompt(self, n_items: int) -> int:
        """Items one prompt asks for (``n_items`` is the configured list length)."""
        return 1

    def check_examples(self, examples: Sequence[Example]) -> None:
        """Refuse data this family cannot work with (a :class:`ConfigError`)."""

    def render(self, spec: TaskSpec, request: Mapping[str, Any], *, chat: bool) -> str:
        """The prompt text of one request (for chat: the user turn)."""
        raise NotImplementedError

    def plan(
        self,
        request: dict[str, Any],
        *,
        spec: TaskSpec,
        pool: Sequence[Example],
        filled: Counter[str],
        n_items: int,
        shares: Sequence[int],
        rng: random.Random,
    ) -> dict[str, Any]:
        """Complete one request (``anchors`` set) for this family.

        ``filled`` counts what earlier requests of the batch asked for, by label
        (update it); ``rng`` is seeded per request, so plans are reproducible.
        """
        return request

    def stop(self, spec: TaskSpec, *, local: bool, n_items: int) -> list[str]:
        """Stop strings of a call."""
        return ["\n"]

    def call_options(
        self, spec: TaskSpec, *, local: bool, n_items: int, max_tokens: int | None
    ) -> dict[str, Any]:
        """Extra call arguments (``stop_after`` for the local models, ``max_tokens``)."""
        return {}

    def parse(self, ctx: ParseContext) -> list[LabelledItem]:
        """The items of one generation; raises :class:`~mixaug.errors.ParseFailure`."""
        raise NotImplementedError

    def target(self, request: Mapping[str, Any]) -> dict[str, float] | None:
        """What a request asked for, as label -> share (``None``: nothing asked)."""
        return None

    @property
    def method_prefix(self) -> str:
        """Prefix of this family's bench methods."""
        return self.method or self.name


F = TypeVar("F", bound=type[PromptFamily])


FAMILIES: Registry[PromptFamily] = Registry("FAMILIES")
"""Every registered prompt family by name (a read-only mapping; ``for name in FAMILIES``)."""


def register_family(cls: F) -> F:
    """Class decorator: register an instance of ``cls`` under ``cls.name``.

    A later registration under the same name replaces the earlier one.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        msg = f"a prompt family needs a 'name' that is an identifier, got {name!r}"
        raise ValueError(msg)
    FAMILIES.add(name, cls())
    return cls


def family_names() -> tuple[str, ...]:
    """The registered family names, in registration order."""
    return tuple(FAMILIES)


def get_family(name: str) -> PromptFamily:
    """The family registered as ``name``, or a :class:`ConfigError` listing them."""
    try:
        return FAMILIES[name]
    except KeyError:
        msg = f"Unknown prompt family {name!r}; use one of {', '.join(FAMILIES)}."
        raise ConfigError(msg) from None


def check_family(name: str) -> str:
    """``name`` if it is a registered family, else a :class:`ConfigError` listing them."""
    return get_family(name).name
