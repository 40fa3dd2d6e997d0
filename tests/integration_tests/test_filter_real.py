"""``mixaug filter`` with the critic and calibration on a real embedded model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import REVIEWS, write_jsonl

from mixaug.cli import main

pytestmark = pytest.mark.integration

TEXTS = [
    ("a sharp, funny and humane film .", "positive"),
    ("film the a of and . , the", "positive"),
    ("a tedious mess with no story at all .", "negative"),
    ("a tedious mess with no story at all !", "negative"),
    ("the actors are wonderful and the ending soars .", "negative"),
]


def test_filter_with_critic_and_calibration(smollm2: str, tmp_path: Path) -> None:
    train = write_jsonl(
        tmp_path / "train.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS * 2]
    )
    rows = []
    for i, (text, label) in enumerate(TEXTS):
        other = "negative" if label == "positive" else "positive"
        rows.append(
            {
                "id": f"sst2-s0-{i:06d}",
                "text": text,
                "label": label,
                "soft_label": {label: 0.7, other: 0.3},
                "generated_label": label,
                "label_mass": 0.9,
                "anchors": [{"text": t, "label": lab} for t, lab in REVIEWS[:2]],
                "anchor_strategy": "random",
                "model": "fake",
                "prompt_hash": "0" * 16,
                "seed": 0,
                "task": "sst2",
                "soft_label_source": "inline",
            }
        )
    records = write_jsonl(tmp_path / "syn.jsonl", rows)
    config = tmp_path / "c.yaml"
    config.write_text(
        f"llm:\n  model: {smollm2}\n"
        "filter:\n  dedup:\n    near: false\n"
        "  critic:\n    enabled: true\n    shots: 1\n    validation: 4\n"
        "  calibration:\n    enabled: true\n    examples: 6\n    eval_examples: 4\n"
    )
    out, rejects = tmp_path / "kept.jsonl", tmp_path / "rejects.jsonl"
    code = main(
        [
            "filter",
            str(records),
            "--train",
            str(train),
            "--eval",
            str(train),
            "--out",
            str(out),
            "--rejects",
            str(rejects),
            "--config",
            str(config),
            "--quiet",
        ]
    )
    assert code == 0
    kept = [json.loads(x) for x in out.read_text().splitlines()]
    rejected = [json.loads(x) for x in rejects.read_text().splitlines()]
    # Nothing is lost: every record is kept or rejected with its reasons.
    assert sorted(r["id"] for r in kept + rejected) == [r["id"] for r in rows]
    assert ["exact_synthetic"] in [r["reject"]["reasons"] for r in rejected]
    for r in kept:
        assert r["critic"] is not None and 0.0 <= r["critic"]["fluency"] <= 1.0
        assert r["soft_label_raw"] is not None  # calibrated, raw kept
        assert sum(r["soft_label"].values()) == pytest.approx(1.0)
        assert r["weight"] in (1.0, 0.5)
    summary = json.loads((tmp_path / "kept.summary.json").read_text())
    assert summary["judge"]["examples"] == 4
    assert 0.0 <= summary["judge"]["fluency_auroc"] <= 1.0
    assert summary["calibration"]["examples"] == 6
    assert summary["calibration_eval"]["examples"] == 4
    assert summary["calibration"]["temperature"] > 0
    assert summary["input"] == 5 and summary["kept"] + summary["dropped"] == 5
