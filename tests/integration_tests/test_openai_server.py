"""The openai provider against a real llama.cpp server on 127.0.0.1 (no mocked HTTP)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from llama_server import LlamaServer
from mixaug_cli import augment_cmd, run_augment

from mixaug import SyntheticRecord


def _config(tmp: Path, url: str, mode: str, **extra: object) -> Path:
    llm = {
        "provider": "openai",
        "model": "gemma3-270m",
        "mode": mode,
        "base_url": url,
        "concurrency": 2,
        "max_retries": 1,
        "timeout": 60,
        **extra,
    }
    path = tmp / f"{mode}.yaml"
    path.write_text(json.dumps({"llm": llm}), encoding="utf-8")  # JSON is YAML
    return path


def _augment(
    cfg: Path, out: Path, n: int, env: dict[str, str] | None = None, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run_augment(out, n, "--config", str(cfg), "--max-attempts", "40", *extra, env=env)


def _records(out: Path) -> list[SyntheticRecord]:
    return [SyntheticRecord.model_validate_json(line) for line in out.read_text().splitlines()]


def test_completion_mode_through_the_server(llama_server: LlamaServer, tmp_path: Path) -> None:
    out = tmp_path / "completion.jsonl"
    proc = _augment(_config(tmp_path, llama_server.url, "completion"), out, 4)
    assert proc.returncode == 0, proc.stderr
    recs = _records(out)
    assert len(recs) == 4
    for r in recs:
        assert r.soft_label_source in ("inline", "rescored")
        assert abs(sum(r.soft_label.values()) - 1) < 1e-6
        assert 0 < r.label_mass <= 1


def test_chat_mode_through_the_server(llama_server: LlamaServer, tmp_path: Path) -> None:
    out = tmp_path / "chat.jsonl"
    proc = _augment(_config(tmp_path, llama_server.url, "chat"), out, 2)
    assert proc.returncode == 0, proc.stderr
    for r in _records(out):
        assert r.soft_label_source in ("inline", "rescored", "partial")
        assert abs(sum(r.soft_label.values()) - 1) < 1e-6


def test_api_key_never_leaves_the_environment(llama_server: LlamaServer, tmp_path: Path) -> None:
    secret = "sk-mixaug-test-4f1d2c9e8b7a"
    cfg = _config(tmp_path, llama_server.url, "completion", api_key_env="MIXAUG_SECRET_KEY")
    out = tmp_path / "s.jsonl"
    proc = _augment(cfg, out, 2, {"MIXAUG_SECRET_KEY": secret})
    assert proc.returncode == 0, proc.stderr
    written = [p for p in tmp_path.iterdir() if p.name.startswith("s.")]
    names = {p.name for p in written}
    assert names >= {"s.jsonl", "s.summary.json", "s.manifest.json", "s.journal.jsonl"}
    for text in [proc.stdout, proc.stderr, *(p.read_text() for p in written)]:
        assert secret not in text
    # And a missing variable is a clear configuration error.
    proc = _augment(cfg, tmp_path / "t.jsonl", 2, {"MIXAUG_SECRET_KEY": ""})
    assert proc.returncode == 2 and "MIXAUG_SECRET_KEY" in proc.stderr


def test_a_server_killed_mid_run_stops_cleanly(tmp_path: Path) -> None:
    server = LlamaServer(tmp_path / "server.log")
    out = tmp_path / "killed.jsonl"
    # One request at a time with room to finish: on a loaded 2-core machine two concurrent
    # 100-token requests to the one-thread server took over 10 s and timed out before the
    # kill. After the kill the connection is refused at once, so the timeout costs nothing.
    cfg = _config(
        tmp_path, server.url, "completion", timeout=60, max_retries=1, batch_size=2, concurrency=1
    )
    proc = subprocess.Popen(
        augment_cmd(out, 200, "--config", str(cfg)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    part = out.with_name(out.name + ".part")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if part.exists() and part.read_text().count("\n") >= 1:
            break
        time.sleep(0.5)
    assert part.exists() and part.read_text().count("\n") >= 1, "no record before the kill"
    server.stop()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "model calls kept failing" in err and str(part) in err
    kept = [json.loads(line) for line in part.read_text().splitlines()]
    assert kept and not out.exists()
    for row in kept:
        SyntheticRecord.model_validate(row)
