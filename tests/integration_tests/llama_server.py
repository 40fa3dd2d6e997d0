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


class _ServerProcess:
    """A server process on 127.0.0.1, its output in a log file; ``url`` is its ``/v1``."""

    name = "server"

    def _start(self, cmd: list[str], log: Path, ready: str) -> None:
        """Run ``cmd``; return once ``ready`` answers 200 (3 minutes at most)."""
        self.log = log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                raise RuntimeError(f"{self.name} exited: {log.read_text()[-2000:]}")
            try:  # an error status (503 while the model loads) is an OSError too
                with urllib.request.urlopen(ready, timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.name} did not start in time; see {log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


class LlamaServer(_ServerProcess):
    """llama-cpp-python's server (one request at a time)."""

    name = "llama-cpp-python's server"

    def __init__(self, log: Path, model: str = "gemma3-270m") -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            pytest.skip("llama-cpp-python[server] is not installed (pip install -e '.[test]')")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        # One thread each: two collapse under contention on 2 cores; interrupting
        # requests empties concurrent streams; logprobs need logits_all.
        cmd = [
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
        ]
        self._start(cmd, log, ready=self.url + "/models")


LLAMA_SERVER_VERSION = "0.3.36"  # llama-cpp-python's, whose vendored llama.cpp is built


def llama_server_binary() -> str | None:
    """llama.cpp's C++ ``llama-server``: ``$MIXAUG_LLAMA_SERVER``, ``PATH``, or the folder
    ``scripts/build-llama-server`` builds into by default."""
    if os.environ.get("MIXAUG_LLAMA_SERVER"):
        return os.environ["MIXAUG_LLAMA_SERVER"]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    built = cache / "mixaug" / "llama-server" / LLAMA_SERVER_VERSION / "llama-server"
    return shutil.which("llama-server") or (str(built) if built.is_file() else None)


class CppLlamaServer(_ServerProcess):
    """llama.cpp's C++ ``llama-server`` on 127.0.0.1: ``slots`` parallel slots decoded
    together (continuous batching), the batching server of a scale-out run.

    Without the binary the test is skipped, except under CI, which builds it
    (``scripts/build-llama-server``) and must run these tests.
    """

    name = "llama-server"

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
        cmd = [
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
        ]
        self._start(cmd, log, ready=self.root + "/health")

    def busy_slots(self) -> int:
        """How many slots are decoding a request now (``GET /slots``)."""
        with urllib.request.urlopen(self.root + "/slots", timeout=5) as r:
            return sum(bool(s.get("is_processing")) for s in json.load(r))
