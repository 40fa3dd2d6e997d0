"""Filter rules: each a class that says whether a record breaks it, named by its reason.

A :class:`~mixaug.filtering.RecordFilter` runs its rules in order on every record that
survived dedup and calibration; the policy (``reason -> drop | downweight | keep``)
decides what happens to a record a rule flags. A new rule is one class::

    class TooShort(Rule):
        reason: ClassVar[str] = "too_short"
        min_words: int = 3

        def applies(self, record, scores):
            return len(record.text.split()) < self.min_words

Example:
    >>> rules = critic_rules(min_fluency=0.5, min_consistency=0.5, agreement="majority")
    >>> [r.reason for r in rules]
    ['low_fluency', 'inconsistent_label', 'label_disagreement']
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from mixaug.records import CriticScores, SyntheticRecord

Action = Literal["drop", "downweight", "keep"]


class Rule(BaseModel):
    """One check of a record (and its critic scores, when a critic ran)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: ClassVar[str]
    """What a flagged record is flagged with (its rejects-file reason)."""
    default_action: ClassVar[Action] = "drop"
    """The action when the policy names none for :attr:`reason`."""

    def applies(self, record: SyntheticRecord, scores: CriticScores | None) -> bool:
        """Whether ``record`` breaks the rule."""
        raise NotImplementedError


class LowFluency(Rule):
    """The critic's fluency score is under ``min_fluency``."""

    reason: ClassVar[str] = "low_fluency"
    min_fluency: float = 0.5

    def applies(self, record: SyntheticRecord, scores: CriticScores | None) -> bool:
        """Whether the fluency score is below the threshold."""
        return (
            scores is not None
            and scores.fluency is not None
            and (scores.fluency < self.min_fluency)
        )


class InconsistentLabel(Rule):
    """The critic's label-consistency score is under ``min_consistency``."""

    reason: ClassVar[str] = "inconsistent_label"
    default_action: ClassVar[Action] = "downweight"
    min_consistency: float = 0.5

    def applies(self, record: SyntheticRecord, scores: CriticScores | None) -> bool:
        """Whether the consistency score is below the threshold."""
        return (
            scores is not None
            and scores.consistency is not None
            and (scores.consistency < self.min_consistency)
        )


class LabelDisagreement(Rule):
    """The label signals disagree (:func:`disagreement` under ``agreement``)."""

    reason: ClassVar[str] = "label_disagreement"
    default_action: ClassVar[Action] = "downweight"
    agreement: str = "majority"
    use_relabel: bool = True
    """Whether the zero-shot relabel votes."""

    def applies(self, record: SyntheticRecord, scores: CriticScores | None) -> bool:
        """Whether the signals fail the agreement rule."""
        if scores is not None and not self.use_relabel:
            scores = scores.model_copy(update={"relabel_label": None})
        return disagreement(record, scores, self.agreement)


def disagreement(record: SyntheticRecord, scores: CriticScores | None, rule: str) -> bool:
    """Whether the label signals fail ``rule`` (``majority`` or ``all``; ``off``: never).

    The signals are the soft-label argmax, the generated label and the zero-shot
    relabel, where present. ``majority``: more than half agree with the argmax;
    ``all``: every one does.
    """
    if rule == "off":
        return False
    signals = [record.label]
    if record.generated_label is not None:
        signals.append(record.generated_label)
    if scores is not None and scores.relabel_label is not None:
        signals.append(scores.relabel_label)
    if len(signals) < 2:
        return False
    agree = sum(s == record.label for s in signals)
    if rule == "all":
        return agree < len(signals)
    return agree * 2 <= len(signals)


def critic_rules(
    *,
    min_fluency: float = 0.5,
    min_consistency: float = 0.5,
    agreement: str = "majority",
    use_relabel: bool = True,
) -> list[Rule]:
    """The critic's three rules, in the order they are reported."""
    return [
        LowFluency(min_fluency=min_fluency),
        InconsistentLabel(min_consistency=min_consistency),
        LabelDisagreement(agreement=agreement, use_relabel=use_relabel),
    ]


CRITIC_REASONS: tuple[str, ...] = tuple(r.reason for r in critic_rules())
"""The reasons of the critic's rules."""
