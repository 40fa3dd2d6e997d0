"""``local``: the embedded model (or any local folder or GGUF file), in this process.

Batches a call's prompts in its own KV-cached loop and scores label words itself, on
llama.cpp (``engine: llamacpp``, the GGUF as shipped) or transformers.

Example:
    >>> from mixaug.config import LLMConfig
    >>> get_provider("local").engine(LLMConfig(mode="chat"))
    'transformers'
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseLanguageModel
from typing_extensions import override

from mixaug.config import LLMConfig
from mixaug.errors import ConfigError
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
    def check(self, config: LLMConfig) -> None:
        super().check(config)
        if config.engine != "llamacpp":
            return
        if config.mode == "chat":
            msg = "engine 'llamacpp' runs completion prompts; use engine 'transformers' for chat"
            raise ValueError(msg)
        if config.dtype != "float32":
            msg = (
                "dtype is the transformers engine's weight type; engine 'llamacpp' runs the "
                "GGUF's own quantised weights (leave dtype at float32)"
            )
            raise ValueError(msg)

    @override
    def check_model(self, config: LLMConfig) -> None:
        super().check_model(config)
        if config.engine != "llamacpp":
            return
        from mixaug.models.llamacpp import INSTALL, llamacpp_available
        from mixaug.models.registry import EMBEDDED_MODELS

        if not llamacpp_available():
            msg = f"engine 'llamacpp' needs llama-cpp-python; run: {INSTALL}"
            raise ConfigError(msg)
        if config.model not in EMBEDDED_MODELS and not config.model.endswith(".gguf"):
            msg = (
                f"engine 'llamacpp' loads GGUF files and embedded models; {config.model!r} is "
                "neither (use engine 'transformers' for a Hugging Face folder)"
            )
            raise ConfigError(msg)

    @staticmethod
    @override
    def engine(config: LLMConfig) -> str:
        """The engine ``config`` runs on: ``llamacpp`` or ``transformers`` (no I/O).

        ``auto`` picks llama.cpp for a completion-mode GGUF or embedded model at the
        default dtype when llama-cpp-python is installed.
        """
        if config.engine != "auto":
            return config.engine
        from mixaug.models.llamacpp import llamacpp_available
        from mixaug.models.registry import EMBEDDED_MODELS

        gguf = config.model in EMBEDDED_MODELS or config.model.endswith(".gguf")
        if config.mode == "completion" and config.dtype == "float32" and gguf:
            return "llamacpp" if llamacpp_available() else "transformers"
        return "transformers"

    @override
    def build_llm(self, config: LLMConfig, *, seed: int | None = None) -> BaseLanguageModel[Any]:
        from mixaug.models import ChatTransformers, LlamaCppLLM, TransformersLLM

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
        if self.engine(config) == "llamacpp":
            del common["dtype"]
            return LlamaCppLLM(**common, batch_size=config.batch_size, threads=config.threads)
        return TransformersLLM(**common, batch_size=config.batch_size, threads=config.threads)

    @override
    def build_scorer(self, config: LLMConfig, llm: BaseLanguageModel[Any]) -> LabelScorer | None:
        """The model itself (one forward pass)."""
        return llm if isinstance(llm, LabelScorer) else None
