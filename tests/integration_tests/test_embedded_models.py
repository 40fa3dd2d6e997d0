"""The local model classes on the real embedded models."""

from __future__ import annotations

import importlib.util
import json
import math
import random
from typing import Any

import pytest
from fakes import REVIEWS

from mixaug import (
    ChatTransformers,
    Example,
    LlamaCppLLM,
    SyntheticRecord,
    TaskSpec,
    TransformersLLM,
    augment,
    build_mix_chain,
    get_spec,
)
from mixaug.chains.prompts import render_mix_prompt
from mixaug.models import LocalEngine
from mixaug.softlabels import normalise, rescore_word_probs, tokens_from_logprobs

SST2 = get_spec("sst2")
ANCHORS = [{"text": t, "label": lab} for t, lab in REVIEWS]
# The completion model's contract holds on either engine (llama.cpp needs its package).
ENGINES = [
    pytest.param(TransformersLLM, id="transformers"),
    pytest.param(
        LlamaCppLLM,
        id="llamacpp",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python missing"
        ),
    ),
]


def _prompts(n: int, seed: int = 0) -> list[dict]:
    r = random.Random(seed)
    return [{"anchors": r.sample(ANCHORS, 2)} for _ in range(n)]


@pytest.mark.parametrize("cls", ENGINES)
def test_completion_logprobs_spell_the_text(smollm2: str, cls: type[Any]) -> None:
    llm = cls(model=smollm2, seed=0, max_tokens=24, logprobs=5)
    prompts = [render_mix_prompt(SST2, p["anchors"]) for p in _prompts(3)]
    result = llm.generate(prompts, stop=["\n"])
    for gens in result.generations:
        g = gens[0]
        toks = tokens_from_logprobs(g.generation_info["logprobs"])
        assert toks is not None and toks
        assert "".join(t.token for t in toks).startswith(g.text)
        for t in toks:
            assert t.logprob <= 0.0 and math.isfinite(t.logprob)
            assert len(t.top) == 5
            assert max(t.top.values()) >= t.logprob - 1e-4
        assert g.generation_info["completion_tokens"] == len(toks)
    usage = result.llm_output["token_usage"]
    assert usage["completion_tokens"] > 0 and usage["prompt_tokens"] > 0


@pytest.mark.parametrize("cls", ENGINES)
def test_greedy_picks_the_top_token_and_seeds_repeat(smollm2: str, cls: type[Any]) -> None:
    prompt = render_mix_prompt(SST2, ANCHORS[:2])
    greedy = cls(model=smollm2, temperature=0, max_tokens=12, logprobs=3)
    g = greedy.generate([prompt]).generations[0][0]
    for t in tokens_from_logprobs(g.generation_info["logprobs"]) or []:
        best = max(t.top, key=lambda k: t.top[k])
        assert t.logprob == pytest.approx(t.top[best], abs=1e-4)
    sampled = cls(model=smollm2, max_tokens=16, seed=11)
    a = sampled.generate([prompt, prompt]).generations
    b = sampled.generate([prompt, prompt]).generations
    assert [x[0].text for x in a] == [x[0].text for x in b]
    other = cls(model=smollm2, max_tokens=16, seed=12).generate([prompt, prompt]).generations
    assert [x[0].text for x in other] != [x[0].text for x in a]


@pytest.mark.parametrize(("dtype", "tol"), [("float32", 1e-3), ("bfloat16", 1e-2)])
def test_scoring_multi_token_words(smollm2: str, dtype: str, tol: float) -> None:
    # bfloat16 weights round differently when the word is scored whole than token
    # by token: the identity holds to about 3e-3 there.
    engine = LocalEngine.get(smollm2, dtype)
    word = " unfavourable"
    ids = engine.tokenizer.encode(word, add_special_tokens=False)
    assert len(ids) > 1, "precondition: the word must be several tokens"
    prefix = render_mix_prompt(SST2, ANCHORS[:2]) + " a dull film (Sentiment:"
    (whole,) = engine.score(prefix, [word])
    # Chain rule: the word's logprob is the sum over its tokens, step by step.
    total, context = 0.0, prefix
    for tid in ids:
        piece = engine.tokenizer.decode([tid])
        (lp,) = engine.score(context, [piece])
        total += lp
        context += piece
    assert whole == pytest.approx(total, abs=tol)


@pytest.mark.parametrize("cls", ENGINES)
def test_multi_token_label_words_are_rescored(smollm2: str, cls: type[Any]) -> None:
    spec = TaskSpec(
        name="fav",
        text_type="movie review",
        label_type="verdict",
        verbalizer={"positive": "favourable", "negative": "unfavourable"},
    )
    llm = cls(model=smollm2, seed=3)
    out = build_mix_chain(llm, spec).batch(_prompts(8), return_exceptions=True)
    items = [o for o in out if not isinstance(o, Exception)]
    assert items, f"no parsable item in {out}"
    for item in items:
        assert item.soft_label_source == "rescored"
        assert sum(item.soft_label.values()) == pytest.approx(1.0)
        assert 0.0 < item.label_mass <= 1.0


