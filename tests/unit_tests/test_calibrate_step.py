"""The calibration chain step on a scorer with a known bias."""

from __future__ import annotations

import math

import pytest

from mixaug import DataError, Example, SyntheticRecord, get_spec
from mixaug.chains import CalibrationStep, SoftLabelCalibrator

SST2 = get_spec("sst2")


class BiasedScorer:
    """p(positive) = sigmoid(bias + signal): the model leans positive by ``bias``."""

    def __init__(self, bias: float = 2.5) -> None:
        self.bias = bias
        self.prefixes: list[str] = []

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        self.prefixes.append(prefix)
        text = prefix.rsplit("Movie review:", 1)[1].rsplit("(Sentiment:", 1)[0]
        signal = 2.0 * text.count("good") - 2.0 * text.count("bad")
        p = 1 / (1 + math.exp(-(self.bias + signal)))
        table = {" positive": math.log(p), " negative": math.log(1 - p)}
        return [table.get(c, -math.inf) for c in continuations]


POOL = [Example(text=f"a good film {i}", label="positive") for i in range(5)] + [
    Example(text=f"a bad film {i}", label="negative") for i in range(5)
]
# Weakly negative texts the biased model gets wrong: signal -2 + 2.5 bias = slightly positive.
REAL = [Example(text=f"bad but watchable {i}", label="negative") for i in range(6)] + [
    Example(text=f"good fun {i}", label="positive") for i in range(6)
]


def test_contextual_calibration_fixes_the_bias() -> None:
    cal = SoftLabelCalibrator(spec=SST2, method="contextual")
    report = cal.fit(BiasedScorer(), REAL, POOL)
    assert report.accuracy_raw == 0.5  # every weak negative is read as positive
    assert report.accuracy_contextual == 1.0
    assert report.ece_contextual < report.ece_raw
    assert report.temperature == 1.0  # contextual only: nothing fitted


def test_scoring_prefixes_follow_the_paper_format() -> None:
    scorer = BiasedScorer()
    SoftLabelCalibrator(spec=SST2).score_examples(scorer, REAL[:1], POOL)
    text_prefix, cf_prefix = scorer.prefixes[0], scorer.prefixes[-1]
    assert text_prefix.endswith("Movie review: bad but watchable 0 (Sentiment:")
    assert cf_prefix.endswith("Movie review: N/A (Sentiment:")
    assert text_prefix.count("\n") == cf_prefix.count("\n") == 3  # header + 2 anchors + item


def test_both_fits_a_temperature_and_reports() -> None:
    cal = SoftLabelCalibrator(spec=SST2, method="both")
    report = cal.fit(BiasedScorer(bias=0.0), REAL, POOL)
    assert report.temperature != 1.0
    assert cal.temperature == pytest.approx(report.temperature, abs=1e-4)
    assert report.ece_calibrated <= report.ece_contextual + 1e-9


def _record(soft: dict[str, float]) -> SyntheticRecord:
    return SyntheticRecord(
        id="r1",
        text="bad but fine",
        label=max(soft, key=lambda k: soft[k]),
        soft_label=soft,
        generated_label="negative",
        label_mass=0.9,
        anchors=POOL[:1] + POOL[5:6],
        anchor_strategy="random",
        model="m",
        prompt_hash="h",
        seed=0,
        task="sst2",
        soft_label_source="inline",
    )


def test_step_calibrates_records_and_keeps_the_raw_label() -> None:
    scorer = BiasedScorer()
    step = CalibrationStep(
        calibrator=SoftLabelCalibrator(spec=SST2, method="contextual"), scorer=scorer
    )
    rec = _record({"positive": 0.6, "negative": 0.4})
    out = step.invoke(rec)
    assert out.soft_label_raw == {"positive": 0.6, "negative": 0.4}
    assert out.label == "negative" and sum(out.soft_label.values()) == pytest.approx(1.0)
    # Applying twice starts again from the raw label (idempotent).
    assert step.invoke(out).soft_label == pytest.approx(out.soft_label)
    SyntheticRecord.model_validate(out.model_dump())


def test_bad_inputs() -> None:
    step = CalibrationStep(calibrator=SoftLabelCalibrator(spec=SST2, method="contextual"))
    with pytest.raises(DataError, match="needs a scorer"):
        step.invoke(_record({"positive": 0.6, "negative": 0.4}))
    with pytest.raises(DataError, match="outside task"):
        SoftLabelCalibrator(spec=SST2).fit(BiasedScorer(), [Example(text="x", label="meh")], POOL)
    with pytest.raises(DataError, match="differ"):
        CalibrationStep(calibrator=SoftLabelCalibrator(spec=SST2, method="temperature")).invoke(
            _record({"positive": 0.6, "neutral": 0.4})
        )
