import pytest
from fakes import REVIEWS, fake_chat, labelled_reply
from langchain_core.messages import AIMessage

from mixaug import Example, GenerationAborted, SyntheticRecord, augment, get_spec

SST2 = get_spec("sst2")
EXAMPLES = [Example(text=t, label=lab) for t, lab in REVIEWS]


def _reply(i: int) -> AIMessage:
    p = 0.2 + 0.05 * (i % 10)
    return labelled_reply(
        f"new review number {i}", "positive", {" positive": p, " negative": 0.9 - p}
    )


def test_makes_n_valid_records() -> None:
    llm = fake_chat([_reply(i) for i in range(10)])
    res = augment(EXAMPLES, SST2, llm, n=5, batch_size=2, seed=3)
    assert len(res.records) == 5
    assert res.complete
    for i, r in enumerate(res.records):
        SyntheticRecord.model_validate(r.model_dump())
        assert r.id == f"sst2-s3-{i:06d}"
        assert len(r.anchors) == 2 and all(a in EXAMPLES for a in r.anchors)
        assert r.anchor_strategy == "random" and r.seed == 3 and r.task == "sst2"
        assert sum(r.soft_label.values()) == pytest.approx(1.0)
    assert len({r.prompt_hash for r in res.records}) > 1


def test_failures_are_counted_and_replaced() -> None:
    msgs = [
        _reply(0),
        AIMessage(content=" no label", response_metadata={"finish_reason": "stop"}),
        labelled_reply(
            REVIEWS[0][0].rstrip(" ."), "positive", {" positive": 0.9, " negative": 0.1}
        ),
        _reply(1),
        _reply(2),
        _reply(3),
    ]
    res = augment(EXAMPLES[:2], SST2, fake_chat(msgs), n=3, batch_size=1)
    assert len(res.records) == 3
    assert res.failures["no_label"] == 1
    # The same words without the final " ." are still a copy of the anchor.
    assert res.failures["copied_anchor"] == 1
    assert res.attempts == 5


def test_copied_anchor_is_dropped() -> None:
    copy = labelled_reply(REVIEWS[0][0], "positive", {" positive": 0.9, " negative": 0.1})
    res = augment(EXAMPLES[:2], SST2, fake_chat([copy, _reply(1)]), n=1, batch_size=1)
    assert res.failures["copied_anchor"] == 1
    assert len(res.records) == 1


def test_retry_budget_stops_an_unparseable_model() -> None:
    junk = [AIMessage(content=" nothing", response_metadata={"finish_reason": "stop"})] * 50
    res = augment(EXAMPLES, SST2, fake_chat(junk), n=3, batch_size=4, max_attempts=8)
    assert res.attempts == 8
    assert not res.complete
    summary = res.summary(
        task="sst2", model="m", seed=0, k=2, strategy="random", requested=3, output="x"
    )
    assert summary.failures == {"no_label": 8}
    assert summary.parse_rate == 0.0


def test_summary_agreement_and_surplus() -> None:
    msgs = [
        AIMessage(
            content=" no label",
            response_metadata={"finish_reason": "stop"},
            usage_metadata={"input_tokens": 50, "output_tokens": 2, "total_tokens": 52},
        ),
        labelled_reply("a", "positive", {" positive": 0.8, " negative": 0.1}),
        labelled_reply("b", "positive", {" positive": 0.1, " negative": 0.8}),
        labelled_reply("c", "negative", {" positive": 0.1, " negative": 0.8}),
        labelled_reply("d", "negative", {" positive": 0.1, " negative": 0.8}),
    ]
    res = augment(EXAMPLES, SST2, fake_chat(msgs), n=3, batch_size=4)
    s = res.summary(task="sst2", model="m", seed=0, k=2, strategy="random", requested=3, output="x")
    # Batch 1 asks for 3 and keeps 2; at that parse rate batch 2 asks for 2 and
    # one of them is surplus.
    assert s.kept == 3 and s.surplus == 1 and s.attempts == 5
    assert s.failures == {"no_label": 1}
    # Tokens of every call count, the failed and surplus ones too (50 prompt tokens each).
    assert s.prompt_tokens == 50 * 5
    assert s.label_agreement == pytest.approx(2 / 3, abs=1e-3)
    assert s.parse_rate == 0.8
    assert s.label_counts == {"negative": 2, "positive": 1}


def test_same_seed_same_anchors() -> None:
    a = augment(EXAMPLES, SST2, fake_chat([_reply(i) for i in range(4)]), n=4, seed=7)
    b = augment(EXAMPLES, SST2, fake_chat([_reply(i) for i in range(4)]), n=4, seed=7)
    c = augment(EXAMPLES, SST2, fake_chat([_reply(i) for i in range(4)]), n=4, seed=8)
    assert [r.anchors for r in a.records] == [r.anchors for r in b.records]
    assert [r.anchors for r in a.records] != [r.anchors for r in c.records]


class Broken(Exception):
    pass


def test_a_dead_model_aborts_with_a_clear_error() -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    class Down(GenericFakeChatModel):
        def _generate(self, *args: object, **kwargs: object):  # type: ignore[override]
            raise Broken("connection refused")

    with pytest.raises(GenerationAborted, match="connection refused"):
        augment(EXAMPLES, SST2, Down(messages=iter([])), n=3, batch_size=2)
