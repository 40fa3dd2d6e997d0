"""Anchor selectors on the real embedder (all-MiniLM-L6-v2 from its PyPI package)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from mixaug_cli import ROOT, run_augment

from mixaug import Example
from mixaug.selectors import AnchorIndex, default_embeddings, make_selector


@pytest.fixture(scope="module")
def index() -> AnchorIndex:
    examples = [
        Example.model_validate(json.loads(line))
        for line in (ROOT / "examples" / "data" / "movie_reviews.jsonl").read_text().splitlines()
    ]
    idx = AnchorIndex.build(examples, default_embeddings())
    yield idx
    idx.close()


def test_real_embeddings_are_unit_vectors(index: AnchorIndex) -> None:
    assert index.vectors.shape == (24, 384)
    norms = (index.vectors**2).sum(axis=1)
    assert norms.min() == pytest.approx(1.0, abs=1e-4)


def test_strategies_order_by_similarity(index: AnchorIndex) -> None:
    def mean_sim(name: str) -> float:
        sel = make_selector(name, index.examples, k=2, seed=0, index=index)
        return statistics.mean(sel.similarity(sel.select_examples({})) for _ in range(40))

    assert mean_sim("diverse") < mean_sim("random") < mean_sim("similar")


def test_similar_finds_the_paraphrase(index: AnchorIndex) -> None:
    sel = make_selector("similar", index.examples, k=1, seed=0, index=index)
    (hit,) = sel.select_examples({"query": "a boring mess that confuses loudness with thrills"})
    assert hit["text"] == "a tedious mess that mistakes noise for excitement ."


def test_cli_with_embedded_anchors_and_a_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for _ in range(2):  # the second run reads the embeddings back from the store
        out = tmp_path / "dry.jsonl"
        proc = run_augment(
            out,
            5,
            "--dry-run",
            "--anchors",
            "mixed-class",
            "--store",
            str(store),
            "--quiet",
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert all(len({a["label"] for a in r["anchors"]}) == 2 for r in rows)
        assert all(-1.0 <= r["anchor_similarity"] <= 1.0 for r in rows)
    assert any(store.iterdir())


def test_augment_with_embedded_anchors(index: AnchorIndex, smollm2: str) -> None:
    from mixaug import TransformersLLM, augment, get_spec

    sel = make_selector("same-class", index.examples, k=2, seed=3, index=index)
    res = augment(
        index.examples, get_spec("sst2"), TransformersLLM(model=smollm2), n=3, selector=sel
    )
    assert len(res.records) == 3
    for r in res.records:
        assert r.anchor_strategy == "same-class"
        assert r.anchors[0].label == r.anchors[1].label
        assert r.anchor_similarity is not None and 0.0 < r.anchor_similarity <= 1.0


def test_quiet_prints_nothing_while_the_encoder_loads(tmp_path: Path) -> None:
    # --quiet means no progress at all: not even the embedder's "Loading weights" bar.
    out = tmp_path / "quiet.jsonl"
    proc = run_augment(out, 3, "--anchors", "diverse", "--dry-run", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert len(out.read_text().splitlines()) == 3
