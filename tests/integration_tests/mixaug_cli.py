"""Run `mixaug augment` as a user would: a real subprocess of the installed CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DATA = ROOT / "examples" / "data" / "movie_reviews.jsonl"


def augment_cmd(out: Path, n: int, *extra: str, data: Path = EXAMPLE_DATA) -> list[str]:
    """``python -m mixaug.cli augment`` on the example data (task sst2) into ``out``."""
    return [sys.executable, "-m", "mixaug.cli", "augment", "--data", str(data),
            "--task", "sst2", "--n", str(n), "--out", str(out), *extra]  # fmt: skip


def run_augment(
    out: Path, n: int, *extra: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run :func:`augment_cmd` to the end; stdout and stderr are captured as text."""
    return subprocess.run(
        augment_cmd(out, n, *extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
