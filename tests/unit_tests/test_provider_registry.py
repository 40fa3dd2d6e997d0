"""A new provider is one module: register it and ``llm: {provider: NAME}`` reaches it from
the config, ``build_llm``/``build_scorer`` and the CLI (here: this file's ``Canned``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import REVIEWS, FakeCompletionLLM, completion_reply, write_jsonl
from langchain_core.language_models import BaseLanguageModel

from mixaug.cli import main
from mixaug.config import LLMConfig
from mixaug.providers import (
    PROVIDERS,
    Provider,
    build_llm,
    build_scorer,
    concurrency,
    get_provider,
    register_provider,
)
from mixaug.softlabels import LabelScorer

BUILT: list[dict[str, Any]] = []


class Canned(Provider):
    """Replays labelled reviews; no scorer; one request per prompt, at most 5 logprobs."""

    name = "canned"
    max_top_logprobs = 5

    def build_llm(self, config: LLMConfig, *, seed: int | None = None) -> BaseLanguageModel[Any]:
        BUILT.append({"model": config.model, "seed": seed})
        probs = {" positive": 0.7, " negative": 0.3}
        replies = [completion_reply(f"canned review {i}", "positive", probs) for i in range(50)]
        return FakeCompletionLLM(replies=replies)

    def build_scorer(self, config: LLMConfig, llm: BaseLanguageModel[Any]) -> LabelScorer | None:
        return None


@pytest.fixture
def canned(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(PROVIDERS, "_items", dict(PROVIDERS._items))  # restored after
    register_provider(Canned)
    BUILT.clear()
    yield


def test_built_in_providers_are_registered() -> None:
    assert list(PROVIDERS) == ["local", "openai", "huggingface"]
    assert get_provider("local").batches_locally and get_provider("local").local_model
    assert concurrency(LLMConfig(concurrency=7)) is None  # local batches itself
    assert concurrency(LLMConfig(provider="openai", concurrency=7)) == 7
    with pytest.raises(ValueError, match="at most 20 for provider openai"):
        LLMConfig(provider="openai", top_logprobs=21)


def test_a_registered_provider_is_reached_by_config(canned: None) -> None:
    cfg = LLMConfig(provider="canned", model="m1", top_logprobs=5)
    llm = build_llm(cfg, seed=3)
    assert isinstance(llm, FakeCompletionLLM) and BUILT == [{"model": "m1", "seed": 3}]
    assert build_scorer(cfg, llm) is None
    assert concurrency(cfg.model_copy(update={"concurrency": 2})) == 2
    with pytest.raises(ValueError, match="at most 5 for provider canned"):
        LLMConfig(provider="canned", top_logprobs=6)


def test_the_cli_runs_a_registered_provider(canned: None, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("llm: {provider: canned, model: m2, top_logprobs: 5}\n")
    out = tmp_path / "syn.jsonl"
    argv = ["augment", "--data", str(data), "--task", "sst2", "--n", "3", "--labels", "lm"]
    assert main([*argv, "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3 and all(r["text"].startswith("canned review") for r in rows)
    assert BUILT and BUILT[0]["model"] == "m2"


def test_an_unknown_provider_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown provider 'canned'; use one of local"):
        LLMConfig(provider="canned")
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("llm: {provider: canned}\n")
    argv = ["augment", "--data", str(data), "--task", "sst2", "--n", "3"]
    assert main([*argv, "--config", str(cfg), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert not (tmp_path / "o.jsonl").exists()
