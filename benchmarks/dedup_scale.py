"""Dedup at scale: seconds to check 1k, 10k and 100k synthetic texts, and LSH recall.

    python benchmarks/dedup_scale.py [--sizes 1000,10000,100000]

The pool is synthesised: 384-d unit vectors (all-MiniLM-L6-v2's size) with 10 % near
copies (cosine about 0.97) of earlier items, plus a train set of 5,000. Embedding time
is left out (it is the embedder's, about 3 ms a text on 2 cores); the JSON reports the
check itself, its growth factor per 10× items, and how many planted copies were found.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mixaug.dedup import Deduplicator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {}
    for n in [int(s) for s in args.sizes.split(",")]:
        vecs = rng.standard_normal((n, 384)).astype(np.float32)
        copies = rng.choice(np.arange(n // 2), size=n // 10, replace=False)
        targets = rng.choice(np.arange(n // 2, n), size=n // 10, replace=False)
        vecs[targets] = vecs[copies] + 0.12 * rng.standard_normal((n // 10, 384))
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        texts = [f"t{i}" for i in range(n)]
        table = dict(zip(texts, vecs, strict=True))
        train = [f"r{i}" for i in range(5000)]
        table.update(zip(train, rng.standard_normal((5000, 384)).astype(np.float32), strict=True))
        d = Deduplicator(
            train=train,
            embed=lambda ts, table=table: np.stack([table[t] for t in ts]),
            threshold=0.95,
        )
        t = time.perf_counter()
        verdicts = d.check(texts)
        secs = time.perf_counter() - t
        flagged = {i for i, v in enumerate(verdicts) if v is not None}
        out[str(n)] = {
            "seconds": round(secs, 2),
            "planted_copies": int(len(targets)),
            "found": int(len(flagged & set(targets.tolist()))),
            "false_flags": int(len(flagged - set(targets.tolist()))),
        }
    sizes = list(out)
    for a, b in zip(sizes, sizes[1:], strict=False):
        out[b]["growth_vs_previous"] = round(out[b]["seconds"] / max(out[a]["seconds"], 1e-9), 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
