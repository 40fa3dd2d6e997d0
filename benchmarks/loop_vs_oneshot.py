"""The agentic loop against one-shot augmentation at an equal token budget.

    python benchmarks/loop_vs_oneshot.py --data ../shared/datasets/sst2 --task sst2 \
        [--level 0.003] [--seeds 3] [--budget-tokens 20000] [--per-round 32] [--out DIR]

For each data seed: the bench's class-balanced sub-sample of the training data (the
same one ``mixaug bench`` draws), then

- ``loop``: ``mixaug loop``'s graph on it, validated on the bench's validation split,
  stopped by the token budget (or ``max_rounds``/patience);
- ``oneshot``: one ``augment`` pass with the same model, prompt family and filter
  (dedup; ``--critic`` adds the LLM critic to both),
  asking for records until it has spent the tokens the loop spent (a first pass sized
  from the loop's tokens per record, topped up while it is short);
- ``noaug``: the sub-sample alone.

Each is scored the same way the bench scores: a fresh classifier (frozen encoder,
30 epochs, patience 5) trained on real + kept synthetic records, early-stopped on the
validation split, tested on the test split. Prints JSON: per method accuracy mean±std
over seeds, tokens spent, records kept, and every run. Loop folders stay under
``--out`` (rerun to resume them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _score(sub: Any, syn: Any, splits: Any, labels: list[str], seed: int) -> float:
    import torch

    from mixaug.training import TextClassifier, TextDataset, Trainer, TrainingArguments

    train = TextDataset.build(sub, syn, labels=labels)
    val = TextDataset.build(splits.validation, labels=labels)
    test = TextDataset.build(splits.test, labels=labels)
    args = TrainingArguments(freeze_encoder=True, epochs=30, patience=5, seed=seed)
    torch.manual_seed(seed)
    trainer = Trainer(TextClassifier.from_encoder(None, labels), args, train, val)
    trainer.train()
    return float(trainer.evaluate(test)["accuracy"])


def main() -> None:
    from mixaug import AugmentConfig, augment, get_spec
    from mixaug.bench import balanced_subsample, load_splits
    from mixaug.config import FilterConfig
    from mixaug.data import check_labels
    from mixaug.filtering import build_record_filter
    from mixaug.loop import LoopContext, run_loop
    from mixaug.providers import build_llm, build_scorer

    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--level", type=float, default=0.003)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budget-tokens", type=int, default=20_000, dest="budget")
    p.add_argument("--per-round", type=int, default=32, dest="per_round")
    p.add_argument("--max-rounds", type=int, default=20, dest="max_rounds")
    p.add_argument("--model", default=None)
    p.add_argument(
        "--critic",
        action="store_true",
        help="add the LLM critic to both arms' filter (default: dedup only)",
    )
    p.add_argument("--out", default="runs/loop_vs_oneshot")
    a = p.parse_args()

    splits = load_splits(a.data)
    spec = check_labels(splits.pool, get_spec(a.task))
    labels = list(spec.label_names)
    llm_cfg: dict[str, Any] = {} if a.model is None else {"model": a.model}
    runs: list[dict[str, Any]] = []
    for seed in range(a.seeds):
        sub = balanced_subsample(splits.pool, a.level, seed=seed)
        cfg = AugmentConfig.model_validate(
            {
                "llm": llm_cfg,
                "seed": seed,
                "loop": {
                    "per_round": a.per_round,
                    "max_rounds": a.max_rounds,
                    "budget_tokens": a.budget,
                },
            }
        )
        llm = build_llm(cfg.llm, seed=seed)
        scorer = build_scorer(cfg.llm, llm)
        fcfg = FilterConfig.model_validate({"critic": {"enabled": a.critic}})

        def make_filter() -> Any:
            return build_record_filter(
                fcfg, spec, sub, llm_config=cfg.llm, eval_examples=splits.validation,  # noqa: B023
                llm=llm, scorer=scorer, seed=cfg.seed,  # noqa: B023
            )  # fmt: skip

        t0 = time.perf_counter()
        ctx = LoopContext(
            cfg=cfg, spec=spec, train=sub, validation=splits.validation, llm=llm,
            scorer=scorer, record_filter=make_filter(),
        )  # fmt: skip
        out = Path(a.out) / f"{splits.name}-{a.level:g}-s{seed}"
        report = run_loop(ctx, out, settings={"bench": vars(a), "seed": seed})
        loop_records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
        loop_seconds = time.perf_counter() - t0
        from mixaug.records import SyntheticRecord

        loop_syn = [SyntheticRecord.model_validate(r) for r in loop_records]

        # One-shot at the loop's token spend.
        t0 = time.perf_counter()
        made = report["kept"] + report["rejected"]
        per_record = report["tokens"] / max(made, 1)
        oneshot: list[Any] = []
        tokens = 0
        rf = make_filter()
        rounds = 0
        while tokens < report["tokens"] and rounds < 10:
            need = max(1, math.floor((report["tokens"] - tokens) / per_record))
            res = augment(
                sub, spec, llm, n=need, k=min(cfg.k, len(sub) - 1), seed=seed * 7 + rounds,
                batch_size=cfg.llm.batch_size, scorer=scorer, record_filter=rf,
            )  # fmt: skip
            oneshot += res.records
            tokens += res.prompt_tokens + res.completion_tokens
            rounds += 1
        oneshot_seconds = time.perf_counter() - t0
        runs.append(
            {
                "seed": seed,
                "n_real": len(sub),
                "noaug": _score(sub, [], splits, labels, seed),
                "loop": _score(sub, loop_syn, splits, labels, seed),
                "oneshot": _score(sub, oneshot, splits, labels, seed),
                "loop_tokens": report["tokens"],
                "oneshot_tokens": tokens,
                "loop_kept": len(loop_syn),
                "oneshot_kept": len(oneshot),
                "loop_rounds": report["rounds_run"],
                "loop_stop": report["stop_reason"],
                "loop_seconds": round(loop_seconds, 1),
                "oneshot_seconds": round(oneshot_seconds, 1),
            }
        )
        print(json.dumps(runs[-1]), flush=True)  # noqa: T201

    def ms(key: str) -> dict[str, float]:
        vals = [100 * r[key] for r in runs]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return {"mean": round(statistics.mean(vals), 2), "std": round(sd, 2)}

    summary = {
        "dataset": splits.name,
        "level": a.level,
        "seeds": a.seeds,
        "budget_tokens": a.budget,
        "accuracy": {m: ms(m) for m in ("noaug", "oneshot", "loop")},
        "tokens": {
            "loop": round(statistics.mean(r["loop_tokens"] for r in runs)),
            "oneshot": round(statistics.mean(r["oneshot_tokens"] for r in runs)),
        },
        "runs": runs,
    }
    print(json.dumps(summary, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
