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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseLanguageModel

from mixaug.chains.families import (
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


def augment(
    examples: list[Example],
    spec: TaskSpec,
    llm: BaseLanguageModel[Any] | None = None,
    *,
    n: int,
    k: int = 2,
    seed: int = 0,
    selector: AnchorSelector | None = None,
    batch_size: int = 16,
    max_attempts: int | None = None,
    top_logprobs: int = 20,
    scorer: Any = "auto",
    concurrency: int | None = None,
    on_batch: Callable[[AugmentResult, list[SyntheticRecord]], None] | None = None,
    checkpoint: RunFiles | None = None,
    restored: Restored | None = None,
    done_records: list[SyntheticRecord] | None = None,
    record_filter: RecordFilter | None = None,
    on_reject: Callable[[list[Rejected]], None] | None = None,
    family: str = "mix",
    n_items: int = 5,
    shares: tuple[int, ...] | list[int] = (50, 70),
    quotas: Mapping[str, int] | None = None,
    labeller: Callable[[list[SyntheticRecord]], tuple[list[SyntheticRecord], list[Any]]]
    | None = None,
) -> AugmentResult:
    """Generate ``n`` soft-labelled records from ``examples`` with a prompt family.

    Anchors come from ``selector`` (uniformly random by default; it should draw
    :func:`~mixaug.chains.families.anchors_per_prompt` of them). Prompts of
    ``family`` (GPT3Mix by default) go to ``llm`` (the embedded default model if
    ``None``) in batches of ``batch_size``; items that can't be parsed are counted
    by reason and replaced until ``n`` records exist or ``max_attempts`` (default
    ``3n + 16``) items were asked for.

    Args:
        examples: the labelled pool anchors are drawn from.
        spec: the task spec.
        llm: any LangChain chat or completion model that returns logprobs.
        n: records to make.
        k: anchors per prompt.
        seed: seed for anchors and sampling.
        selector: anchor selector (default: uniformly random).
        batch_size: prompts per model call.
        max_attempts: continuations to try at most.
        top_logprobs: alternatives requested per token.
        scorer: fallback scorer for label words the top-k missed (``"auto"``: the
            model itself when it can score).
        concurrency: requests in flight for remote models (``None``: one batched call).
        on_batch: called after each batch with the running result and the new
            records (write them out here to keep them if the run dies).
        checkpoint: journal each batch's plan and completion (resumable runs); the
            ``done`` line is written after ``on_batch`` returned.
        restored: where a previous run stopped (from ``checkpoint.restore()``).
        done_records: the records that run already wrote.
        record_filter: filters each batch (dedup, calibration, critic); rejected
            records don't count towards ``n``, so more are generated.
        on_reject: called with each batch's rejected records (before ``on_batch``).
        family: ``mix``, ``paraphrase``, ``instruct``, ``fewshot`` or ``boundary``.
        n_items: items per ``instruct`` prompt.
        shares: ``boundary``: percent shares the first anchor's label is given.
        quotas: records wanted per class of the *final* label (``n`` becomes their
            sum); a record of a full class is dropped and counted in
            ``quota_surplus``. A selector that takes a ``label`` hint (``targeted``)
            is aimed at the class furthest from its quota.
        labeller: gives each new record its final label before quotas are counted
            (:class:`~mixaug.labelmix.RecordLabeller`); returns (kept, [(record,
            reason)]) and the dropped ones go to ``on_reject``.

    Raises:
        GenerationAborted: when every call of two consecutive batches failed.
    """
    if llm is None:
        llm = build_llm(LLMConfig(), seed=seed)
    family = check_family(family)
    if quotas is not None:
        unknown = sorted(set(quotas) - set(spec.label_names))
        if unknown or any(v < 0 for v in quotas.values()):
            msg = f"quotas must be non-negative counts of the task's labels, got {dict(quotas)}"
            raise MixaugError(msg)
        n = sum(quotas.values())
    if selector is None:
        selector = RandomAnchorSelector(examples, k=anchors_per_prompt(family, k), seed=seed)
    strategy = getattr(selector, "strategy", type(selector).__name__)
    per_prompt = items_per_prompt(family, n_items)

    def make_chain(**kw: Any) -> Any:
        return build_family_chain(
            llm,
            spec,
            family,
            top_logprobs=top_logprobs,
            scorer=scorer,
            concurrency=concurrency,
            n_items=n_items,
            **kw,
        )

    chain = make_chain()
    seedable = "seed" in type(llm).model_fields
    name = model_name(llm)
    limit = max_attempts if max_attempts is not None else 3 * n + 16
    result = AugmentResult(records=list(done_records or []))
    started = time.perf_counter()
    failed_batches = 0
    batch_no = 0
    earlier_seconds = 0.0
    pending: list[list[int]] | None = None
    if restored is not None:
        c = restored.counters
        result.attempts = int(c.get("attempts", 0))
        result.failures = Counter(c.get("failures", {}))
        result.surplus = int(c.get("surplus", 0))
        result.prompt_tokens = int(c.get("prompt_tokens", 0))
        result.completion_tokens = int(c.get("completion_tokens", 0))
        result.errors = list(c.get("errors", []))
        failed_batches = int(c.get("failed_batches", 0))
        earlier_seconds = float(c.get("seconds", 0.0))
        batch_no = restored.batch_no
        pending = restored.pending_plan
        result.rejected = int(c.get("rejected", 0))
        result.quota_surplus = Counter(c.get("quota_surplus", {}))
        result.relabelled = int(c.get("relabelled", 0))
        if record_filter is not None and c.get("filter"):
            record_filter.summary = FilterSummary.model_validate(c["filter"])
        if restored.rng_state is not None:
            selector.set_state(restored.rng_state)
    if record_filter is not None:
        record_filter.prime(result.records)
    position = {(e.text, e.label): i for i, e in reversed(list(enumerate(examples)))}
    while len(result.records) < n and result.attempts < limit:
        remaining = n - len(result.records)
        rate = len(result.records) / result.attempts if result.attempts else 1.0
        want = math.ceil(remaining / max(rate, 0.5))
        budget = max(1, (limit - result.attempts) // per_prompt)
        size = max(1, min(batch_size, budget, math.ceil(want / per_prompt)))
        rng_before = selector.get_state() if checkpoint is not None else None
        requests = plan_requests(
            family,
            [selector.select_examples(h) for h in _hints(quotas, result.records, size)],
            spec=spec,
            pool=examples,
            counts=Counter(r.generated_label or r.label for r in result.records),
            n_items=n_items,
            shares=shares,
            seed=seed,
            batch_no=batch_no,
        )
        anchor_sets = [req["anchors"] for req in requests]
        if checkpoint is not None:
            plan = [[position.get((a["text"], a["label"]), -1) for a in s] for s in anchor_sets]
            if pending is not None and plan != pending:
                msg = (
                    "Resuming drew other anchors than the interrupted run planned: the data, "
                    "the anchor strategy or the retry budget (--max-attempts) changed. Run "
                    "with the earlier settings, or use --overwrite to start again."
                )
                raise RunConflict(msg)
            if pending is None:
                checkpoint.plan(batch_no, plan, rng_before)
            pending = None
        if seedable:
            # A seed per batch makes a run reproducible under the same --seed.
            chain = make_chain(seed=seed * 1_000_003 + batch_no)
        batch_no += 1
        outputs = chain.batch(requests, return_exceptions=True)
        new: list[SyntheticRecord] = []
        errors_here = 0
        for out in outputs:
            if isinstance(out, BaseException) and not isinstance(out, Exception):
                raise out  # KeyboardInterrupt and the like end the run (it can resume)
        for request, out in zip(requests, outputs, strict=True):
            anchors = request["anchors"]
            result.attempts += per_prompt
            if isinstance(out, ParseFailure):
                result.failures[out.reason] += per_prompt
                result.prompt_tokens += out.prompt_tokens
                result.completion_tokens += out.completion_tokens
                continue
            if isinstance(out, Exception):
                errors_here += 1
                result.failures["generation_error"] += per_prompt
                if len(result.errors) < 5:
                    result.errors.append(redact(f"{type(out).__name__}: {out}"))
                continue
            if len(out) < per_prompt:
                result.failures["short_list"] += per_prompt - len(out)
            copies = {_norm(a["text"]) for a in anchors}
            listed: set[str] = set()
            for item in out:
                result.prompt_tokens += item.prompt_tokens
                result.completion_tokens += item.completion_tokens
                key = _norm(item.text)
                if key in copies:
                    result.failures["copied_anchor"] += 1
                    continue
                if key in listed:  # a list that repeats an item keeps one
                    result.failures["repeated_item"] += 1
                    continue
                listed.add(key)
                if len(result.records) + len(new) >= n:
                    result.surplus += 1
                    continue
                new.append(
                    _record(
                        item,
                        request,
                        # Records a filter, labeller or full quota dropped keep their
                        # numbers, so ids stay unique (and equal after a resume).
                        index=len(result.records)
                        + len(new)
                        + result.rejected
                        + sum(result.quota_surplus.values()),
                        spec=spec,
                        strategy=strategy,
                        similarity=selector.similarity(anchors),
                        model=name,
                        seed=seed,
                        family=family,
                    )
                )
        if labeller is not None and new:
            before = {r.id: r.label for r in new}
            new, dropped = labeller(new)
            result.relabelled += sum(before[r.id] != r.label for r in new)
            if dropped:
                result.rejected += len(dropped)
                result.failures.update(reason for _, reason in dropped)
                if on_reject is not None:
                    on_reject([Rejected(record=r, reasons=[why]) for r, why in dropped])
        if record_filter is not None and new:
            outcome = record_filter.invoke(new)
            new = outcome.kept
            result.rejected += len(outcome.rejected)
            result.filter_summary = record_filter.summary.model_dump(mode="json")
            if on_reject is not None and outcome.rejected:
                on_reject(outcome.rejected)
        if quotas is not None:
            have = Counter(r.label for r in result.records)
            fits = []
            for r in new:
                if have[r.label] < quotas.get(r.label, 0):
                    have[r.label] += 1
                    fits.append(r)
                else:
                    result.quota_surplus[r.label] += 1
            new = fits
        result.records.extend(new)
        result.seconds = earlier_seconds + time.perf_counter() - started
        failed_batches = failed_batches + 1 if errors_here == size else 0
        if on_batch is not None:
            on_batch(result, new)
        if checkpoint is not None:
            counters = {
                "attempts": result.attempts,
                "failures": dict(result.failures),
                "surplus": result.surplus,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "errors": result.errors,
                "failed_batches": failed_batches,
                "seconds": result.seconds,
                "rejected": result.rejected,
                "filter": result.filter_summary,
                "quota_surplus": dict(result.quota_surplus),
                "relabelled": result.relabelled,
            }
            checkpoint.done(batch_no - 1, len(result.records), counters, selector.get_state())
        if failed_batches >= 2:
            result.complete = False
            detail = result.errors[-1] if result.errors else "unknown error"
            msg = (
                f"The model failed on every prompt of {failed_batches} batches in a row "
                f"(last error: {detail}); {len(result.records)} records were kept."
            )
            raise GenerationAborted(msg)
    result.seconds = earlier_seconds + time.perf_counter() - started
    result.complete = len(result.records) >= n
    return result


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
