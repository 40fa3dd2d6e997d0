"""``provider: openai`` with ``concurrency: N`` against a server that batches: llama.cpp's
C++ ``llama-server -np 4`` on 127.0.0.1. The server's own ``/slots`` endpoint, polled while
a run goes on, says how many requests it was decoding at once: behaviour, not timing."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest
from llama_server import CppLlamaServer
from mixaug_cli import run_augment

from mixaug import LabelledItem, LLMConfig, SyntheticRecord, build_mix_chain, get_spec
from mixaug.providers import build_llm, build_scorer

SLOTS = 4
ANCHORS = [
    {"text": "a warm, funny and moving film", "label": "positive"},
    {"text": "dull, overlong and badly acted", "label": "negative"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CppLlamaServer]:
    srv = CppLlamaServer(tmp_path_factory.mktemp("cpp") / "server.log", slots=SLOTS)
    yield srv
    srv.stop()


class SlotWatcher:
    """Polls the server's busy slots every few milliseconds while the block runs."""

    def __init__(self, server: CppLlamaServer) -> None:
        self.server = server
        self.max_busy = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        deadline = time.monotonic() + 900  # bounded even if the block never ends
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.max_busy = max(self.max_busy, self.server.busy_slots())
            self.samples += 1
            time.sleep(0.005)

    def __enter__(self) -> SlotWatcher:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _config(tmp: Path, url: str, concurrency: int, top_logprobs: int) -> Path:
    llm = {"provider": "openai", "model": "gemma3-270m", "mode": "completion",
           "base_url": url, "concurrency": concurrency, "batch_size": 8,
           "top_logprobs": top_logprobs, "max_retries": 1, "timeout": 120}  # fmt: skip
    path = tmp / f"c{concurrency}.yaml"
    path.write_text(json.dumps({"llm": llm}), encoding="utf-8")  # JSON is YAML
    return path


# top_logprobs 1 leaves the other label word out of every reply: each record is then
# scored through the server, requests that ``concurrency`` bounds too.
@pytest.mark.parametrize(("concurrency", "top_logprobs"), [(1, 1), (SLOTS, 20)])
def test_the_cli_keeps_concurrency_requests_in_flight(
    server: CppLlamaServer, tmp_path: Path, concurrency: int, top_logprobs: int
) -> None:
    out = tmp_path / "out.jsonl"
    cfg = _config(tmp_path, server.url, concurrency, top_logprobs)
    with SlotWatcher(server) as seen:
        proc = run_augment(out, 8, "--config", str(cfg), "--labels", "lm",
                           "--max-attempts", "40")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    recs = [SyntheticRecord.model_validate_json(x) for x in out.read_text().splitlines()]
    assert len(recs) == 8
    assert all(abs(sum(r.soft_label.values()) - 1) < 1e-6 for r in recs)
    assert seen.samples > 10
    if concurrency == 1:
        # The control: one request at a time, scoring requests included, never
        # occupies two slots, so the check below can fail.
        assert any(r.soft_label_source == "rescored" for r in recs)
        assert seen.max_busy == 1
    else:
        assert seen.max_busy >= 2, f"requests never overlapped ({seen.samples} polls)"


def test_async_batches_overlap_on_the_server(server: CppLlamaServer) -> None:
    """``abatch`` of the composed chain: asyncio requests, ``concurrency`` in flight."""
    config = LLMConfig(provider="openai", model="gemma3-270m", mode="completion",
                       base_url=server.url, max_retries=1, timeout=120)  # fmt: skip
    llm = build_llm(config, seed=0)
    spec = get_spec("sst2")
    chain = build_mix_chain(
        llm, spec, scorer=build_scorer(config, llm), concurrency=SLOTS, max_tokens=60
    )
    with SlotWatcher(server) as seen:
        out = asyncio.run(chain.abatch([{"anchors": ANCHORS}] * 8, return_exceptions=True))
    items = [x for x in out if isinstance(x, LabelledItem)]
    assert items, out  # parse failures are allowed; every item must not fail
    for item in items:
        assert set(item.soft_label) == {"positive", "negative"}
        assert abs(sum(item.soft_label.values()) - 1) < 1e-6
    assert seen.max_busy >= 2, f"requests never overlapped ({seen.samples} polls)"


def test_ray_workers_share_one_batching_server(server: CppLlamaServer, tmp_path: Path) -> None:
    """The scale-out shape: Ray actors as request senders for one model server.

    Each worker keeps ``concurrency`` (2) requests in flight; more than 2 busy slots means
    two workers' batches were on the server at once.
    """
    pytest.importorskip("ray")
    out = tmp_path / "out.jsonl"
    cfg = _config(tmp_path, server.url, 2, 20)
    with SlotWatcher(server) as seen:
        proc = run_augment(out, 16, "--config", str(cfg), "--labels", "lm", "--batch-size",
                           "4", "--executor", "ray", "--workers", "2",
                           "--max-attempts", "60")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 16
    assert seen.max_busy >= 3, f"at most {seen.max_busy} slots busy ({seen.samples} polls)"
