"""Prompt families: rendering, parsing, soft labels and augment on fake models."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from fakes import REVIEWS, FakeCompletionLLM, chat_logprobs, fake_chat, write_jsonl
from langchain_core.messages import AIMessage

from mixaug import Example, SyntheticRecord, augment, get_spec
from mixaug.chains.families import (
    FAMILIES,
    FamilyPromptTemplate,
    build_family_chain,
    parse_list,
    plan_requests,
    render_family_prompt,
)
from mixaug.cli import main
from mixaug.errors import ConfigError, ParseFailure, SpecError
from mixaug.specs import PromptTexts, TaskSpec, spec_from_dict

SST2 = get_spec("sst2")
EXAMPLES = [Example(text=t, label=lab) for t, lab in REVIEWS]
A2 = [{"text": "a gem", "label": "positive"}, {"text": "a mess", "label": "negative"}]


class KeywordScorer:
    """Scores label words by rule: a text with 'awful' or 'dull' is negative (p 0.8)."""

    def __init__(self) -> None:
        self.prefixes: list[str] = []

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        self.prefixes.append(prefix)
        item = re.split(r"Movie review:|Text:", prefix)[-1]  # the item being labelled
        neg = any(w in item for w in ("awful", "dull"))
        probs = (
            {" negative": 0.8, " positive": 0.2} if neg else {" negative": 0.2, " positive": 0.8}
        )
        return [math.log(probs[c]) if c in probs else -math.inf for c in continuations]


def _chat(text: str) -> AIMessage:
    return AIMessage(content=text, response_metadata={"finish_reason": "stop"})


# -- rendering ---------------------------------------------------------------------------


def test_every_family_renders_completion_and_chat_forms() -> None:
    for family in FAMILIES:
        anchors = A2[:1] if family == "paraphrase" else A2
        req = plan_requests(family, [anchors], spec=SST2, pool=EXAMPLES, n_items=3)[0]
        text = render_family_prompt(SST2, family, req)
        assert text and "{" not in text
        msgs = FamilyPromptTemplate(spec=SST2, family=family, chat=True).invoke(req).to_messages()
        assert [m.type for m in msgs] == ["system", "human"]
        value = FamilyPromptTemplate(spec=SST2, family=family).invoke(req)
        assert value.to_string() == text and value.request["anchors"] == req["anchors"]


def test_mix_family_is_the_paper_prompt() -> None:
    from mixaug.chains.prompts import render_mix_prompt

    assert render_family_prompt(SST2, "mix", {"anchors": A2}) == render_mix_prompt(SST2, A2)
    assert SST2.header().startswith("Each item in the following list contains a movie review")


def test_fewshot_template_has_the_issue_s_keys() -> None:
    lines = render_family_prompt(SST2, "fewshot", {"anchors": A2}).splitlines()
    assert lines[0].startswith("Task: ") and lines[1] == "Classes: positive, negative"
    assert lines[2].startswith("Context: ") and lines[3] == "Labeled examples:"
    assert lines[4:] == [
        "Text: a gem",
        "Label: positive",
        "Text: a mess",
        "Label: negative",
        "Text:",
    ]


def test_boundary_requests_mix_two_labels_deterministically() -> None:
    same = [[EXAMPLES[0].model_dump(), EXAMPLES[1].model_dump()]] * 6
    a = plan_requests("boundary", same, spec=SST2, pool=EXAMPLES, shares=(60, 80), seed=1)
    b = plan_requests("boundary", same, spec=SST2, pool=EXAMPLES, shares=(60, 80), seed=1)
    assert a == b
    for req in a:
        labels = [x["label"] for x in req["anchors"]]
        assert sorted(labels) == ["negative", "positive"]
        assert sorted(req["shares"].values()) in ([20, 80], [40, 60])
        assert req["shares"][labels[0]] in (60, 80)
    text = render_family_prompt(SST2, "boundary", a[0])
    assert "% positive and " in text and text.endswith("Movie review:")
    with pytest.raises(ConfigError, match="two labels"):
        plan_requests("boundary", same, spec=SST2, pool=EXAMPLES[:1], seed=0)


def test_instruct_requests_fill_the_emptiest_class() -> None:
    reqs = plan_requests(
        "instruct", [[]] * 3, spec=SST2, pool=EXAMPLES, counts={"positive": 7}, n_items=4
    )
    assert [r["target"] for r in reqs] == ["negative", "negative", "positive"]
    assert all(r["n"] == 4 for r in reqs)


def test_prompt_texts_in_another_language() -> None:
    spec = spec_from_dict(
        {
            "name": "hungry",
            "text_type": "문장",
            "label_type": "의도",
            "verbalizer": {"hungry": "배고픔", "other": "기타"},
            "prompts": {
                "header": "다음 목록의 각 항목은 {text_type}과 {label_type}입니다. "
                "{label_type}은 {choices} 중 하나입니다.",
                "or_word": "또는",
                "instruct": "{label_type}이 {word}인 {text_type} {n}개를 쓰세요.",
            },
        }
    )
    text = render_family_prompt(spec, "mix", {"anchors": [{"text": "배고파", "label": "hungry"}]})
    assert text.splitlines() == [
        "다음 목록의 각 항목은 문장과 의도입니다. 의도은 '배고픔' 또는 '기타' 중 하나입니다.",
        "문장: 배고파 (의도: 배고픔)",
        "문장:",
    ]
    req = {"anchors": [], "target": "hungry", "n": 3}
    assert render_family_prompt(spec, "instruct", req).startswith("의도이 배고픔인 문장 3개")


def test_bad_prompt_placeholders_are_refused() -> None:
    with pytest.raises(SpecError, match=r"prompts.instruct has a bad placeholder"):
        PromptTexts(instruct="Write {count} items")
    with pytest.raises(SpecError, match="must not be empty"):
        TaskSpec(
            text_type="t", label_type="l", verbalizer={"a": "x", "b": "y"}, prompts={"task": " "}
        )


# -- parsing -----------------------------------------------------------------------------


def test_parse_list_reads_numbered_and_bulleted_items() -> None:
    completion = ' great fun\n2. awful (Sentiment: negative)\n3) "quoted"\n- four\n5. five'
    assert parse_list(completion, SST2, n=4, leading_item=True) == [
        "great fun",
        "awful",
        "quoted",
        "four",
    ]
    chat = "Here you go:\n1. Movie review: first one\n2. second one"
    assert parse_list(chat, SST2, n=5, leading_item=False) == ["first one", "second one"]


def test_fewshot_reads_the_soft_label_inline() -> None:
    pieces = [
        (" a", {}),
        (" warm", {}),
        (" film", {}),
        ("\n", {}),
        ("Label", {}),
        (":", {}),
        (" positive", {" positive": 0.6, " negative": 0.3}),
        ("\n", {}),
    ]
    text = "".join(p for p, _ in pieces)
    llm = FakeCompletionLLM(replies=[(text, pieces)])
    chain = build_family_chain(llm, SST2, "fewshot", scorer=None)
    [item] = chain.invoke({"anchors": A2})
    assert item.text == "a warm film" and item.generated_label == "positive"
    assert item.soft_label_source == "inline"
    assert item.soft_label["positive"] == pytest.approx(2 / 3)


def test_fewshot_chat_reply_with_keys_and_a_missing_label() -> None:
    scorer = KeywordScorer()
    chain = build_family_chain(
        fake_chat([_chat("Text: an awful mess\nLabel: negative")]), SST2, "fewshot", scorer=scorer
    )
    [item] = chain.invoke({"anchors": A2})
    assert item.text == "an awful mess" and item.generated_label == "negative"
    # No logprobs: scored after the prompt, the text and "Label:".
    assert item.soft_label_source == "rescored" and scorer.prefixes[-1].endswith("\nLabel:")
    assert item.soft_label["negative"] == pytest.approx(0.8)
    bad = build_family_chain(
        fake_chat([_chat("Text: no label here")]), SST2, "fewshot", scorer=scorer
    )
    with pytest.raises(ParseFailure) as e:
        bad.invoke({"anchors": A2})
    assert e.value.reason == "no_label"


def test_paraphrase_carries_the_label_and_rescores() -> None:
    scorer = KeywordScorer()
    llm = fake_chat([_chat('"A dull, awful picture."')])
    [item] = build_family_chain(llm, SST2, "paraphrase", scorer=scorer).invoke(
        {"anchors": [{"text": "a flat film", "label": "positive"}]}
    )
    assert item.text == "A dull, awful picture."
    assert item.generated_label == "positive"  # carried over from the source
    assert item.label == "negative"  # but the model's soft label disagrees
    # Scored after the mix prompt over its anchor.
    assert scorer.prefixes[-1].splitlines()[1] == "Movie review: a flat film (Sentiment: positive)"
    assert scorer.prefixes[-1].endswith("Movie review: A dull, awful picture. (Sentiment:")


def test_instruct_yields_one_item_per_line_with_tokens_counted_once() -> None:
    msg = AIMessage(
        content="1. a warm delight\n2. an awful bore\n3. a warm delight",
        response_metadata={"finish_reason": "stop"},
        usage_metadata={"input_tokens": 20, "output_tokens": 15, "total_tokens": 35},
    )
    chain = build_family_chain(fake_chat([msg]), SST2, "instruct", scorer=KeywordScorer())
    items = chain.invoke({"anchors": A2, "target": "positive", "n": 3})
    assert [i.text for i in items] == ["a warm delight", "an awful bore", "a warm delight"]
    assert [i.generated_label for i in items] == ["positive"] * 3
    assert [i.label for i in items] == ["positive", "negative", "positive"]
    assert sum(i.completion_tokens for i in items) == 15


def test_boundary_without_a_written_label_is_scored() -> None:
    scorer = KeywordScorer()
    chain = build_family_chain(
        fake_chat([_chat(" half great, half dull")]), SST2, "boundary", scorer=scorer
    )
    req = {"anchors": A2, "shares": {"positive": 70, "negative": 30}}
    [item] = chain.invoke(req)
    assert item.text == "half great, half dull" and item.generated_label == "positive"
    assert item.label == "negative" and item.soft_label_source == "rescored"


def test_boundary_reads_a_written_label_inline() -> None:
    pieces = [
        (" so", {}),
        (" so", {}),
        (" (Sentiment:", {}),
        (" negative", {" positive": 0.45, " negative": 0.45}),
        (")", {}),
    ]
    msg = AIMessage(
        content="".join(p for p, _ in pieces),
        response_metadata={"logprobs": chat_logprobs(pieces), "finish_reason": "stop"},
    )
    [item] = build_family_chain(fake_chat([msg]), SST2, "boundary", scorer=None).invoke(
        {"anchors": A2, "shares": {"positive": 50, "negative": 50}}
    )
    assert item.soft_label_source == "inline" and item.generated_label == "negative"
    assert item.soft_label == {"positive": 0.5, "negative": 0.5}


def test_without_logprobs_or_scorer_paraphrase_fails_clearly() -> None:
    chain = build_family_chain(fake_chat([_chat("a new one")]), SST2, "paraphrase", scorer=None)
    with pytest.raises(ParseFailure) as e:
        chain.invoke({"anchors": A2[:1]})
    assert e.value.reason == "no_logprobs"


# -- augment and CLI -----------------------------------------------------------------------


def test_augment_with_instruct_balances_classes_and_records_the_family() -> None:
    def lst(i: int) -> AIMessage:
        return _chat("\n".join(f"{j + 1}. review {i}-{j}" for j in range(2)))

    res = augment(
        EXAMPLES,
        SST2,
        fake_chat([lst(i) for i in range(10)]),
        n=8,
        batch_size=2,
        family="instruct",
        n_items=2,
        scorer=KeywordScorer(),
    )
    assert len(res.records) == 8 and res.attempts == 8
    assert [r.generated_label for r in res.records].count("negative") == 4
    for r in res.records:
        SyntheticRecord.model_validate(r.model_dump())
        assert r.prompt_family == "instruct" and r.target == {r.generated_label: 1.0}
    summary = res.summary(
        task="sst2",
        model="fake",
        seed=0,
        k=2,
        strategy="random",
        requested=8,
        output="x",
        family="instruct",
    )
    assert summary.prompt_family == "instruct" and summary.parse_rate == 1.0


def test_augment_counts_short_lists_and_repeats() -> None:
    replies = [_chat("1. same one\n2. same one"), _chat("1. other one\n2. third one\n3. x")]
    res = augment(
        EXAMPLES,
        SST2,
        fake_chat(replies * 5),
        n=3,
        batch_size=1,
        family="instruct",
        n_items=3,
        scorer=KeywordScorer(),
    )
    assert res.failures["repeated_item"] >= 1 and res.failures["short_list"] >= 1
    assert len(res.records) == 3


def test_augment_paraphrase_uses_one_anchor() -> None:
    replies = [_chat(f"a fresh take number {i}") for i in range(5)]
    res = augment(
        EXAMPLES,
        SST2,
        fake_chat(replies),
        n=3,
        batch_size=3,
        family="paraphrase",
        scorer=KeywordScorer(),
    )
    assert all(len(r.anchors) == 1 for r in res.records)
    assert all(r.generated_label == r.anchors[0].label for r in res.records)


def test_cli_prompt_flag_dry_run(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    out = tmp_path / "p.jsonl"
    rc = main(
        [
            "augment",
            "--data",
            str(data),
            "--task",
            "sst2",
            "--n",
            "4",
            "--dry-run",
            "--prompt",
            "boundary",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    import json

    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 4 and all(r["prompt_family"] == "boundary" for r in rows)
    assert all(len({a["label"] for a in r["anchors"]}) == 2 for r in rows)
    rc = main(
        [
            "augment",
            "--data",
            str(data),
            "--task",
            "sst2",
            "--n",
            "4",
            "--dry-run",
            "--prompt",
            "nope",
            "--out",
            str(tmp_path / "q.jsonl"),
        ]
    )
    assert rc == 2 and not (tmp_path / "q.jsonl").exists()


def test_multi_token_label_words_are_scored_whole() -> None:
    """Korean label words are several tokens: scored as whole continuations."""
    spec = spec_from_dict(
        {
            "name": "ko",
            "text_type": "문장",
            "label_type": "의도",
            "verbalizer": {"hungry": "배고픔", "other": "기타"},
        }
    )

    class TokenScorer:
        """Scores ' 배고픔' as two tokens (0.5 * 0.6) and ' 기타' as one (0.2)."""

        def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
            table = {" 배고픔": math.log(0.5) + math.log(0.6), " 기타": math.log(0.2)}
            return [table.get(c, -math.inf) for c in continuations]

    # Inline logprobs only show the first token of the multi-token word.
    pieces = [
        (" 밥", {}),
        (" 주세요", {}),
        (" (의도:", {}),
        (" 배", {" 배": 0.5, " 기타": 0.2}),
        ("고픔", {}),
        (")", {}),
    ]
    msg = AIMessage(
        content="".join(p for p, _ in pieces),
        response_metadata={"logprobs": chat_logprobs(pieces), "finish_reason": "stop"},
    )
    [item] = build_family_chain(fake_chat([msg]), spec, "mix", scorer=TokenScorer()).invoke(
        {"anchors": [{"text": "배고파", "label": "hungry"}]}
    )
    assert item.text == "밥 주세요" and item.generated_label == "hungry"
    assert item.soft_label_source == "rescored"
    assert item.soft_label["hungry"] == pytest.approx(0.3 / 0.5)


def test_one_unscorable_list_item_loses_only_itself() -> None:
    class Picky(KeywordScorer):
        def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
            if "zzz" in prefix.rsplit("Movie review:", 1)[-1]:
                return [-math.inf] * len(continuations)  # no mass on any label word
            return super().score_continuations(prefix, continuations)

    msg = AIMessage(
        content="1. zzz\n2. a warm delight",
        response_metadata={"finish_reason": "stop"},
        usage_metadata={"input_tokens": 20, "output_tokens": 9, "total_tokens": 29},
    )
    chain = build_family_chain(fake_chat([msg]), SST2, "instruct", scorer=Picky())
    items = chain.invoke({"anchors": A2, "target": "positive", "n": 2})
    assert [i.text for i in items] == ["a warm delight"]
    assert items[0].completion_tokens == 9  # the prompt's tokens still counted once
    empty = build_family_chain(fake_chat([_chat("Sure!")]), SST2, "instruct", scorer=Picky())
    with pytest.raises(ParseFailure) as e:
        empty.invoke({"anchors": A2, "target": "positive", "n": 2})
    assert e.value.reason == "no_items"
