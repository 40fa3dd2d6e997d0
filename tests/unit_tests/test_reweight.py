"""SunGen-style reweighting: mislabelled synthetic records lose weight."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fakes import REVIEWS

from mixaug.errors import DataError
from mixaug.records import Example, SyntheticRecord
from mixaug.training import SunGenConfig, TrainingArguments, sungen_reweight, sungen_weights


def _clusters(seed: int, n_syn: int = 60, flip: int = 12) -> tuple[Any, ...]:
    """Two classes around +mu / -mu; the first ``flip`` synthetic rows carry the wrong label."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=16)
    mu /= np.linalg.norm(mu)

    def draw(y: np.ndarray) -> np.ndarray:
        return np.where(y[:, None] == 1, mu, -mu) * 1.5 + rng.normal(size=(len(y), 16)) * 0.7

    real_y = np.array([0, 1] * 4)
    syn_y = rng.integers(0, 2, n_syn)
    syn_x = draw(syn_y)
    written = syn_y.copy()
    written[:flip] = 1 - written[:flip]
    return draw(real_y), real_y, syn_x, np.eye(2)[written]


def test_mislabelled_records_lose_weight() -> None:
    real_x, real_y, syn_x, targets = _clusters(0)
    w = sungen_weights(real_x, real_y, syn_x, targets)
    assert w.shape == (60,) and w.mean() == pytest.approx(1.0)
    assert (w >= 0).all()
    flipped, clean = w[:12].mean(), w[12:].mean()
    assert flipped < 0.6 * clean, (flipped, clean)
    # The search is deterministic for a seed.
    assert np.array_equal(w, sungen_weights(real_x, real_y, syn_x, targets))


def test_without_real_examples_the_robust_loss_alone_still_ranks() -> None:
    _, _, syn_x, targets = _clusters(1)
    w = sungen_weights(np.zeros((0, 16)), np.zeros(0, dtype=int), syn_x, targets)
    assert w[:12].mean() < w[12:].mean()


def test_bad_inputs_are_refused() -> None:
    real_x, real_y, syn_x, targets = _clusters(2)
    with pytest.raises(DataError, match="same, non-zero length"):
        sungen_weights(real_x, real_y, syn_x[:5], targets)
    with pytest.raises(DataError, match="differ in length"):
        sungen_weights(real_x, real_y[:3], syn_x, targets)
    with pytest.raises(DataError, match="outside"):
        sungen_weights(real_x, real_y + 5, syn_x, targets)
    with pytest.raises(ValueError):
        SunGenConfig(outer_steps=0)


def _record(i: int, text: str, label: str, weight: float = 1.0) -> SyntheticRecord:
    other = "negative" if label == "positive" else "positive"
    return SyntheticRecord(
        id=f"r{i}", text=text, label=label, soft_label={label: 0.9, other: 0.1},
        generated_label=label, label_mass=1.0, anchors=[], anchor_strategy="random",
        model="m", prompt_hash="h", seed=0, task="sst2", soft_label_source="inline",
        weight=weight,
    )  # fmt: skip


def test_sungen_reweight_multiplies_record_weights_and_keeps_the_rest() -> None:
    real = [Example(text=t, label=lab) for t, lab in REVIEWS]
    real_x, real_y, syn_x, targets = _clusters(3, n_syn=20, flip=4)
    labels = ["negative", "positive"]
    recs = [
        _record(i, f"text {i}", labels[int(t.argmax())], weight=2.0 if i == 5 else 1.0)
        for i, t in enumerate(targets)
    ]
    # Real examples get features of their label's cluster; records get theirs by text.
    lookup = {f"text {i}": syn_x[i] for i in range(20)}
    centre = {lab: real_x[real_y == j].mean(axis=0) for j, lab in enumerate(labels)}
    lookup |= {e.text: centre[e.label] for e in real}
    seen: list[list[str]] = []

    def features(texts: list[str]) -> np.ndarray:
        seen.append(texts)
        return np.stack([lookup[t] for t in texts])

    out = sungen_reweight(real, recs, labels, features)
    assert seen == [[e.text for e in real] + [r.text for r in recs]]  # one call, in order
    assert [r.text for r in out] == [r.text for r in recs]
    assert [r.soft_label for r in out] == [r.soft_label for r in recs]
    alone = sungen_reweight(real, [r.model_copy(update={"weight": 1.0}) for r in recs],
                            labels, features)  # fmt: skip
    assert out[5].weight == pytest.approx(2.0 * alone[5].weight)  # multiplied, not replaced
    assert np.mean([r.weight for r in alone]) == pytest.approx(1.0)
    assert np.mean([r.weight for r in alone[:4]]) < np.mean([r.weight for r in alone[4:]])
    assert sungen_reweight(real, [], labels, features) == []
    with pytest.raises(DataError, match="outside"):
        sungen_reweight([Example(text="x", label="neutral")], recs, labels, features)


def test_the_recipe_reweights_its_records_when_asked() -> None:
    from fakes import fake_chat
    from test_effect import _replies

    from mixaug import get_spec
    from mixaug.augmentation import augment
    from mixaug.config import LabelMixConfig
    from mixaug.lmscores import LMScores
    from mixaug.recipe import RecipeConfig, run_recipe

    real = [Example(text=t, label=lab) for t, lab in REVIEWS]
    val = [Example(text=f"{t} again", label=lab) for t, lab in REVIEWS] * 2
    spec = get_spec("sst2")
    pool = augment(real, spec, fake_chat(_replies(["positive", "negative"] * 6)), n=12).records
    flat = lambda items: LMScores(np.log(np.full((len(items), 2), 0.5)))  # noqa: E731
    forced = {"fallback": False, "teachers": [], "calibrations": ["none"], "ratios": [5.0],
              "weights": [1.0], "sharpen": [1.0], "priors": ["real"], "quotas": False,
              "guard": False, "search": "validation",
              "labeller": LabelMixConfig(calibration="none", teacher="none")}  # fmt: skip
    weights = {}
    for how in ("none", "sungen"):
        cfg = RecipeConfig(reweight=how, **forced)
        recs = run_recipe(real, val, pool, llm=None, spec=spec, config=cfg, score=flat).records
        assert recs
        weights[how] = [r.weight for r in recs]
    # The search trains on frozen features, but the caller's fine-tuning settings come back.
    full = TrainingArguments(epochs=3, patience=2, learning_rate=2e-5)
    result = run_recipe(real, val, pool, llm=None, spec=spec, config=RecipeConfig(**forced),
                        training=full, score=flat)  # fmt: skip
    assert result.training.freeze_encoder is False
    assert result.training.learning_rate == 2e-5 and result.training.synthetic_weight == 1.0
    frozen = run_recipe(real, val, pool, llm=None, spec=spec, config=RecipeConfig(**forced),
                        score=flat).training  # fmt: skip
    assert frozen.freeze_encoder is True  # the recipe's own default
    assert set(weights["none"]) == {1.0}
    assert len(set(weights["sungen"])) > 1
    assert np.mean(weights["sungen"]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        RecipeConfig(reweight="magic")  # type: ignore[arg-type]


def test_bench_runs_the_recipe_with_sungen_as_mix_sungen() -> None:
    from mixaug.bench import VARIANTS, all_methods
    from mixaug.bench.runner import RECIPE_METHODS, method_family, recipe_config

    assert "mix-sungen" in VARIANTS and "mix-sungen" in all_methods()
    assert "mix-sungen" in RECIPE_METHODS and method_family("mix-sungen") == "mix"
    assert recipe_config("mix-sungen").reweight == "sungen"
    assert recipe_config("mix-soft").reweight == "none"
