"""Which engine runs a local model (llama.cpp or transformers), and that runs record it.

No weights load here: the engine is chosen from the config alone, and the llama.cpp
engine's text handling is checked on its own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fakes import fake_chat, labelled_reply
from pydantic import ValidationError

import mixaug.augmentation
import mixaug.models.llamacpp as llamacpp
from mixaug import ConfigError, LlamaCppLLM, LLMConfig, ModelError, TransformersLLM
from mixaug.cli import main
from mixaug.models.engine import SamplingParams, stop_cut
from mixaug.models.llamacpp import LlamaCppEngine, _stop_hit
from mixaug.providers import build_llm, get_provider, llm_settings
from mixaug.runstate import fingerprint

LOCAL = get_provider("local")


@pytest.fixture
def with_llamacpp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llamacpp, "llamacpp_available", lambda: True)


@pytest.fixture
def without_llamacpp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llamacpp, "llamacpp_available", lambda: False)


@pytest.mark.usefixtures("with_llamacpp")
@pytest.mark.parametrize(
    ("settings", "engine"),
    [
        ({}, "llamacpp"),  # the default: embedded Gemma, completion mode
        ({"model": "smollm2-135m"}, "llamacpp"),
        ({"model": "/models/x.gguf"}, "llamacpp"),
        ({"model": "/models/hf-folder"}, "transformers"),  # only transformers loads it
        ({"mode": "chat"}, "transformers"),  # chat templates live in the HF tokenizer
        ({"dtype": "bfloat16"}, "transformers"),  # asks for transformers' bf16 layers
        ({"engine": "transformers"}, "transformers"),
        ({"engine": "llamacpp", "model": "/models/x.gguf"}, "llamacpp"),
    ],
)
def test_auto_picks_llamacpp_where_it_can_run_the_config(
    settings: dict[str, str], engine: str
) -> None:
    assert LOCAL.engine(LLMConfig(**settings)) == engine


@pytest.mark.usefixtures("without_llamacpp")
def test_auto_falls_back_to_transformers_without_llama_cpp_python() -> None:
    assert LOCAL.engine(LLMConfig()) == "transformers"
    assert isinstance(build_llm(LLMConfig(), seed=0), TransformersLLM)


@pytest.mark.usefixtures("with_llamacpp")
def test_build_llm_gives_the_engines_class_without_loading_weights() -> None:
    llm = build_llm(LLMConfig(batch_size=4, threads=1, temperature=0.7), seed=3)
    assert isinstance(llm, LlamaCppLLM)
    assert (llm.batch_size, llm.threads, llm.temperature, llm.seed) == (4, 1, 0.7, 3)
    assert llm.engine._model is None  # loads on first call only
    assert isinstance(build_llm(LLMConfig(engine="transformers")), TransformersLLM)


def test_llamacpp_refuses_what_it_cannot_run() -> None:
    with pytest.raises(ValidationError, match="completion prompts"):
        LLMConfig(engine="llamacpp", mode="chat")
    with pytest.raises(ValidationError, match="leave dtype at float32"):
        LLMConfig(engine="llamacpp", dtype="bfloat16")
    with pytest.raises(ValidationError, match="'auto', 'llamacpp' or 'transformers'"):
        LLMConfig(engine="vllm")  # type: ignore[arg-type]


def test_llamacpp_refuses_a_folder_and_a_missing_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(llamacpp, "llamacpp_available", lambda: True)
    with pytest.raises(ConfigError, match="loads GGUF files and embedded models"):
        build_llm(LLMConfig(engine="llamacpp", model=str(folder)))
    monkeypatch.setattr(llamacpp, "llamacpp_available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install \"mixaug\[llamacpp\]\""):
        build_llm(LLMConfig(engine="llamacpp"))
    with pytest.raises(ModelError, match="needs llama-cpp-python"):
        LlamaCppEngine("gemma3-270m").load()


def test_settings_record_the_resolved_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llamacpp, "llamacpp_available", lambda: False)
    before = LLMConfig().model_dump(mode="json")
    before.pop("engine")
    # Runs on transformers keep the keys they had before the engine could be chosen.
    assert llm_settings(LLMConfig()) == before
    assert llm_settings(LLMConfig(engine="transformers")) == before
    old = fingerprint({"llm": llm_settings(LLMConfig())})
    monkeypatch.setattr(llamacpp, "llamacpp_available", lambda: True)
    assert llm_settings(LLMConfig())["engine"] == "llamacpp"
    assert fingerprint({"llm": llm_settings(LLMConfig())}) != old
    assert "engine" not in llm_settings(LLMConfig(provider="openai", model="m"))


def _augment(out: Path, data: Path) -> int:
    argv = ["augment", "--data", str(data), "--task", "sst2", "--n", "2", "--out", str(out)]
    return main([*argv, "--labels", "lm", "--quiet"])


def test_a_run_names_its_engine_and_resumes_only_on_it(
    reviews_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    replies = [labelled_reply(f"text {i}", "negative", {" negative": 0.9}) for i in range(2)]
    monkeypatch.setattr(mixaug.augmentation, "build_llm", lambda *a, **k: fake_chat(replies))
    monkeypatch.setattr(llamacpp, "llamacpp_available", lambda: True)
    out = tmp_path / "syn.jsonl"
    assert _augment(out, reviews_file) == 0
    manifest = json.loads(out.with_name("syn.manifest.json").read_text())
    assert manifest["engine"] == "llamacpp"
    written = out.read_bytes()
    # The same command where llama.cpp is missing would run on transformers: another
    # run, refused rather than mixed into this one's records.
    monkeypatch.setattr(llamacpp, "llamacpp_available", lambda: False)
    capsys.readouterr()
    assert _augment(out, reviews_file) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == written


def test_stop_strings_and_patterns_end_the_text() -> None:
    params = SamplingParams(stop=["\n"], stop_after=[r"\(Sentiment:[^()\n]*\)"])
    assert stop_cut(" a film (Sentiment: positive) more", params) == len(
        " a film (Sentiment: positive)"
    )
    assert stop_cut(" a film\n(Sentiment: positive)", params) == len(" a film")
    assert stop_cut(" a film", params) == -1
    # While writing: only the tail can hold a new stop string; patterns wait for ")".
    assert _stop_hit(" a fi\n", "\n", ["\n"], 1, [])
    assert not _stop_hit(" a film", " film", ["\n"], 1, [])
    pattern = re.compile(params.stop_after[0])
    assert _stop_hit(" x (Sentiment: positive)", ")", [], 0, [pattern])
    assert not _stop_hit(" x (Sentiment: positive", " positive", [], 0, [pattern])
