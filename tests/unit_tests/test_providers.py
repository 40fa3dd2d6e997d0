"""Providers by config, scorers, and per-request failure isolation (no network)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fakes import REVIEWS, fake_chat, labelled_reply
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.outputs import Generation, LLMResult
from pydantic import ValidationError

from mixaug import ConfigError, Example, LLMConfig, ParseFailure, augment, get_spec
from mixaug.chains import build_mix_chain
from mixaug.providers import NO_KEY, CompletionScorer, VoteScorer, build_llm, build_scorer

SST2 = get_spec("sst2")


def test_config_rejects_a_key_in_api_key_env() -> None:
    with pytest.raises(ValidationError, match="NAME of an environment variable"):
        LLMConfig(provider="openai", api_key_env="sk-abc123-def")
    with pytest.raises(ValidationError, match="at most 20"):
        LLMConfig(provider="openai", top_logprobs=50)


def test_openai_chat_for_a_compatible_server() -> None:
    cfg = LLMConfig(
        provider="openai",
        mode="chat",
        model="m",
        base_url="http://127.0.0.1:9/v1",
        max_tokens=64,
        timeout=5,
        max_retries=2,
    )
    llm = build_llm(cfg)
    from langchain_openai import ChatOpenAI

    assert isinstance(llm, ChatOpenAI)
    assert llm.extra_body == {"max_tokens": 64}  # servers ignore max_completion_tokens
    assert llm.openai_api_key.get_secret_value() == NO_KEY
    assert llm.max_retries == 2 and llm.request_timeout == 5


def test_openai_completion_sends_one_prompt_per_request() -> None:
    cfg = LLMConfig(provider="openai", model="m", base_url="http://127.0.0.1:9/v1")
    llm = build_llm(cfg)
    from langchain_openai import OpenAI

    assert isinstance(llm, OpenAI) and llm.batch_size == 1 and llm.max_tokens == 100


def test_api_key_comes_only_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = LLMConfig(provider="openai", model="m", api_key_env="MIXAUG_TEST_KEY")
    monkeypatch.delenv("MIXAUG_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="'MIXAUG_TEST_KEY'.*is not set"):
        build_llm(cfg)
    monkeypatch.setenv("MIXAUG_TEST_KEY", "sk-secret-value-42")
    llm = build_llm(cfg)
    assert llm.openai_api_key.get_secret_value() == "sk-secret-value-42"  # type: ignore[attr-defined]
    assert "sk-secret-value-42" not in repr(llm) and "sk-secret-value-42" not in str(cfg)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        build_llm(LLMConfig(provider="openai", model="gpt-4o-mini"))


class NextTokenLLM(BaseLLM):
    """A completions endpoint: the top-k next tokens depend on the prompt's tail."""

    table: dict[str, dict[str, float]]
    prompts: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "next-token"

    def _generate(
        self,
        prompts: list[str],
        stop: Any = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        gens = []
        for p in prompts:
            self.prompts.append(p)
            key = max((k for k in self.table if p.endswith(k)), key=len, default="")
            top = {t: math.log(v) for t, v in self.table.get(key, {}).items()}
            best = max(top, key=lambda t: top[t]) if top else ""
            info = {
                "logprobs": {
                    "tokens": [best],
                    "token_logprobs": [top.get(best, 0.0)],
                    "top_logprobs": [top],
                }
            }
            gens.append([Generation(text=best, generation_info=info)])
        return LLMResult(generations=gens)


def test_completion_scorer_walks_multi_token_words() -> None:
    llm = NextTokenLLM(
        table={
            ":": {" posi": 0.5, " neg": 0.3, " positive": 0.1},
            ": posi": {"tive": 0.8, "tion": 0.1},
            ": neg": {"ative": 0.9},
        }
    )
    scorer = CompletionScorer(llm=llm)
    pos, neg, other = scorer.score_continuations(
        "x (Sentiment:", [" positive", " negative", " meh"]
    )
    # " positive" is a single token in the top-k (0.1), longer than " posi": taken whole.
    assert pos == pytest.approx(math.log(0.1))
    assert neg == pytest.approx(math.log(0.3) + math.log(0.9))
    assert other == -math.inf
    # The shared first step is requested once.
    assert llm.prompts.count("x (Sentiment:") == 1


def test_vote_scorer_counts_label_words() -> None:
    from langchain_core.language_models import FakeListLLM

    llm = FakeListLLM(
        responses=[" positive)", " positive) great", " negative)", " meh)", " positive"]
    )
    scorer = VoteScorer(llm=llm, votes=5)
    pos, neg, neutral = scorer.score_continuations(
        "p (Sentiment:", [" positive", " negative", " neutral"]
    )
    assert pos == pytest.approx(math.log(3 / 5))
    assert neg == pytest.approx(math.log(1 / 5))
    assert neutral == -math.inf


def test_votes_are_marked_in_the_record() -> None:
    from langchain_core.language_models import FakeListLLM

    from mixaug.chains import SoftLabelParser  # noqa: F401

    voter = VoteScorer(llm=FakeListLLM(responses=[" negative)"] * 4 + [" positive)"]), votes=5)
    from langchain_core.messages import AIMessage

    chain = build_mix_chain(
        fake_chat([AIMessage(content=" meh film (Sentiment: negative)")]), SST2, scorer=voter
    )
    item = chain.invoke({"anchors": [{"text": "a", "label": "positive"}]})
    assert item.soft_label_source == "votes"
    assert item.soft_label == pytest.approx({"positive": 0.2, "negative": 0.8})


def test_build_scorer_by_provider() -> None:
    local = LLMConfig()
    from mixaug.models import TransformersLLM

    llm = TransformersLLM()
    assert build_scorer(local, llm) is llm
    off = LLMConfig(
        provider="openai", model="m", base_url="http://x/v1", score_with_completions=False
    )
    assert build_scorer(off, build_llm(off)) is None
    on = LLMConfig(provider="openai", mode="chat", model="m", base_url="http://x/v1")
    assert isinstance(build_scorer(on, build_llm(on)), CompletionScorer)


class Flaky(GenericFakeChatModel):
    """Fails for prompts whose anchors mention 'FAIL'."""

    def _generate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Any:
        if "FAIL" in str(messages[-1].content):
            raise ConnectionError("server went away")
        return super()._generate(messages, stop, run_manager, **kwargs)


def test_one_failed_request_fails_only_its_item() -> None:
    replies = [
        labelled_reply(f"t{i}", "positive", {" positive": 0.7, " negative": 0.2}) for i in range(3)
    ]
    chain = build_mix_chain(Flaky(messages=iter(replies)), SST2, concurrency=2)
    inputs = [{"anchors": [{"text": t, "label": "positive"}]} for t in ("ok", "FAIL", "fine")]
    out = chain.batch(inputs, return_exceptions=True)
    assert isinstance(out[1], ConnectionError)
    assert not isinstance(out[0], Exception) and not isinstance(out[2], Exception)


def test_failed_calls_are_counted_in_the_summary() -> None:
    replies = [
        labelled_reply(f"t{i}", "positive", {" positive": 0.7, " negative": 0.2}) for i in range(6)
    ]
    pool = [Example(text="FAIL " + t, label=lab) for t, lab in REVIEWS[:2]] + [
        Example(text=t, label=lab) for t, lab in REVIEWS[2:]
    ]
    res = augment(pool, SST2, Flaky(messages=iter(replies)), n=3, k=1, batch_size=4, concurrency=2)
    assert len(res.records) == 3
    assert res.failures["generation_error"] >= 1
    assert "server went away" in res.errors[0]
    assert not any(isinstance(r, ParseFailure) for r in res.records)


async def test_async_batch_limits_concurrency_and_isolates_failures() -> None:
    import asyncio

    from langchain_core.language_models import BaseLLM

    class Slow(BaseLLM):
        active: int = 0
        peak: int = 0

        @property
        def _llm_type(self) -> str:
            return "slow"

        def _generate(
            self, prompts: list[str], stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> LLMResult:
            raise NotImplementedError

        async def _agenerate(
            self, prompts: list[str], stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> LLMResult:
            self.active += 1
            self.peak = max(self.peak, self.active)
            await asyncio.sleep(0.02)
            self.active -= 1
            if "FAIL" in prompts[0]:
                raise ConnectionError("refused")
            return LLMResult(
                generations=[[Generation(text=" x (Sentiment: positive)")]],
                llm_output={"token_usage": {"prompt_tokens": 7, "completion_tokens": 3}},
            )

    llm = Slow()
    from mixaug.chains import MixPromptTemplate, generate_with_logprobs

    step = generate_with_logprobs(llm, concurrency=3)
    prompts = [
        MixPromptTemplate(spec=SST2).invoke({"anchors": [{"text": t, "label": "positive"}]})
        for t in ["a", "b", "FAIL", "c", "d", "e", "f"]
    ]
    out = await step.abatch(prompts, return_exceptions=True)
    assert llm.peak == 3
    assert isinstance(out[2], ConnectionError)
    assert [o.usage() for i, o in enumerate(out) if i != 2] == [(7, 3)] * 6


def test_local_weight_type_reaches_its_own_engine() -> None:
    from mixaug.models import ChatTransformers, LocalEngine, TransformersLLM

    fast = build_llm(LLMConfig(dtype="bfloat16"))
    exact = build_llm(LLMConfig(engine="transformers"))
    chat = build_llm(LLMConfig(mode="chat", dtype="bfloat16"))
    assert isinstance(fast, TransformersLLM) and isinstance(exact, TransformersLLM)
    assert isinstance(chat, ChatTransformers)
    # One engine (one copy of the weights) per model and weight type; none loads here.
    assert fast.engine.dtype == "bfloat16" and exact.engine.dtype == "float32"
    assert fast.engine is not exact.engine and chat.engine is fast.engine
    with pytest.raises(ValidationError, match="dtype"):
        LLMConfig(dtype="float16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dtype must be one of"):
        LocalEngine("gemma3-270m", dtype="int8")
