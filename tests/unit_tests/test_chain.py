import asyncio
import math
import threading
import time
from typing import Any

import pytest
from fakes import FakeCompletionLLM, completion_reply, fake_chat, labelled_reply
from langchain_core.messages import AIMessage

from mixaug import LabelledItem, ParseFailure, build_family_chain, build_mix_chain, get_spec

SST2 = get_spec("sst2")


class TableScorer:
    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.prefixes: list[str] = []

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        self.prefixes.append(prefix)
        return [self.table.get(c, -math.inf) for c in continuations]


def test_chat_chain_reads_soft_label_inline(anchors: list[dict[str, str]]) -> None:
    reply = labelled_reply(
        "a real treat", "positive", {" positive": 0.6, " negative": 0.3, " meh": 0.1}
    )
    chain = build_mix_chain(fake_chat([reply]), SST2)
    item = chain.invoke({"anchors": anchors})
    assert isinstance(item, LabelledItem)
    assert item.text == "a real treat"
    assert item.soft_label == pytest.approx({"positive": 2 / 3, "negative": 1 / 3})
    assert item.label == "positive"
    assert item.generated_label == "positive"
    assert item.label_mass == pytest.approx(0.9)
    assert item.soft_label_source == "inline"
    assert item.prompt_tokens == 50


def test_soft_label_argmax_can_disagree_with_generated(anchors: list[dict[str, str]]) -> None:
    reply = labelled_reply("hmm", "positive", {" positive": 0.2, " negative": 0.7})
    item = build_mix_chain(fake_chat([reply]), SST2).invoke({"anchors": anchors})
    assert item.generated_label == "positive"
    assert item.label == "negative"


def test_completion_chain_uses_completion_shape(anchors: list[dict[str, str]]) -> None:
    llm = FakeCompletionLLM(
        replies=[completion_reply("so good", "positive", {" positive": 0.5, " negative": 0.25})]
    )
    item = build_mix_chain(llm, SST2).invoke({"anchors": anchors})
    assert item.soft_label == pytest.approx({"positive": 2 / 3, "negative": 1 / 3})
    assert llm.calls[0][0].endswith("\nMovie review:")


def test_missing_word_falls_back_to_scoring_pass(anchors: list[dict[str, str]]) -> None:
    reply = labelled_reply("odd one", "positive", {" positive": 0.9})
    scorer = TableScorer({" positive": math.log(0.6), " negative": math.log(0.2)})
    chain = build_mix_chain(fake_chat([reply]), SST2, scorer=scorer)
    item = chain.invoke({"anchors": anchors})
    assert item.soft_label_source == "rescored"
    assert item.soft_label == pytest.approx({"positive": 0.75, "negative": 0.25})
    assert item.label_mass == pytest.approx(0.8)
    # The scoring prefix is the paper prompt + text + " (Sentiment:" (no trailing space).
    assert scorer.prefixes[0].endswith("Movie review: odd one (Sentiment:")


def test_missing_word_without_scorer_renormalises_what_was_seen(
    anchors: list[dict[str, str]],
) -> None:
    reply = labelled_reply("odd one", "positive", {" positive": 0.8})
    item = build_mix_chain(fake_chat([reply]), SST2, scorer=None).invoke({"anchors": anchors})
    assert item.soft_label_source == "partial"
    assert item.soft_label == {"positive": 1.0, "negative": 0.0}
    assert item.label_mass == pytest.approx(0.8)


def test_reply_without_logprobs(anchors: list[dict[str, str]]) -> None:
    chain = build_mix_chain(fake_chat([AIMessage(content=" nice (Sentiment: positive)")]), SST2)
    with pytest.raises(ParseFailure) as e:
        chain.invoke({"anchors": anchors})
    assert e.value.reason == "no_logprobs"
    scorer = TableScorer({" positive": math.log(0.3), " negative": math.log(0.1)})
    chain = build_mix_chain(
        fake_chat([AIMessage(content=" nice (Sentiment: positive)")]), SST2, scorer=scorer
    )
    assert chain.invoke({"anchors": anchors}).soft_label_source == "rescored"


