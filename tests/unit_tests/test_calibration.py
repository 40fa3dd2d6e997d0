import math
import random

import pytest

from mixaug import DataError
from mixaug.calibration import (
    accuracy,
    contextual_calibrate,
    expected_calibration_error,
    fit_temperature,
    nll,
    temperature_scale,
)


def test_contextual_calibration_removes_the_prior() -> None:
    prior = {"pos": 0.75, "neg": 0.25}
    # A text the model rates exactly at its prior becomes uniform.
    assert contextual_calibrate(prior, prior) == pytest.approx({"pos": 0.5, "neg": 0.5})
    # By hand: (0.6/0.75, 0.4/0.25) = (0.8, 1.6) -> (1/3, 2/3).
    assert contextual_calibrate({"pos": 0.6, "neg": 0.4}, prior) == pytest.approx(
        {"pos": 1 / 3, "neg": 2 / 3}
    )
    with pytest.raises(DataError, match="differ"):
        contextual_calibrate({"pos": 1.0}, {"neg": 1.0})


def test_temperature_scaling() -> None:
    d = {"a": 0.8, "b": 0.2}
    assert temperature_scale(d, 1.0) == pytest.approx(d)
    # T = 2: p ∝ sqrt(p) -> (0.894, 0.447) normalised.
    assert temperature_scale(d, 2.0)["a"] == pytest.approx(
        math.sqrt(0.8) / (math.sqrt(0.8) + math.sqrt(0.2))
    )
    assert temperature_scale(d, 0.5)["a"] == pytest.approx(0.64 / 0.68)
    with pytest.raises(DataError, match="positive"):
        temperature_scale(d, 0.0)


def test_fit_temperature_recovers_a_known_temperature() -> None:
    rng = random.Random(0)
    true_t = 3.0
    dists, labels = [], []
    for _ in range(3000):
        # Calibrated probabilities q, then an overconfident model reports q^(true_t).
        q = rng.uniform(0.05, 0.95)
        labels.append("a" if rng.random() < q else "b")
        dists.append(temperature_scale({"a": q, "b": 1 - q}, 1 / true_t))
    t = fit_temperature(dists, labels)
    assert t == pytest.approx(true_t, rel=0.1)
    fixed = [temperature_scale(d, t) for d in dists]
    assert nll(fixed, labels) < nll(dists, labels)
    assert expected_calibration_error(fixed, labels) < expected_calibration_error(dists, labels)


def test_ece_by_hand() -> None:
    # Two predictions at 0.9 confidence, one right one wrong: |0.5 - 0.9| = 0.4 on all of them.
    dists = [{"a": 0.9, "b": 0.1}, {"a": 0.9, "b": 0.1}]
    assert expected_calibration_error(dists, ["a", "b"]) == pytest.approx(0.4)
    assert accuracy(dists, ["a", "b"]) == 0.5
    # Perfectly calibrated at 0.75: 3 of 4 right.
    d = [{"a": 0.75, "b": 0.25}] * 4
    assert expected_calibration_error(d, ["a", "a", "a", "b"]) == pytest.approx(0.0)
    with pytest.raises(DataError):
        expected_calibration_error([], [])
