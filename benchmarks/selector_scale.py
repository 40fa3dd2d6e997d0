"""Anchor selection at scale: indexing time, per-selection latency, anchor similarity.

    python benchmarks/selector_scale.py [--data DIR] [--pools 10000,100000] [--draws 200]

Prints one JSON object:
- ``sst2_index``: seconds to embed (all-MiniLM-L6-v2, 2 CPU cores) and index SST-2's
  training texts into a fresh Chroma collection;
- ``sst2_mean_pairwise_cosine``: mean pairwise cosine of the anchors (k=2) each
  strategy chooses on SST-2 (``diverse < random < similar`` is expected);
- ``latency_ms``: per-selection latency of each strategy on synthesised pools
  (random 384-d unit vectors, two classes; only the vectors matter for latency),
  and the ratio of each to ``random`` at the same size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from mixaug import Example, load_examples
from mixaug.selectors import STRATEGIES, AnchorIndex, default_embeddings, make_selector


class RandomUnitEmbedding:
    """Fast random unit vectors (for latency only; texts carry no meaning)."""

    def __init__(self, dim: int = 384, seed: int = 0) -> None:
        self.dim, self.rng = dim, np.random.default_rng(seed)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        v = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def mean_similarity(index: AnchorIndex, draws: int) -> dict[str, float]:
    out = {}
    for name in STRATEGIES:
        sel = make_selector(name, index.examples, k=2, seed=0, index=index)
        sims = [sel.similarity(sel.select_examples({})) for _ in range(draws)]
        out[name] = round(statistics.mean(s for s in sims if s is not None), 4)
    return out


def latency(index: AnchorIndex, draws: int) -> dict[str, float]:
    out = {}
    for name in STRATEGIES:
        sel = make_selector(name, index.examples, k=2, seed=0, index=index)
        sel.select_examples({})  # warm up
        t = time.perf_counter()
        for _ in range(draws):
            sel.select_examples({})
        out[name] = round((time.perf_counter() - t) / draws * 1000, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    default_data = os.environ.get(
        "MIXAUG_DATA", str(Path(__file__).parents[1] / ".." / "shared" / "datasets")
    )
    parser.add_argument("--data", default=default_data, help="folder with sst2/train.jsonl")
    parser.add_argument("--pools", default="10000,100000")
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args()

    result: dict[str, object] = {"cpu_cores": os.cpu_count()}
    examples = load_examples(Path(args.data) / "sst2" / "train.jsonl")
    t = time.perf_counter()
    index = AnchorIndex.build(examples, default_embeddings())
    result["sst2_index"] = {
        "texts": len(index),
        "embed_seconds": round(index.embed_seconds, 2),
        "index_seconds": round(index.index_seconds, 2),
        "total_seconds": round(time.perf_counter() - t, 2),
    }
    result["sst2_mean_pairwise_cosine"] = mean_similarity(index, args.draws)
    result["sst2_latency_ms"] = latency(index, args.draws)
    index.close()

    scale = {}
    for size in [int(s) for s in args.pools.split(",") if s]:
        pool = [Example(text=f"synthetic text {i}", label=("a", "b")[i % 2]) for i in range(size)]
        t = time.perf_counter()
        idx = AnchorIndex.build(pool, RandomUnitEmbedding())  # type: ignore[arg-type]
        build = time.perf_counter() - t
        lat = latency(idx, args.draws)
        scale[str(size)] = {
            "index_seconds": round(build, 2),
            "latency_ms": lat,
            "ratio_to_random": {k: round(v / lat["random"], 1) for k, v in lat.items()},
        }
        idx.close()
    result["synthetic_pools"] = scale
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
