"""LangChain model classes over local models (transformers, llama.cpp); embedded models."""

from mixaug.models.chat import ChatTransformers
from mixaug.models.engine import Completion, LocalEngine, SamplingParams, TokenLogprob
from mixaug.models.llamacpp import LlamaCppEngine, llamacpp_available
from mixaug.models.llm import LlamaCppLLM, TransformersLLM
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
    "LlamaCppEngine",
    "LlamaCppLLM",
    "LocalEngine",
    "SamplingParams",
    "TokenLogprob",
    "TransformersLLM",
    "cache_dir",
    "gguf_path",
    "list_embedded_models",
    "llamacpp_available",
    "resolve_model_dir",
]
