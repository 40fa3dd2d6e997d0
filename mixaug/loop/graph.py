"""The agentic augmentation loop as a LangGraph graph.

Each round: **plan** anchors (random at first, then around the quick classifier's
errors and for thin classes) → **generate** a batch with any prompt family →
**filter** it (dedup and critic chains) → **track** kept records per class and
their label distribution → **train** the quick classifier (frozen encoder) on real
plus kept synthetic data and validate it → **decide**: stop on quota, budget (tokens
or time), ``max_rounds`` or ``patience`` rounds without a validation gain, or plan
the next round. A **baseline** node first validates the classifier on real data
alone, so the first round's gain is measured too.

The state is plain JSON (records as dicts), so LangGraph's SQLite checkpointer can
store it after every node and a stopped loop resumes where it stopped. Models,
filter and encoder live in a :class:`LoopContext`, rebuilt by each process.

Example:
    >>> graph = build_loop_graph(ctx).compile(checkpointer=saver)  # doctest: +SKIP
    >>> graph.invoke(initial_state(), {"configurable": {"thread_id": "loop"}})  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
from langgraph.graph import END, START, StateGraph

from mixaug.chains.families import anchors_per_prompt
from mixaug.config import AugmentConfig
from mixaug.filtering import RecordFilter
from mixaug.loop.targeting import PlannedSelector, Target, find_targets, plan_round
from mixaug.providers import get_provider
from mixaug.records import Example, SyntheticRecord
from mixaug.specs import TaskSpec


class LoopState(TypedDict, total=False):
    """What the checkpointer stores after every node (JSON-ready)."""

    round: int
    """Rounds finished."""
    kept: list[dict[str, Any]]
    """Every kept synthetic record so far."""
    rejected: list[dict[str, Any]]
    """Every rejected record, with its reasons."""
    batch: list[dict[str, Any]]
    """This round's generated records (before filtering)."""
    new_kept: int
    new_rejected: int
    plan: list[list[dict[str, Any]]]
    strategy: str
    parts: dict[str, int]
    targets: list[dict[str, Any]]
    """Validation examples the last classifier got wrong or was unsure of."""
    tokens: int
    seconds: float
    round_tokens: int
    round_failures: dict[str, int]
    baseline: dict[str, float]
    last_eval: dict[str, float]
    best_accuracy: float
    stale: int
    kept_per_class: dict[str, int]
    label_distribution: dict[str, float]
    """Mean soft label of the kept records."""
    rounds: list[dict[str, Any]]
    """One report per finished round (what ``rounds.json`` holds)."""
    stop_reason: str | None


def initial_state() -> LoopState:
    """The state a new loop starts from."""
    return LoopState(
        round=0,
        kept=[],
        rejected=[],
        batch=[],
        tokens=0,
        seconds=0.0,
        rounds=[],
        targets=[],
        stale=0,
        stop_reason=None,
    )


