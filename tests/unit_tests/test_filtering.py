"""The filter: dedup kinds, critic outcomes and policy, rejects, and judge maths."""

from __future__ import annotations

import math
import random

import pytest
from fakes import REVIEWS, chat_logprobs, fake_chat, labelled_reply
from langchain_core.messages import AIMessage

from mixaug import Example, SyntheticRecord, augment, get_spec
from mixaug.chains.critic import (
    JudgePrompts,
    auroc,
    best_threshold,
    build_critic_chain,
    check_judge,
    shuffled_words,
)
from mixaug.config import FilterConfig, PolicyConfig
from mixaug.dedup import Deduplicator
from mixaug.errors import DataError
from mixaug.filtering import RecordFilter, build_record_filter, disagreement
from mixaug.records import CriticScores

SST2 = get_spec("sst2")
TRAIN = [Example(text=t, label=lab) for t, lab in REVIEWS]
NEGATIVE_WORDS = ("dull", "flat", "lazy", "confused", "awful")


def _sentiment(text: str) -> str:
    return "negative" if any(w in text for w in NEGATIVE_WORDS) else "positive"


class RuleJudge:
    """A scorer that answers the critic's prompts by rule, so outcomes are known.

    Fluency: "zzz" in a text means garbled. Consistency and relabel: a text with a
    negative word is negative. Records every prefix it scored.
    """

    def __init__(self) -> None:
        self.prefixes: list[str] = []

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        self.prefixes.append(prefix)
        lines = prefix.split("\n")
        last = lines[-1]
        if last.startswith("Fluent"):
            text = lines[-2]
            probs = {" yes": 0.1, " no": 0.9} if "zzz" in text else {" yes": 0.9, " no": 0.1}
        elif last.endswith("?"):
            text = lines[-2]
            named = "positive" if "positive" in last else "negative"
            ok = _sentiment(text) == named
            probs = {" yes": 0.8, " no": 0.2} if ok else {" yes": 0.2, " no": 0.8}
        else:
            truth = _sentiment(last)
            probs = {
                " " + truth: 0.7,
                " " + ("positive" if truth == "negative" else "negative"): 0.3,
            }
        return [math.log(probs[c]) if c in probs else -math.inf for c in continuations]


def _rec(
    i: int,
    text: str,
    label: str = "positive",
    generated: str | None = None,
    anchors: list[Example] | None = None,
) -> SyntheticRecord:
    other = "negative" if label == "positive" else "positive"
    return SyntheticRecord(
        id=f"sst2-s0-{i:06d}",
        text=text,
        label=label,
        soft_label={label: 0.8, other: 0.2},
        generated_label=generated if generated is not None else label,
        label_mass=0.9,
        anchors=anchors if anchors is not None else TRAIN[:2],
        anchor_strategy="random",
        model="fake",
        prompt_hash="0" * 16,
        seed=0,
        task="sst2",
        soft_label_source="inline",
    )


def _critic_filter(policy: PolicyConfig | None = None, agreement: str = "majority") -> RecordFilter:
    judge = RuleJudge()
    critic = build_critic_chain(None, SST2, scorer=judge, examples=TRAIN, shots=2)
    return RecordFilter(
        spec=SST2, critic=critic, policy=policy or PolicyConfig(), agreement=agreement
    )


# -- dedup ----------------------------------------------------------------------


