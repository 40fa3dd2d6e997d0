"""Effect as a few-shot user lives it: both bench protocols and SetFit, side by side.

Reads ``mixaug bench`` result folders named ``<protocol>-<task>`` under ``--root``
(``fs-sst2`` for ``--protocol few-shot``, ``paper-sst2`` for ``--protocol paper``) and
prints one JSON object (``--markdown``: tables too):

- per cell (task x level) and protocol: accuracy, macro-F1 (and MCC on CoLA) of
  ``noaug``, ``noaug-prior`` and the default recipe (``mix-soft`` with its guard's veto
  applied: a vetoed run is the NoAug run), the gain over the better of the two
  baselines per metric, and the paper's Table 1 NoAug / GPT3Mix beside it;
- the average gain over the cells and the worst cell, per metric;
- SetFit on 8 and 16 real examples per class, alone and with the recipe's records
  (``setfit-*-mix``: the records in its head; ``head-hard`` from the same rows), per
  task, and the average gain over the tasks: from ``sf-<task>`` folders (a few-shot
  bench of the SetFit methods).

Example:
    mixaug bench --data ../shared/datasets/sst2 --task sst2 --protocol few-shot \
        --methods noaug,noaug-prior,mix-soft --freeze-encoder --epochs 30 --patience 5 \
        --out runs/fs-sst2
    mixaug bench --data ../shared/datasets/sst2 --task sst2 --protocol few-shot \
        --methods setfit-8,setfit-8-mix,setfit-16,setfit-16-mix --levels 0.01 --out runs/sf-sst2
    python benchmarks/fewshot.py --root runs --markdown
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

TASKS = ("sst2", "trec6", "cola")
PROTOCOLS = {"fs": "few-shot", "paper": "paper"}
# GPT3Mix Table 1 (DistilBERT fully fine-tuned, GPT-3 davinci, ratio 1): NoAug, GPT3Mix.
PAPER = {
    ("sst2", 0.001): (55.8, 61.0),
    ("sst2", 0.003): (64.9, 71.7),
    ("sst2", 0.01): (77.9, 80.3),
    ("cola", 0.001): (64.9, 68.5),
    ("cola", 0.003): (62.2, 68.5),
    ("cola", 0.01): (67.8, 69.2),
    ("trec6", 0.001): (29.3, 37.6),
    ("trec6", 0.003): (37.9, 40.1),
    ("trec6", 0.01): (67.2, 65.8),
}
BASELINES = ("noaug", "noaug-prior")
DEFAULT = "mix-soft"
SETFIT = (("setfit-8", "setfit-8-mix"), ("setfit-16", "setfit-16-mix"))


def metrics_of(task: str) -> tuple[str, ...]:
    """What the criteria hold for (accuracy, macro-F1), plus GLUE's MCC on CoLA."""
    return ("accuracy", "macro_f1", "mcc") if task == "cola" else ("accuracy", "macro_f1")


