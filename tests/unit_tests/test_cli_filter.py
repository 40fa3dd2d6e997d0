"""``mixaug filter`` and ``augment`` with a filter: outputs, rejects, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import REVIEWS, fake_chat, labelled_reply, write_jsonl

import mixaug.augmentation
import mixaug.providers
from mixaug.cli import main


def _record(i: int, text: str, label: str = "positive", **extra: Any) -> dict[str, Any]:
    other = "negative" if label == "positive" else "positive"
    row = {
        "id": f"sst2-s0-{i:06d}",
        "text": text,
        "label": label,
        "soft_label": {label: 0.75, other: 0.25},
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
    row.update(extra)
    return row


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("dedup alone must not build a model")

    monkeypatch.setattr(mixaug.providers, "build_llm", boom)


def _filter(tmp_path: Path, records: Path, *extra: str) -> int:
    return main(
        [
            "filter",
            str(records),
            "--train",
            str(tmp_path / "train.jsonl"),
            "--out",
            str(tmp_path / "kept.jsonl"),
            "--rejects",
            str(tmp_path / "rejects.jsonl"),
            "--no-near",
            "--quiet",
            *extra,
        ]
    )


def test_filter_writes_kept_rejects_and_summary(
    reviews_file: Path, tmp_path: Path, no_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = write_jsonl(
        tmp_path / "dev.jsonl", [{"text": "a leaked dev review .", "label": "negative"}]
    )
    records = write_jsonl(
        tmp_path / "syn.jsonl",
        [
            _record(0, "a new and lovely film"),
            _record(1, "A new and lovely film!"),
            _record(2, REVIEWS[6][0]),
            _record(3, "a leaked dev review", label="negative"),
            _record(4, "another fresh review"),
        ],
    )
    code = _filter(tmp_path, records, "--eval", str(dev), "--json")
    assert code == 0
    kept = [json.loads(x) for x in (tmp_path / "kept.jsonl").read_text().splitlines()]
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [r["id"] for r in kept] == ["sst2-s0-000000", "sst2-s0-000004"]
    assert {r["id"]: r["reject"]["reasons"] for r in rejects} == {
        "sst2-s0-000001": ["exact_synthetic"],
        "sst2-s0-000002": ["exact_train"],
        "sst2-s0-000003": ["exact_eval"],
    }
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "kept.summary.json").read_text())
    assert printed == saved
    assert saved["input"] == 5 and saved["kept"] == 2 and saved["dropped"] == 3
    assert saved["reasons"] == {"exact_eval": 1, "exact_synthetic": 1, "exact_train": 1}
    assert not list(tmp_path.glob("*.part"))
    # The rejects file reads back as records: it can be filtered again.
    again = main(
        [
            "filter",
            str(tmp_path / "rejects.jsonl"),
            "--train",
            str(reviews_file),
            "--out",
            str(tmp_path / "k2.jsonl"),
            "--rejects",
            str(tmp_path / "r2.jsonl"),
            "--no-near",
            "--quiet",
        ]
    )
    assert again == 0


BAD = {
    "missing soft label": (
        [{k: v for k, v in _record(0, "x").items() if k != "soft_label"}],
        [],
        "soft_label: Field required",
    ),
    "soft label not a distribution": (
        [_record(0, "x", soft_label={"positive": 0.9, "negative": 0.9})],
        [],
        "summing to 1",
    ),
    "labels of another task": (
        [_record(0, "x", label="positive", soft_label={"HUM": 0.5, "positive": 0.5})],
        [],
        "has soft-label labels",
    ),
    "not json": ("not json\n", [], "not valid JSON"),
    "empty records": ("", [], "holds no records"),
    "bad threshold": ([_record(0, "x")], ["--threshold", "1.5"], "--threshold"),
    "unknown task": ([_record(0, "x")], ["--task", "sst-2"], "Unknown task"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_filter_refuses_bad_input(
    case: str,
    reviews_file: Path,
    tmp_path: Path,
    no_model: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows, args, expected = BAD[case]
    path = tmp_path / "syn.jsonl"
    if isinstance(rows, str):
        path.write_text(rows)
    else:
        write_jsonl(path, rows)
    code = _filter(tmp_path, path, *args)
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "kept.jsonl").exists() and not (tmp_path / "rejects.jsonl").exists()


def test_filter_never_overwrites_without_permission(
    reviews_file: Path, tmp_path: Path, no_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_jsonl(tmp_path / "syn.jsonl", [_record(0, "fresh")])
    (tmp_path / "kept.jsonl").write_text("precious\n")
    assert _filter(tmp_path, records) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "kept.jsonl").read_text() == "precious\n"
    assert _filter(tmp_path, records, "--overwrite") == 0
    assert json.loads((tmp_path / "kept.jsonl").read_text())["text"] == "fresh"
    same = main(
        [
            "filter",
            str(records),
            "--train",
            str(reviews_file),
            "--out",
            str(records),
            "--rejects",
            str(tmp_path / "r.jsonl"),
        ]
    )
    assert same == 2 and "never writes over its inputs" in capsys.readouterr().err


def test_augment_with_a_filter_writes_rejects(
    reviews_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    texts = ["a leaked dev review", "a fresh review", "a fresh review", "one more"]
    replies = [labelled_reply(t, "positive", {" positive": 0.7, " negative": 0.3}) for t in texts]
    monkeypatch.setattr(mixaug.augmentation, "build_llm", lambda *a, **k: fake_chat(replies))
    dev = write_jsonl(
        tmp_path / "dev.jsonl", [{"text": "a leaked dev review", "label": "positive"}]
    )
    config = tmp_path / "c.yaml"
    config.write_text("llm:\n  batch_size: 1\nfilter:\n  dedup:\n    near: false\n")
    out = tmp_path / "syn.jsonl"
    args = ["augment", "--data", str(reviews_file), "--task", "sst2", "--n", "2"]
    args += ["--out", str(out), "--config", str(config), "--eval", str(dev), "--json", "--quiet"]
    assert main(args) == 0
    kept = [json.loads(x)["text"] for x in out.read_text().splitlines()]
    assert kept == ["a fresh review", "one more"]
    rejects = [json.loads(x) for x in (tmp_path / "syn.rejects.jsonl").read_text().splitlines()]
    assert [r["reject"]["reasons"] for r in rejects] == [["exact_eval"], ["exact_synthetic"]]
    summary = json.loads(capsys.readouterr().out)
    assert summary["rejected"] == 2 and summary["filter"]["reasons"] == {
        "exact_eval": 1,
        "exact_synthetic": 1,
    }
    assert not list(tmp_path.glob("*.part"))


def test_augment_eval_needs_a_filter(
    reviews_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["augment", "--data", str(reviews_file), "--task", "sst2", "--n", "2"]
    args += ["--out", str(tmp_path / "o.jsonl"), "--eval", str(reviews_file)]
    assert main(args) == 2
    assert "filter" in capsys.readouterr().err
