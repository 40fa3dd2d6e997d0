"""Exact and near duplicates against synthetic, train, anchors and eval texts."""

from __future__ import annotations

import numpy as np

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