@pytest.mark.parametrize("cls", ENGINES)
def test_inline_soft_label_equals_a_rescoring_pass(cls: type[Any]) -> None:
    llm = cls(seed=1)  # the default model, Gemma 3 270M
    inputs = _prompts(12, seed=4)
    out = build_mix_chain(llm, SST2).batch(inputs, return_exceptions=True)
    diffs = []
    for inp, item in zip(inputs, out, strict=True):
        if isinstance(item, Exception) or item.soft_label_source != "inline":
            continue
        # Generation stops right after the label's closing parenthesis (or at a newline).
        assert item.completion.endswith(")") or "\n" not in item.completion
        if not item.completion.startswith(f" {item.text} ("):
            continue  # whitespace was normalised: not the same context
        prefix = f"{render_mix_prompt(SST2, inp['anchors'])} {item.text} {SST2.label_marker}"
        dist, _ = normalise(rescore_word_probs(llm, prefix, SST2.words))
        diffs.append(abs(dist["positive"] - item.soft_label["positive"]))
    assert len(diffs) >= 4, "too few inline items to compare"
    # transformers: the same float32 numbers either way. llama.cpp quantises activations
    # for its Q4_K products, and its numbers move with the batch a token was decoded in
    # (measured: mean 0.025, max 0.07 here; the same prompt alone vs in a batch of 12
    # moved by up to 0.09): a label read at the wrong position would be off by far more.
    mean, most = (0.01, 0.05) if cls is TransformersLLM else (0.05, 0.15)
    assert sum(diffs) / len(diffs) < mean
    assert max(diffs) < most


@pytest.mark.parametrize("cls", ENGINES)
def test_same_seed_same_records(smollm2: str, cls: type[Any]) -> None:
    examples = [Example(text=t, label=lab) for t, lab in REVIEWS]
    runs = [
        augment(examples, SST2, cls(model=smollm2), n=3, seed=5, batch_size=4) for _ in range(2)
    ]
    assert [r.model_dump() for r in runs[0].records] == [r.model_dump() for r in runs[1].records]


def test_augment_on_the_default_model() -> None:
    examples = [Example(text=t, label=lab) for t, lab in REVIEWS]
    res = augment(examples, SST2, n=4, seed=2, batch_size=8)
    assert len(res.records) == 4
    for r in res.records:
        SyntheticRecord.model_validate(json.loads(r.model_dump_json()))
        assert sum(r.soft_label.values()) == pytest.approx(1.0)
        assert r.model == "gemma3-270m"
        assert r.text and r.label in ("positive", "negative")


def test_chat_model_with_a_template_returns_openai_logprobs(smollm2: str) -> None:
    chat = ChatTransformers(model=smollm2, temperature=0, max_tokens=8)
    assert "<|im_start|>" in chat.render(chat._convert_input("hi").to_messages())
    msg = chat.bind(logprobs=True, top_logprobs=4).invoke("Say hello.")
    content = msg.response_metadata["logprobs"]["content"]
    assert "".join(t["token"] for t in content).startswith(msg.content)
    assert all(len(t["top_logprobs"]) == 4 for t in content)
    assert msg.usage_metadata["output_tokens"] == len(content)
    plain = chat.invoke("Say hello.")
    assert "logprobs" not in plain.response_metadata


