"""Benchmark data: a folder of ``{train,dev,test}.jsonl`` and class-balanced sub-samples.

Example:
    >>> pool = [Example(text=str(i), label="ab"[i % 2]) for i in range(100)]
    >>> sorted(e.label for e in balanced_subsample(pool, 0.04, seed=0))
    ['a', 'a', 'b', 'b']
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from mixaug.data import load_examples
from mixaug.errors import DataError
from mixaug.records import Example


class Splits(BaseModel):
    """The splits a benchmark run uses."""

    name: str
    pool: list[Example]
    """Training examples sub-samples are drawn from."""
    validation: list[Example]
    """Early-stopping data (``dev``, or carved from train when dev is the test set)."""
    test: list[Example]
    """What accuracy is reported on (``test``, or ``dev`` when there is no test)."""
    validation_source: str
    test_source: str


def load_splits(folder: str | Path, *, val_size: int = 500, seed: int = 1234) -> Splits:
    """Read ``train.jsonl`` and whichever of ``dev.jsonl``/``test.jsonl`` exist.

    - train + dev + test (SST-2): validate on dev, test on test;
    - train + test (TREC-6): carve ``val_size`` validation examples from train;
    - train + dev (CoLA): test on dev, carve validation from train.

    The carved validation set never changes with the data seed and never overlaps
    the pool. ``val_size`` also caps a dev validation set (a fixed random subset).

    Raises:
        DataError: when ``train.jsonl`` or both evaluation files are missing.
    """
    d = Path(folder)
    if not (d / "train.jsonl").is_file():
        msg = f"{str(d)!r} has no train.jsonl; --data must be a folder of train/dev/test .jsonl"
        raise DataError(msg)
    # Public benchmark files hold a few texts with control characters (CoLA train has a
    # backspace): the bench drops those rows rather than refusing the data set.
    train = load_examples(d / "train.jsonl", skip_control=True)
    dev = load_examples(d / "dev.jsonl", skip_control=True) if (d / "dev.jsonl").is_file() else None
    test = (
        load_examples(d / "test.jsonl", skip_control=True) if (d / "test.jsonl").is_file() else None
    )
    if dev is None and test is None:
        msg = f"{str(d)!r} has neither dev.jsonl nor test.jsonl to evaluate on"
        raise DataError(msg)
    rng = random.Random(seed)
    if dev is not None and test is not None:
        val = rng.sample(dev, min(val_size, len(dev)))
        return Splits(
            name=d.name,
            pool=train,
            validation=val,
            test=test,
            validation_source="dev",
            test_source="test",
        )
    order = list(range(len(train)))
    rng.shuffle(order)
    carved = set(order[: min(val_size, len(train) // 5)])
    return Splits(
        name=d.name,
        pool=[e for i, e in enumerate(train) if i not in carved],
        validation=[train[i] for i in sorted(carved)],
        test=test if test is not None else list(dev or []),
        validation_source="train (carved)",
        test_source="test" if test is not None else "dev",
    )


def balanced_subsample(
    pool: Sequence[Example], level: float, *, seed: int, min_per_class: int = 1
) -> list[Example]:
    """``round(level * len(pool))`` examples, as equal per class as the classes allow.

    Never fewer than ``min_per_class`` per class; deterministic under ``seed``.
    """
    by_class: dict[str, list[Example]] = defaultdict(list)
    for e in pool:
        by_class[e.label].append(e)
    labels = sorted(by_class)
    n = max(round(level * len(pool)), min_per_class * len(labels))
    rng = random.Random(seed)
    quota = dict.fromkeys(labels, 0)
    left = n
    # Fill round-robin in a seeded class order, skipping classes that run out.
    order = list(labels)
    rng.shuffle(order)
    while left > 0:
        grew = False
        for lab in order:
            if left and quota[lab] < len(by_class[lab]):
                quota[lab] += 1
                left -= 1
                grew = True
        if not grew:
            break
    out: list[Example] = []
    for lab in labels:
        out += rng.sample(by_class[lab], quota[lab])
    rng.shuffle(out)
    return out


def matched_sample(pool: Sequence[Example], like: Sequence[Example], *, seed: int) -> list[Example]:
    """A sample of ``pool`` with the class counts of ``like`` and none of its texts.

    The few-shot protocol's validation set (LM-BFF's ``|D_dev| = |D_train|``): as
    large as the training sub-sample, class-balanced as it is, disjoint from it. A
    class with too few examples left gives what it has.

    Example:
        >>> pool = [Example(text=str(i), label="ab"[i % 2]) for i in range(20)]
        >>> train = pool[:4]
        >>> val = matched_sample(pool, train, seed=0)
        >>> sorted(e.label for e in val), any(e in train for e in val)
        (['a', 'a', 'b', 'b'], False)
    """
    taken = {(e.text, e.label) for e in like}
    want: dict[str, int] = defaultdict(int)
    for e in like:
        want[e.label] += 1
    by_class: dict[str, list[Example]] = defaultdict(list)
    for e in pool:
        if (e.text, e.label) not in taken:
            by_class[e.label].append(e)
    rng = random.Random(seed * 7907 + 3)
    out: list[Example] = []
    for lab in sorted(want):
        out += rng.sample(by_class[lab], min(want[lab], len(by_class[lab])))
    rng.shuffle(out)
    return out
