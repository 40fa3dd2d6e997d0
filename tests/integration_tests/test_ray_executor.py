"""`mixaug augment --executor ray` on a real Ray cluster on 127.0.0.1, the real model.

The records of a seed are the same bytes as `--executor local`'s; a run killed mid-way
resumes (on either executor) to the same bytes; a cluster started with `ray start --head`
is reached with --ray-address.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import near_copies
from mixaug_cli import augment_cmd

pytest.importorskip("ray")


def _cmd(out: Path, model: str, *extra: str) -> list[str]:
    # Small batches: many of them, so workers run side by side and work ahead.
    return augment_cmd(out, 12, "--model", model, "--batch-size", "3", "--seed", "7",
                       "--labels", "lm", "--quiet", *extra)  # fmt: skip


def _done_batches(out: Path) -> int:
    j = out.with_name(out.stem + ".journal.jsonl")
    return j.read_text().count('"type": "done"') if j.exists() else 0


@pytest.fixture(scope="module")
def local_bytes(smollm2: str, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("local") / "out.jsonl"
    subprocess.run(_cmd(out, smollm2), check=True, timeout=600, capture_output=True)
    return out.read_bytes()


def test_ray_records_are_the_local_records(
    local_bytes: bytes, smollm2: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        _cmd(out, smollm2, "--executor", "ray", "--workers", "2"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == local_bytes


@pytest.mark.parametrize("resume_on", ["ray", "local"])
def test_a_ray_run_killed_mid_way_resumes_to_the_same_records(
    resume_on: str, local_bytes: bytes, smollm2: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        _cmd(out, smollm2, "--executor", "ray"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    start = time.monotonic()
    while proc.poll() is None and time.monotonic() - start < 300:
        if _done_batches(out) >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before the kill"
    assert not out.exists()
    resumed = subprocess.run(
        _cmd(out, smollm2, "--executor", resume_on), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == local_bytes  # nothing lost, nothing twice, same bytes


@pytest.fixture
def ray_head() -> Iterator[str]:
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # A short folder: Ray's Unix sockets live under it (at most 107 bytes a path).
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    start = [ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
             "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats",
             "--temp-dir", temp]  # fmt: skip
    proc = subprocess.run(start, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_cluster_started_with_ray_start_is_reached_by_address(
    ray_head: str, local_bytes: bytes, smollm2: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        _cmd(out, smollm2, "--executor", "ray", "--ray-address", ray_head),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == local_bytes


def test_a_cluster_that_is_not_there_stops_the_run_clearly(smollm2: str, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        _cmd(out, smollm2, "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    assert f"Could not connect to Ray at 127.0.0.1:{port}" in proc.stderr
    assert not out.exists()


def test_dedup_shards_run_as_ray_tasks_with_the_same_result() -> None:
    from mixaug.dedup import near_duplicate_mask
    from mixaug.executors import ray_near_pairs

    v = near_copies(2000, 3000, 64, 0.03, seed=5)
    here = near_duplicate_mask(v, 0.95, shard_rows=512)
    on_ray = near_duplicate_mask(v, 0.95, shard_rows=512, map_shards=ray_near_pairs(v, 0.95))
    assert on_ray.tolist() == here.tolist()
    assert 2000 <= here.sum() < 5000
