"""Dedup a 100k pool of real-looking texts end to end, embedding included.

    python benchmarks/dedup_real.py --data ../shared/datasets/sst2 [--n 100000]

The pool is EDA variants of the SST-2 training texts (synonym swaps, insertions,
swaps, deletions: many near copies of train and of each other), checked against the
training set and the dev set (leakage) with the packaged all-MiniLM-L6-v2 and the
default threshold 0.95, in batches of 1,000 as a filter sees them. Prints JSON:
seconds to embed, seconds to check, records per reason.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np

from mixaug.baselines.eda import eda
from mixaug.baselines.wordnet import load_wordnet
from mixaug.data import load_examples
from mixaug.dedup import Deduplicator
from mixaug.selectors.embeddings import default_embeddings


def main() -> None:
    parser = argparse.ArgumentParser()
    default = Path(os.environ.get("MIXAUG_DATA", "../shared/datasets")) / "sst2"
    parser.add_argument("--data", default=str(default))
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--threshold", type=float, default=0.95)
    args = parser.parse_args()
    train = [e.text for e in load_examples(Path(args.data) / "train.jsonl")]
    dev = [e.text for e in load_examples(Path(args.data) / "dev.jsonl")]
    rng, wn = random.Random(0), load_wordnet()
    per = -(-args.n // len(train))
    t0 = time.perf_counter()
    pool: list[str] = []
    for text in train:
        pool += eda(text, num_aug=per, rng=rng, wn=wn)
    rng.shuffle(pool)
    pool = pool[: args.n]
    eda_seconds = time.perf_counter() - t0

    emb = default_embeddings(batch_size=256)
    t0 = time.perf_counter()
    vectors = np.asarray(emb.embed_documents(pool + train + dev), dtype=np.float32)
    embed_seconds = time.perf_counter() - t0
    table = dict(zip(pool + train + dev, vectors, strict=False))

    t0 = time.perf_counter()
    d = Deduplicator(
        train=train,
        eval_texts=dev,
        embed=lambda ts: np.stack([table[t] for t in ts]),
        threshold=args.threshold,
    )
    reasons: Counter[str] = Counter()
    for i in range(0, len(pool), 1000):
        for v in d.check(pool[i : i + 1000]):
            reasons[v.reason if v else "kept"] += 1
    check_seconds = time.perf_counter() - t0
    result = {
        "pool": len(pool),
        "train": len(train),
        "eval": len(dev),
        "threshold": args.threshold,
        "eda_seconds": round(eda_seconds, 1),
        "embed_seconds": round(embed_seconds, 1),
        "embed_texts_per_second": round(len(table) / embed_seconds, 1),
        "check_seconds": round(check_seconds, 1),
        "total_dedup_seconds": round(embed_seconds + check_seconds, 1),
        "reasons": dict(reasons.most_common()),
    }
    print(json.dumps(result, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
