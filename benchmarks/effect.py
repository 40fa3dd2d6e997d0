"""The Effect benchmark: the default method against NoAug, the peers and the paper, per cell.

Runs (or reads) ``mixaug bench`` on each data set and prints one JSON object:

- per cell (data set x level): mean±std test accuracy of every method, the default
  method's gain over NoAug, the guard's validation gain and whether its sign agrees
  with the test gain (per data seed), and the paper's Table 1 numbers beside ours;
- the averages over the cells, soft vs hard, and each ablation's difference from the
  full recipe (what each step is worth);
- the recipe's choices (labeller, ratio, quota prior, weight, label power) per cell and seed;
- the guard's veto applied to the default method (``abl-noveto``: the records as trained).

Example:
    python benchmarks/effect.py --data ../shared/datasets --out /tmp/effect --run \
        --methods noaug,eda,bt,mix-soft,mix-hard,abl-rawlabel,abl-noteacher
    python benchmarks/effect.py --out /tmp/effect            # just read and summarise

The bench is resumable (``results.jsonl`` + generation cache per data set), so a rerun
only computes what is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TASKS = ("sst2", "trec6", "cola")
# GPT3Mix Table 1 (DistilBERT, GPT-3 davinci, ratio 1): NoAug, EDA, BT, GPT3Mix.
PAPER = {
    ("sst2", 0.001): (55.8, 54.4, 55.7, 61.0),
    ("sst2", 0.003): (64.9, 67.7, 64.4, 71.7),
    ("sst2", 0.01): (77.9, 74.4, 77.3, 80.3),
    ("cola", 0.001): (64.9, 59.0, 51.4, 68.5),
    ("cola", 0.003): (62.2, 66.1, 57.3, 68.5),
    ("cola", 0.01): (67.8, 64.0, 61.8, 69.2),
    ("trec6", 0.001): (29.3, 29.0, 26.3, 37.6),
    ("trec6", 0.003): (37.9, 34.7, 37.3, 40.1),
    ("trec6", 0.01): (67.2, 66.8, 68.2, 65.8),
}


def _stats(xs: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(xs), 2),
        "std": round(statistics.stdev(xs), 2) if len(xs) > 1 else 0.0,
        "runs": len(xs),
    }


def _sign(x: float, eps: float = 1e-9) -> int:
    return 0 if abs(x) < eps else (1 if x > 0 else -1)


def _apply_veto(by: dict[tuple[float, str], dict[int, dict[str, Any]]], default: str) -> None:
    """The recipe's guard veto on the default method's rows, in place.

    The bench trains the recipe's choice and measures its guard; the recipe as shipped
    (``RecipeConfig.veto``) then drops the records when the guard says they do not help,
    and the model it trains is NoAug's (same sub-sample, seed, validation set and
    settings), so a vetoed run's accuracy is the NoAug row's. The rows as trained stay
    under ``abl-noveto``; the guard's sign agreement is measured on those.
    """
    for (level, method), rows in list(by.items()):
        if method != default:
            continue
        noaug = by.get((level, "noaug"), {})
        by[(level, "abl-noveto")] = dict(rows)
        vetoed: dict[int, dict[str, Any]] = {}
        for seed, r in rows.items():
            g = r.get("guard")
            if g is not None and not g.get("helps", g["gain"] > 0) and seed in noaug:
                vetoed[seed] = {**r, "accuracy": noaug[seed]["accuracy"], "vetoed": True}
            else:
                vetoed[seed] = r
        by[(level, method)] = vetoed


def summarise(
    out: Path,
    default: str = "mix-soft",
    *,
    veto: bool = True,
    methods: list[str] | None = None,
) -> dict[str, Any]:
    """Read every ``OUT/<task>/results.jsonl`` and build the report.

    With ``methods``, only those rows count (a results file keeps rows of earlier
    settings too; the newest row of each (level, seed, method) wins).
    """
    cells: list[dict[str, Any]] = []
    for task in TASKS:
        path = out / task / "results.jsonl"
        if not path.is_file():
            continue
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        by: dict[tuple[float, str], dict[int, dict[str, Any]]] = defaultdict(dict)
        for r in rows:
            if methods is None or r["method"] in methods:
                by[(r["level"], r["method"])][r["seed"]] = r
        if veto:
            _apply_veto(by, default)
        for level in sorted({lv for lv, _ in by}):
            here = sorted({m for lv, m in by if lv == level})
            acc = {m: _stats([100 * r["accuracy"] for r in by[(level, m)].values()]) for m in here}
            cell: dict[str, Any] = {"task": task, "level": level, "accuracy": acc}
            noaug = by.get((level, "noaug"), {})
            mine = by.get((level, default), {})
            seeds = sorted(set(noaug) & set(mine))
            if seeds:
                gains = [100 * (mine[s]["accuracy"] - noaug[s]["accuracy"]) for s in seeds]
                cell["gain"] = _stats(gains)
                cell["vetoed"] = sum(bool(mine[s].get("vetoed")) for s in seeds)
                trained = by.get((level, "abl-noveto"), mine)
                gains = [100 * (trained[s]["accuracy"] - noaug[s]["accuracy"]) for s in seeds]
                guard = [mine[s].get("guard") for s in seeds]
                if all(g is not None for g in guard):
                    agree = [
                        _sign(g["gain"]) == _sign(x) for g, x in zip(guard, gains, strict=True)
                    ]
                    cell["guard_gain"] = _stats([g["gain"] for g in guard])
                    cell["guard_sign_agrees"] = agree
                    cell["guard_mean_sign_agrees"] = _sign(
                        statistics.fmean(g["gain"] for g in guard)
                    ) == _sign(statistics.fmean(gains))
                cell["recipe"] = [
                    {
                        k: mine[s]["recipe"].get(k)
                        for k in ("labeller", "ratio", "prior", "weight", "sharpen")
                    }
                    for s in seeds
                    if "recipe" in mine[s]
                ]
                cell["seconds"] = round(
                    sum(mine[s].get("recipe_seconds", 0) + mine[s]["train_seconds"] for s in seeds)
                    + sum(mine[s]["generation_seconds"] for s in seeds),
                    1,
                )
            paper = PAPER.get((task, level))
            if paper:
                cell["paper"] = dict(zip(("noaug", "eda", "bt", "gpt3mix"), paper, strict=True))
            cells.append(cell)
    report: dict[str, Any] = {"default_method": default, "cells": cells}
    with_gain = [c for c in cells if "gain" in c]
    if with_gain:
        report["mean_gain"] = round(statistics.fmean(c["gain"]["mean"] for c in with_gain), 2)
        report["worst_cell_gain"] = round(min(c["gain"]["mean"] for c in with_gain), 2)
        agreeing = [c["guard_mean_sign_agrees"] for c in with_gain if "guard_mean_sign_agrees" in c]
        report["guard_sign_agrees_cells"] = f"{sum(agreeing)}/{len(agreeing)}"
        per_seed = [a for c in with_gain for a in c.get("guard_sign_agrees", [])]
        report["guard_sign_agrees_runs"] = f"{sum(per_seed)}/{len(per_seed)}"
    report["method_means"] = {}
    for m in sorted({m for c in cells for m in c["accuracy"]}):
        vals = [c["accuracy"][m]["mean"] for c in cells if m in c["accuracy"]]
        if len(vals) == len(cells) and cells:
            report["method_means"][m] = round(statistics.fmean(vals), 2)
    base = report["method_means"].get(default)
    if base is not None:
        report["vs_default"] = {
            m: round(v - base, 2) for m, v in report["method_means"].items() if m != default
        }
    return report


def markdown(report: dict[str, Any], methods: list[str]) -> str:
    """The cells as a Markdown table: one row per (task, level), mean±std per method."""
    head = "| cell | " + " | ".join(methods) + " | gain | guard gain | paper NoAug / GPT3Mix |"
    lines = [head, "|---" * (len(methods) + 4) + "|"]
    for c in report["cells"]:
        acc = c["accuracy"]
        cells = [f"{acc[m]['mean']:.1f}±{acc[m]['std']:.1f}" if m in acc else "" for m in methods]
        gain = f"{c['gain']['mean']:+.1f}" if "gain" in c else ""
        guard = f"{c['guard_gain']['mean']:+.1f}" if "guard_gain" in c else ""
        paper = c.get("paper")
        ptxt = f"{paper['noaug']:.1f} / {paper['gpt3mix']:.1f}" if paper else ""
        name = f"{c['task']} {100 * c['level']:g}%"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {gain} | {guard} | {ptxt} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("MIXAUG_DATA", "../shared/datasets"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--run", action="store_true", help="run mixaug bench first (resumable)")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--methods", default="noaug,eda,bt,mix-soft,mix-hard")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--levels", default="0.001,0.003,0.01")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table instead")
    ap.add_argument(
        "--no-veto",
        action="store_true",
        help="report the recipe's records as trained, without the guard's veto",
    )
    args = ap.parse_args()
    out = Path(args.out)
    wall: dict[str, float] = {}
    if args.run:
        for task in args.tasks.split(","):
            t0 = time.perf_counter()
            cmd = [
                sys.executable, "-m", "mixaug.cli", "bench",
                "--data", str(Path(args.data) / task), "--task", task,
                "--levels", args.levels, "--seeds", str(args.seeds),
                "--methods", args.methods, "--out", str(out / task),
                "--freeze-encoder", "--epochs", "30", "--patience", "5", "--quiet",
            ]  # fmt: skip
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            wall[task] = round(time.perf_counter() - t0, 1)
    report = summarise(out, veto=not args.no_veto, methods=args.methods.split(","))
    if wall:
        report["wall_seconds"] = wall
    if args.markdown:
        print(markdown(report, args.methods.split(",")))
        return 0
    print(json.dumps(report, indent=2))
    return 0 if not math.isnan(report.get("mean_gain", 0.0)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
