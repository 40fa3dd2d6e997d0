"""SetFit for real (the packaged MiniLM encoder): alone, with records, and ``mixaug train``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fakes import REVIEWS, write_jsonl

from mixaug.cli import main
from mixaug.records import Example, SyntheticRecord

pytestmark = pytest.mark.integration
pytest.importorskip("setfit")

LABELS = ["negative", "positive"]
REAL = [Example(text=t, label=lab) for t, lab in REVIEWS]
TEST = [
    Example(text="a warm and lovely film with a great cast .", label="positive"),
    Example(text="a dull, lazy and boring sequel .", label="negative"),
    Example(text="the music and the story are wonderful .", label="positive"),
    Example(text="noisy, long and tedious from start to end .", label="negative"),
]


def _record(i: int, text: str, dist: dict[str, float]) -> SyntheticRecord:
    return SyntheticRecord(
        id=f"r{i}", text=text, label=max(dist, key=dist.__getitem__), soft_label=dist,
        generated_label=None, label_mass=1.0, anchors=[], anchor_strategy="targeted",
        model="m", prompt_hash="h", seed=0, task="sst2", soft_label_source="inline",
    )  # fmt: skip


RECORDS = [
    _record(0, "a joyous, clever comedy .", {"positive": 0.9, "negative": 0.1}),
    _record(1, "a tedious, joyless mess .", {"positive": 0.2, "negative": 0.8}),
    _record(2, "sharp writing and fine acting .", {"positive": 0.7, "negative": 0.3}),
    _record(3, "an awful film with terrible jokes .", {"positive": 0.1, "negative": 0.9}),
]


def test_setfit_alone_and_with_records_in_every_mode() -> None:
    from mixaug.baselines.setfit import (
        SETFIT_MODES,
        score_setfit,
        setfit_probs,
        setfit_scores,
        train_setfit,
    )

    body = train_setfit(REAL, labels=LABELS, seed=0, iterations=2)
    alone = score_setfit(body, TEST, LABELS, adjustment=[0.0, 0.0])
    assert set(alone) == {"accuracy", "macro_f1", "mcc", "examples", "adjusted"}
    assert alone["adjusted"] == {k: alone[k] for k in ("accuracy", "macro_f1", "mcc")}
    before = [p.detach().clone() for p in body.model_body.parameters()]
    probs_before = setfit_probs(body, [r.text for r in RECORDS], 2)
    head = train_setfit(REAL, labels=LABELS, records=RECORDS, mode="head", body=body)
    # The head modes reuse the tuned encoder as it is and leave the given model alone.
    for a, b in zip(before, head.model_body.parameters(), strict=True):
        assert bool((a == b).all())
    assert np.allclose(setfit_probs(body, [r.text for r in RECORDS], 2), probs_before)
    assert not np.allclose(setfit_probs(head, [r.text for r in RECORDS], 2), probs_before)
    for mode in SETFIT_MODES:
        scores = setfit_scores(
            REAL, TEST, labels=LABELS, records=RECORDS, mode=mode, seed=0, iterations=2
        )
        assert 0.0 <= scores["accuracy"] <= 1.0 and scores["examples"] == len(TEST)


def test_train_cli_with_the_setfit_classifier(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    test = write_jsonl(tmp_path / "test.jsonl", [e.model_dump() for e in TEST])
    syn = write_jsonl(tmp_path / "syn.jsonl", [r.model_dump(mode="json") for r in RECORDS])
    out = tmp_path / "model"
    args = ["train", "--train", str(train), "--synthetic", str(syn), "--test", str(test),
            "--task", "sst2", "--out", str(out), "--classifier", "setfit",
            "--setfit-iterations", "2"]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classifier"] == "setfit" and metrics["synthetic_examples"] == 4
    from setfit import SetFitModel

    model = SetFitModel.from_pretrained(str(out))  # loads with SetFit's own API
    assert set(model.predict([e.text for e in TEST])) <= set(LABELS)
    assert main(args) == 2  # never replaced without --overwrite
