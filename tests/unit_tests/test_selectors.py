"""Anchor selectors on fake embeddings and in-process Chroma."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from fakes import KeywordEmbedding
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore

import mixaug.selectors
from mixaug import ConfigError, DataError, Example
from mixaug.selectors import (
    STRATEGIES,
    AnchorIndex,
    DiverseSelector,
    MixedClassSelector,
    SameClassSelector,
    make_selector,
)

TOPICS = KeywordEmbedding.TOPICS
POOL = [
    Example(text=f"{adj} {t} {t} take{i}", label=label)
    for t in TOPICS
    for adj, label in (("great", "positive"), ("awful", "negative"))
    for i in range(2)
]


def topic(text: str) -> str:
    return text.split()[1]


@pytest.fixture
def index() -> AnchorIndex:
    idx = AnchorIndex.build(POOL, KeywordEmbedding())  # type: ignore[arg-type]
    yield idx
    idx.close()


def _draws(sel: mixaug.selectors.AnchorSelector, n: int = 20) -> list[list[dict]]:
    return [sel.select_examples({}) for _ in range(n)]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_gives_k_distinct_pool_anchors_deterministically(
    name: str, index: AnchorIndex
) -> None:
    a = _draws(make_selector(name, POOL, k=3, seed=1, index=index))
    b = _draws(make_selector(name, POOL, k=3, seed=1, index=index))
    c = _draws(make_selector(name, POOL, k=3, seed=2, index=index))
    assert a == b
    assert a != c
    pool = {(e.text, e.label) for e in POOL}
    for anchors in a:
        assert len(anchors) == 3
        assert len({x["text"] for x in anchors}) == 3
        assert all((x["text"], x["label"]) in pool for x in anchors)
        assert set(anchors[0]) == {"text", "label"}


def test_balanced_covers_classes() -> None:
    sel = make_selector("balanced", POOL, k=2, seed=0)
    for anchors in _draws(sel):
        assert {x["label"] for x in anchors} == {"positive", "negative"}


def test_same_class_is_one_class_and_near(index: AnchorIndex) -> None:
    sel = SameClassSelector(index, k=2, seed=0)
    for anchors in _draws(sel):
        assert anchors[0]["label"] == anchors[1]["label"]
        assert topic(anchors[0]["text"]) == topic(anchors[1]["text"])
    forced = sel.select_examples({"label": "negative"})
    assert {x["label"] for x in forced} == {"negative"}


def test_mixed_class_crosses_the_boundary_nearby(index: AnchorIndex) -> None:
    sel = MixedClassSelector(index, k=2, seed=0)
    for anchors in _draws(sel):
        assert anchors[0]["label"] != anchors[1]["label"]
        assert topic(anchors[0]["text"]) == topic(anchors[1]["text"])


def test_similar_follows_a_query_text(index: AnchorIndex) -> None:
    sel = make_selector("similar", POOL, k=3, seed=0, index=index)
    anchors = sel.select_examples({"query": "the music music was loud"})
    assert {topic(x["text"]) for x in anchors} == {"music"}


def test_mean_cosine_orders_diverse_random_similar(index: AnchorIndex) -> None:
    def mean_sim(name: str, **opts: object) -> float:
        sel = make_selector(name, POOL, k=3, seed=0, index=index, options=opts or None)
        sims = [sel.similarity(a) for a in _draws(sel, 40)]
        return statistics.mean(s for s in sims if s is not None)

    diverse, rnd, similar = (
        mean_sim("diverse", mmr_lambda=0.0),
        mean_sim("random"),
        mean_sim("similar"),
    )
    assert diverse < rnd < similar


def test_diverse_lambda_and_class_filter(index: AnchorIndex) -> None:
    sel = DiverseSelector(index, k=2, seed=0, class_filter="same")
    for anchors in _draws(sel):
        assert anchors[0]["label"] == anchors[1]["label"]
    near = DiverseSelector(index, k=2, seed=0, mmr_lambda=1.0, fetch_k=len(POOL))
    far = DiverseSelector(index, k=2, seed=0, mmr_lambda=0.0, fetch_k=len(POOL))
    sim = lambda s: statistics.mean(s.similarity(a) for a in _draws(s))  # noqa: E731
    assert sim(near) > sim(far)


@pytest.mark.parametrize(
    ("name", "pool", "k", "error", "needle"),
    [
        ("same-class", POOL[:3], 3, DataError, "'negative' has 1"),
        (
            "mixed-class",
            [e for e in POOL if e.label == "positive"],
            2,
            DataError,
            "at least two classes",
        ),
        ("random", [], 2, DataError, "empty"),
        ("similar", [], 2, DataError, "empty"),
        ("similar", POOL[:2], 3, DataError, "only 2 examples"),
        (
            "nearest",
            POOL,
            2,
            ConfigError,
            "random, balanced, targeted, same-class, mixed-class, diverse, similar",
        ),
    ],
)
def test_bad_input_is_refused_clearly(
    name: str, pool: list[Example], k: int, error: type, needle: str
) -> None:
    with pytest.raises(error, match=needle):
        make_selector(name, pool, k=k, embeddings=DeterministicFakeEmbedding(size=16))


def test_bad_options_are_refused() -> None:
    emb = DeterministicFakeEmbedding(size=16)
    with pytest.raises(ConfigError, match="mmr_lambda: Input should be less than or equal to 1"):
        make_selector("diverse", POOL, embeddings=emb, options={"mmr_lambda": 2.0})
    with pytest.raises(ConfigError, match="takes no options"):
        make_selector("random", POOL, options={"mmr_lambda": 0.5})
    with pytest.raises(ConfigError, match="Unknown option"):
        make_selector("diverse", POOL, embeddings=emb, options={"lamda": 0.5})


def test_each_index_has_its_own_collection() -> None:
    emb = DeterministicFakeEmbedding(size=16)
    a = AnchorIndex.build(POOL[:8], emb)
    b = AnchorIndex.build(POOL[8:16], emb)
    again = AnchorIndex.build(POOL[:8], emb)  # same data twice: no duplicates
    for idx, pool in ((a, POOL[:8]), (b, POOL[8:16]), (again, POOL[:8])):
        found = idx.nearest(idx.vectors[0], 8)
        assert sorted(idx.examples[p].text for p in found) == sorted(e.text for e in pool)
        assert idx.vectorstore._collection.count() == 8  # type: ignore[attr-defined]
    for idx in (a, b, again):
        idx.close()


class CountingEmbedding(DeterministicFakeEmbedding):
    calls: int = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += len(texts)
        return super().embed_documents(texts)


def test_persistent_store_embeds_only_what_changed(tmp_path: Path) -> None:
    emb = CountingEmbedding(size=16)
    first = AnchorIndex.build(POOL, emb, store_dir=str(tmp_path))
    assert emb.calls == len(POOL) and first.newly_embedded == len(POOL)
    second = AnchorIndex.build(POOL, emb, store_dir=str(tmp_path))
    assert emb.calls == len(POOL) and second.newly_embedded == 0
    assert (first.vectors == second.vectors).all()
    changed = [*POOL[:-1], Example(text="a brand new text", label="positive")]
    third = AnchorIndex.build(changed, emb, store_dir=str(tmp_path))
    assert third.newly_embedded == 1 and emb.calls == len(POOL) + 1
    for idx in (first, second, third):
        idx.close()


def test_any_langchain_vectorstore() -> None:
    emb = KeywordEmbedding()
    store = InMemoryVectorStore(embedding=emb)  # type: ignore[arg-type]
    idx = AnchorIndex.build(POOL, emb, vectorstore=store)  # type: ignore[arg-type]
    sel = SameClassSelector(idx, k=2, seed=0)
    for anchors in _draws(sel, 10):
        assert anchors[0]["label"] == anchors[1]["label"]
    mixed = MixedClassSelector(idx, k=2, seed=0)
    for anchors in _draws(mixed, 10):
        assert anchors[0]["label"] != anchors[1]["label"]


def test_random_without_index_has_no_similarity() -> None:
    sel = make_selector("random", POOL, k=2)
    assert sel.similarity(sel.select_examples({})) is None


def test_a_store_address_is_checked_before_connecting() -> None:
    from mixaug.selectors.index import chroma_client, is_server

    assert is_server("http://127.0.0.1:8000") and is_server("https://chroma.example:443")
    assert not is_server("runs/store") and not is_server("/tmp/http:/x")
    with pytest.raises(ConfigError, match="has no host"):
        chroma_client("http://:8000")
    with pytest.raises(ConfigError, match="bad port"):
        chroma_client("http://127.0.0.1:notaport")