def test_each_duplicate_kind_is_rejected_with_its_reason() -> None:
    dedup = Deduplicator(train=[TRAIN[5].text], eval_texts=["an eval sentence about the cast ."])
    f = RecordFilter(spec=SST2, dedup=dedup)
    recs = [
        _rec(0, "An eval sentence about the CAST!"),  # eval leakage, after normalising
        _rec(1, TRAIN[0].text.upper()),  # its own anchor
        _rec(2, TRAIN[5].text),  # a training text
        _rec(3, "a brand new review ."),
        _rec(4, "A brand new review"),  # the one before it
    ]
    out = f.invoke(recs)
    assert [r.id for r in out.kept] == ["sst2-s0-000003"]
    reasons = {r.record.id: r.reasons for r in out.rejected}
    assert reasons == {
        "sst2-s0-000000": ["exact_eval"],
        "sst2-s0-000001": ["exact_anchor"],
        "sst2-s0-000002": ["exact_train"],
        "sst2-s0-000004": ["exact_synthetic"],
    }
    line = out.rejected[0].to_json_dict()
    assert line["reject"]["duplicate_of"] == "an eval sentence about the cast ."
    assert line["text"] == "An eval sentence about the CAST!"
    SyntheticRecord.model_validate({k: v for k, v in line.items() if k != "reject"})
    assert f.summary.dropped_by == {
        "exact_anchor": 1,
        "exact_eval": 1,
        "exact_synthetic": 1,
        "exact_train": 1,
    }
    assert (f.summary.input, f.summary.kept, f.summary.dropped) == (5, 1, 4)


def test_near_duplicates_use_the_embedding() -> None:
    def embed(texts: list[str]) -> list[list[float]]:
        # Two directions: texts about "cast" and everything else.
        return [[1.0, 0.0] if "cast" in t else [0.0, 1.0] for t in texts]

    dedup = Deduplicator(train=["the cast is great"], embed=embed, threshold=0.9)
    f = RecordFilter(spec=SST2, dedup=dedup)
    out = f.invoke([_rec(0, "what a cast, wow", anchors=[]), _rec(1, "a story", anchors=[])])
    assert [r.record.id for r in out.rejected] == ["sst2-s0-000000"]
    assert out.rejected[0].reasons == ["near_train"]
    assert out.rejected[0].similarity == pytest.approx(1.0)


def test_prime_adds_earlier_records_to_the_pool() -> None:
    f = RecordFilter(spec=SST2, dedup=Deduplicator())
    f.prime([_rec(0, "kept in an earlier run")])
    out = f.invoke([_rec(1, "Kept in an earlier run!")])
    assert out.rejected[0].reasons == ["exact_synthetic"]


# -- critic -----------------------------------------------------------------------


def test_critic_outcomes_follow_the_policy() -> None:
    f = _critic_filter()
    recs = [
        _rec(0, "a warm and funny film"),  # all good
        _rec(1, "zzz film the the of zzz"),  # garbled: dropped
        _rec(2, "a dull and flat film", label="positive", generated="negative"),
        _rec(3, "a dull film", label="positive", generated="positive"),  # wrong label
    ]
    out = f.invoke(recs)
    kept = {r.id: r for r in out.kept}
    assert [r.record.id for r in out.rejected] == ["sst2-s0-000001"]
    assert out.rejected[0].reasons == ["low_fluency"]
    assert out.rejected[0].record.critic is not None
    good = kept["sst2-s0-000000"]
    assert good.weight == 1.0 and good.flags == []
    assert good.critic is not None and good.critic.relabel_label == "positive"
    # generated and relabel both say negative: inconsistent and a disagreement.
    r2 = kept["sst2-s0-000002"]
    assert r2.flags == ["inconsistent_label", "label_disagreement"] and r2.weight == 0.5
    # generated agrees with the argmax: a majority, so only inconsistent.
    r3 = kept["sst2-s0-000003"]
    assert r3.flags == ["inconsistent_label"] and r3.weight == 0.5
    s = f.summary
    assert s.reasons == {"inconsistent_label": 2, "label_disagreement": 1, "low_fluency": 1}
    assert s.dropped_by == {"low_fluency": 1} and s.downweighted == 2
    assert s.critic_scored == 4
    assert s.relabel_agreement == pytest.approx(2 / 4)