def load(folder: Path) -> dict[tuple[float, str], dict[int, dict[str, Any]]]:
    """The newest row of each (level, method, seed); the default's veto applied."""
    by: dict[tuple[float, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    path = folder / "results.jsonl"
    if not path.is_file():
        return by
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        by[(r["level"], r["method"])][r["seed"]] = r
    for (level, method), rows in list(by.items()):
        if method != DEFAULT:
            continue
        noaug = by.get((level, "noaug"), {})
        for seed, r in rows.items():
            g = r.get("guard")
            if g is not None and not g.get("helps", g["gain"] > 0) and seed in noaug:
                base = noaug[seed]
                rows[seed] = r | {m: base.get(m) for m in ("accuracy", "macro_f1", "mcc")}
                rows[seed]["vetoed"] = True
    return by


def _stat(rows: dict[int, dict[str, Any]], metric: str) -> dict[str, Any] | None:
    xs = [100 * r[metric] for r in rows.values() if r.get(metric) is not None]
    if not xs:
        return None
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return {"mean": round(statistics.fmean(xs), 2), "std": round(sd, 2), "runs": len(xs)}


def cells(root: Path, prefix: str) -> list[dict[str, Any]]:
    """One entry per (task, level) that has the default and a baseline."""
    out = []
    for task in TASKS:
        by = load(root / f"{prefix}-{task}")
        for level in sorted({lv for lv, _ in by}):
            if (level, DEFAULT) not in by or not any((level, b) in by for b in BASELINES):
                continue
            cell: dict[str, Any] = {"task": task, "level": level, "paper": PAPER.get((task, level))}
            for metric in metrics_of(task):
                stats = {m: _stat(by[(level, m)], metric) for m in (*BASELINES, DEFAULT)
                         if (level, m) in by}  # fmt: skip
                best = max(s["mean"] for m, s in stats.items() if m in BASELINES and s)
                d = stats[DEFAULT]
                cell[metric] = stats | {"gain": None if d is None else round(d["mean"] - best, 2)}
            rows = by[(level, DEFAULT)]
            cell["vetoed"] = sum(bool(r.get("vetoed")) for r in rows.values())
            cell["runs"] = len(rows)
            cell["recipe_seconds"] = round(
                sum(r.get("recipe_seconds") or 0 for r in rows.values()), 1
            )
            cell["generation_seconds"] = round(
                sum(r.get("generation_seconds") or 0 for r in rows.values()), 1
            )
            out.append(cell)
    return out


def summary(cs: list[dict[str, Any]]) -> dict[str, Any]:
    res: dict[str, Any] = {"cells": len(cs)}
    for metric in ("accuracy", "macro_f1"):
        gains = [c[metric]["gain"] for c in cs if c[metric]["gain"] is not None]
        if gains:
            res[metric] = {
                "mean_gain": round(statistics.fmean(gains), 2),
                "worst_gain": min(gains),
                "cells_gaining": sum(g > 0 for g in gains),
            }
    return res


def setfit(root: Path, prefix: str = "sf") -> dict[str, Any]:
    """SetFit alone and with the records, per task; the average gain over the tasks."""
    per: dict[str, Any] = {}
    gains: dict[str, list[float]] = defaultdict(list)
    for task in TASKS:
        by = load(root / f"{prefix}-{task}")
        for alone, mix in SETFIT:
            a = {s: r for (lv, m), rows in by.items() if m == alone for s, r in rows.items()}
            b = {s: r for (lv, m), rows in by.items() if m == mix for s, r in rows.items()}
            if not a or not b:
                continue
            hard = {s: r["setfit_modes"]["head-hard"] | {"seed": s} for s, r in b.items()
                    if "head-hard" in r.get("setfit_modes", {})}  # fmt: skip
            entry: dict[str, Any] = {}
            for metric in metrics_of(task):
                sa, sb, sh = _stat(a, metric), _stat(b, metric), _stat(hard, metric)
                entry[metric] = {alone: sa, mix: sb, f"{mix} (head-hard)": sh}
                if sa and sb:
                    entry[metric]["gain"] = round(sb["mean"] - sa["mean"], 2)
                    gains[f"{alone}:{metric}"].append(sb["mean"] - sa["mean"])
                if sa and sh:
                    gains[f"{alone}:{metric}:head-hard"].append(sh["mean"] - sa["mean"])
            entry["train_seconds"] = round(sum(r["train_seconds"] for r in b.values()), 1)
            per[f"{task} {alone}"] = entry
    return {"tasks": per, "mean_gain": {k: round(statistics.fmean(v), 2) for k, v in gains.items()},
            "tasks_counted": {k: len(v) for k, v in gains.items()}}  # fmt: skip


def markdown(cs: list[dict[str, Any]], protocol: str) -> str:
    lines = [
        f"| {protocol}: cell | noaug acc / F1 | noaug-prior acc / F1 | recipe acc / F1 "
        "| gain acc / F1 | paper NoAug / GPT3Mix |",
        "|---|---|---|---|---|---|",
    ]

    def two(c: dict[str, Any], m: str) -> str:
        a, f = c["accuracy"].get(m), c["macro_f1"].get(m)
        return "" if a is None else f"{a['mean']:.1f}±{a['std']:.1f} / {f['mean']:.1f}"

    for c in cs:
        p = c["paper"]
        g = f"{c['accuracy']['gain']:+.1f} / {c['macro_f1']['gain']:+.1f}"
        mcc = ""
        if "mcc" in c:
            mcc = f" (MCC {c['mcc']['noaug']['mean']:.1f} → {c['mcc'][DEFAULT]['mean']:.1f})"
        lines.append(
            f"| {c['task']} {c['level'] * 100:g}% | {two(c, 'noaug')} | {two(c, 'noaug-prior')} "
            f"| {two(c, DEFAULT)}{mcc} | {g} | {'' if p is None else f'{p[0]} / {p[1]}'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="folder of <fs|paper>-<task> bench folders")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    root = Path(args.root)
    report: dict[str, Any] = {}
    for prefix, protocol in PROTOCOLS.items():
        cs = cells(root, prefix)
        if cs:
            report[protocol] = {"cells": cs, "summary": summary(cs)}
    report["setfit"] = setfit(root)
    print(json.dumps(report, indent=1))
    if args.markdown:
        for protocol in PROTOCOLS.values():
            if protocol in report:
                print(markdown(report[protocol]["cells"], protocol))


if __name__ == "__main__":
    main()
