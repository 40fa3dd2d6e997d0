"""Run GPT3Mix augmentation: anchors in, soft-labelled synthetic records out.

Example:
    >>> from mixaug import augment, get_spec, load_examples
    >>> result = augment(load_examples("train.jsonl"), get_spec("sst2"), n=10)  # doctest: +SKIP
    >>> result.records[0].soft_label
    {'positive': 0.81, 'negative': 0.19}
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from langchain_core.language_models import BaseLanguageModel
from typing_extensions import TypedDict, Unpack

from mixaug.chains.families import (
    Family,
    anchors_per_prompt,
    build_family_chain,
    check_family,
    items_per_prompt,
    plan_requests,
    render_family_prompt,
    target_of,
)
from mixaug.chains.prompts import prompt_hash
from mixaug.config import LLMConfig
from mixaug.errors import MixaugError, ParseFailure
from mixaug.executors import BatchExecutor, PlannedBatch
from mixaug.filtering import FilterSummary, RecordFilter, Rejected
from mixaug.providers import build_llm
from mixaug.records import Example, LabelledItem, RunSummary, SyntheticRecord
from mixaug.redact import redact
from mixaug.runstate import Restored, RunConflict, RunFiles
from mixaug.selectors import AnchorSelector, RandomAnchorSelector
from mixaug.specs import TaskSpec


class GenerationAborted(MixaugError):
    """The model failed for every prompt of consecutive batches; the run stopped."""


@dataclass
class AugmentResult:
    """Records made by :func:`augment`, with what it cost."""

    records: list[SyntheticRecord]
    attempts: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    surplus: int = 0
    """Parsed records beyond ``n`` (a batch can overshoot); generated but not kept."""
    errors: list[str] = field(default_factory=list)
    """Messages of failed model calls (first few)."""
    complete: bool = True
    rejected: int = 0
    """Records a filter removed (they went to the rejects file)."""
    filter_summary: dict[str, Any] | None = None
    """The filter's counts, when one ran."""
    quota_surplus: Counter[str] = field(default_factory=Counter)
    """Records dropped because their final label's class quota was already full."""
    relabelled: int = 0
    """Records whose final label differs from the LM's own (a labeller ran)."""

    def counters(self, **extra: Any) -> dict[str, Any]:
        """The journal's form of this result's counts (what a resume restores)."""
        return {
            "attempts": self.attempts,
            "failures": dict(self.failures),
            "surplus": self.surplus,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "errors": self.errors,
            "seconds": self.seconds,
            "rejected": self.rejected,
            "filter": self.filter_summary,
            "quota_surplus": dict(self.quota_surplus),
            "relabelled": self.relabelled,
            **extra,
        }

    def restore_counters(self, c: Mapping[str, Any]) -> None:
        """Take the counts of :meth:`counters` back (``seconds`` is the caller's)."""
        self.attempts = int(c.get("attempts", 0))
        self.failures = Counter(c.get("failures", {}))
        self.surplus = int(c.get("surplus", 0))
        self.prompt_tokens = int(c.get("prompt_tokens", 0))
        self.completion_tokens = int(c.get("completion_tokens", 0))
        self.errors = list(c.get("errors", []))
        self.rejected = int(c.get("rejected", 0))
        self.quota_surplus = Counter(c.get("quota_surplus", {}))
        self.relabelled = int(c.get("relabelled", 0))
        self.filter_summary = c.get("filter") or self.filter_summary

    @property
    def parsed(self) -> int:
        """Continuations that became records (kept or surplus)."""
        return len(self.records) + self.surplus

    @property
    def parse_rate(self) -> float:
        """``parsed / attempts`` (0.0 before any attempt), rounded to 4 places."""
        return round(self.parsed / self.attempts, 4) if self.attempts else 0.0

    def summary(
        self,
        *,
        task: str,
        model: str,
        seed: int,
        k: int,
        strategy: str,
        requested: int,
        output: str,
        family: str = "mix",
    ) -> RunSummary:
        """A :class:`RunSummary` of this result."""
        recs = self.records
        with_gen = [r for r in recs if r.generated_label is not None]
        sims = [r.anchor_similarity for r in recs if r.anchor_similarity is not None]
        agree = sum(r.generated_label == r.label for r in with_gen)
        return RunSummary(
            task=task,
            model=model,
            seed=seed,
            k=k,
            anchor_strategy=strategy,
            prompt_family=family,
            mean_anchor_similarity=round(sum(sims) / len(sims), 4) if sims else None,
            requested=requested,
            kept=len(recs),
            attempts=self.attempts,
            failures=dict(sorted(self.failures.items())),
            surplus=self.surplus,
            parse_rate=self.parse_rate,
            label_agreement=round(agree / len(with_gen), 4) if with_gen else None,
            soft_label_sources=dict(Counter(r.soft_label_source for r in recs)),
            label_counts=dict(sorted(Counter(r.label for r in recs).items())),
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            seconds=round(self.seconds, 2),
            examples_per_second=round(len(recs) / self.seconds, 4) if self.seconds else 0.0,
            output=output,
            complete=self.complete,
            rejected=self.rejected,
            filter=self.filter_summary,
            quota_surplus=dict(sorted(self.quota_surplus.items())),
            relabelled=self.relabelled,
        )


