"""What a provider is, and the registry that names them.

A provider turns an :class:`~mixaug.config.LLMConfig` into a LangChain model and a
scorer for the label words its logprobs missed. :func:`register_provider` makes a
subclass available as ``llm: {provider: NAME}`` in configs and everywhere they are read.

Example:
    >>> get_provider("local").batches_locally
    True
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from mixaug.errors import ConfigError
from mixaug.registry import Registry

if TYPE_CHECKING:
    from langchain_core.language_models import BaseLanguageModel

    from mixaug.config import LLMConfig
    from mixaug.softlabels import LabelScorer


class Provider:
    """One way to reach a language model.

    Subclasses set :attr:`name` and implement :meth:`build_llm` and :meth:`build_scorer`.
    """

    name: ClassVar[str]
    """The registered name (``llm: {provider: NAME}``)."""
    batches_locally: ClassVar[bool] = False
    """Whether the model runs here and batches a call's prompts itself; otherwise each
    prompt is its own request, ``llm.concurrency`` of them in flight."""
    local_model: ClassVar[bool] = False
    """Whether ``llm.model`` names a local model (checked before anything is written)."""
    max_top_logprobs: ClassVar[int | None] = None
    """The most ``llm.top_logprobs`` the provider allows (``None``: no limit)."""

    def check(self, config: LLMConfig) -> None:
        """Refuse a config this provider cannot run (raise ``ValueError``; no I/O)."""
        most = self.max_top_logprobs
        if most is not None and config.top_logprobs > most:
            msg = f"top_logprobs must be at most {most} for provider {self.name}, got "
            msg += str(config.top_logprobs)
            raise ValueError(msg)

    def check_model(self, config: LLMConfig) -> None:
        """Refuse a model that is not there, before anything is written (no weights load)."""
        if self.local_model:
            from mixaug.models.registry import check_model_ref

            check_model_ref(config.model)

    @staticmethod
    def engine(config: LLMConfig) -> str | None:
        """What runs the model in this process (``None``: it runs elsewhere)."""
        return None

    def build_llm(self, config: LLMConfig, *, seed: int | None = None) -> BaseLanguageModel[Any]:
        """The LangChain model ``config`` names (no request is sent here)."""
        raise NotImplementedError

    def build_scorer(self, config: LLMConfig, llm: BaseLanguageModel[Any]) -> LabelScorer | None:
        """The fallback scorer for label words the model's top-k missed (or ``None``)."""
        return None

    def concurrency(self, config: LLMConfig) -> int | None:
        """Requests in flight at once (``None``: one batched call per batch)."""
        return None if self.batches_locally else config.concurrency


def need(module: str, extra: str) -> None:
    """Refuse, with the install line, when an optional package is missing."""
    if importlib.util.find_spec(module) is None:
        msg = f"This provider needs {module}; run: pip install 'mixaug[{extra}]'"
        raise ConfigError(msg)


P = TypeVar("P", bound=type[Provider])


PROVIDERS: Registry[Provider] = Registry("PROVIDERS")
"""Every registered provider by name (a read-only mapping)."""


def register_provider(cls: P) -> P:
    """Class decorator: register an instance of ``cls`` under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        msg = f"a provider needs a 'name' that is an identifier, got {name!r}"
        raise ValueError(msg)
    PROVIDERS.add(name, cls())
    return cls


def get_provider(name: str) -> Provider:
    """The provider registered as ``name``, or a :class:`ConfigError` listing them."""
    try:
        return PROVIDERS[name]
    except KeyError:
        msg = f"Unknown provider {name!r}; use one of {', '.join(PROVIDERS)}."
        raise ConfigError(msg) from None
