"""kill -9 a real `mixaug augment` at several points; rerunning must lose and duplicate nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mixaug_cli import augment_cmd


def _cmd(out: Path, model: str) -> list[str]:
    return augment_cmd(out, 8, "--model", model, "--batch-size", "3", "--seed", "7", "--quiet")


def _lines(p: Path) -> int:
    return p.read_bytes().count(b"\n") if p.exists() else 0


def _journal(out: Path, kind: str) -> int:
    j = out.with_name(out.stem + ".journal.jsonl")
    if not j.exists():
        return 0
    return sum(f'"type": "{kind}"' in line for line in j.read_text().splitlines())


KILL_POINTS: dict[str, Callable[[Path, float], bool]] = {
    "while loading the model": lambda out, t: t > 1.5,
    "right after the first records": lambda out, t: _lines(out.with_name(out.name + ".part")) >= 1,
    "mid-batch (planned, not done)": lambda out, t: (
        _journal(out, "plan") > _journal(out, "done") >= 1
    ),
    "after two finished batches": lambda out, t: _journal(out, "done") >= 2,
}


@pytest.fixture(scope="module")
def reference(smollm2: str, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("ref") / "out.jsonl"
    subprocess.run(_cmd(out, smollm2), check=True, timeout=600, capture_output=True)
    return out.read_bytes()


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_9_then_resume(point: str, reference: bytes, smollm2: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(_cmd(out, smollm2), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = time.monotonic()
    killed = False
    while proc.poll() is None and time.monotonic() - start < 300:
        if KILL_POINTS[point](out, time.monotonic() - start):
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert killed, f"the run finished before the kill point {point!r}"
    assert not out.exists()
    resumed = subprocess.run(_cmd(out, smollm2), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == reference  # nothing lost, nothing duplicated, same records
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 8
