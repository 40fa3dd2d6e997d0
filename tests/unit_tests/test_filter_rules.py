"""A new filter rule is one class: the filter runs it in order with the critic's rules, and
the policy's ``rules`` map says what happens to what it flags."""

from __future__ import annotations

from typing import ClassVar

import pytest
from fakes import REVIEWS

from mixaug import Example, SyntheticRecord, get_spec
from mixaug.config import FilterConfig, PolicyConfig
from mixaug.filter_rules import (
    CRITIC_REASONS,
    InconsistentLabel,
    LabelDisagreement,
    LowFluency,
    Rule,
    critic_rules,
)
from mixaug.filtering import RecordFilter
from mixaug.records import CriticScores

SST2 = get_spec("sst2")
ANCHORS = [Example(text=t, label=lab) for t, lab in REVIEWS[:2]]


class TooShort(Rule):
    """Fewer than ``min_words`` words."""

    reason: ClassVar[str] = "too_short"
    min_words: int = 3

    def applies(self, record: SyntheticRecord, scores: CriticScores | None) -> bool:
        return len(record.text.split()) < self.min_words


def _rec(i: int, text: str, generated: str = "positive") -> SyntheticRecord:
    return SyntheticRecord(
        id=f"sst2-s0-{i:06d}", text=text, label="positive",
        soft_label={"positive": 0.8, "negative": 0.2}, generated_label=generated,
        label_mass=0.9, anchors=ANCHORS, anchor_strategy="random", model="fake",
        prompt_hash="0" * 16, seed=0, task="sst2", soft_label_source="inline",
    )  # fmt: skip


RECORDS = [
    _rec(0, "a warm and funny film"),
    _rec(1, "great fun"),  # too short
    _rec(2, "short , labelled negative", generated="negative"),  # label signals disagree
    _rec(3, "ok", generated="negative"),  # both
]


def test_the_critic_rules_are_three_classes_with_their_defaults() -> None:
    assert CRITIC_REASONS == ("low_fluency", "inconsistent_label", "label_disagreement")
    low, inconsistent, disagree = critic_rules(min_fluency=0.3, agreement="all")
    assert isinstance(low, LowFluency) and low.min_fluency == 0.3
    assert isinstance(inconsistent, InconsistentLabel)
    assert isinstance(disagree, LabelDisagreement) and disagree.agreement == "all"
    scores = CriticScores(fluency=0.2, consistency=0.9)
    assert low.applies(RECORDS[0], scores) and not inconsistent.applies(RECORDS[0], scores)
    assert not low.applies(RECORDS[0], None)  # no critic ran


@pytest.mark.parametrize(
    ("action", "kept", "dropped"),
    [
        ("drop", ["sst2-s0-000000", "sst2-s0-000002"], 2),
        ("keep", [f"sst2-s0-00000{i}" for i in range(4)], 0),
    ],
)
def test_a_new_rule_runs_under_the_policy(action: str, kept: list[str], dropped: int) -> None:
    f = RecordFilter(
        spec=SST2,
        rules=[*critic_rules(), TooShort()],
        policy=PolicyConfig(rules={"too_short": action}),
    )
    out = f.invoke(RECORDS)
    assert [r.id for r in out.kept] == kept
    assert f.summary.dropped == dropped
    assert f.summary.reasons["too_short"] == 2
    # The critic's own rule still down-weights (its default policy), flagged and counted.
    disagreeing = next(r for r in out.kept if r.id == "sst2-s0-000002")
    assert disagreeing.weight == 0.5 and "label_disagreement" in disagreeing.flags
    if action == "drop":
        both = next(r for r in out.rejected if r.record.id == "sst2-s0-000003")
        assert both.reasons == ["label_disagreement", "too_short"]
        assert f.summary.dropped_by == {"too_short": 2}
    else:
        assert "too_short" in next(r for r in out.kept if r.id == "sst2-s0-000001").flags


def test_a_rule_without_a_policy_entry_takes_its_default_action() -> None:
    f = RecordFilter(spec=SST2, rules=[TooShort()])  # TooShort's default: drop
    out = f.invoke(RECORDS)
    assert [r.id for r in out.kept] == ["sst2-s0-000000", "sst2-s0-000002"]


def test_policy_rules_are_checked_in_config() -> None:
    cfg = FilterConfig.model_validate({"policy": {"rules": {"too_short": "downweight"}}})
    assert cfg.policy.action("too_short") == "downweight"
    assert cfg.policy.action("low_fluency") == "drop"
    with pytest.raises(ValueError, match="too_short"):
        FilterConfig.model_validate({"policy": {"rules": {"too_short": "delete"}}})
