"""Shared fixtures: small hand-written data."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import REVIEWS, write_jsonl


@pytest.fixture
def reviews_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])


@pytest.fixture
def anchors() -> list[dict[str, str]]:
    return [{"text": t, "label": lab} for t, lab in REVIEWS[:2]]
