"""Which fixed recipe settings to ship for a few-shot user, chosen on development data.

For every (task, level, seed) of the few-shot protocol (the sub-sample, and a validation
set of its size for early stopping), the default recipe's cached records are used with
each fixed variant below and the student is scored on the *paper protocol's* validation
set (500 examples of dev, or carved from train; never the test set). The variant with the
best average gain over NoAug on that development data is the one to ship: the test set
then checks it, and the unseen data sets check that it generalises.

Example:
    python benchmarks/fixed_defaults.py --data ../shared/datasets --bench runs/fs \
        --config llm.yaml > fixed.json

``--bench runs/fs`` names the few-shot bench folders (``runs/fs-sst2`` ...), whose
``cache`` holds the generated records (run ``mixaug bench --protocol few-shot`` first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mixaug.bench import BenchConfig  # noqa: E402
from mixaug.bench.runner import Bench  # noqa: E402
from mixaug.config import LabelMixConfig, load_config  # noqa: E402
from mixaug.recipe import RecipeConfig, _Fit, run_recipe  # noqa: E402
from mixaug.training import TextDataset, TrainingArguments  # noqa: E402

BASE = {"calibration": "prior", "teacher": "centroid", "sharpen": 4.0}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "weight-0.5": {"fixed_weight": 0.5},
    "ratio-2": {"fixed_ratio": 2.0},
    "ratio-1": {"fixed_ratio": 1.0},
    "sharpen-1": {"labeller": {"sharpen": 1.0}},
    "agreement": {"labeller": {"agreement": True}},
    "teacher-classifier": {"labeller": {"teacher": "classifier"}},
    "teacher-only": {"labeller": {"lm_weight": 0.0}},
    "lm-only": {"labeller": {"teacher": "none"}},
    "hard": {"hard": True},
    "weight-0.5-ratio-2": {"fixed_weight": 0.5, "fixed_ratio": 2.0},
}


def config(variant: dict[str, Any]) -> RecipeConfig:
    lab = LabelMixConfig(**(BASE | variant.get("labeller", {})))
    rest = {k: v for k, v in variant.items() if k != "labeller"}
    return RecipeConfig(search="fixed", fixed_labeller=lab, guard=False, **rest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder of sst2/, trec6/, cola/")
    ap.add_argument("--bench", required=True, help="prefix of the few-shot bench folders")
    ap.add_argument("--config", help="the bench's YAML config (its llm keys the cache)")
    ap.add_argument("--tasks", default="sst2,trec6,cola")
    ap.add_argument("--levels", default="0.001,0.003,0.01")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    llm = load_config(args.config).llm
    rows = []
    started = time.perf_counter()
    for task in args.tasks.split(","):
        cfg = BenchConfig(
            data=f"{args.data}/{task}", task=task, out=f"{args.bench}-{task}", llm=llm,
            protocol="few-shot", methods=["mix-soft"],
        )  # fmt: skip
        bench = Bench(cfg, progress=False)
        dev = TextDataset.build(bench.splits.validation, labels=bench.labels)
        for level in [float(x) for x in args.levels.split(",")]:
            for seed in range(args.seeds):
                sub = bench.subsample(level, seed)
                val = bench.validation(level, seed, sub)
                made, _, _ = bench._synthetic("mix-soft", sub, level, seed, anchors="targeted")
                targs = TrainingArguments(freeze_encoder=True, epochs=30, patience=5, seed=seed)
                fit = _Fit(bench.labels, targs, None, bench.features)
                trainer, _ = fit(sub, [], 1.0, val, seed)
                base = trainer.evaluate(dev)
                for name, variant in VARIANTS.items():
                    res = run_recipe(sub, val, made, llm=None, spec=bench.spec,  # type: ignore[arg-type]
                                     config=config(variant), training=targs,
                                     feature_cache=bench.features, seed=seed)  # fmt: skip
                    w = float(res.training.synthetic_weight)
                    trainer, _ = fit(sub, res.records, w, val, seed)
                    m = trainer.evaluate(dev)
                    rows.append({
                        "task": task, "level": level, "seed": seed, "variant": name,
                        "records": len(res.records),
                        "gain_accuracy": round(100 * (m["accuracy"] - base["accuracy"]), 2),
                        "gain_macro_f1": round(100 * (m["macro_f1"] - base["macro_f1"]), 2),
                    })  # fmt: skip
                print(json.dumps({"done": [task, level, seed]}), flush=True)
    out: dict[str, Any] = {"dev_examples": "the paper protocol's validation sets", "variants": {}}
    for name in VARIANTS:
        mine = [r for r in rows if r["variant"] == name]
        cells: dict[tuple[str, float], list[dict[str, Any]]] = {}
        for r in mine:
            cells.setdefault((r["task"], r["level"]), []).append(r)
        per_cell = {
            f"{t} {lv:g}": round(statistics.fmean(x["gain_accuracy"] for x in rs), 2)
            for (t, lv), rs in cells.items()
        }
        out["variants"][name] = {
            "mean_gain_accuracy": round(statistics.fmean(r["gain_accuracy"] for r in mine), 2),
            "mean_gain_macro_f1": round(statistics.fmean(r["gain_macro_f1"] for r in mine), 2),
            "worst_cell_accuracy": min(per_cell.values()),
            "per_cell_accuracy": per_cell,
        }
    out["rows"] = rows
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
