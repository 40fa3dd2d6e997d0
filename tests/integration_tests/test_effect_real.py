"""The effect recipe on the real embedded models: batched label scores, labeller, guard."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fakes import REVIEWS, write_jsonl
from mixaug_cli import run_augment

from mixaug import Example, TransformersLLM, get_spec, score_texts
from mixaug.lmscores import label_prefix
from mixaug.softlabels import rescore_word_probs

SST2 = get_spec("sst2")
POOL = [Example(text=t, label=lab) for t, lab in REVIEWS]
# Held-out validation sentences, written for these tests.
VALIDATION = [
    ("an honest, tender and beautifully acted drama .", "positive"),
    ("smart, funny and full of surprises .", "positive"),
    ("a joyous film that earns every laugh .", "positive"),
    ("the best comedy of the year, warm and wise .", "positive"),
    ("an inventive thriller that keeps you guessing .", "positive"),
    ("a delight from the first scene to the last .", "positive"),
    ("a tedious, joyless slog .", "negative"),
    ("badly written and worse acted .", "negative"),
    ("the plot makes no sense and the ending is worse .", "negative"),
    ("an ugly, boring film with nothing to say .", "negative"),
    ("two hours i will never get back .", "negative"),
    ("flat characters in a story that goes nowhere .", "negative"),
]


def test_batched_label_scores_equal_the_exact_scoring_pass(smollm2: str) -> None:
    llm = TransformersLLM(model=smollm2)
    items = [(POOL[i : i + 2], t) for i, (t, _) in enumerate(VALIDATION[:6])]
    fast = score_texts(llm, SST2, items, batch_size=4)  # padded batches, with hidden states
    assert fast.hidden is not None and fast.hidden.shape[0] == len(items)
    for row, (anchors, text) in zip(fast.probs, items, strict=True):
        exact = rescore_word_probs(llm, label_prefix(SST2, anchors, text), SST2.words)
        total = sum(exact.values())
        want = [exact[SST2.word_for(lab)] / total for lab in SST2.label_names]
        assert row == pytest.approx(want, abs=2e-3)
    # The hidden state of a row does not depend on its batch neighbours.
    alone = score_texts(llm, SST2, items[:1], batch_size=1)
    assert alone.hidden is not None
    assert np.allclose(alone.hidden[0], fast.hidden[0], atol=2e-3)


def test_augment_with_the_guard_on_the_real_model(smollm2: str, tmp_path: Path) -> None:
    val = write_jsonl(tmp_path / "val.jsonl", [{"text": t, "label": lab} for t, lab in VALIDATION])
    out = tmp_path / "syn.jsonl"
    proc = run_augment(
        out, 6, "--model", smollm2, "--val", str(val), "--guard", "--seed", "2",
        "--max-attempts", "60",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "guard " in proc.stdout and "quotas " in proc.stdout
    summary = json.loads((tmp_path / "syn.summary.json").read_text())
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    # Quotas of the final label (the example data is balanced: 3 and 3).
    assert Counter(r["label"] for r in rows) == Counter(summary["quotas"])
    # A 12-example --val is too small to choose on: all of it guards (not half).
    assert summary["labeller"] and summary["guard"]["examples"] == len(VALIDATION) == 12
    assert len(summary["guard"]["with_synthetic"]) == len(summary["guard"]["without"]) == 3
    # Six validation examples: too few to choose on, so all of them guard (a small gain
    # or loss is reported as too small to tell).
    assert summary["guard"]["verdict"].startswith(("augmentation", "too few validation"))
    for r in rows:
        assert abs(sum(r["soft_label"].values()) - 1) < 1e-6 and r["soft_label_raw"]
