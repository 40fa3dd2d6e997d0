"""``openai``: OpenAI or any OpenAI-compatible server (vLLM, llama.cpp, TGI, Ollama).

One request per prompt, ``llm.concurrency`` in flight; label words missing from a
reply's top-k are scored through the server's completions endpoint.

Example:
    >>> from mixaug.config import LLMConfig
    >>> cfg = LLMConfig(provider="openai", model="gemma", base_url="http://127.0.0.1:8080/v1")
    >>> get_provider("openai").build_llm(cfg)  # doctest: +SKIP
    OpenAI(...)
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.language_models import BaseLanguageModel, BaseLLM
from pydantic import SecretStr
from typing_extensions import override

from mixaug.config import LLMConfig
from mixaug.errors import ConfigError
from mixaug.providers.base import Provider, get_provider, need, register_provider
from mixaug.providers.scorers import CompletionScorer
from mixaug.softlabels import LabelScorer

__all__ = ["NO_KEY", "OpenAICompatible", "api_key", "get_provider"]

#: Sent as the API key to servers that need none (llama.cpp, vLLM without --api-key).
NO_KEY = "not-needed"


def api_key(config: LLMConfig) -> SecretStr:
    """The key ``llm.api_key_env`` names (registered for redaction), or :data:`NO_KEY`."""
    env = config.api_key_env
    if env is None:
        if config.base_url is None:
            env = "OPENAI_API_KEY"
        else:
            return SecretStr(NO_KEY)
    value = os.environ.get(env)
    if not value:
        msg = (
            f"The API key variable {env!r} (llm.api_key_env) is not set; export it, "
            "or point llm.api_key_env at the variable that holds the key."
        )
        raise ConfigError(msg)
    from mixaug.redact import register_secret

    register_secret(value)  # a server that echoes it back never gets it printed
    return SecretStr(value)


@register_provider
class OpenAICompatible(Provider):
    """``ChatOpenAI`` (chat) or ``OpenAI`` (completion) from langchain-openai."""

    name = "openai"
    max_top_logprobs = 20

    @override
    def build_llm(self, config: LLMConfig, *, seed: int | None = None) -> BaseLanguageModel[Any]:
        need("langchain_openai", "openai")
        from langchain_openai import ChatOpenAI, OpenAI

        shared: dict[str, Any] = {
            "model": config.model,
            "api_key": api_key(config),
            "base_url": config.base_url,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "frequency_penalty": config.frequency_penalty,
            "timeout": config.timeout,
            "max_retries": config.max_retries,
        }
        if config.mode == "chat":
            if config.base_url is None:
                return ChatOpenAI(**shared, max_tokens=config.max_tokens)
            # OpenAI-compatible servers read max_tokens, not max_completion_tokens.
            return ChatOpenAI(**shared, extra_body={"max_tokens": config.max_tokens})
        # One prompt per request: several prompts in one completions request fail on
        # some servers (llama.cpp answers HTTP 500); concurrency comes from threads.
        return OpenAI(**shared, max_tokens=config.max_tokens, batch_size=1)

    @override
    def build_scorer(self, config: LLMConfig, llm: BaseLanguageModel[Any]) -> LabelScorer | None:
        """The completions endpoint, token by token with ``max_tokens=1``.

        ``None`` when ``llm.score_with_completions`` is off.
        """
        if not config.score_with_completions:
            return None
        if isinstance(llm, BaseLLM):
            return CompletionScorer(llm=llm, top_logprobs=config.top_logprobs)
        from langchain_openai import OpenAI

        completions = OpenAI(
            model=config.model,
            api_key=api_key(config),
            base_url=config.base_url,
            timeout=config.timeout,
            max_retries=config.max_retries,
            batch_size=1,
            max_tokens=1,
        )
        return CompletionScorer(llm=completions, top_logprobs=config.top_logprobs)
