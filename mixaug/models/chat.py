"""``ChatTransformers``: a LangChain chat model over a local transformers engine."""

from __future__ import annotations

from collections import deque
from contextvars import ContextVar
from typing import Any, Literal, cast

from langchain_core.callbacks import CallbackManagerForLLMRun, Callbacks
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult, LLMResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list
from pydantic import ConfigDict, Field
from typing_extensions import override

from mixaug.models._common import chat_logprobs, sampling_params
from mixaug.models.engine import Completion, LocalEngine, SamplingParams
from mixaug.models.registry import DEFAULT_MODEL

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}

_PREFETCHED: ContextVar[dict[str, deque[Completion]] | None] = ContextVar(
    "mixaug_chat_prefetched", default=None
)
"""Replies a batched :meth:`ChatTransformers.generate` made ahead, by rendered prompt."""


class ChatTransformers(BaseChatModel):
    """Chat model over a local causal LM, with logprobs in langchain-openai's shape.

    Uses the tokenizer's chat template when it has one; a base model without a
    template (Gemma 3 270M, the default) runs in raw mode, where the messages'
    contents are joined into one text the model continues.

    Setup:
        Ships with mixaug: ``gemma3-270m`` (base, raw mode) and ``smollm2-135m``
        (instruct, chat template) load offline.

    Key init args:
        model: embedded model name, ``.gguf`` file or HF folder.
        temperature, top_p, frequency_penalty, max_tokens: sampling.
        logprobs, top_logprobs: as in ``ChatOpenAI``.
        raw: force raw mode (``None``: raw only without a chat template).

    Instantiate:
        .. code-block:: python

            from mixaug.models import ChatTransformers

            chat = ChatTransformers(model="smollm2-135m", temperature=0)

    Logprobs:
        .. code-block:: python

            msg = chat.bind(logprobs=True, top_logprobs=5).invoke("Say yes.")
            msg.response_metadata["logprobs"]["content"][0]
            # {'token': 'Yes', 'logprob': -0.4, 'bytes': [...], 'top_logprobs': [...]}
    """

    model_config = ConfigDict(populate_by_name=True, protected_namespaces=())

    model_name: str = Field(default=DEFAULT_MODEL, alias="model")
    """Embedded model name, ``.gguf`` file or Hugging Face folder."""
    temperature: float = 1.0
    top_p: float = 1.0
    frequency_penalty: float = 0.02
    max_tokens: int | None = 100
    """Maximum new tokens per reply."""
    timeout: float | None = None
    """Accepted for API parity; local generation is not interrupted."""
    max_retries: int = 0
    """Accepted for API parity; local generation does not retry."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    stop_after: list[str] | None = None
    """Regular expressions that end a reply right after their first match."""
    logprobs: bool | None = None
    """Return logprobs in ``response_metadata["logprobs"]``."""
    top_logprobs: int | None = None
    """Top alternatives per token when ``logprobs`` is on (default 20)."""
    seed: int | None = None
    raw: bool | None = None
    """Join messages as plain text instead of applying a chat template."""
    streaming: bool = False
    """Accepted for API parity; replies come whole."""
    batch_size: int = Field(default=16, ge=1)
    """Prompts per engine batch when ``generate`` gets many message lists at once (a
    chain's ``batch``): they decode together instead of one after another."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Weight type of the layers. ``bfloat16`` is 7-50 % faster on CPUs with native
    bfloat16 (AMX / AVX-512 BF16) but not exact: soft labels move by about 0.01 and
    results depend slightly on batch shape. Label-word logits always come from the
    float32 output layer."""

    @property
    def engine(self) -> LocalEngine:
        """The shared engine holding this model's weights."""
        return LocalEngine.get(self.model_name, self.dtype)

    @property
    @override
    def _llm_type(self) -> str:
        return "mixaug-chat-transformers"

    @property
    @override
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }

    def render(self, messages: list[BaseMessage]) -> str:
        """The text the model continues for ``messages``."""
        raw = self.raw if self.raw is not None else not self.engine.has_chat_template
        if raw:
            return "\n\n".join(str(m.content) for m in messages)
        chat = [{"role": _ROLES.get(m.type, m.type), "content": str(m.content)} for m in messages]
        text = self.engine.tokenizer.apply_chat_template(
            chat, tokenize=False, add_generation_prompt=True
        )
        return str(text)

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> SamplingParams:
        want = bool(kwargs.get("logprobs", self.logprobs))
        k = kwargs.get("top_logprobs", self.top_logprobs)
        return sampling_params(
            self, stop, kwargs, top_logprobs=(20 if k is None else int(k)) if want else 0
        )

    @override
    def generate(
        self,
        messages: list[list[BaseMessage]],
        stop: list[str] | None = None,
        callbacks: Callbacks = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Reply to each message list; many lists decode in batches of ``batch_size``.

        The replies are made ahead in engine batches, then LangChain's own loop hands
        them out (callbacks, tracing and errors work as for one call at a time). Under
        a seed, replies are reproducible for the same batch.
        """
        if len(messages) < 2 or self.cache or _PREFETCHED.get() is not None:
            return super().generate(messages, stop, callbacks, **kwargs)
        call = {
            k: v for k, v in kwargs.items() if k not in {"tags", "metadata", "run_name", "run_id"}
        }
        params = self._params(stop, call)
        prompts = [self.render(m) for m in messages]
        made: dict[str, deque[Completion]] = {}
        base_seed = params.seed
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            if base_seed is not None:
                params.seed = base_seed + start
            for prompt, c in zip(chunk, self.engine.generate(chunk, params), strict=True):
                made.setdefault(prompt, deque()).append(c)
        token = _PREFETCHED.set(made)
        try:
            return super().generate(messages, stop, callbacks, **kwargs)
        finally:
            _PREFETCHED.reset(token)

    @override
    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Replies to many inputs through one batched :meth:`generate` (not a thread each)."""
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))
        stop = kwargs.pop("stop", None)
        try:
            messages = [self._convert_input(i).to_messages() for i in inputs]
            result = self.generate(
                messages,
                stop=stop,
                callbacks=configs[0].get("callbacks"),
                tags=configs[0].get("tags"),
                metadata=configs[0].get("metadata"),
                **kwargs,
            )
        except Exception as e:
            if return_exceptions:
                return [e] * len(inputs)  # type: ignore[list-item]
            raise
        return [cast("AIMessage", cast("ChatGeneration", g[0]).message) for g in result.generations]

    @override
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        want = bool(kwargs.get("logprobs", self.logprobs))
        params = self._params(stop, kwargs)
        prompt = self.render(messages)
        made = _PREFETCHED.get()
        ready = made.get(prompt) if made is not None else None
        if ready:
            c = ready.popleft()
        else:
            (c,) = self.engine.generate([prompt], params)
        metadata: dict[str, Any] = {
            "model_name": self.model_name,
            "finish_reason": c.finish_reason,
        }
        if want:
            metadata["logprobs"] = chat_logprobs(c)
        usage = UsageMetadata(
            input_tokens=c.prompt_tokens,
            output_tokens=c.completion_tokens,
            total_tokens=c.prompt_tokens + c.completion_tokens,
        )
        message = AIMessage(content=c.text, response_metadata=metadata, usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation after ``prefix`` (raw text, one pass)."""
        return self.engine.score(prefix, continuations)
