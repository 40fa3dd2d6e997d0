"""LLM providers by config: local transformers, OpenAI-compatible servers, HF pipelines.

Every provider yields soft labels: from logprobs where it returns them, scoring
label words it missed through a completions endpoint (OpenAI-compatible servers),
and from votes where it has no logprobs at all (``soft_label_source="votes"``).

Example:
    >>> from mixaug.config import LLMConfig
    >>> cfg = LLMConfig(provider="openai", model="gemma", mode="completion",
    ...                 base_url="http://127.0.0.1:8080/v1")
    >>> build_llm(cfg)  # doctest: +SKIP
    OpenAI(...)
"""

from __future__ import annotations

import math
import os
import threading
from collections import Counter
from typing import Any

from langchain_core.language_models import BaseLanguageModel, BaseLLM
from pydantic import SecretStr

from mixaug.config import LLMConfig
from mixaug.errors import ConfigError
from mixaug.softlabels import LabelScorer, tokens_from_logprobs

#: Sent as the API key to servers that need none (llama.cpp, vLLM without --api-key).
NO_KEY = "not-needed"


def _api_key(config: LLMConfig) -> SecretStr:
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


def _need(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        msg = f"This provider needs {module}; run: pip install 'mixaug[{extra}]'"
        raise ConfigError(msg)


def build_llm(config: LLMConfig, *, seed: int | None = None) -> BaseLanguageModel[Any]:
    """The LangChain model a config names (no request is sent here).

    Raises:
        ConfigError: for a missing API key variable or a missing optional package.
    """
    if config.provider in ("local", "huggingface"):
        from mixaug.models.registry import check_model_ref

        check_model_ref(config.model)  # refused now, before any file is written
    if config.provider == "local":
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
    if config.provider == "openai":
        _need("langchain_openai", "openai")
        from langchain_openai import ChatOpenAI, OpenAI

        shared: dict[str, Any] = {
            "model": config.model,
            "api_key": _api_key(config),
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
    _need("langchain_huggingface", "huggingface")
    return _huggingface(config)


def _huggingface(config: LLMConfig) -> BaseLanguageModel[Any]:
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


def build_scorer(config: LLMConfig, llm: BaseLanguageModel[Any]) -> LabelScorer | None:
    """The fallback scorer for label words a provider's top-k missed.

    - ``local``: the model itself (one forward pass);
    - ``openai``: the server's completions endpoint, token by token with
      ``max_tokens=1`` (unless ``score_with_completions`` is off);
    - ``huggingface``: votes (the pipeline returns no logprobs).
    """
    if config.provider == "local":
        return llm if isinstance(llm, LabelScorer) else None
    if config.provider == "openai":
        if not config.score_with_completions:
            return None
        if isinstance(llm, BaseLLM):
            return CompletionScorer(llm=llm, top_logprobs=config.top_logprobs)
        from langchain_openai import OpenAI

        completions = OpenAI(
            model=config.model,
            api_key=_api_key(config),
            base_url=config.base_url,
            timeout=config.timeout,
            max_retries=config.max_retries,
            batch_size=1,
            max_tokens=1,
        )
        return CompletionScorer(llm=completions, top_logprobs=config.top_logprobs)
    # A label is a word or two: don't let each vote run to max_tokens.
    short = {"pipeline_kwargs": {"max_new_tokens": 6}}
    inner = getattr(llm, "llm", llm)  # ChatHuggingFace wraps a pipeline
    return VoteScorer(llm=inner, votes=config.votes, call_kwargs=short)


class CompletionScorer:
    """Scores continuations through a completions endpoint that returns top-k logprobs.

    Each step asks for one token (``max_tokens=1``) with the top-k alternatives and
    follows the alternative that spells the continuation furthest; a multi-token
    word costs one short request per token. Requests are cached per prefix, so the
    label words share their first one. A word that leaves the top-k scores ``-inf``.
    """

    soft_label_source = "rescored"

    def __init__(self, llm: BaseLLM, top_logprobs: int = 20) -> None:
        self.llm = llm
        self.top_logprobs = top_logprobs
        self._cache: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def _next(self, prefix: str) -> dict[str, float]:
        with self._lock:
            if prefix in self._cache:
                return self._cache[prefix]
        result = self.llm.generate(
            [prefix], max_tokens=1, logprobs=self.top_logprobs, temperature=0
        )
        info = result.generations[0][0].generation_info or {}
        toks = tokens_from_logprobs(info.get("logprobs"))
        top = dict(toks[0].top) if toks else {}
        with self._lock:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[prefix] = top
        return top

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation (``-inf`` when it leaves the top-k)."""
        out = []
        for cont in continuations:
            total, ctx, rest = 0.0, prefix, cont
            while rest:
                top = self._next(ctx)
                fits = [t for t in top if t and rest.startswith(t)]
                if not fits:
                    total = -math.inf
                    break
                tok = max(fits, key=len)
                total += top[tok]
                ctx, rest = ctx + tok, rest[len(tok) :]
            out.append(total)
        return out


class VoteScorer:
    """Soft labels from label frequencies over several sampled completions.

    For providers without logprobs: after ``prefix`` (which ends with the label
    marker) the model writes the label ``votes`` times; each continuation's share
    of the votes is its probability (``-inf`` for no vote).
    """

    soft_label_source = "votes"

    def __init__(
        self,
        llm: BaseLanguageModel[Any],
        votes: int = 5,
        call_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.llm = llm
        self.votes = votes
        self.call_kwargs = dict(call_kwargs or {})
        """Extra call arguments, e.g. a short generation length for the label."""

    def _sample(self, prefix: str) -> list[str]:
        if isinstance(self.llm, BaseLLM):
            result = self.llm.generate([prefix] * self.votes, **self.call_kwargs)
            replies = [g[0].text for g in result.generations]
        else:
            replies = [self.llm.invoke(prefix, **self.call_kwargs).text for _ in range(self.votes)]
        return [" " + r.strip().split(")")[0].strip() for r in replies]

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        """log(share of votes) of each continuation."""
        counts = Counter(self._sample(prefix))
        return [math.log(counts[c] / self.votes) if counts[c] else -math.inf for c in continuations]
