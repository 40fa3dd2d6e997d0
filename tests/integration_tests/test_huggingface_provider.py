"""The huggingface provider (langchain-huggingface pipeline): no logprobs, soft labels by votes."""

from __future__ import annotations

import json
from pathlib import Path

from mixaug_cli import run_augment

from mixaug import SyntheticRecord


def test_same_command_with_the_huggingface_pipeline(smollm2: str, tmp_path: Path) -> None:
    cfg = tmp_path / "hf.yaml"
    cfg.write_text(
        json.dumps(
            {"llm": {"provider": "huggingface", "model": smollm2, "votes": 4, "max_tokens": 40}}
        )
    )
    out = tmp_path / "hf.jsonl"
    proc = run_augment(out, 2, "--config", str(cfg), "--max-attempts", "30")
    assert proc.returncode == 0, proc.stderr
    recs = [SyntheticRecord.model_validate_json(line) for line in out.read_text().splitlines()]
    assert len(recs) == 2
    for r in recs:
        assert r.soft_label_source == "votes"
        # Four votes: every probability is a multiple of 1/4 of the mass on label words.
        assert abs(sum(r.soft_label.values()) - 1) < 1e-6
        assert r.label_mass in (0.25, 0.5, 0.75, 1.0)
