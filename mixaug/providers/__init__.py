"""LLM providers by config: local transformers, OpenAI-compatible servers, HF pipelines.

Every provider yields soft labels: from logprobs where it returns them, scoring
label words it missed through a completions endpoint (OpenAI-compatible servers),
and from votes where it has no logprobs at all (``soft_label_source="votes"``).
Each provider is one module here, a :class:`Provider` registered by name
(:func:`register_provider`), so ``llm: {provider: NAME}`` reaches a new one.

Example:
    >>> from mixaug.config import LLMConfig
    >>> cfg = LLMConfig(provider="openai", model="gemma", mode="completion",
    ...                 base_url="http://127.0.0.1:8080/v1")
    >>> build_llm(cfg)  # doctest: +SKIP
    OpenAI(...)
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseLanguageModel

from mixaug.config import LLMConfig

# The built-in providers register themselves on import, in this order.
# isort: off
from mixaug.providers import local as _local  # noqa: F401
from mixaug.providers import openai as _openai  # noqa: F401
from mixaug.providers import huggingface as _huggingface  # noqa: F401

# isort: on
from mixaug.providers.base import PROVIDERS, Provider, get_provider, register_provider
from mixaug.providers.openai import NO_KEY
from mixaug.providers.scorers import CompletionScorer, VoteScorer
from mixaug.softlabels import LabelScorer


def build_llm(config: LLMConfig, *, seed: int | None = None) -> BaseLanguageModel[Any]:
    """The LangChain model a config names (no request is sent here).

    Raises:
        ConfigError: for a missing model, API key variable or optional package.
    """
    provider = get_provider(config.provider)
    provider.check_model(config)  # refused now, before any file is written
    return provider.build_llm(config, seed=seed)


def build_scorer(config: LLMConfig, llm: BaseLanguageModel[Any]) -> LabelScorer | None:
    """The fallback scorer for label words a provider's top-k missed.

    - ``local``: the model itself (one forward pass);
    - ``openai``: the server's completions endpoint, token by token with
      ``max_tokens=1`` (unless ``score_with_completions`` is off);
    - ``huggingface``: votes (the pipeline returns no logprobs).
    """
    return get_provider(config.provider).build_scorer(config, llm)


def llm_settings(config: LLMConfig) -> dict[str, Any]:
    """``config`` as JSON for fingerprints and cache keys, with the engine it resolves to.

    ``engine: auto`` becomes the engine that will run (``llamacpp`` is recorded; the
    transformers engine, which ran every run before the choice existed, is recorded by
    leaving the key out, so earlier runs' keys stay valid).
    """
    out = config.model_dump(mode="json")
    engine = out.pop("engine", None)
    if config.provider == "local":
        from mixaug.providers.local import Local

        engine = Local.engine(config)
        if engine != "transformers":
            out["engine"] = engine
    return out


def concurrency(config: LLMConfig) -> int | None:
    """Requests in flight for ``config``'s provider (``None``: it batches locally)."""
    return get_provider(config.provider).concurrency(config)


__all__ = [
    "NO_KEY",
    "PROVIDERS",
    "CompletionScorer",
    "Provider",
    "VoteScorer",
    "build_llm",
    "build_scorer",
    "concurrency",
    "get_provider",
    "llm_settings",
    "register_provider",
]
