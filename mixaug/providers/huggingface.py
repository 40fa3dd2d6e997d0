"""``huggingface``: langchain-huggingface's pipeline over a local model.

The pipeline returns no logprobs, so soft labels come from votes
(``soft_label_source="votes"``).

Example:
    >>> from mixaug.config import LLMConfig
    >>> get_provider("huggingface").build_llm(LLMConfig(provider="huggingface"))  # doctest: +SKIP
    HuggingFacePipeline(...)
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseLanguageModel
from typing_extensions import override

from mixaug.config import LLMConfig
from mixaug.errors import ConfigError
from mixaug.providers.base import Provider, get_provider, need, register_provider
from mixaug.providers.scorers import VoteScorer
from mixaug.softlabels import LabelScorer

__all__ = ["HuggingFace", "get_provider"]


@register_provider
class HuggingFace(Provider):
    """``HuggingFacePipeline`` (completion) or ``ChatHuggingFace`` (chat)."""

    name = "huggingface"
    local_model = True

    @override
    def build_llm(self, config: LLMConfig, *, seed: int | None = None) -> BaseLanguageModel[Any]:
        need("langchain_huggingface", "huggingface")
        from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline

        from mixaug.models.registry import resolve_model_dir

        folder = resolve_model_dir(config.model)
        llm = HuggingFacePipeline.from_model_id(
            model_id=str(folder),
            task="text-generation",
            batch_size=config.batch_size,
            pipeline_kwargs={
                "max_new_tokens": config.max_tokens,
                "do_sample": config.temperature > 0,
                "temperature": config.temperature or None,
                "top_p": config.top_p,
                "return_full_text": False,
            },
        )
        if config.mode == "chat":
            tokenizer = llm.pipeline.tokenizer
            if not getattr(tokenizer, "chat_template", None):
                msg = (
                    f"Model {config.model!r} has no chat template; use mode: completion "
                    "with provider huggingface."
                )
                raise ConfigError(msg)
            return ChatHuggingFace(llm=llm)
        return llm

    @override
    def build_scorer(self, config: LLMConfig, llm: BaseLanguageModel[Any]) -> LabelScorer | None:
        """Votes: ``llm.votes`` short samples per item."""
        # A label is a word or two: don't let each vote run to max_tokens.
        short = {"pipeline_kwargs": {"max_new_tokens": 6}}
        inner = getattr(llm, "llm", llm)  # ChatHuggingFace wraps a pipeline
        return VoteScorer(llm=inner, votes=config.votes, call_kwargs=short)
