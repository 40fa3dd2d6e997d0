"""Real OpenAI-compatible servers on 127.0.0.1 over the embedded GGUF: llama-cpp-python's
(one request at a time) and llama.cpp's C++ ``llama-server`` (parallel slots)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mixaug.models.registry import gguf_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """A real server process; ``url`` is its ``/v1`` base URL."""

    def __init__(self, log: Path, model: str = "gemma3-270m") -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            pytest.skip("llama-cpp-python[server] is not installed (pip install -e '.[test]')")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log.open("w")
        # One thread each: two collapse under contention on 2 cores; interrupting
        # requests empties concurrent streams; logprobs need logits_all.
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf_path(model)),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                "2048",
                "--n_threads",
                "1",
                "--n_threads_batch",
                "1",
                "--interrupt_requests",
                "False",
                "--logits_all",
                "True",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited; see {log}")
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=2) as r:
                    json.load(r)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not start in time; see {log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


LLAMA_SERVER_VERSION = "0.3.36"  # llama-cpp-python's, whose vendored llama.cpp is built


def llama_server_binary() -> str | None:
    """llama.cpp's C++ ``llama-server``: ``$MIXAUG_LLAMA_SERVER``, ``PATH``, or the folder
    ``scripts/build-llama-server`` builds into by default."""
    if os.environ.get("MIXAUG_LLAMA_SERVER"):
        return os.environ["MIXAUG_LLAMA_SERVER"]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    built = cache / "mixaug" / "llama-server" / LLAMA_SERVER_VERSION / "llama-server"
    return shutil.which("llama-server") or (str(built) if built.is_file() else None)


class CppLlamaServer:
    """llama.cpp's C++ ``llama-server`` on 127.0.0.1: ``slots`` parallel slots decoded
    together (continuous batching), the batching server of a scale-out run.

    Without the binary the test is skipped, except under CI, which builds it
    (``scripts/build-llama-server``) and must run these tests.
    """

    def __init__(self, log: Path, *, slots: int, threads: int = 2) -> None:
        binary = llama_server_binary()
        if binary is None:
            why = "llama-server is not built (scripts/build-llama-server; or MIXAUG_LLAMA_SERVER)"
            if os.environ.get("CI"):
                pytest.fail(why)
            pytest.skip(why)
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = self.root + "/v1"
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [
                binary,
                "-m",
                str(gguf_path("gemma3-270m")),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "-t",
                str(threads),
                "-tb",
                str(threads),
                "-np",
                str(slots),
                "-cb",
                "-c",
                str(1024 * slots),
                "--no-webui",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                raise RuntimeError(f"llama-server exited: {log.read_text()[-2000:]}")
            try:  # /health answers 503 while the model loads
                with urllib.request.urlopen(self.root + "/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama-server did not start in time; see {log}")

    def busy_slots(self) -> int:
        """How many slots are decoding a request now (``GET /slots``)."""
        with urllib.request.urlopen(self.root + "/slots", timeout=5) as r:
            return sum(bool(s.get("is_processing")) for s in json.load(r))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()
