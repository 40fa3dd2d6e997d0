"""LangChain model classes over local transformers models, and the embedded models."""

from mixaug.models.chat import ChatTransformers
from mixaug.models.engine import Completion, LocalEngine, SamplingParams, TokenLogprob
from mixaug.models.llm import TransformersLLM
from mixaug.models.registry import (
    DEFAULT_MODEL,
    EMBEDDED_MODELS,
    EmbeddedModel,
    cache_dir,
    gguf_path,
    list_embedded_models,
    resolve_model_dir,
)

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED_MODELS",
    "ChatTransformers",
    "Completion",
    "EmbeddedModel",
    "LocalEngine",
    "SamplingParams",
    "TokenLogprob",
    "TransformersLLM",
    "cache_dir",
    "gguf_path",
    "list_embedded_models",
    "resolve_model_dir",
]