def test_batch_returns_failures_per_item(anchors: list[dict[str, str]]) -> None:
    good = labelled_reply("fine", "negative", {" positive": 0.1, " negative": 0.8})
    bad = AIMessage(content=" no label here", response_metadata={"finish_reason": "stop"})
    chain = build_mix_chain(fake_chat([good, bad]), SST2)
    out = chain.batch([{"anchors": anchors}, {"anchors": anchors}], return_exceptions=True)
    assert isinstance(out[0], LabelledItem) and out[0].label == "negative"
    assert isinstance(out[1], ParseFailure) and out[1].reason == "no_label"


def test_multiclass_soft_label_over_all_words(anchors: list[dict[str, str]]) -> None:
    spec = get_spec("trec6")
    probs = {" " + w: 0.1 for w in spec.words} | {" location": 0.4}
    text, pieces = completion_reply("Where is it ?", "location", probs, marker="(Type:")
    llm = FakeCompletionLLM(replies=[(text, pieces)])
    trec_anchors = [{"text": "Who ?", "label": "HUM"}, {"text": "When ?", "label": "NUM"}]
    item = build_mix_chain(llm, spec).invoke({"anchors": trec_anchors})
    assert set(item.soft_label) == set(spec.label_names)
    assert item.soft_label["LOC"] == pytest.approx(0.4 / 0.9)
    assert sum(item.soft_label.values()) == pytest.approx(1.0)
    assert item.generated_label == "LOC"


def test_label_end_pattern_stops_after_the_closing_parenthesis() -> None:
    import re

    from mixaug.chains.generation import label_end_pattern

    p = re.compile(label_end_pattern(SST2))
    m = p.search(" a (mostly) fine film (Sentiment: positive) and then more")
    assert m is not None and m.group(0) == "(Sentiment: positive)"
    assert p.search(" (sentiment: Negative)") is not None
    assert p.search(" no label (aside)") is None


def test_stop_after_is_only_sent_to_models_that_accept_it(anchors: list[dict[str, str]]) -> None:
    reply = labelled_reply("fine", "positive", {" positive": 0.6, " negative": 0.3})
    step = build_mix_chain(fake_chat([reply]), SST2).steps[1]  # type: ignore[attr-defined]
    assert "stop_after" not in step.call_kwargs
    from mixaug import TransformersLLM

    step = build_mix_chain(TransformersLLM(), SST2).steps[1]  # type: ignore[attr-defined]
    assert step.call_kwargs["stop_after"] and step.call_kwargs["stop"] == ["\n"]
    assert step.call_kwargs["logprobs"] == 20


class SlowScorer(TableScorer):
    """A scorer that is a remote request: it takes a while, and counts callers in flight."""

    def __init__(self, table: dict[str, float]) -> None:
        super().__init__(table)
        self.active = self.peak = 0
        self.lock = threading.Lock()

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.03)
        with self.lock:
            self.active -= 1
        return super().score_continuations(prefix, continuations)


@pytest.mark.parametrize("family", ["mix", "paraphrase"])
@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_also_bounds_the_parsers_scoring_requests(
    anchors: list[dict[str, str]], concurrency: int, family: str
) -> None:
    # No logprobs at the label: every item is scored by a request of its own.
    text, pieces = completion_reply("a fine film", "positive", {})
    if family == "paraphrase":  # writes a text alone; its label is always scored
        text, pieces = " a fine film", [(" a", {}), (" fine", {}), (" film", {})]
    scorer = SlowScorer({" positive": math.log(0.6), " negative": math.log(0.2)})
    llm = FakeCompletionLLM(replies=[(text, pieces)])
    if family == "mix":
        chain: Any = build_mix_chain(llm, SST2, scorer=scorer, concurrency=concurrency)
    else:
        chain = build_family_chain(llm, SST2, family, scorer=scorer, concurrency=concurrency)
    requests = [{"anchors": anchors if family == "mix" else anchors[:1]}] * 8
    out = chain.batch(requests)
    assert len(scorer.prefixes) >= 8 and scorer.peak == concurrency
    scorer.peak = 0
    asyncio.run(chain.abatch(requests))
    assert scorer.peak == concurrency
    items = out if family == "mix" else [x for xs in out for x in xs]
    assert {i.soft_label_source for i in items} == {"rescored"}
