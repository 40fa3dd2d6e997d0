"""Records per second of `mixaug augment` with --executor local and ray (1, 2 workers),
and against one batching model server.

    python benchmarks/scale.py [--data DIR] [--n 48] [--model gemma3-270m]
        [--workers 1,2] [--batch-size 16] [--llama-server PATH] [--slots 8]
        [--variants local,ray,server] [--json]

Each variant is the real CLI in its own process on SST-2's training split (seed 0,
``--labels lm``: the LM's own soft labels, so the driver runs no labeller), from a cold
start (Ray's start-up and the workers' model loads count: that is what a user waits
for). Every output is compared with the local one byte for byte (``same_records``). Prints
one JSON object: ``variants: [{"name", "seconds", "records_per_second", "same_records",
"used_early", "dropped_early"}]`` and ``ratios`` to ``local``.

On one machine Ray cannot add cores: this measures its overhead and how much of the run
the work-ahead keeps busy. Across machines each worker brings its own cores and model.

With a ``llama-server`` binary (``--llama-server``, or the one ``scripts/build-llama-server``
built), one server with ``--slots`` parallel slots serves the same model over the same
GGUF, and the ``openai`` provider reaches it: ``server-c1`` (one request at a time),
``server-cN`` (N = slots in flight), ``server-ray2`` (two Ray workers, N/2 each). Its
records are not compared: a server decoding several requests together gives each a
slightly different result from one decoded alone. Ratios there are to ``server-c1``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from throughput import llama_server_binary, start_llama_server

# Ray would replace 127.0.0.1 with this machine's outward address; stay on loopback.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def run(data: Path, out: Path, args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "mixaug.cli", "augment", "--data", str(data / "train.jsonl"),
           "--task", "sst2", "--n", str(args.n), "--out", str(out), "--model", args.model,
           "--batch-size", str(args.batch_size), "--labels", "lm", *extra]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    row: dict[str, Any] = {
        "seconds": round(seconds, 2),
        "records_per_second": round(args.n / seconds, 4),
    }
    m = re.search(
        r"(\d+) batches ran ahead of the driver, (\d+) early results dropped", proc.stderr
    )
    if m:
        row |= {"used_early": int(m.group(1)), "dropped_early": int(m.group(2))}
    return row


def server_rows(data: Path, tmp: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The batching-server variants against one ``llama-server`` started for them all."""
    proc, url = start_llama_server(args.llama_server, tmp / "server.log", slots=args.slots,
                                   threads=os.cpu_count() or 1)  # fmt: skip
    rows = []
    try:
        variants = [("server-c1", 1, ()), (f"server-c{args.slots}", args.slots, ()),
                    ("server-ray2", max(1, args.slots // 2),
                     ("--executor", "ray", "--workers", "2"))]  # fmt: skip
        for name, concurrency, extra in variants:
            llm = {"provider": "openai", "model": args.model, "mode": "completion",
                   "base_url": url, "concurrency": concurrency, "timeout": 300}  # fmt: skip
            cfg = tmp / f"{name}.yaml"
            cfg.write_text(json.dumps({"llm": llm}), encoding="utf-8")
            row = run(data, tmp / f"{name}.jsonl", args, "--config", str(cfg), *extra)
            rows.append({"name": name, "concurrency": concurrency, **row})
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    default = Path(os.environ.get("MIXAUG_DATA", "../shared/datasets")) / "sst2"
    parser.add_argument("--data", default=str(default))
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--llama-server", default=llama_server_binary(),
                        help="llama.cpp's llama-server binary")  # fmt: skip
    parser.add_argument("--slots", type=int, default=8, help="llama-server -np")
    parser.add_argument("--variants",
                        help="groups to run: local, ray, server (default: all; server "
                        "only with a llama-server binary)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one line of JSON")
    args = parser.parse_args()
    data = Path(args.data)
    rows: list[dict[str, Any]] = []
    groups = set((args.variants or "local,ray,server").split(","))
    if args.variants is None and not args.llama_server:
        groups.discard("server")
    if "server" in groups and not args.llama_server:
        parser.error("no llama-server binary: pass --llama-server PATH or drop 'server'")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "local.jsonl"
        if groups & {"local", "ray"}:
            rows.append({"name": "local", **run(data, local, args)})
        for w in (int(x) for x in args.workers.split(",")) if "ray" in groups else ():
            out = Path(tmp) / f"ray{w}.jsonl"
            row = run(data, out, args, "--executor", "ray", "--workers", str(w))
            same = out.exists() and local.exists() and out.read_bytes() == local.read_bytes()
            rows.append({"name": f"ray-{w}", **row, "same_records": same})
        if "server" in groups:
            rows += server_rows(data, Path(tmp), args)
    rate = {r["name"]: r.get("records_per_second") for r in rows}
    ratios = {
        f"{r['name']}/{base}": round(r["records_per_second"] / rate[base], 2)
        for r in rows
        for base in ["server-c1" if r["name"].startswith("server") else "local"]
        if r["name"] != base and rate.get(base) and r.get("records_per_second")
    }
    out = {"n": args.n, "model": args.model, "cpu_count": os.cpu_count(), "variants": rows,
           "ratios": ratios, "slots": args.slots if "server" in groups else None}  # fmt: skip
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
