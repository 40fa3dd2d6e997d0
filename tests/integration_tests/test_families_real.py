"""Every prompt family from the CLI: the embedded model and the llama.cpp server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llama_server import LlamaServer
from mixaug_cli import ROOT, run_augment

from mixaug import SyntheticRecord
from mixaug.chains.families import FAMILIES


def _check(out: Path, family: str, n: int) -> list[SyntheticRecord]:
    recs = [SyntheticRecord.model_validate_json(x) for x in out.read_text().splitlines()]
    assert len(recs) == n
    for r in recs:
        assert r.prompt_family == family
        assert abs(sum(r.soft_label.values()) - 1) < 1e-6 and 0 < r.label_mass <= 1
        if family in ("paraphrase", "instruct", "boundary"):
            assert r.target is not None
    summary = json.loads(out.with_name(out.stem + ".summary.json").read_text())
    assert summary["prompt_family"] == family
    return recs


@pytest.mark.parametrize("family", FAMILIES)
def test_family_on_the_embedded_model(family: str, tmp_path: Path) -> None:
    out = tmp_path / f"{family}.jsonl"
    proc = run_augment(out, 2, "--prompt", family, "--seed", "3", "--max-attempts", "40")
    assert proc.returncode == 0, proc.stderr
    recs = _check(out, family, 2)
    if family == "paraphrase":
        assert all(len(r.anchors) == 1 for r in recs)
    if family == "boundary":
        assert all(len({a.label for a in r.anchors}) == 2 for r in recs)


def test_every_family_through_the_server(llama_server: LlamaServer, tmp_path: Path) -> None:
    llm = {
        "provider": "openai",
        "model": "gemma3-270m",
        "mode": "completion",
        "base_url": llama_server.url,
        # One request at a time against the one-thread server: an instruct prompt asks
        # for five items (up to 500 tokens), which took over 60 s on a loaded CI machine
        # while a second request queued behind it. This test is about every family
        # working through the server, not about its speed.
        "concurrency": 1,
        "max_retries": 1,
        "timeout": 300,
    }
    cfg = tmp_path / "server.yaml"
    cfg.write_text(json.dumps({"llm": llm}), encoding="utf-8")
    for family in FAMILIES:
        out = tmp_path / f"srv-{family}.jsonl"
        proc = run_augment(out, 2, "--config", str(cfg), "--prompt", family, "--max-attempts", "40")
        assert proc.returncode == 0, (family, proc.stderr)
        _check(out, family, 2)


def test_korean_example_on_the_embedded_model(tmp_path: Path) -> None:
    """A Korean spec end to end: multi-token label words, Korean prompts, soft labels."""
    import subprocess
    import sys

    out = tmp_path / "ko.jsonl"
    cmd = [sys.executable, "-m", "mixaug.cli", "augment",
           "--data", str(ROOT / "examples" / "korean" / "hungry.jsonl"),
           "--task", str(ROOT / "examples" / "korean" / "spec.yaml"),
           "--prompt", "fewshot", "--n", "2", "--seed", "1", "--max-attempts", "40",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for r in _check(out, "fewshot", 2):
        assert set(r.soft_label) == {"hungry", "other"}
        assert not r.text.isascii()  # the model wrote Korean
