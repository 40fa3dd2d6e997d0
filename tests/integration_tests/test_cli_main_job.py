"""The README's main job: `mixaug augment` on the embedded default model, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mixaug_cli import ROOT, run_augment

from mixaug import SyntheticRecord


def test_mixaug_augment_writes_valid_records(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "syn.jsonl"
    proc = run_augment(out, 3, "--seed", "1", env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert f"records written to {out}" in proc.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        rec = SyntheticRecord.model_validate(row)
        assert abs(sum(rec.soft_label.values()) - 1.0) < 1e-6
    summary = json.loads((out.parent / "syn.summary.json").read_text())
    assert summary["kept"] == 3 and summary["attempts"] >= 3
    assert not (out.parent / "syn.jsonl.part").exists()


def test_compose_chain_example_runs(smollm2: str) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "compose_chain.py"),
            "--model",
            smollm2,
            "--n",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert "dropped" in line or abs(sum(line["soft_label"].values()) - 1.0) < 1e-6
