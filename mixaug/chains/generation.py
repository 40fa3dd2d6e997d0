r"""The generation step of every chain: call a chat or completion model, keep its logprobs.

Example:
    >>> step = generate_with_logprobs(llm, top_logprobs=20, stop=["\n"])  # doctest: +SKIP
    >>> chain = prompt | step | parser  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.outputs import ChatGeneration, Generation, LLMResult
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import get_config_list
from pydantic import ConfigDict, Field
from typing_extensions import override

from mixaug.chains.parser import PromptGeneration
from mixaug.specs import TaskSpec


class GenerationStep(RunnableSerializable[PromptValue, PromptGeneration]):
    """Call a chat or completion model and keep the whole generation (logprobs too).

    ``invoke`` on a completion model returns only a string; this step calls
    ``generate_prompt`` instead so ``generation_info``/``response_metadata`` survive,
    and its ``batch`` sends all prompts in one ``generate_prompt`` call, which a
    local model turns into one batched forward loop.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    llm: BaseLanguageModel
    call_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra call arguments (``logprobs``, ``top_logprobs``, ``stop``, ...)."""
    concurrency: int | None = None
    """``None``: all prompts in one ``generate_prompt`` call (a local model batches
    them). A number: one call per prompt, that many in flight, so one failed request
    fails only its own item (remote providers)."""

    @override
    def invoke(
        self, input: PromptValue, config: RunnableConfig | None = None, **kwargs: Any
    ) -> PromptGeneration:
        return self.batch([input], config, **kwargs)[0]

    @override
    async def ainvoke(
        self, input: PromptValue, config: RunnableConfig | None = None, **kwargs: Any
    ) -> PromptGeneration:
        return (await self.abatch([input], config, **kwargs))[0]

    @override
    def batch(
        self,
        inputs: list[PromptValue],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))
        if self.concurrency is not None:
            return self._batch_each(inputs, configs, return_exceptions, kwargs)
        try:
            call = {**self.call_kwargs, **kwargs}
            result = self.llm.generate_prompt(
                list(inputs), callbacks=configs[0].get("callbacks"), **call
            )
        except Exception as e:
            if return_exceptions:
                return [e] * len(inputs)
            raise
        return [
            PromptGeneration(prompt=p, generation=g[0])
            for p, g in zip(inputs, result.generations, strict=True)
        ]

    def _batch_each(
        self,
        inputs: list[PromptValue],
        configs: list[RunnableConfig],
        return_exceptions: bool,
        kwargs: dict[str, Any],
    ) -> list[Any]:
        from concurrent.futures import ThreadPoolExecutor

        call = {**self.call_kwargs, **kwargs}

        def one(i: int) -> Any:
            try:
                result = self.llm.generate_prompt(
                    [inputs[i]], callbacks=configs[i].get("callbacks"), **call
                )
                return _single(inputs[i], result)
            except Exception as e:
                if return_exceptions:
                    return e
                raise

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, range(len(inputs))))

    @override
    async def abatch(
        self,
        inputs: list[PromptValue],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))
        if self.concurrency is not None:
            return await self._abatch_each(inputs, configs, return_exceptions, kwargs)
        try:
            call = {**self.call_kwargs, **kwargs}
            result = await self.llm.agenerate_prompt(
                list(inputs), callbacks=configs[0].get("callbacks"), **call
            )
        except Exception as e:
            if return_exceptions:
                return [e] * len(inputs)
            raise
        return [
            PromptGeneration(prompt=p, generation=g[0])
            for p, g in zip(inputs, result.generations, strict=True)
        ]

    async def _abatch_each(
        self,
        inputs: list[PromptValue],
        configs: list[RunnableConfig],
        return_exceptions: bool,
        kwargs: dict[str, Any],
    ) -> list[Any]:
        import asyncio

        call = {**self.call_kwargs, **kwargs}
        gate = asyncio.Semaphore(self.concurrency or 1)

        async def one(i: int) -> Any:
            async with gate:
                try:
                    result = await self.llm.agenerate_prompt(
                        [inputs[i]], callbacks=configs[i].get("callbacks"), **call
                    )
                    return _single(inputs[i], result)
                except Exception as e:
                    if return_exceptions:
                        return e
                    raise

        return list(await asyncio.gather(*(one(i) for i in range(len(inputs)))))


def _single(prompt: PromptValue, result: LLMResult) -> PromptGeneration:
    """The generation of a one-prompt call, with the call's token usage attached."""
    gen = result.generations[0][0]
    usage = (result.llm_output or {}).get("token_usage")
    if usage and not isinstance(gen, ChatGeneration):
        info = dict(gen.generation_info or {})
        info.setdefault("prompt_tokens", usage.get("prompt_tokens", 0))
        info.setdefault("completion_tokens", usage.get("completion_tokens", 0))
        gen = Generation(text=gen.text, generation_info=info)
    return PromptGeneration(prompt=prompt, generation=gen)


def generate_with_logprobs(
    llm: BaseLanguageModel[Any],
    *,
    top_logprobs: int = 20,
    stop: Sequence[str] | None = ("\n",),
    concurrency: int | None = None,
    **kwargs: Any,
) -> GenerationStep:
    """A :class:`GenerationStep` asking ``llm`` for logprobs the way it understands.

    Chat models get ``logprobs=True, top_logprobs=k`` (as ``ChatOpenAI``); completion
    models get ``logprobs=k`` (as ``OpenAI``).
    """
    call: dict[str, Any] = dict(kwargs)
    if isinstance(llm, BaseChatModel):
        call.update(logprobs=True, top_logprobs=top_logprobs)
    else:
        call.update(logprobs=top_logprobs)
    if stop:
        call["stop"] = list(stop)
    return GenerationStep(llm=llm, call_kwargs=call, concurrency=concurrency)


def label_end_pattern(spec: TaskSpec) -> str:
    """Regex matching ``(<Label type>: <word>)``: where an item ends."""
    return "(?i)" + re.escape(spec.label_marker) + r"[^()\n]*\)"