def test_policy_can_drop_or_keep_each_rule() -> None:
    keep_all = PolicyConfig(
        low_fluency="keep", inconsistent_label="keep", label_disagreement="keep"
    )
    f = _critic_filter(keep_all)
    out = f.invoke([_rec(1, "zzz film zzz"), _rec(3, "a dull film")])
    assert not out.rejected
    assert [r.weight for r in out.kept] == [1.0, 1.0]
    assert out.kept[0].flags == ["low_fluency"]
    assert f.summary.flagged_kept == 2

    strict = PolicyConfig(inconsistent_label="drop")
    f = _critic_filter(strict)
    out = f.invoke([_rec(3, "a dull film")])
    assert out.rejected[0].reasons == ["inconsistent_label"] and not out.kept


@pytest.mark.parametrize(
    ("generated", "relabel", "rule", "flagged"),
    [
        ("positive", "positive", "all", False),
        ("positive", "negative", "all", True),
        ("positive", "negative", "majority", False),
        ("negative", "negative", "majority", True),
        ("negative", None, "majority", True),  # two signals, split
        ("negative", "negative", "off", False),
    ],
)
def test_agreement_rules(generated: str, relabel: str | None, rule: str, flagged: bool) -> None:
    rec = _rec(0, "x", label="positive", generated=generated)
    scores = CriticScores(relabel_label=relabel)
    assert disagreement(rec, scores, rule) is flagged


def test_judge_prompts_hold_real_and_corrupted_shots() -> None:
    p = JudgePrompts(spec=SST2, shots=TRAIN[:1], seed=0)
    fluency = p.fluency("new text")
    assert fluency.endswith("Text: new text\nFluent movie review:")
    assert f"Text: {TRAIN[0].text}\nFluent movie review: yes" in fluency
    assert fluency.count(": no") == 1
    consistency = p.consistency("new text", "negative")
    assert consistency.endswith("Movie review: new text\nSentiment negative?")
    assert "Sentiment positive? yes" in consistency and "Sentiment negative? no" in consistency
    relabel = p.relabel("new {text}")
    assert relabel.endswith("Movie review: new {text} (Sentiment:")


def test_shuffled_words_changes_the_order_only() -> None:
    text = "one two three four five"
    out = shuffled_words(text, random.Random(0))
    assert out != text and sorted(out.split()) == sorted(text.split())


def test_critic_on_a_chat_model_reads_first_token_logprobs() -> None:
    def answer(tok: str, probs: dict[str, float]) -> AIMessage:
        return AIMessage(
            content=tok,
            response_metadata={"logprobs": chat_logprobs([(tok, probs)])},
        )

    llm = fake_chat(
        [
            answer("Yes", {"Yes": 0.6, "yes": 0.2, "No": 0.2}),
            answer("No", {"No": 0.7, "Yes": 0.3}),
            answer(" positive", {" positive": 0.75, " negative": 0.25}),
        ]
    )
    critic = build_critic_chain(llm, SST2, scorer=None, shots=0)
    scores = critic.batch([{"text": "a fine film", "label": "positive"}], {"max_concurrency": 1})
    (sc,) = scores
    values = sorted([sc.fluency, sc.consistency])  # branch order is not fixed
    assert values == pytest.approx([0.3, 0.8])
    assert sc.relabel == pytest.approx({"positive": 0.75, "negative": 0.25})


def test_unknown_critic_check_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown critic checks"):
        build_critic_chain(None, SST2, scorer=RuleJudge(), checks=["grammar"])


# -- judge check maths ------------------------------------------------------------


def test_auroc_and_best_threshold() -> None:
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.1], [0.9]) == 0.0
    assert auroc([0.5], [0.5]) == 0.5
    assert auroc([0.9, 0.3], [0.5, 0.1]) == 0.75
    t = best_threshold([0.9, 0.8, 0.7], [0.1, 0.2, 0.75])
    assert 0.2 < t <= 0.7
    assert best_threshold([0.6, 0.7], [0.2, 0.3]) == pytest.approx(0.45)


