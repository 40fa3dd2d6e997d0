"""Resumable runs: a crash costs nothing; the output equals an uninterrupted run's."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from fakes import REVIEWS, chat_logprobs, write_jsonl
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

import mixaug.augmentation
from mixaug.cli import main


class Crash(BaseException):
    """Stands in for kill -9: nothing catches it."""


class HashChat(BaseChatModel):
    """Replies depend only on the prompt and the seed, like a seeded real model."""

    seed: int | None = None
    crash_at: int | None = None
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "hash-chat"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.calls += 1
        if self.crash_at is not None and self.calls >= self.crash_at:
            raise Crash
        key = f"{messages[-1].content}|{kwargs.get('seed', self.seed)}"
        h = hashlib.sha256(key.encode()).hexdigest()
        if h[0] in "0123":
            msg = AIMessage(
                content=" an unlabelled line", response_metadata={"finish_reason": "stop"}
            )
            return ChatResult(generations=[ChatGeneration(message=msg)])
        p = 0.05 + int(h[1:3], 16) / 255 * 0.9
        word = "positive" if p > 0.5 else "negative"
        pieces = [
            (f" review {h[3:9]}", {}),
            (" (", {}),
            ("Sentiment", {}),
            (":", {}),
            (" " + word, {" positive": p * 0.95, " negative": (1 - p) * 0.95}),
            (")", {}),
        ]
        lp = chat_logprobs(pieces)
        msg = AIMessage(
            content="".join(t for t, _ in pieces),
            response_metadata={"logprobs": lp, "finish_reason": "stop"},
            usage_metadata={"input_tokens": 40, "output_tokens": 6, "total_tokens": 46},
        )
        assert not math.isnan(p)
        return ChatResult(generations=[ChatGeneration(message=msg)])


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rows = [{"text": f"{t} (take {i})", "label": lab} for i in range(3) for t, lab in REVIEWS]
    return write_jsonl(tmp_path / "train.jsonl", rows)


def run(
    data: Path, out: Path, model: HashChat, monkeypatch: pytest.MonkeyPatch, *extra: str
) -> int:
    monkeypatch.setattr(mixaug.augmentation, "build_llm", lambda *a, **k: model)
    return main(
        [
            "augment",
            "--data",
            str(data),
            "--task",
            "sst2",
            "--n",
            "12",
            "--out",
            str(out),
            "--batch-size",
            "3",
            "--seed",
            "4",
            "--quiet",
            "--json",
            *extra,
        ]
    )


def summary(out: Path) -> dict[str, Any]:
    s = json.loads(out.with_name(out.stem + ".summary.json").read_text())
    return {k: v for k, v in s.items() if k not in ("seconds", "examples_per_second", "output")}


@pytest.fixture
def reference(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, dict]:
    out = tmp_path / "ref" / "out.jsonl"
    assert run(data, out, HashChat(), monkeypatch) == 0
    ref = summary(out)
    assert ref["failures"].get("no_label", 0) > 0  # the counters matter
    return out.read_bytes(), ref


@pytest.mark.parametrize("crash_at", [1, 2, 4, 7, 11])
def test_resume_after_a_crash_matches_an_uninterrupted_run(
    crash_at: int,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reference: tuple[bytes, dict],
) -> None:
    out = tmp_path / "run" / "out.jsonl"
    with pytest.raises(Crash):
        run(data, out, HashChat(crash_at=crash_at), monkeypatch)
    assert not out.exists()
    assert run(data, out, HashChat(), monkeypatch) == 0
    assert out.read_bytes() == reference[0]
    assert summary(out) == reference[1]
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 12


def test_torn_lines_and_unjournaled_records_are_repaired(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: tuple[bytes, dict]
) -> None:
    out = tmp_path / "run" / "out.jsonl"
    with pytest.raises(Crash):
        run(data, out, HashChat(crash_at=6), monkeypatch)
    part = out.with_name("out.jsonl.part")
    journal = out.with_name("out.journal.jsonl")
    lines = part.read_text().splitlines()
    # A batch whose records hit the disk but whose "done" line did not, then a torn write.
    with part.open("a") as fh:
        fh.write(lines[0].replace('"id": "sst2', '"id": "dup') + "\n")
        fh.write('{"id": "sst2-s4-0000')
    with journal.open("a") as fh:
        fh.write('{"type": "done", "batch": 9')
    assert run(data, out, HashChat(), monkeypatch) == 0
    assert out.read_bytes() == reference[0]


def test_other_settings_are_refused_until_overwrite(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run" / "out.jsonl"
    with pytest.raises(Crash):
        run(data, out, HashChat(crash_at=5), monkeypatch)
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    assert run(data, out, HashChat(), monkeypatch, "--k", "3") == 2
    assert "unfinished run with different settings" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
    assert run(data, out, HashChat(), monkeypatch, "--k", "3", "--overwrite") == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(len(r["anchors"]) == 3 for r in rows)


def test_a_finished_run_is_not_redone_or_replaced(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run" / "out.jsonl"
    assert run(data, out, HashChat(), monkeypatch) == 0
    first = out.read_bytes()
    model = HashChat()
    assert run(data, out, model, monkeypatch) == 0
    assert model.calls == 0 and out.read_bytes() == first
    assert "already complete" in capsys.readouterr().out
    # Changing the data is a different run.
    with data.open("a") as fh:
        fh.write(json.dumps({"text": "one more review", "label": "positive"}) + "\n")
    assert run(data, out, HashChat(), monkeypatch) == 2
    assert "another run" in capsys.readouterr().err
    assert out.read_bytes() == first


def test_operational_settings_may_change_on_resume(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: tuple[bytes, dict]
) -> None:
    out = tmp_path / "run" / "out.jsonl"
    with pytest.raises(Crash):
        run(data, out, HashChat(crash_at=5), monkeypatch)
    assert run(data, out, HashChat(), monkeypatch, "--max-attempts", "200") == 0
    assert out.read_bytes() == reference[0]


def test_overwrite_with_a_bad_config_keeps_the_old_run(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run" / "out.jsonl"
    assert run(data, out, HashChat(), monkeypatch) == 0
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    monkeypatch.undo()  # the real build_llm: a missing API key fails before any file changes
    cfg = tmp_path / "openai.yaml"
    cfg.write_text("llm: {provider: openai, model: m, api_key_env: MIXAUG_UNSET_KEY_VAR}\n")
    monkeypatch.delenv("MIXAUG_UNSET_KEY_VAR", raising=False)
    code = main(
        [
            "augment",
            "--data",
            str(data),
            "--task",
            "sst2",
            "--n",
            "12",
            "--out",
            str(out),
            "--config",
            str(cfg),
            "--overwrite",
            "--quiet",
        ]
    )
    assert code == 2
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
