"""A Chroma server as the shared embedding cache (``anchors.store: http://HOST:PORT``).

Starts a real ``chroma run`` on 127.0.0.1; two "workers" (this process and a separate
Python process) build anchor indexes over the same pool and the second embeds nothing.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mixaug_cli import run_augment

from mixaug import Example
from mixaug.errors import ModelError
from mixaug.selectors import AnchorIndex

POOL = [
    Example(text=f"review number {i} is {'good' if i % 2 else 'bad'}", label=lab)
    for i, lab in enumerate(["negative", "positive"] * 6)
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("chroma")
    if exe is None:
        pytest.skip("the chroma command (package chromadb) is not on PATH")
    port = _free_port()
    folder = tmp_path_factory.mktemp("chroma")
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(
        [exe, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(folder / "db")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    from mixaug.selectors.index import chroma_client

    for _ in range(120):
        try:
            chroma_client(url)
            break
        except ModelError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"chroma run did not start: {(folder / 'server.log').read_text()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


class _Counting:
    """Deterministic embeddings that count what they embed."""

    def __init__(self) -> None:
        from langchain_core.embeddings import DeterministicFakeEmbedding

        self.inner = DeterministicFakeEmbedding(size=16)
        self.calls = 0
        self.model_name = "counting-fake-16"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


WORKER = """
import json, sys
sys.path.insert(0, {tests!r})
from test_chroma_server import POOL, _Counting
from mixaug.selectors import AnchorIndex
emb = _Counting()
idx = AnchorIndex.build(POOL, emb, store_dir={url!r})
print(json.dumps({{"new": idx.newly_embedded, "calls": emb.calls,
                  "vectors": idx.vectors.round(6).tolist()}}))
idx.close()
"""


def test_workers_share_one_cache_on_the_server(chroma_server: str) -> None:
    first_emb = _Counting()
    first = AnchorIndex.build(POOL, first_emb, store_dir=chroma_server)  # type: ignore[arg-type]
    assert first.newly_embedded == first_emb.calls  # whatever the server did not hold yet
    code = WORKER.format(tests=str(Path(__file__).parent), url=chroma_server)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    assert other["new"] == 0 and other["calls"] == 0  # read back, not embedded again
    assert other["vectors"] == first.vectors.round(6).tolist()
    # A changed pool embeds only its new text.
    changed = [*POOL[:-1], Example(text="a text no worker has seen", label="positive")]
    emb = _Counting()
    third = AnchorIndex.build(changed, emb, store_dir=chroma_server)  # type: ignore[arg-type]
    assert third.newly_embedded == 1 and emb.calls == 1
    for idx in (first, third):
        idx.close()


def test_cli_reads_embedded_anchors_from_the_server(chroma_server: str, tmp_path: Path) -> None:
    outs = []
    for i in range(2):
        out = tmp_path / f"dry{i}.jsonl"
        proc = run_augment(out, 4, "--dry-run", "--anchors", "mixed-class", "--store",
                           chroma_server, "--quiet", timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        outs.append(out.read_text())
    assert outs[0] == outs[1]  # same plan, embeddings read back from the server
    rows = [json.loads(line) for line in outs[0].splitlines()]
    assert rows and all(len({a["label"] for a in r["anchors"]}) == 2 for r in rows)


def test_a_server_that_is_down_fails_clearly(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    out = tmp_path / "dry.jsonl"
    proc = run_augment(out, 2, "--dry-run", "--anchors", "mixed-class", "--store", url,
                       "--quiet", timeout=300)  # fmt: skip
    assert proc.returncode != 0
    assert f"Chroma server at {url} does not answer" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
