"""Which training settings make GPT3Mix records help: ablations on cached generations.

    python benchmarks/mix_settings.py --data ../shared/datasets/sst2 --task sst2 \
        --bench-out RESULTS_DIR [--levels 0.003,0.01] [--seeds 3] [--freeze-encoder]

Reuses the ``mix`` generations a ``mixaug bench`` run cached in ``RESULTS_DIR/cache``
(nothing is generated when they are there) and trains the bench's classifier on the
same sub-sample with the records used in different ways:

- ``noaug``: the sub-sample alone;
- ``hard``: the generated label, one-hot (``mix-hard``);
- ``soft``: the soft label (``mix-soft``);
- ``soft-agree``: only the records whose generated label is their soft label's argmax;
- ``soft-confident``: only the records whose soft label's top probability is at least
  ``--min-confidence`` (0.8);
- ``soft-half-weight``: every synthetic record at weight 0.5;
- ``soft-ratio1``: one synthetic record per real one (the first ``n_real``).

Prints JSON: per variant and level, accuracy mean±std over seeds, the difference
from ``noaug``, and the share of synthetic records the variant kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from mixaug.bench import Bench, BenchConfig  # noqa: E402
from mixaug.records import SyntheticRecord  # noqa: E402
from mixaug.training import TextClassifier, TextDataset, Trainer  # noqa: E402

Variant = Callable[[list[SyntheticRecord], int], list[SyntheticRecord]]


def _argmax(r: SyntheticRecord) -> str:
    return max(r.soft_label, key=lambda k: r.soft_label[k])


def variants(min_conf: float) -> dict[str, tuple[Variant, bool]]:
    """name -> (records to train on, given the records and n_real; hard labels?)."""
    return {
        "noaug": (lambda recs, n: [], False),
        "hard": (lambda recs, n: recs, True),
        "soft": (lambda recs, n: recs, False),
        "soft-agree": (
            lambda recs, n: [r for r in recs if r.generated_label == _argmax(r)],
            False,
        ),
        "soft-confident": (
            lambda recs, n: [r for r in recs if max(r.soft_label.values()) >= min_conf],
            False,
        ),
        "soft-half-weight": (
            lambda recs, n: [r.model_copy(update={"weight": 0.5 * r.weight}) for r in recs],
            False,
        ),
        "soft-ratio1": (lambda recs, n: recs[:n], False),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--bench-out", required=True, dest="bench_out")
    p.add_argument("--levels", default="0.003,0.01")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--ratio", type=int, default=5)
    p.add_argument("--min-confidence", type=float, default=0.8, dest="min_conf")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--freeze-encoder", action="store_true", dest="freeze")
    a = p.parse_args()

    levels = [float(x) for x in a.levels.split(",")]
    cfg = BenchConfig.model_validate(
        {
            "data": a.data,
            "task": a.task,
            "levels": levels,
            "seeds": a.seeds,
            "methods": ["mix-soft"],
            "ratio": a.ratio,
            "out": a.bench_out,
            "training": {"freeze_encoder": a.freeze, "epochs": a.epochs, "patience": a.patience},
        }
    )
    bench = Bench(cfg, progress=False)
    val = TextDataset.build(bench.splits.validation, labels=bench.labels)
    test = TextDataset.build(bench.splits.test, labels=bench.labels)
    runs: list[dict[str, Any]] = []
    for level in levels:
        for seed in range(a.seeds):
            sub = bench.subsample(level, seed)
            recs, _ = bench.synthetic("mix-soft", level, seed)
            assert all(isinstance(r, SyntheticRecord) for r in recs)
            for name, (pick, hard) in variants(a.min_conf).items():
                syn = pick(recs, len(sub))  # type: ignore[arg-type]
                train = TextDataset.build(sub, syn, labels=bench.labels, hard_synthetic=hard)
                args = cfg.training.model_copy(update={"seed": seed, "progress": False})
                torch.manual_seed(seed)
                model = TextClassifier.from_encoder(
                    cfg.encoder, bench.labels, max_length=args.max_length
                )
                # Validation and test features are encoded once for all runs.
                trainer = Trainer(model, args, train, val, feature_cache=bench.features)
                trainer.train()
                acc = float(trainer.evaluate(test)["accuracy"])
                runs.append(
                    {
                        "level": level,
                        "seed": seed,
                        "variant": name,
                        "accuracy": acc,
                        "n_real": len(sub),
                        "n_synthetic": sum(train.synthetic),
                        "kept_share": round(sum(train.synthetic) / len(recs), 3) if recs else None,
                    }
                )
                print(json.dumps(runs[-1]), flush=True)  # noqa: T201

    summary: dict[str, Any] = {"dataset": bench.splits.name, "levels": {}}
    for level in levels:
        at_level = [r for r in runs if r["level"] == level]
        base = [100 * r["accuracy"] for r in at_level if r["variant"] == "noaug"]
        cells = {}
        for name in variants(a.min_conf):
            rs = [r for r in at_level if r["variant"] == name]
            accs = [100 * r["accuracy"] for r in rs]
            cells[name] = {
                "mean": round(statistics.mean(accs), 2),
                "std": round(statistics.stdev(accs), 2) if len(accs) > 1 else 0.0,
                "vs_noaug": round(statistics.mean(accs) - statistics.mean(base), 2),
                "kept_share": None
                if name == "noaug"
                else round(statistics.mean(r["kept_share"] or 0.0 for r in rs), 3),
            }
        summary["levels"][f"{level:g}"] = cells
    summary["runs"] = runs
    print(json.dumps(summary, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
