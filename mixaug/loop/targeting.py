"""Where the next round aims: anchors around the classifier's errors, and thin classes.

Example:
    >>> import numpy as np
    >>> train = [Example(text="good", label="pos"), Example(text="bad", label="neg")]
    >>> plan = plan_round(train, np.eye(2), [Target(vector=[1.0, 0.0], gold="pos", pred="neg")],
    ...                   counts={"pos": 0, "neg": 0}, prompts=2, k=2, seed=0)
    >>> plan.strategy, [sorted(a["label"] for a in s) for s in plan.anchor_sets]
    ('boundary+fill', [['neg', 'pos'], ['neg', 'pos']])
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from typing_extensions import override

from mixaug.records import Example
from mixaug.selectors.base import AnchorSelector


@dataclass(frozen=True)
class Target:
    """A validation example the classifier got wrong or was unsure of."""

    vector: Sequence[float]
    """Its (unit) embedding."""
    gold: str
    pred: str
    """The predicted class (for an unsure right answer: the runner-up)."""


@dataclass
class RoundPlan:
    """The anchor sets of one round and how they were chosen."""

    anchor_sets: list[list[dict[str, Any]]]
    strategy: str
    parts: dict[str, int] = field(default_factory=dict)
    """Prompts per kind: ``boundary``, ``fill``, ``random``."""


def find_targets(
    probs: Sequence[Sequence[float]],
    gold: Sequence[int],
    vectors: np.ndarray,
    labels: Sequence[str],
    *,
    margin: float,
) -> list[Target]:
    """Validation examples that are wrong, or right by less than ``margin``.

    Sorted hardest first (wrong by most, then least sure).
    """
    scored = []
    for i, (p, g) in enumerate(zip(probs, gold, strict=True)):
        order = sorted(range(len(p)), key=lambda c: -p[c])
        top, second = order[0], order[1] if len(order) > 1 else order[0]
        if top != g:
            scored.append((p[g] - p[top], i, labels[top]))
        elif p[top] - p[second] < margin:
            scored.append((p[top] - p[second], i, labels[second]))
    scored.sort()
    return [
        Target(vector=vectors[i].tolist(), gold=labels[gold[i]], pred=pred) for _, i, pred in scored
    ]


def plan_round(
    train: Sequence[Example],
    train_vectors: np.ndarray,
    targets: Sequence[Target],
    *,
    counts: Mapping[str, int],
    prompts: int,
    k: int,
    seed: int,
    boundary_share: float = 0.5,
) -> RoundPlan:
    """Anchor sets for ``prompts`` prompts.

    - **boundary** (up to ``boundary_share`` of the prompts, one per target, hardest
      first): the training example of the target's gold class nearest to it and the
      nearest one of the class it was mistaken for (``mixed-class`` anchors on the
      boundary the classifier gets wrong), then more neighbours up to ``k``;
    - **fill**: the rest, shared among the classes with fewer kept records than the
      best-filled one (in proportion to what they lack), two same-class anchors each,
      near one another;
    - **random**: anything left when no class lacks records.

    Anchors always come from ``train``, never from the validation examples.
    """
    plan = _Planner(train, train_vectors, k, seed)
    n_boundary = min(len(targets), math.floor(prompts * boundary_share + 1e-9))
    for t in targets[:n_boundary]:
        plan.boundary(t)
    plan.fill(counts, prompts)
    while len(plan.sets) < prompts:
        plan.random()
    parts = plan.parts
    strategy = "+".join(kind for kind in ("boundary", "fill", "random") if parts[kind]) or "random"
    return RoundPlan(anchor_sets=plan.sets, strategy=strategy, parts=parts)


class _Planner:
    """The anchor sets of one round, built part by part (one seeded draw for them all)."""

    def __init__(
        self, train: Sequence[Example], train_vectors: np.ndarray, k: int, seed: int
    ) -> None:
        self.train, self.k = train, k
        self.rng = random.Random(seed)
        self.labels = sorted({e.label for e in train})
        self.by_label = {
            lab: [i for i, e in enumerate(train) if e.label == lab] for lab in self.labels
        }
        self.vecs = np.asarray(train_vectors, dtype=np.float32)
        self.sets: list[list[dict[str, Any]]] = []
        self.parts = {"boundary": 0, "fill": 0, "random": 0}

    def nearest(self, idx: list[int], query: np.ndarray, exclude: set[int]) -> int | None:
        """The example of ``idx`` (not in ``exclude``) nearest to ``query``."""
        free = [i for i in idx if i not in exclude]
        if not free:
            return None
        sims = self.vecs[free] @ query
        return free[int(np.argmax(sims))]

    def add(self, kind: str, chosen: list[int]) -> None:
        self.sets.append([self.train[i].model_dump() for i in chosen])
        self.parts[kind] += 1

    def boundary(self, t: Target) -> None:
        """The gold class's and the mistaken class's examples nearest ``t``, then neighbours."""
        train, k = self.train, self.k
        q = np.asarray(t.vector, dtype=np.float32)
        chosen: list[int] = []
        for lab in (t.gold, t.pred):
            j = self.nearest(self.by_label.get(lab, []), q, set(chosen))
            if j is not None:
                chosen.append(j)
        while len(chosen) < min(k, len(train)):
            j = self.nearest(list(range(len(train))), q, set(chosen))
            if j is None:
                break
            chosen.append(j)
        if len(chosen) < min(k, len(train)) or len({train[i].label for i in chosen}) < 2:
            return
        self.rng.shuffle(chosen)
        self.add("boundary", chosen[:k])

    def fill(self, counts: Mapping[str, int], prompts: int) -> None:
        """Same-class sets for the classes that lack records, in proportion to the lack."""
        left = prompts - len(self.sets)
        top = max([counts.get(lab, 0) for lab in self.labels] or [0])
        lack = {
            lab: top - counts.get(lab, 0) for lab in self.labels if top - counts.get(lab, 0) > 0
        }
        if not lack or left <= 0:
            return
        total = sum(lack.values())
        shares = {lab: min(left, math.ceil(left * need / total)) for lab, need in lack.items()}
        for lab, n in sorted(shares.items(), key=lambda kv: -lack[kv[0]]):
            for _ in range(min(n, prompts - len(self.sets))):
                self.add("fill", self._same_class(self.by_label[lab]))

    def _same_class(self, pool: list[int]) -> list[int]:
        train, k, rng = self.train, self.k, self.rng
        first = rng.choice(pool)
        chosen = [first]
        while len(chosen) < min(k, len(pool)):
            j = self.nearest(pool, self.vecs[first], set(chosen))
            if j is None:
                break
            chosen.append(j)
        while len(chosen) < min(k, len(train)):
            chosen.append(rng.choice([i for i in range(len(train)) if i not in chosen]))
        return chosen

    def random(self) -> None:
        """K random examples."""
        self.add("random", self.rng.sample(range(len(self.train)), min(self.k, len(self.train))))


class PlannedSelector(AnchorSelector):
    """Hands out planned anchor sets in order, cycling when ``augment`` retries."""

    strategy = "planned"

    def __init__(self, anchor_sets: Sequence[Sequence[Mapping[str, Any]]], seed: int = 0) -> None:
        if not anchor_sets:
            msg = "PlannedSelector needs at least one anchor set"
            raise ValueError(msg)
        super().__init__(max(1, len(anchor_sets[0])), seed)
        self.sets = [[dict(a) for a in s] for s in anchor_sets]
        self._next = 0

    @override
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        s = self.sets[self._next % len(self.sets)]
        self._next += 1
        return [dict(a) for a in s]

    @override
    def add_example(self, example: dict[str, str]) -> None:
        msg = "a PlannedSelector's anchors are fixed"
        raise NotImplementedError(msg)
