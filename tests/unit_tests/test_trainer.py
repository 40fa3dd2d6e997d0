"""The classifier and trainer on a tiny CPU run; metrics and datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fakes import REVIEWS

from mixaug import Example, SyntheticRecord
from mixaug.errors import DataError, ModelError
from mixaug.training import (
    TextClassifier,
    TextDataset,
    Trainer,
    TrainingArguments,
    accuracy,
    macro_f1,
)

LABELS = ["negative", "positive"]
REAL = [Example(text=t, label=lab) for t, lab in REVIEWS]


def _syn(
    text: str, p_pos: float, weight: float = 1.0, generated: str | None = None
) -> SyntheticRecord:
    soft = {"positive": p_pos, "negative": 1 - p_pos}
    return SyntheticRecord(
        id="x",
        text=text,
        label=max(soft, key=lambda k: soft[k]),
        soft_label=soft,
        generated_label=generated,
        label_mass=1.0,
        anchors=[],
        anchor_strategy="random",
        model="m",
        prompt_hash="0",
        seed=0,
        task="sst2",
        soft_label_source="inline",
        weight=weight,
    )


def test_metrics() -> None:
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75
    # class 0: tp 2 fp 0 fn 1 -> 0.8; class 1: tp 1 fp 1 fn 0 -> 2/3
    assert macro_f1([0, 1, 1, 0], [0, 1, 0, 0], n_classes=2) == pytest.approx((0.8 + 2 / 3) / 2)
    assert macro_f1([0, 0], [0, 0], n_classes=3) == 1.0  # absent classes are skipped


def test_dataset_soft_hard_and_weights() -> None:
    ds = TextDataset.build(
        REAL[:1], [_syn("s", 0.7, weight=0.5, generated="negative")], labels=LABELS
    )
    assert ds.targets == [[0.0, 1.0], [pytest.approx(0.3), 0.7]]
    assert ds.weights == [1.0, 0.5] and ds.synthetic == [False, True]
    hard = TextDataset.build(
        REAL[:1],
        [_syn("s", 0.7, generated="negative"), _syn("t", 0.9, generated=None)],
        labels=LABELS,
        hard_synthetic=True,
    )
    assert hard.targets == [[0.0, 1.0], [1.0, 0.0]]  # generated label; None skipped
    with pytest.raises(DataError, match="not one of the classifier's labels"):
        TextDataset.build([Example(text="x", label="neutral")], labels=LABELS)


@pytest.fixture(scope="module")
def tiny_model() -> TextClassifier:
    return TextClassifier.from_encoder(None, LABELS, max_length=16)


def _fresh(tiny_model: TextClassifier) -> TextClassifier:
    model = TextClassifier(tiny_model.encoder, tiny_model.tokenizer, tiny_model.config)
    model.load_state_dict({k: v.clone() for k, v in tiny_model.state_dict().items()})
    return model


def test_two_step_training_run_is_deterministic_and_saves(
    tiny_model: TextClassifier, tmp_path: Path
) -> None:
    train = TextDataset.build(REAL, [_syn("a fine, fun film", 0.8)], labels=LABELS)
    val = TextDataset.build(REAL[:4], labels=LABELS)
    args = TrainingArguments(max_steps=2, batch_size=4, eval_every=1, seed=3, learning_rate=1e-4)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = TextClassifier.from_encoder(None, LABELS, max_length=16)
        out = Trainer(model, args, train, val).train()
        runs.append((out, model))
    (a, ma), (b, mb) = runs
    assert a.steps == 2 and len(a.history) == 2
    assert a.history == b.history  # same seed, same losses
    before = Trainer(ma, args).evaluate(val)
    assert set(before) == {"accuracy", "macro_f1", "mcc", "loss", "examples"}
    assert before["examples"] == 4
    ma.save(tmp_path / "clf")
    assert not list((tmp_path / "clf").rglob("*.bin")) and not list(
        (tmp_path / "clf").rglob("*.pt")
    )
    loaded = TextClassifier.load(tmp_path / "clf")
    texts = [t for t, _ in REVIEWS]
    got = [p for row in loaded.predict_proba(texts) for p in row]
    want = [p for row in ma.predict_proba(texts) for p in row]
    assert got == pytest.approx(want, abs=1e-5)
    assert Trainer(loaded, args).evaluate(val) == before


def test_frozen_encoder_learns_the_tiny_set(tiny_model: TextClassifier) -> None:
    model = _fresh(tiny_model)
    enc_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    train = TextDataset.build(REAL, labels=LABELS)
    args = TrainingArguments(freeze_encoder=True, epochs=60, batch_size=8, seed=0)
    trainer = Trainer(model, args, train)
    first = trainer.evaluate(train)["loss"]
    trainer.train()
    after = trainer.evaluate(train)
    assert after["loss"] < first and after["accuracy"] == 1.0
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, enc_before[k])


def test_early_stopping_restores_the_best_weights(tiny_model: TextClassifier) -> None:
    model = _fresh(tiny_model)
    train = TextDataset.build(REAL, labels=LABELS)
    # Validate on flipped labels: the better it fits train, the worse validation gets.
    flipped = [Example(text=e.text, label=LABELS[1 - LABELS.index(e.label)]) for e in REAL]
    val = TextDataset.build(flipped, labels=LABELS)
    args = TrainingArguments(freeze_encoder=True, epochs=50, batch_size=8, patience=2, seed=0)
    trainer = Trainer(model, args, train, val)
    out = trainer.train()
    assert out.stopped_early and out.steps < 50
    assert trainer.evaluate()["loss"] == pytest.approx(out.best_eval_loss, abs=1e-4)


def test_mismatched_labels_and_bad_folders_are_refused(
    tiny_model: TextClassifier, tmp_path: Path
) -> None:
    other = TextDataset.build([Example(text="x", label="HUM")], labels=["HUM", "LOC"])
    with pytest.raises(DataError, match="same label list"):
        Trainer(tiny_model, TrainingArguments(), other)
    with pytest.raises(ModelError, match="is empty|not a local Hugging Face model folder"):
        TextClassifier.from_encoder(tmp_path, LABELS)
    with pytest.raises(ModelError, match="not a saved mixaug classifier"):
        TextClassifier.load(tmp_path)


def test_shared_feature_cache_encodes_once_and_changes_nothing(
    tiny_model: TextClassifier,
) -> None:
    from mixaug.training import FeatureCache

    train = TextDataset.build(REAL, labels=LABELS)
    val = TextDataset.build(REAL[:6], labels=LABELS)
    args = TrainingArguments(freeze_encoder=True, epochs=5, batch_size=8, seed=0)

    def run(cache: FeatureCache | None) -> tuple[dict[str, float], list[list[float]]]:
        torch.manual_seed(0)
        trainer = Trainer(_fresh(tiny_model), args, train, val, feature_cache=cache)
        trainer.train()
        # A new dataset object with the same texts still hits the shared cache.
        again = TextDataset.build(REAL[:6], labels=LABELS)
        return trainer.evaluate(again), trainer.predict_proba(again)

    plain = run(None)
    cache = FeatureCache()
    first = run(cache)
    assert cache.misses == 2 and cache.hits == 1  # train, val; then val again
    second = run(cache)
    assert cache.misses == 2 and cache.hits == 4  # nothing re-encoded
    assert first == second == plain
    # Other encoder weights are another key: never served stale features.
    changed = _fresh(tiny_model)
    with torch.no_grad():
        next(changed.encoder.parameters()).add_(0.01)
    Trainer(changed, args, train, val, feature_cache=cache).evaluate(val)
    assert cache.misses == 3
    small = FeatureCache(max_entries=1)
    Trainer(_fresh(tiny_model), args, train, val, feature_cache=small).evaluate(val)
    Trainer(_fresh(tiny_model), args, train, val, feature_cache=small).evaluate(train)
    assert len(small) == 1


def test_mcc_matches_its_definition_and_is_zero_for_a_constant_prediction() -> None:
    from mixaug.training import mcc

    assert mcc([1, 1, 1, 1], [1, 0, 1, 1], n_classes=2) == 0.0  # the majority class
    assert mcc([0, 1, 0, 1], [0, 1, 0, 1], n_classes=2) == pytest.approx(1.0)
    assert mcc([1, 0, 1, 0], [0, 1, 0, 1], n_classes=2) == pytest.approx(-1.0)
    # Binary: (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)), tp=2 tn=1 fp=1 fn=1.
    pred, gold = [1, 1, 1, 0, 0], [1, 1, 0, 1, 0]
    expected = (2 * 1 - 1 * 1) / ((3 * 3 * 2 * 2) ** 0.5)
    assert mcc(pred, gold, n_classes=2) == pytest.approx(expected)
    # Three classes: 1 for a perfect prediction, whatever the labels' names.
    assert mcc([2, 0, 1, 2], [2, 0, 1, 2], n_classes=3) == pytest.approx(1.0)


def test_evaluate_with_an_adjustment_moves_predictions_to_the_favoured_class(
    tmp_path: Path,
) -> None:
    from mixaug.training import TextClassifier, TextDataset, Trainer, TrainingArguments

    ex = [Example(text=t, label=lab) for t, lab in [("good", "pos"), ("bad", "neg")] * 4]
    ds = TextDataset.build(ex, labels=["neg", "pos"])
    model = TextClassifier.from_encoder(None, ["neg", "pos"], share_encoder=True)
    trainer = Trainer(model, TrainingArguments(freeze_encoder=True, epochs=1), ds, ds)
    trainer.train()
    plain = trainer.evaluate(ds)
    assert set(plain) == {"accuracy", "macro_f1", "mcc", "loss", "examples"}
    pushed = trainer.evaluate(ds, adjustment=[0.0, 1e4])  # everything becomes "pos"
    assert pushed["accuracy"] == 0.5 and pushed["mcc"] == 0.0
