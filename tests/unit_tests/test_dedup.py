"""Exact and near duplicates against synthetic, train, anchors and eval texts."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import near_copies

from mixaug.dedup import Deduplicator, LSHIndex, normalise_text

WORDS = "film plot cast music ending pace story jokes effects script acting camera".split()


def bag(texts: list[str]) -> np.ndarray:
    """Bag-of-words vectors: texts with the same words are near duplicates."""
    return np.asarray([[t.lower().split().count(w) + 0.0 for w in WORDS] for t in texts])


def test_normalisation() -> None:
    assert normalise_text("The  PLOT, it's thin!") == "the plot it's thin"


def test_exact_duplicates_by_kind() -> None:
    d = Deduplicator(train=["A fine film ."], eval_texts=["the test review"])
    verdicts = d.check(
        ["a fine film", "The test review!", "my anchor text", "new one", "NEW ONE.", "other"],
        anchors=[[], [], ["my anchor text ."], [], [], []],
    )
    reasons = [v.reason if v else None for v in verdicts]
    assert reasons == ["exact_train", "exact_eval", "exact_anchor", None, "exact_synthetic", None]
    assert verdicts[4] is not None and verdicts[4].other == "new one"


def test_near_duplicates_with_embeddings() -> None:
    d = Deduplicator(train=["film plot cast"], embed=bag, threshold=0.9)
    verdicts = d.check(
        ["cast plot film film", "music ending pace", "pace ending music", "story jokes"],
    )
    assert verdicts[0] is not None and verdicts[0].reason == "near_train"
    assert verdicts[0].similarity >= 0.9
    assert verdicts[1] is None
    # Same words in another order: not an exact duplicate, but a near one.
    assert verdicts[2] is not None and verdicts[2].reason == "near_synthetic"
    assert verdicts[3] is None


def test_near_copy_of_an_anchor() -> None:
    d = Deduplicator(embed=bag, threshold=0.9)
    (v,) = d.check(["script acting camera camera"], anchors=[["camera acting script"]])
    assert v is not None and v.reason == "near_anchor"


def test_lsh_finds_near_copies_without_false_positives() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2000, 64)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    idx = LSHIndex(64, seed=1)
    idx.add(base, [str(i) for i in range(len(base))])
    noise = rng.standard_normal((200, 64)).astype(np.float32) * 0.03
    copies = base[:200] + noise
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    found = sum(
        bool(idx.query(c, 0.95)) and idx.query(c, 0.95)[0][0] == i for i, c in enumerate(copies)
    )
    assert found >= 0.95 * len(copies)
    fresh = rng.standard_normal((200, 64)).astype(np.float32)
    fresh /= np.linalg.norm(fresh, axis=1, keepdims=True)
    assert not any(idx.query(f, 0.95) for f in fresh)


def test_exact_only_without_an_embedder() -> None:
    d = Deduplicator(train=["cast plot film"])
    verdicts = d.check(["film plot cast", "Cast, plot film."])
    assert verdicts[0] is None  # a reordering is only a near duplicate: not checked
    assert verdicts[1] is not None and verdicts[1].reason == "exact_train"


def test_exact_index_finds_the_best_match_in_blocks() -> None:
    from mixaug.dedup import ExactIndex

    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = base[:50] + 0.05 * rng.standard_normal((50, 32)).astype(np.float32)
    queries = np.vstack([queries, rng.standard_normal((20, 32)).astype(np.float32)])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    idx = ExactIndex(32)
    idx.block_cells = 700  # force many small blocks
    for start in range(0, 300, 64):  # and several additions (the store grows)
        idx.add(base[start : start + 64], [f"t{i}" for i in range(start, min(start + 64, 300))])
    got = idx.best(queries, 0.9)
    sims = queries @ base.T
    for r, hit in enumerate(got):
        j = int(sims[r].argmax())
        if sims[r, j] >= 0.9:
            assert hit is not None and hit[0] == j and hit[1] == pytest.approx(sims[r, j])
        else:
            assert hit is None
    assert sum(h is not None for h in got[:50]) == 50 and all(h is None for h in got[50:])
    assert ExactIndex(32).best(queries, 0.9) == [None] * len(queries)


def _sequential_reference(vecs: np.ndarray, threshold: float) -> list[bool]:
    """Flag a vector when an earlier *kept* one has cosine >= threshold (the filter's rule)."""
    kept: list[int] = []
    flags = []
    for i, v in enumerate(vecs):
        dup = bool(kept) and float((vecs[kept] @ v).max()) >= threshold
        flags.append(dup)
        if not dup:
            kept.append(i)
    return flags


def test_near_duplicates_follow_the_sequential_rule_across_and_within_batches() -> None:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((40, 24))
    vecs = centres[rng.integers(0, 40, 400)] + 0.12 * rng.standard_normal((400, 24))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    texts = [f"text number {i}" for i in range(400)]
    table = dict(zip(texts, vecs, strict=True))
    d = Deduplicator(embed=lambda ts: np.stack([table[t] for t in ts]), threshold=0.97)
    verdicts = []
    for start in range(0, 400, 37):  # uneven batches: matches inside a batch and across
        verdicts += d.check(texts[start : start + 37])
    want = _sequential_reference(vecs, 0.97)
    assert [v is not None for v in verdicts] == want
    assert 20 < sum(want) < 380  # the data has both kinds
    for i, v in enumerate(verdicts):
        if v is not None:  # the reported match is the closest earlier kept text
            j = texts.index(v.other)
            assert j < i and v.against == "synthetic" and v.kind == "near"
            earlier_kept = [k for k in range(i) if verdicts[k] is None]
            assert v.similarity == pytest.approx(float((vecs[earlier_kept] @ vecs[i]).max()))


def test_sharded_near_duplicate_mask_keeps_what_the_sequential_rule_keeps() -> None:
    from mixaug.dedup import near_duplicate_mask

    v = near_copies(120, 280, 16, 0.05, seed=3)
    reference = [not dup for dup in _sequential_reference(v, 0.95)]  # True: kept
    calls: list[list[tuple[int, int]]] = []

    def in_order(shards: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
        from mixaug.dedup import near_pairs

        calls.append(shards)
        return [near_pairs(v, a, b, 0.95) for a, b in reversed(shards)][::-1]

    for rows in (7, 64, 1000):
        assert near_duplicate_mask(v, 0.95, shard_rows=rows).tolist() == reference
    assert near_duplicate_mask(v, 0.95, shard_rows=50, map_shards=in_order).tolist() == reference
    assert len(calls[0]) == 8 and 120 <= sum(reference) < 400