@dataclass
class LoopContext:
    """What the nodes use but the checkpointer doesn't store."""

    cfg: AugmentConfig
    spec: TaskSpec
    train: list[Example]
    """The real labelled examples (anchors come only from here)."""
    validation: list[Example]
    llm: Any
    scorer: Any = None
    record_filter: RecordFilter | None = None
    encoder: str | None = None
    """Local HF encoder folder of the quick classifier (``None``: packaged MiniLM)."""
    on_round: Callable[[dict[str, Any], LoopState], None] | None = None
    """Called after each round with its report (progress display, files)."""
    log: Callable[[str], None] = field(default=lambda _: None)
    started: float = field(default_factory=time.perf_counter)
    _base: Any = None
    _train_vecs: np.ndarray | None = None
    _val_vecs: np.ndarray | None = None
    _primed: bool = False
    _features: Any = None

    @property
    def labels(self) -> list[str]:
        """The task's labels, in the classifier's output order."""
        return list(self.spec.label_names)

    def base(self) -> Any:
        """The encoder (loaded once per process)."""
        if self._base is None:
            from mixaug.training import TextClassifier

            self._base = TextClassifier.from_encoder(self.encoder, self.labels, max_length=64)
        return self._base

    def classifier(self) -> Any:
        """A fresh head over the shared encoder."""
        import torch

        from mixaug.training import TextClassifier

        base = self.base()
        torch.manual_seed(self.cfg.seed)
        return TextClassifier(base.encoder, base.tokenizer, base.config)

    def vectors(self, texts: list[str]) -> np.ndarray:
        """Unit encoder features of ``texts``."""
        import torch

        model = self.base()
        model.eval()
        chunks = []
        with torch.inference_mode():
            for i in range(0, len(texts), 64):
                chunks.append(model.features(**model.tokenize(texts[i : i + 64])))
        v = torch.cat(chunks).float().numpy()
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def train_vectors(self) -> np.ndarray:
        """Unit features of the real training texts (computed once)."""
        if self._train_vecs is None:
            self._train_vecs = self.vectors([e.text for e in self.train])
        return self._train_vecs

    def val_vectors(self) -> np.ndarray:
        """Unit features of the validation texts (computed once)."""
        if self._val_vecs is None:
            self._val_vecs = self.vectors([e.text for e in self.validation])
        return self._val_vecs


def _records(rows: list[dict[str, Any]]) -> list[SyntheticRecord]:
    return [SyntheticRecord.model_validate(r) for r in rows]


