"""Start llama-cpp-python's OpenAI-compatible server on 127.0.0.1 over the embedded GGUF."""

from __future__ import annotations

import importlib.util
import json
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