def test_chat_batches_many_message_lists_in_one_engine_call(
    smollm2: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chain's batch reaches BaseChatModel.generate with many message lists; they
    # decode together (one engine call per batch_size), greedy replies as if alone.
    chat = ChatTransformers(model=smollm2, temperature=0, max_tokens=12, batch_size=4)
    questions = [[("human", q)] for q in ("Say hello.", "Name a colour.", "Count to three.")]
    alone = [chat.invoke(q) for q in questions]
    calls: list[int] = []
    engine = chat.engine
    real = engine.generate

    def counting(prompts: list[str], params: Any) -> Any:
        calls.append(len(prompts))
        return real(prompts, params)

    monkeypatch.setattr(engine, "generate", counting)
    together = chat.bind(logprobs=True).batch(questions)
    assert calls == [3]  # one batch, no call per prompt
    for a, b in zip(alone, together, strict=True):
        assert a.content == b.content
        assert "logprobs" in b.response_metadata and b.usage_metadata["output_tokens"] > 0


def test_base_model_chat_runs_raw() -> None:
    chat = ChatTransformers(max_tokens=30, seed=0)  # Gemma base: no chat template
    msgs = build_mix_chain(chat, SST2).first.format_messages(anchors=ANCHORS[:2])  # type: ignore[attr-defined]
    text = chat.render(msgs)
    assert text.endswith("\nMovie review:") and "<start_of_turn>" not in text
    out = build_mix_chain(chat, SST2).batch(_prompts(4, seed=9), return_exceptions=True)
    assert any(not isinstance(o, Exception) for o in out)


def test_single_token_scoring_matches_the_batched_pass(smollm2: str) -> None:
    engine = LocalEngine.get(smollm2)
    prefix = render_mix_prompt(SST2, ANCHORS[:2]) + " a dull film (Sentiment:"
    fast = engine.score(prefix, [" positive", " negative"])  # one row, last logits
    rows = engine.score(prefix, [" positive", " negative", " unfavourable"])  # padded rows
    assert fast == pytest.approx(rows[:2], abs=1e-3)


def test_rows_that_finish_early_leave_the_batch_unchanged(smollm2: str) -> None:
    # Greedy, so batching must not change any row: the rows that stop at the first
    # newline leave the batch, the others keep writing next to fewer neighbours.
    llm = TransformersLLM(model=smollm2, temperature=0, max_tokens=40, logprobs=3)
    prompts = [render_mix_prompt(SST2, p["anchors"]) for p in _prompts(6, seed=2)]
    prompts[1] += " This film"  # rows of different lengths (left padding)
    together = llm.generate(prompts, stop=["\n"]).generations
    alone = [llm.generate([p], stop=["\n"]).generations[0] for p in prompts]
    lengths = {g[0].generation_info["completion_tokens"] for g in together}
    assert len(lengths) > 1, "precondition: rows must end at different steps"
    for a, b in zip(together, alone, strict=True):
        assert a[0].text == b[0].text
        ta = tokens_from_logprobs(a[0].generation_info["logprobs"]) or []
        tb = tokens_from_logprobs(b[0].generation_info["logprobs"]) or []
        assert [t.logprob for t in ta] == pytest.approx([t.logprob for t in tb], abs=2e-3)


def test_fast_output_layer_keeps_leading_logprobs_exact() -> None:
    import torch

    engine = LocalEngine("gemma3-270m")  # a private engine: its head is switched below
    engine.load()
    if engine._head_lp is None:
        pytest.skip("this CPU has no native bfloat16: the output layer is float32 already")
    tok, base = engine.tokenizer, engine.model.model
    prompts = [render_mix_prompt(SST2, p["anchors"]) + " (Sentiment:" for p in _prompts(8)]
    enc = tok(prompts, return_tensors="pt", padding=True)
    pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        hidden = base(**enc, position_ids=pos).last_hidden_state[:, -1]
        fast, cand = engine._next_logits(hidden, 64)
        engine._head_lp = None
        exact, _ = engine._next_logits(hidden, 64)
    lf, le = torch.log_softmax(fast, -1), torch.log_softmax(exact, -1)
    top = le.topk(20, dim=-1).indices
    assert torch.equal(lf.argmax(-1), le.argmax(-1))
    assert (lf.gather(1, top) - le.gather(1, top)).abs().max() < 1e-3
    words = [tok.encode(" " + w, add_special_tokens=False)[0] for w in SST2.words]
    assert all(set(words) <= set(row.tolist()) for row in cand), "label words are exact"
    # Both are float32 logits of the label words (about 21 here), summed in another
    # order (one matrix product vs. the candidates' own): they agree to float32's
    # rounding at that size (~2e-6), so their two-word softmax to ~1e-5. A bfloat16
    # logit would be off by up to 0.06 (its step at 21 is 0.125): 1e-4 tells them apart.
    assert torch.allclose(
        torch.softmax(fast[:, words], -1), torch.softmax(exact[:, words], -1), atol=1e-4
    )


def test_engine_logprobs_equal_the_models_own_logits() -> None:
    # The engine runs its own KV-cached loop; a transformers upgrade (a renamed cache
    # argument, a model that scales or caps its logits) must not move soft labels
    # silently. Each generated token's logprob is checked against a plain forward
    # pass, model(**inputs).logits, over the prompt and the tokens before it: with the
    # float32 output layer to 1e-3 (measured 4e-5), with the bfloat16 fast layer to
    # 5e-3 (its tail enters the normaliser; measured 3e-3; label-word ratios, hence
    # soft labels, are exact either way).
    import warnings

    import torch

    from mixaug.models.engine import SamplingParams

    engine = LocalEngine("gemma3-270m")
    engine.load()
    tok, model = engine.tokenizer, engine.model
    prompts = [render_mix_prompt(SST2, p["anchors"]) for p in _prompts(2, seed=4)]
    params = SamplingParams(max_new_tokens=6, temperature=0, top_logprobs=3)
    for tolerance in (5e-3, 1e-3):
        if tolerance == 1e-3:
            engine._head_lp = None  # the exact float32 output layer
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            done = [engine.generate([p], params)[0] for p in prompts]  # no padding here
        assert not [w for w in caught if "past_key_values" in str(w.message)]
        for prompt, completion in zip(prompts, done, strict=True):
            ids = tok(prompt, return_tensors="pt")["input_ids"][0].tolist()
            new = tok(completion.text, add_special_tokens=False)["input_ids"]
            assert len(completion.tokens) >= len(new) > 0
            with torch.inference_mode():
                logits = model(input_ids=torch.tensor([ids + new])).logits[0].float()
            lp = torch.log_softmax(logits, -1)
            for i, t in enumerate(completion.tokens[: len(new)]):
                own = lp[len(ids) - 1 + i, new[i]].item()
                assert t.logprob == pytest.approx(own, abs=tolerance), (tolerance, i, t.token)
