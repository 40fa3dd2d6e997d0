"""Records per second of `mixaug augment` with --executor local and ray (1, 2 workers).

    python benchmarks/scale.py [--data DIR] [--n 48] [--model gemma3-270m]
        [--workers 1,2] [--batch-size 16] [--json]

Each variant is the real CLI in its own process on SST-2's training split (seed 0,
``--labels lm``: the LM's own soft labels, so the driver runs no labeller), from a cold
start (Ray's start-up and the workers' model loads count: that is what a user waits
for). Every output is compared with the local one byte for byte (``same_records``). Prints
one JSON object: ``variants: [{"name", "seconds", "records_per_second", "same_records",
"used_early", "dropped_early"}]`` and ``ratios`` to ``local``.

On one machine Ray cannot add cores: this measures its overhead and how much of the run
the work-ahead keeps busy. Across machines each worker brings its own cores and model.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    default = Path(os.environ.get("MIXAUG_DATA", "../shared/datasets")) / "sst2"
    parser.add_argument("--data", default=str(default))
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="one line of JSON")
    args = parser.parse_args()
    data = Path(args.data)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "local.jsonl"
        rows.append({"name": "local", **run(data, local, args)})
        for w in (int(x) for x in args.workers.split(",")):
            out = Path(tmp) / f"ray{w}.jsonl"
            row = run(data, out, args, "--executor", "ray", "--workers", str(w))
            same = out.exists() and local.exists() and out.read_bytes() == local.read_bytes()
            rows.append({"name": f"ray-{w}", **row, "same_records": same})
    base = rows[0].get("records_per_second")
    ratios = {
        f"{r['name']}/local": round(r["records_per_second"] / base, 2)
        for r in rows[1:]
        if base and r.get("records_per_second")
    }
    out = {"n": args.n, "model": args.model, "cpu_count": os.cpu_count(), "variants": rows,
           "ratios": ratios}  # fmt: skip
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