def model_name(llm: BaseLanguageModel[Any]) -> str:
    """A model's name as recorded in records and summaries."""
    for attr in ("model_name", "model"):
        value = getattr(llm, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(llm).__name__


def _norm(text: str) -> str:
    """Lower-cased letters and digits only: how copies of an anchor are recognised."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _record(
    item: LabelledItem,
    request: dict[str, Any],
    *,
    index: int,
    spec: TaskSpec,
    strategy: str,
    similarity: float | None,
    model: str,
    seed: int,
    family: str = "mix",
) -> SyntheticRecord:
    anchors = request["anchors"]
    prompt = render_family_prompt(spec, family, request)
    return SyntheticRecord(
        id=f"{spec.name}-s{seed}-{index:06d}",
        text=item.text,
        label=item.label,
        soft_label=item.soft_label,
        generated_label=item.generated_label,
        label_mass=item.label_mass,
        anchors=[Example(text=a["text"], label=a["label"]) for a in anchors],
        anchor_strategy=strategy,
        anchor_similarity=None if similarity is None else round(similarity, 6),
        model=model,
        prompt_hash=prompt_hash(prompt),
        seed=seed,
        task=spec.name,
        soft_label_source=item.soft_label_source,
        prompt_family=family,
        target=target_of(family, request),
    )


class AugmentOptions(TypedDict, total=False):
    """The keyword options of :func:`augment` (every one optional)."""

    k: int
    """Anchors per prompt (default 2)."""
    seed: int
    """Seed for anchors and sampling (default 0)."""
    selector: AnchorSelector | None
    """Anchor selector (default: uniformly random, ``anchors_per_prompt`` of them)."""
    batch_size: int
    """Prompts per model call (default 16)."""
    max_attempts: int | None
    """Continuations to try at most (default ``3n + 16``)."""
    top_logprobs: int
    """Alternatives requested per token (default 20)."""
    scorer: Any
    """Fallback scorer for label words the top-k missed (``"auto"``, the default: the
    model itself when it can score)."""
    concurrency: int | None
    """Requests in flight for remote models (``None``, the default: one batched call)."""
    on_batch: Callable[[AugmentResult, list[SyntheticRecord]], None] | None
    """Called after each batch with the running result and the new records (write them
    out here to keep them if the run dies)."""
    checkpoint: RunFiles | None
    """Journal each batch's plan and completion (resumable runs); the ``done`` line is
    written after ``on_batch`` returned."""
    restored: Restored | None
    """Where a previous run stopped (from ``checkpoint.restore()``)."""
    done_records: list[SyntheticRecord] | None
    """The records that run already wrote."""
    record_filter: RecordFilter | None
    """Filters each batch (dedup, calibration, critic); rejected records don't count
    towards ``n``, so more are generated."""
    on_reject: Callable[[list[Rejected]], None] | None
    """Called with each batch's rejected records (before ``on_batch``)."""
    family: str
    """A registered prompt family (default ``mix``)."""
    n_items: int
    """Items per ``instruct`` prompt (default 5)."""
    shares: Sequence[int]
    """``boundary``: percent shares the first anchor's label is given (default 50, 70)."""
    quotas: Mapping[str, int] | None
    """Records wanted per class of the *final* label (``n`` becomes their sum); a record
    of a full class is dropped and counted in ``quota_surplus``. A selector that takes a
    ``label`` hint (``targeted``) is aimed at the class furthest from its quota."""
    labeller: Callable[[list[SyntheticRecord]], tuple[list[SyntheticRecord], list[Any]]] | None
    """Gives each new record its final label before quotas are counted
    (:class:`~mixaug.labelmix.RecordLabeller`); returns (kept, [(record, reason)]) and
    the dropped ones go to ``on_reject``."""
    executor: BatchExecutor | None
    """Where batches run (:class:`~mixaug.executors.RayExecutor`); ``None``, the default:
    here, one batch after another. Records are the same bytes either way."""


def augment(
    examples: list[Example],
    spec: TaskSpec,
    llm: BaseLanguageModel[Any] | None = None,
    *,
    n: int,
    **options: Unpack[AugmentOptions],
) -> AugmentResult:
    """Generate ``n`` soft-labelled records from ``examples`` with a prompt family.

    Anchors come from the selector (uniformly random by default). Prompts of the family
    (GPT3Mix by default) go to ``llm`` (the embedded default model if ``None``) in
    batches; items that can't be parsed are counted by reason and replaced until ``n``
    records exist or ``max_attempts`` items were asked for. The keyword options are
    :class:`AugmentOptions`.

    Example:
        >>> res = augment(load_examples("train.jsonl"), get_spec("sst2"), n=100)  # doctest: +SKIP
        >>> len(res.records), res.parse_rate  # doctest: +SKIP
        (100, 0.82)

    Raises:
        GenerationAborted: when every call of two consecutive batches failed.
        TypeError: for an option :class:`AugmentOptions` does not name.
    """
    o = _options(options)
    seed, family, k = int(o.get("seed", 0)), str(o.get("family", "mix")), int(o.get("k", 2))
    quotas, max_attempts = o.get("quotas"), o.get("max_attempts")
    selector, record_filter = o.get("selector"), o.get("record_filter")
    n_items = int(o.get("n_items", 5))
    if llm is None:
        llm = build_llm(LLMConfig(), seed=seed)
    family = check_family(family)
    n = _check_quotas(quotas, spec, n)
    if selector is None:
        selector = RandomAnchorSelector(examples, k=anchors_per_prompt(family, k), seed=seed)
    settings = _Settings(
        n=n, seed=seed, batch_size=int(o.get("batch_size", 16)),
        limit=max_attempts if max_attempts is not None else 3 * n + 16,
        family=family, n_items=n_items, shares=tuple(o.get("shares", (50, 70))),
        quotas=None if quotas is None else dict(quotas),
        chain_options={"top_logprobs": o.get("top_logprobs", 20), "scorer": o.get("scorer", "auto"),
                       "concurrency": o.get("concurrency"), "n_items": n_items},
    )  # fmt: skip
    get = o.get
    hooks = _Hooks(get("on_batch"), get("on_reject"), get("checkpoint"), record_filter,
                   get("labeller"))  # fmt: skip
    run = _Run(
        examples, spec, llm, settings, selector, hooks=hooks, done_records=o.get("done_records")
    )
    run.executor = o.get("executor")
    if run.executor is not None:
        run.executor.start(spec, family, settings.chain_options)
    restored = o.get("restored")
    if restored is not None:
        run.restore(restored)
    if record_filter is not None:
        record_filter.prime(run.result.records)
    while run.wants_more():
        run.step()
    run.result.seconds = run.elapsed()
    run.result.complete = len(run.result.records) >= n
    return run.result


def _options(options: AugmentOptions) -> dict[str, Any]:
    """``options`` as a plain dict, refusing names :class:`AugmentOptions` lacks."""
    unknown = sorted(set(options) - set(AugmentOptions.__annotations__))
    if unknown:
        msg = f"augment() got unexpected options {unknown}"
        raise TypeError(msg)
    return cast(dict[str, Any], options)


def _check_quotas(quotas: Mapping[str, int] | None, spec: TaskSpec, n: int) -> int:
    """``n``, or the quotas' sum when there are quotas (checked against the task's labels)."""
    if quotas is None:
        return n
    unknown = sorted(set(quotas) - set(spec.label_names))
    if unknown or any(v < 0 for v in quotas.values()):
        msg = f"quotas must be non-negative counts of the task's labels, got {dict(quotas)}"
        raise MixaugError(msg)
    return sum(quotas.values())


@dataclass(frozen=True)
class _Settings:
    """What one :func:`augment` call asks for (its arguments, resolved)."""

    n: int
    seed: int
    batch_size: int
    limit: int
    family: Family
    n_items: int
    shares: tuple[int, ...]
    quotas: dict[str, int] | None
    chain_options: dict[str, Any]

    @property
    def per_prompt(self) -> int:
        return items_per_prompt(self.family, self.n_items)


@dataclass
class _Hooks:
    """The caller's callbacks and optional steps of :func:`augment`."""

    on_batch: Callable[[AugmentResult, list[SyntheticRecord]], None] | None
    on_reject: Callable[[list[Rejected]], None] | None
    checkpoint: RunFiles | None
    record_filter: RecordFilter | None
    labeller: Callable[[list[SyntheticRecord]], tuple[list[SyntheticRecord], list[Any]]] | None

    def reject(self, rejected: list[Rejected]) -> None:
        if self.on_reject is not None and rejected:
            self.on_reject(rejected)


class _Run:
    """One generation run: plans a batch, asks the model, admits the records, journals.

    It owns the resumable state (the result's counters, the batch number, a pending
    plan of an interrupted batch and the selector's random state).
    """

    def __init__(
        self,
        examples: list[Example],
        spec: TaskSpec,
        llm: BaseLanguageModel[Any],
        settings: _Settings,
        selector: AnchorSelector,
        *,
        hooks: _Hooks,
        done_records: list[SyntheticRecord] | None,
    ) -> None:
        self.examples = examples
        self.spec = spec
        self.llm = llm
        self.cfg = settings
        self.selector = selector
        self.hooks = hooks
        self.strategy = getattr(selector, "strategy", type(selector).__name__)
        self.model = model_name(llm)
        self.seedable = "seed" in type(llm).model_fields
        self.chain = self._chain()
        self.result = AugmentResult(records=list(done_records or []))
        self.failed_batches = 0
        self.batch_no = 0
        self.earlier_seconds = 0.0
        self.started = time.perf_counter()
        self.pending: list[list[int]] | None = None
        self.executor: BatchExecutor | None = None
        self.position = {(e.text, e.label): i for i, e in reversed(list(enumerate(examples)))}

    def _chain(self, **kw: Any) -> Any:
        return build_family_chain(
            self.llm, self.spec, self.cfg.family, **self.cfg.chain_options, **kw
        )

    def elapsed(self) -> float:
        return self.earlier_seconds + time.perf_counter() - self.started

    def restore(self, restored: Restored) -> None:
        """Go on where an interrupted run's journal stopped."""
        c = restored.counters
        self.result.restore_counters(c)
        self.failed_batches = int(c.get("failed_batches", 0))
        self.earlier_seconds = float(c.get("seconds", 0.0))
        self.batch_no = restored.batch_no
        self.pending = restored.pending_plan
        if self.hooks.record_filter is not None and c.get("filter"):
            self.hooks.record_filter.summary = FilterSummary.model_validate(c["filter"])
        if restored.rng_state is not None:
            self.selector.set_state(restored.rng_state)

    def wants_more(self) -> bool:
        return len(self.result.records) < self.cfg.n and self.result.attempts < self.cfg.limit

    def _batch_size(self) -> int:
        res, per = self.result, self.cfg.per_prompt
        remaining = self.cfg.n - len(res.records)
        rate = len(res.records) / res.attempts if res.attempts else 1.0
        want = math.ceil(remaining / max(rate, 0.5))
        budget = max(1, (self.cfg.limit - res.attempts) // per)
        return max(1, min(self.cfg.batch_size, budget, math.ceil(want / per)))

    def _seed(self, batch_no: int) -> int | None:
        # A seed per batch makes a run reproducible under the same --seed.
        return self.cfg.seed * 1_000_003 + batch_no if self.seedable else None

    def step(self) -> None:
        """One batch: plan, generate, admit, commit (raises GenerationAborted)."""
        size = self._batch_size()
        requests = self._plan(size)
        seed = self._seed(self.batch_no)
        batch = PlannedBatch(self.batch_no, requests, seed)
        self.batch_no += 1
        if self.executor is not None:
            outputs = self.executor.run(batch, self._ahead)
        else:
            if seed is not None:
                self.chain = self._chain(seed=seed)
            outputs = self.chain.batch(requests, return_exceptions=True)
        for out in outputs:
            if isinstance(out, BaseException) and not isinstance(out, Exception):
                raise out  # KeyboardInterrupt and the like end the run (it can resume)
        new, errors = self._parse(requests, outputs)
        new = self._admit(new)
        self._commit(new, errors == size)

    def _draw(self, size: int, batch_no: int) -> list[dict[str, Any]]:
        """The requests of batch ``batch_no`` from the run's state now (draws anchors)."""
        records = self.result.records
        return plan_requests(
            self.cfg.family,
            [self.selector.select_examples(h) for h in _hints(self.cfg.quotas, records, size)],
            spec=self.spec,
            pool=self.examples,
            counts=Counter(r.generated_label or r.label for r in records),
            n_items=self.cfg.n_items,
            shares=self.cfg.shares,
            seed=self.cfg.seed,
            batch_no=batch_no,
        )

    def _ahead(self, count: int) -> list[PlannedBatch]:
        """The next ``count`` batches as they would be planned if this one changed nothing.

        The selector's state is put back afterwards: guessing draws nothing for real.
        """
        state = self.selector.get_state()
        try:
            size = self._batch_size()
            return [
                PlannedBatch(b, self._draw(size, b), self._seed(b))
                for b in range(self.batch_no, self.batch_no + count)
            ]
        finally:
            self.selector.set_state(state)

    def _plan(self, size: int) -> list[dict[str, Any]]:
        checkpoint = self.hooks.checkpoint
        rng_before = self.selector.get_state() if checkpoint is not None else None
        requests = self._draw(size, self.batch_no)
        if checkpoint is not None:
            plan = [
                [self.position.get((a["text"], a["label"]), -1) for a in req["anchors"]]
                for req in requests
            ]
            if self.pending is not None and plan != self.pending:
                msg = (
                    "Resuming drew other anchors than the interrupted run planned: the data, "
                    "the anchor strategy or the retry budget (--max-attempts) changed. Run "
                    "with the earlier settings, or use --overwrite to start again."
                )
                raise RunConflict(msg)
            if self.pending is None:
                checkpoint.plan(self.batch_no, plan, rng_before)
            self.pending = None
        return requests

    def _parse(
        self, requests: list[dict[str, Any]], outputs: list[Any]
    ) -> tuple[list[SyntheticRecord], int]:
        """The batch's new records, and how many of its calls failed."""
        res, per = self.result, self.cfg.per_prompt
        new: list[SyntheticRecord] = []
        errors = 0
        for request, out in zip(requests, outputs, strict=True):
            res.attempts += per
            if isinstance(out, ParseFailure):
                res.failures[out.reason] += per
                res.prompt_tokens += out.prompt_tokens
                res.completion_tokens += out.completion_tokens
                continue
            if isinstance(out, Exception):
                errors += 1
                res.failures["generation_error"] += per
                if len(res.errors) < 5:
                    res.errors.append(redact(f"{type(out).__name__}: {out}"))
                continue
            if len(out) < per:
                res.failures["short_list"] += per - len(out)
            new.extend(self._items(request, out, already=len(new)))
        return new, errors

    def _items(
        self, request: dict[str, Any], items: list[LabelledItem], already: int
    ) -> list[SyntheticRecord]:
        res = self.result
        copies = {_norm(a["text"]) for a in request["anchors"]}
        listed: set[str] = set()
        out: list[SyntheticRecord] = []
        for item in items:
            res.prompt_tokens += item.prompt_tokens
            res.completion_tokens += item.completion_tokens
            key = _norm(item.text)
            if key in copies:
                res.failures["copied_anchor"] += 1
                continue
            if key in listed:  # a list that repeats an item keeps one
                res.failures["repeated_item"] += 1
                continue
            listed.add(key)
            made = len(res.records) + already + len(out)
            if made >= self.cfg.n:
                res.surplus += 1
                continue
            # Records a filter, labeller or full quota dropped keep their numbers, so
            # ids stay unique (and equal after a resume).
            index = made + res.rejected + sum(res.quota_surplus.values())
            out.append(
                _record(
                    item,
                    request,
                    index=index,
                    spec=self.spec,
                    strategy=self.strategy,
                    similarity=self.selector.similarity(request["anchors"]),
                    model=self.model,
                    seed=self.cfg.seed,
                    family=self.cfg.family,
                )
            )
        return out

    def _admit(self, new: list[SyntheticRecord]) -> list[SyntheticRecord]:
        """The labeller, the filter and the class quotas, in that order."""
        res, hooks = self.result, self.hooks
        if hooks.labeller is not None and new:
            before = {r.id: r.label for r in new}
            new, dropped = hooks.labeller(new)
            res.relabelled += sum(before[r.id] != r.label for r in new)
            if dropped:
                res.rejected += len(dropped)
                res.failures.update(reason for _, reason in dropped)
                hooks.reject([Rejected(record=r, reasons=[why]) for r, why in dropped])
        if hooks.record_filter is not None and new:
            outcome = hooks.record_filter.invoke(new)
            new = outcome.kept
            res.rejected += len(outcome.rejected)
            res.filter_summary = hooks.record_filter.summary.model_dump(mode="json")
            hooks.reject(outcome.rejected)
        if self.cfg.quotas is None:
            return new
        have = Counter(r.label for r in res.records)
        fits = []
        for r in new:
            if have[r.label] < self.cfg.quotas.get(r.label, 0):
                have[r.label] += 1
                fits.append(r)
            else:
                res.quota_surplus[r.label] += 1
        return fits

    def _commit(self, new: list[SyntheticRecord], all_failed: bool) -> None:
        res = self.result
        res.records.extend(new)
        res.seconds = self.elapsed()
        self.failed_batches = self.failed_batches + 1 if all_failed else 0
        if self.hooks.on_batch is not None:
            self.hooks.on_batch(res, new)
        if self.hooks.checkpoint is not None:
            self.hooks.checkpoint.done(
                self.batch_no - 1,
                len(res.records),
                res.counters(failed_batches=self.failed_batches),
                self.selector.get_state(),
            )
        if self.failed_batches >= 2:
            res.complete = False
            detail = res.errors[-1] if res.errors else "unknown error"
            msg = (
                f"The model failed on every prompt of {self.failed_batches} batches in a row "
                f"(last error: {detail}); {len(res.records)} records were kept."
            )
            raise GenerationAborted(msg)


def _hints(
    quotas: Mapping[str, int] | None, records: list[SyntheticRecord], size: int
) -> list[dict[str, Any]]:
    """Per prompt of a batch, the class to aim at: the ones furthest from their quota."""
    if quotas is None:
        return [{} for _ in range(size)]
    left = Counter({c: q for c, q in quotas.items()})
    left.subtract(Counter(r.label for r in records))
    hints: list[dict[str, Any]] = []
    for _ in range(size):
        label, gap = max(sorted(left.items()), key=lambda kv: kv[1])
        if gap <= 0:
            hints.append({})
            continue
        hints.append({"label": label})
        left[label] -= 1
    return hints


def dry_run_rows(
    spec: TaskSpec,
    selector: AnchorSelector,
    *,
    n: int,
    seed: int,
    family: str = "mix",
    pool: list[Example] | None = None,
    n_items: int = 5,
    shares: tuple[int, ...] | list[int] = (50, 70),
) -> list[dict[str, Any]]:
    """The requests and rendered prompts ``augment`` would send, without a model."""
    rows = []
    strategy = getattr(selector, "strategy", type(selector).__name__)
    prompts = math.ceil(n / items_per_prompt(family, n_items))
    requests = plan_requests(
        family,
        [selector.select_examples({}) for _ in range(prompts)],
        spec=spec,
        pool=pool or [],
        n_items=n_items,
        shares=shares,
        seed=seed,
    )
    for i, request in enumerate(requests):
        anchors = request["anchors"]
        prompt = render_family_prompt(spec, family, request)
        sim = selector.similarity(anchors)
        rows.append(
            {
                "id": f"{spec.name}-s{seed}-{i:06d}",
                "anchors": [{"text": a["text"], "label": a["label"]} for a in anchors],
                "anchor_strategy": strategy,
                "anchor_similarity": None if sim is None else round(sim, 6),
                "prompt_family": family,
                "target": target_of(family, request),
                "prompt": prompt,
                "prompt_hash": prompt_hash(prompt),
                "seed": seed,
                "task": spec.name,
            }
        )
    return rows


def summary_path(out: Path) -> Path:
    """Where the run summary of ``out`` goes: ``x.jsonl`` -> ``x.summary.json``."""
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.with_name(stem + ".summary.json")