def test_check_judge_measures_separation_on_held_out_examples() -> None:
    judge = RuleJudge()
    held = [
        Example(text=f"{w} story {i} zz", label=_sentiment(w))
        for i, w in enumerate(["warm", "dull", "bright", "flat"])
    ]
    # The rule judge calls a text garbled only with "zzz": shuffles stay fluent, so
    # fluency can't separate (AUROC 0.5) while consistency and relabel are perfect.
    check = check_judge(None, SST2, held, scorer=judge, shots=TRAIN[:2])
    assert check.examples == 4
    assert check.fluency_auroc == 0.5
    assert check.consistency_auroc == 1.0
    assert check.relabel_accuracy == 1.0
    assert check.consistency_threshold is not None and 0.2 < check.consistency_threshold <= 0.8


def test_build_record_filter_fits_auto_thresholds() -> None:
    cfg = FilterConfig.model_validate(
        {"dedup": {"near": False}, "critic": {"enabled": True, "shots": 1, "validation": 4}}
    )
    judge = RuleJudge()
    train = TRAIN * 2
    f = build_record_filter(cfg, SST2, train, llm=None, scorer=judge, embed=None)
    assert f.summary.judge is not None and f.summary.judge.examples == 4
    assert f.summary.thresholds["min_consistency"] == f.summary.judge.consistency_threshold
    assert f.critic is not None and f.dedup is not None
    # The rule judge can't tell shuffled text (AUROC 0.5): that rule is switched off.
    assert f.summary.disabled_rules == ["low_fluency"]
    assert f.summary.thresholds["min_fluency"] == 0.0 and f.use_relabel
    out = f.invoke([_rec(7, "zzz film zzz")])
    assert out.kept and "low_fluency" not in out.kept[0].flags
    # A fixed threshold is the user's call: kept even though the judge is weak.
    fixed = cfg.model_copy(deep=True)
    fixed.critic.min_fluency = 0.5
    f2 = build_record_filter(fixed, SST2, train, llm=None, scorer=judge, embed=None)
    assert f2.summary.disabled_rules == [] and f2.min_fluency == 0.5


def test_a_weak_relabel_does_not_vote() -> None:
    cfg = FilterConfig.model_validate(
        {
            "dedup": {"enabled": False},
            "critic": {"enabled": True, "shots": 0, "validation": 4},
        }
    )

    class WrongRelabel(RuleJudge):
        def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
            if prefix.endswith("(Sentiment:"):  # relabel: always the opposite
                truth = _sentiment(prefix.split("\n")[-1])
                wrong = "positive" if truth == "negative" else "negative"
                probs = {" " + wrong: 0.9, " " + truth: 0.1}
                return [math.log(probs[c]) if c in probs else -math.inf for c in continuations]
            return super().score_continuations(prefix, continuations)

    f = build_record_filter(cfg, SST2, TRAIN * 2, llm=None, scorer=WrongRelabel(), embed=None)
    assert f.summary.judge is not None and f.summary.judge.relabel_accuracy == 0.0
    assert "relabel_vote" in f.summary.disabled_rules and not f.use_relabel
    # The relabel is not even run now; the checks that passed are.
    assert f.summary.critic_checks == ["consistency"]  # fluency: AUROC 0.5, off too
    # argmax positive, generated positive, relabel (if it ran) negative: with "all"
    # the relabel would flag it, but it has no vote.
    f.agreement = "all"
    out = f.invoke([_rec(0, "a fine film", generated="positive")])
    assert out.kept[0].critic is not None and out.kept[0].critic.relabel_label is None
    assert "label_disagreement" not in out.kept[0].flags
    # Generated and argmax still vote without a relabel.
    out = f.invoke([_rec(1, "a fine film", generated="negative")])
    assert "label_disagreement" in out.kept[0].flags


