"""The in-process llama.cpp engine on the real embedded GGUFs.

What a resumed run and a seeded rerun rely on (a call's output depends on its prompts
and seed only), what label scoring relies on (the same tokens as the transformers
tokenizer, scores that agree with it), and the failures a user can meet.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fakes import REVIEWS
from mixaug_cli import run_augment

from mixaug import ConfigError, LLMConfig, ModelError, get_spec
from mixaug.chains.prompts import render_mix_prompt
from mixaug.models import LlamaCppEngine, LocalEngine, SamplingParams
from mixaug.providers import build_llm

pytest.importorskip("llama_cpp")

SST2 = get_spec("sst2")
ANCHORS = [{"text": t, "label": lab} for t, lab in REVIEWS]
PROMPTS = [render_mix_prompt(SST2, [ANCHORS[i], ANCHORS[(i + 3) % len(ANCHORS)]]) for i in range(5)]
SAMPLED = SamplingParams(max_new_tokens=30, stop=["\n"], top_logprobs=5, seed=7)


def _texts(engine: LlamaCppEngine, prompts: list[str], params: SamplingParams) -> list[tuple]:
    return [
        (c.text, c.finish_reason, [(t.token, t.logprob, t.top) for t in c.tokens])
        for c in engine.generate(prompts, params)
    ]


def test_a_call_depends_on_its_prompts_and_seed_only(smollm2: str) -> None:
    # A resumed run regenerates its next batch in a new process, after other batches
    # (or none) ran: the batch must come out the same, logprobs included.
    engine = LlamaCppEngine.get(smollm2)
    first = _texts(engine, PROMPTS, SAMPLED)
    long_prompt = PROMPTS[0] + " a film" * 150  # grows the context
    engine.generate([long_prompt] * 6, SamplingParams(max_new_tokens=40, seed=1))
    assert _texts(engine, PROMPTS, SAMPLED) == first
    fresh = LlamaCppEngine(smollm2)  # a new process's engine
    assert _texts(fresh, PROMPTS, SAMPLED) == first
    other = SamplingParams(max_new_tokens=30, stop=["\n"], top_logprobs=5, seed=8)
    assert [t[0] for t in _texts(engine, PROMPTS, other)] != [t[0] for t in first]


def test_tokens_are_the_transformers_tokenizers(smollm2: str) -> None:
    texts = [
        " positive",
        " negative",
        "Movie review: a gorgeous, witty film (Sentiment:",
        "Café crème brûlée — naïve façade, 日本語 😀",
        "  two  spaces\nand a newline\t",
    ]
    for model in (smollm2, "gemma3-270m"):
        ours, theirs = LlamaCppEngine.get(model), LocalEngine.get(model).tokenizer
        for text in texts:
            assert ours.tokenizer.encode(text, add_special_tokens=False) == theirs.encode(
                text, add_special_tokens=False
            ), (model, text)
        assert ours.tokenize(texts[2]) == theirs(texts[2])["input_ids"]


def test_stops_lengths_and_pieces() -> None:
    engine = LlamaCppEngine.get("gemma3-270m")
    pattern = r"(?i)\(Sentiment:[^()\n]*\)"
    params = SamplingParams(max_new_tokens=60, stop=["\n"], stop_after=[pattern], seed=3)
    for c in engine.generate(PROMPTS, params):
        assert "\n" not in c.text
        assert "".join(t.token for t in c.tokens).startswith(c.text)
        assert c.completion_tokens == len(c.tokens)
        if c.finish_reason == "stop" and "(Sentiment:" in c.text:
            assert c.text.endswith(")")
    (short,) = engine.generate(PROMPTS[:1], SamplingParams(max_new_tokens=1, seed=0))
    assert short.finish_reason == "length" and short.completion_tokens == 1
    assert short.prompt_tokens == len(engine.tokenize(PROMPTS[0]))


def test_non_ascii_text_is_spelt_by_its_tokens() -> None:
    # Byte-level tokens split UTF-8 characters: each token's string, joined, is the text.
    engine = LlamaCppEngine.get("gemma3-270m")
    prompt = "Liste de mots français accentués: été, château, naïve, crème, déjà,"
    params = SamplingParams(max_new_tokens=40, seed=5, top_logprobs=3)
    for c in engine.generate([prompt] * 4, params):
        assert "".join(t.token for t in c.tokens) == c.text
        assert "\ufffd" not in c.text


def test_label_scores_agree_with_the_transformers_engine() -> None:
    # Same weights, other kernels (llama.cpp's Q4_K x Q8 products vs de-quantised
    # float32): log-probabilities agree to a few tenths, the ranking of label words
    # that are far apart is the same.
    ours, theirs = LlamaCppEngine.get("gemma3-270m"), LocalEngine.get("gemma3-270m")
    words = [" positive", " negative", " favourable"]  # the last is several tokens
    for review in ("a gorgeous, witty, moving film", "dull, lifeless and far too long"):
        prefix = f"{PROMPTS[0]} {review} {SST2.label_marker}"
        a, b = ours.score(prefix, words), theirs.score(prefix, words)
        assert a == pytest.approx(b, abs=0.5)
        assert (a[0] > a[1]) == (b[0] > b[1])


def test_concurrent_calls_share_one_engine_safely(smollm2: str) -> None:
    engine = LlamaCppEngine.get(smollm2)
    alone = [_texts(engine, PROMPTS[:2], SAMPLED), _texts(engine, PROMPTS[2:], SAMPLED)]
    got: list[list[tuple]] = [[], []]

    def run(i: int, prompts: list[str]) -> None:
        got[i] = _texts(engine, prompts, SAMPLED)

    threads = [
        threading.Thread(target=run, args=(0, PROMPTS[:2])),
        threading.Thread(target=run, args=(1, PROMPTS[2:])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert got == alone


def test_a_file_llama_cpp_cannot_load_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    llm = build_llm(LLMConfig(engine="llamacpp", model=str(bad)))
    with pytest.raises(ModelError, match="could not load"):
        llm.invoke("Movie review:")
    folder = tmp_path / "hf"  # a Hugging Face folder: transformers' to load
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="GGUF files and embedded models"):
        build_llm(LLMConfig(engine="llamacpp", model=str(folder)))


def test_the_cli_runs_on_llamacpp_by_default(tmp_path: Path) -> None:
    out = tmp_path / "syn.jsonl"
    proc = run_augment(out, 3, "--seed", "2", env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(out.with_name("syn.manifest.json").read_text())
    assert manifest["engine"] == "llamacpp"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3
    assert all(abs(sum(r["soft_label"].values()) - 1) < 1e-6 for r in rows)