class LoopNodes:
    """The graph's nodes, bound to a :class:`LoopContext`."""

    def __init__(self, ctx: LoopContext) -> None:
        self.ctx = ctx

    # -- quick classifier ---------------------------------------------------------------
    def _fit(self, kept: list[SyntheticRecord]) -> tuple[dict[str, float], list[Target]]:
        from mixaug.training import TextDataset, Trainer, TrainingArguments

        ctx, lc = self.ctx, self.ctx.cfg.loop
        labels = ctx.labels
        train = TextDataset.build(ctx.train, kept, labels=labels)
        val = TextDataset.build(ctx.validation, labels=labels)
        args = TrainingArguments(
            freeze_encoder=True,
            epochs=lc.epochs,
            patience=lc.train_patience,
            seed=ctx.cfg.seed,
        )
        if ctx._features is None:
            from mixaug.training import FeatureCache

            ctx._features = FeatureCache()  # the validation set is encoded once, not per round
        trainer = Trainer(ctx.classifier(), args, train, val, feature_cache=ctx._features)
        trainer.train()
        metrics = trainer.evaluate(val)
        probs = trainer.predict_proba(val)
        targets = find_targets(
            probs, val.gold, ctx.val_vectors(), labels, margin=lc.uncertain_margin
        )
        return {k: float(v) for k, v in metrics.items()}, targets

    # -- nodes ----------------------------------------------------------------------------
    def baseline(self, state: LoopState) -> LoopState:
        """Validate the quick classifier on the real data alone."""
        self.ctx.log("validating the classifier on real data alone ...")
        metrics, targets = self._fit([])
        return LoopState(
            baseline=metrics,
            last_eval=metrics,
            best_accuracy=metrics["accuracy"],
            targets=[t.__dict__ for t in targets],
        )

    def plan(self, state: LoopState) -> LoopState:
        """Anchor sets for this round: random first, then aimed at the targets."""
        ctx, lc = self.ctx, self.ctx.cfg.loop
        n = self._round_size(state)
        k = min(anchors_per_prompt(ctx.cfg.prompt.family, ctx.cfg.k), len(ctx.train))
        prompts = max(1, math.ceil(n / _per_prompt(ctx)))
        seed = ctx.cfg.seed * 1_000 + state.get("round", 0)
        if state.get("round", 0) == 0:
            import random

            rng = random.Random(seed)
            sets = [[e.model_dump() for e in rng.sample(ctx.train, k)] for _ in range(prompts)]
            return LoopState(plan=sets, strategy="random", parts={"random": prompts})
        counts = Counter(r["label"] for r in state.get("kept", []))
        targets = [Target(**t) for t in state.get("targets", [])]
        rp = plan_round(
            ctx.train,
            ctx.train_vectors(),
            targets,
            counts={lab: counts.get(lab, 0) for lab in ctx.labels},
            prompts=prompts,
            k=k,
            seed=seed,
            boundary_share=lc.boundary_share,
        )
        return LoopState(plan=rp.anchor_sets, strategy=rp.strategy, parts=rp.parts)

    def _round_size(self, state: LoopState) -> int:
        """Records to generate: ``per_round``, shrunk to fit the token budget."""
        lc = self.ctx.cfg.loop
        n = lc.per_round
        budget, spent = lc.budget_tokens, state.get("tokens", 0)
        made = len(state.get("kept", [])) + len(state.get("rejected", []))
        if budget is not None and made and spent:
            per_record = spent / made
            n = max(1, min(n, math.floor((budget - spent) / per_record)))
        return n

    def generate(self, state: LoopState) -> LoopState:
        """Generate this round's records from the planned anchors."""
        from mixaug.augmentation import augment

        ctx = self.ctx
        r = state.get("round", 0)
        n = self._round_size(state)
        plan = state.get("plan") or []
        ctx.log(f"round {r + 1}: generating {n} records ({state.get('strategy')}) ...")
        t0 = time.perf_counter()
        p = ctx.cfg.prompt
        result = augment(
            ctx.train,
            ctx.spec,
            ctx.llm,
            n=n,
            k=len(plan[0]) if plan else ctx.cfg.k,
            seed=ctx.cfg.seed * 1_000 + r,
            selector=PlannedSelector(plan, seed=ctx.cfg.seed),
            batch_size=ctx.cfg.llm.batch_size,
            top_logprobs=ctx.cfg.llm.top_logprobs,
            scorer=ctx.scorer,
            concurrency=get_provider(ctx.cfg.llm.provider).concurrency(ctx.cfg.llm),
            family=p.family,
            n_items=p.items_per_prompt,
            shares=p.shares,
        )
        batch = [
            rec.model_copy(update={"id": f"{ctx.spec.name}-r{r + 1:03d}-{i:05d}"}).model_dump(
                mode="json"
            )
            for i, rec in enumerate(result.records)
        ]
        used = result.prompt_tokens + result.completion_tokens
        return LoopState(
            batch=batch,
            round_tokens=used,
            round_failures=dict(result.failures),
            tokens=state.get("tokens", 0) + used,
            seconds=state.get("seconds", 0.0) + time.perf_counter() - t0,
        )

    def filter(self, state: LoopState) -> LoopState:
        """Dedup (against train, eval, anchors and every earlier round) and criticise."""
        ctx = self.ctx
        batch = _records(state.get("batch", []))
        t0 = time.perf_counter()
        if ctx.record_filter is None:
            kept, rejected = batch, []
        else:
            if not ctx._primed:
                ctx.record_filter.prime(_records(state.get("kept", [])))
                ctx._primed = True
            out = ctx.record_filter.invoke(batch)
            kept = out.kept
            rejected = [r.to_json_dict() for r in out.rejected]
        return LoopState(
            kept=[*state.get("kept", []), *(r.model_dump(mode="json") for r in kept)],
            rejected=[*state.get("rejected", []), *rejected],
            new_kept=len(kept),
            new_rejected=len(rejected),
            batch=[],
            seconds=state.get("seconds", 0.0) + time.perf_counter() - t0,
        )

    def track(self, state: LoopState) -> LoopState:
        """Kept records per class and their mean soft label (what fill-anchors aim at)."""
        labels = self.ctx.labels
        kept = state.get("kept", [])
        counts = Counter(x["label"] for x in kept)
        dist = dict.fromkeys(labels, 0.0)
        for x in kept:
            for lab, p in x["soft_label"].items():
                dist[lab] = dist.get(lab, 0.0) + p / len(kept)
        return LoopState(
            kept_per_class={lab: counts.get(lab, 0) for lab in labels},
            label_distribution={k: round(v, 4) for k, v in dist.items()},
        )

    def train(self, state: LoopState) -> LoopState:
        """Train the quick classifier on real + kept synthetic data; validate it."""
        t0 = time.perf_counter()
        metrics, targets = self._fit(_records(state.get("kept", [])))
        return LoopState(
            last_eval=metrics,
            targets=[t.__dict__ for t in targets],
            seconds=state.get("seconds", 0.0) + time.perf_counter() - t0,
        )

    def decide(self, state: LoopState) -> LoopState:
        """Write the round's report and say whether to stop."""
        ctx, lc = self.ctx, self.ctx.cfg.loop
        r = state.get("round", 0) + 1
        counts = state.get("kept_per_class", {})
        acc = state.get("last_eval", {}).get("accuracy", 0.0)
        best = state.get("best_accuracy", 0.0)
        gained = acc > best + lc.min_gain
        stale = 0 if gained else state.get("stale", 0) + 1
        report = {
            "round": r,
            "strategy": state.get("strategy"),
            "anchors": state.get("parts", {}),
            "generated": state.get("new_kept", 0) + state.get("new_rejected", 0),
            "kept_new": state.get("new_kept", 0),
            "rejected_new": state.get("new_rejected", 0),
            "failures": state.get("round_failures", {}),
            "kept_per_class": dict(counts),
            "label_distribution": state.get("label_distribution", {}),
            "tokens": state.get("round_tokens", 0),
            "tokens_total": state.get("tokens", 0),
            "seconds_total": round(state.get("seconds", 0.0), 1),
            "val_accuracy": acc,
            "val_macro_f1": state.get("last_eval", {}).get("macro_f1"),
            "best_accuracy": max(acc, best),
            "targets": len(state.get("targets", [])),
        }
        reason = None
        if lc.quota is not None and all(counts.get(lab, 0) >= lc.quota for lab in ctx.labels):
            reason = "quota"
        elif lc.budget_tokens is not None and state.get("tokens", 0) >= lc.budget_tokens:
            reason = "budget_tokens"
        elif lc.budget_seconds is not None and state.get("seconds", 0.0) >= lc.budget_seconds:
            reason = "budget_seconds"
        elif r >= lc.max_rounds:
            reason = "max_rounds"
        elif stale >= lc.patience:
            reason = "no_gain"
        report["stop_reason"] = reason
        update = LoopState(
            round=r,
            rounds=[*state.get("rounds", []), report],
            best_accuracy=max(acc, best),
            stale=stale,
            stop_reason=reason,
        )
        if ctx.on_round is not None:
            ctx.on_round(report, LoopState(**{**state, **update}))
        return update


def _per_prompt(ctx: LoopContext) -> int:
    from mixaug.chains.families import items_per_prompt

    return items_per_prompt(ctx.cfg.prompt.family, ctx.cfg.prompt.items_per_prompt)


def _after_decide(state: LoopState) -> str:
    return END if state.get("stop_reason") else "plan"


def build_loop_graph(ctx: LoopContext) -> StateGraph:
    """The loop's graph (compile it with a checkpointer to make it resumable)."""
    nodes = LoopNodes(ctx)
    g = StateGraph(LoopState)
    g.add_node("baseline", nodes.baseline)
    g.add_node("plan", nodes.plan)
    g.add_node("generate", nodes.generate)
    g.add_node("filter", nodes.filter)
    g.add_node("track", nodes.track)
    g.add_node("train", nodes.train)
    g.add_node("decide", nodes.decide)
    g.add_edge(START, "baseline")
    g.add_edge("baseline", "plan")
    g.add_edge("plan", "generate")
    g.add_edge("generate", "filter")
    g.add_edge("filter", "track")
    g.add_edge("track", "train")
    g.add_edge("train", "decide")
    g.add_conditional_edges("decide", _after_decide, ["plan", END])
    return g