def test_checks_that_fail_are_not_run_but_agreement_still_counts() -> None:
    cfg = FilterConfig.model_validate(
        {
            "dedup": {"enabled": False},
            "critic": {"enabled": True, "shots": 0, "validation": 4, "min_auroc": 1.0},
        }
    )

    class Coin(RuleJudge):
        def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
            # Every question and every relabel answered 50/50: nothing to measure.
            self.prefixes.append(prefix)
            return [math.log(0.5)] * len(continuations)

    judge = Coin()
    f = build_record_filter(cfg, SST2, TRAIN * 2, llm=None, scorer=judge, embed=None)
    assert set(f.summary.disabled_rules) == {"low_fluency", "inconsistent_label", "relabel_vote"}
    assert f.critic is None and f.summary.critic_checks == []
    calls = len(judge.prefixes)
    out = f.invoke([_rec(0, "a fine film", generated="negative"), _rec(1, "a fine film x")])
    assert len(judge.prefixes) == calls  # no model call for switched-off checks
    assert out.kept[0].critic is None and out.kept[0].flags == ["label_disagreement"]
    assert out.kept[0].weight == 0.5 and out.kept[1].flags == []


def test_records_with_unknown_labels_are_refused() -> None:
    f = RecordFilter(spec=get_spec("trec6"), dedup=Deduplicator())
    with pytest.raises(DataError, match="does not know"):
        f.invoke([_rec(0, "x")])


# -- inside augment ---------------------------------------------------------------


def test_augment_replaces_rejected_records_and_reports_them() -> None:
    texts = ["same words here", "same words here", TRAIN[3].text, "fresh one", "fresh two"]
    replies = [labelled_reply(t, "positive", {" positive": 0.7, " negative": 0.2}) for t in texts]
    rejected: list[str] = []
    f = RecordFilter(spec=SST2, dedup=Deduplicator(train=[e.text for e in TRAIN]))
    res = augment(
        TRAIN,
        SST2,
        fake_chat(replies),
        n=3,
        batch_size=1,
        record_filter=f,
        on_reject=lambda rs: rejected.extend(r.reasons[0] for r in rs),
    )
    assert [r.text for r in res.records] == ["same words here", "fresh one", "fresh two"]
    assert sorted(rejected) == ["exact_synthetic", "exact_train"]
    assert res.rejected == 2
    ids = [r.id for r in res.records]
    assert ids == ["sst2-s0-000000", "sst2-s0-000003", "sst2-s0-000004"]
    summary = res.summary(
        task="sst2", model="m", seed=0, k=2, strategy="random", requested=3, output="o"
    )
    assert summary.rejected == 2 and summary.filter is not None
    assert summary.filter["dropped_by"] == {"exact_synthetic": 1, "exact_train": 1}


def test_fit_thresholds_follows_the_judge_check_without_a_model() -> None:
    from mixaug.chains.critic import JudgeCheck
    from mixaug.config import CriticConfig
    from mixaug.filtering import fit_thresholds

    good = JudgeCheck(examples=20, fluency_auroc=0.9, fluency_threshold=0.42,
                      consistency_auroc=0.55, consistency_threshold=0.6,
                      relabel_accuracy=0.9)  # fmt: skip
    t = fit_thresholds(CriticConfig(enabled=True), good, 2)
    assert t.min_fluency == 0.42  # measured well: the fitted cut-off
    assert t.min_consistency == 0.0  # AUROC below min_auroc: off, and said so
    assert t.disabled_rules == ["inconsistent_label"] and t.use_relabel
    # A value set in the config wins; a judge that relabels worse than the floor is off.
    weak = good.model_copy(update={"relabel_accuracy": 0.7})  # floor (1 + 1/2) / 2 = 0.75
    t = fit_thresholds(CriticConfig(enabled=True, min_consistency=0.3), weak, 2)
    assert t.min_consistency == 0.3 and not t.use_relabel
    assert t.disabled_rules == ["relabel_vote"]
    # Unmeasured (no held-out examples): every auto rule off.
    assert fit_thresholds(CriticConfig(enabled=True), None, 6).disabled_rules == [
        "low_fluency", "inconsistent_label", "relabel_vote"]  # fmt: skip
