"""``local``: the embedded transformers model (or any local folder or GGUF file).

Batches a call's prompts in its own KV-cached loop and scores label words itself.

Example:
    >>> from mixaug.config import LLMConfig
    >>> get_provider("local").build_llm(LLMConfig(), seed=0)  # doctest: +SKIP
    TransformersLLM(model='gemma3-270m', ...)
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseLanguageModel
from typing_extensions import override

from mixaug.config import LLMConfig
from mixaug.providers.base import Provider, get_provider, register_provider
from mixaug.softlabels import LabelScorer

__all__ = ["Local", "get_provider"]


@register_provider
class Local(Provider):
    """``TransformersLLM`` (completion) or ``ChatTransformers`` (chat), in process."""

    name = "local"
    batches_locally = True
    local_model = True

    @override
    def build_llm(self, config: LLMConfig, *, seed: int | None = None) -> BaseLanguageModel[Any]:
        from mixaug.models import ChatTransformers, TransformersLLM

        common: dict[str, Any] = {
            "model": config.model,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_tokens,
            "frequency_penalty": config.frequency_penalty,
            "seed": seed,
            "dtype": config.dtype,
        }
        if config.mode == "chat":
            return ChatTransformers(**common, batch_size=config.batch_size)
        return TransformersLLM(**common, batch_size=config.batch_size, threads=config.threads)

    @override
    def build_scorer(self, config: LLMConfig, llm: BaseLanguageModel[Any]) -> LabelScorer | None:
        """The model itself (one forward pass)."""
        return llm if isinstance(llm, LabelScorer) else None
