"""The ``mixaug`` command line.

Example:
    $ mixaug augment --data train.jsonl --task sst2 --n 100 --out synthetic.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixaug.chains.families import FAMILIES, get_family
from mixaug.errors import MixaugError
from mixaug.providers import get_provider

EXIT_USAGE = 2
EXIT_FAILED = 1


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _err(line: str) -> None:
    from mixaug.redact import redact

    sys.stderr.write(redact(line) + "\n")
    sys.stderr.flush()


def _uses_llm(method: str) -> bool:
    """Whether a bench method generates with the language model (a prompt family)."""
    from mixaug.bench.runner import method_family

    try:
        return method_family(method) in FAMILIES
    except MixaugError:
        return False  # noaug, setfit


def _check_model(llm: Any) -> None:
    """Refuse a local model that is not there (no weights load here)."""
    get_provider(llm.provider).check_model(llm)


def _check_encoder(path: str | None) -> None:
    """Refuse an ``--encoder`` folder that is not a usable encoder (no weights load)."""
    if path is not None:
        from mixaug.training.model import check_encoder

        check_encoder(path)


def _writable(raw: str | Path, flag: str = "--out") -> Path:
    from mixaug.paths import check_out_file

    return check_out_file(raw, flag)


def cmd_augment(args: argparse.Namespace) -> int:
    """``mixaug augment``: validate everything, then generate and write records."""
    from mixaug.paths import LockSet

    with LockSet() as locks:
        return _augment(args, locks)


@dataclass
class _AugmentJob:
    """What ``mixaug augment`` resolved from its flags, before any file is touched."""

    cfg: Any
    spec: Any
    examples: list[Any]
    out: Path
    files: Any
    settings: dict[str, Any]
    val_examples: list[Any]
    eval_examples: list[Any]
    quotas: dict[str, int] | None
    fp: str = ""

    @property
    def summary_file(self) -> Path:
        from mixaug.augmentation import summary_path

        return summary_path(self.out)


@dataclass
class _AugmentParts:
    """The selector, model and optional steps a run uses (built before files change)."""

    selector: Any
    k: int
    llm: Any = None
    scorer: Any = None
    record_filter: Any = None
    labeller: Any = None
    executor: Any = None


def _augment(args: argparse.Namespace, locks: Any) -> int:
    job = _resolve_augment(args)
    done = _check_augment_output(job, args)
    if done is not None:
        return done
    locks.take(job.out)  # a second run on this --out is refused from here on
    parts = _build_augment_parts(job, args)
    if args.overwrite:
        job.files.remove()
    if args.dry_run:
        return _augment_dry_run(job, parts)
    return _augment_run(job, parts, args)


def _augment_config(args: argparse.Namespace) -> Any:
    """The config file with the command's flags merged in (``--labels``/``--quotas`` too)."""
    from mixaug.config import LabelsConfig, apply_overrides, load_config
    from mixaug.errors import ConfigError

    cfg = apply_overrides(
        load_config(args.config),
        {
            key: getattr(args, key)
            for key in ("n", "k", "seed", "anchors", "store", "max_attempts", "prompt")
        },
        {key: getattr(args, key) for key in ("model", "mode", "batch_size", "engine")},
    )
    if cfg.n is None:
        msg = "How many records? Pass --n N (a positive integer) or set 'n' in the config."
        raise ConfigError(msg)
    lm_labels = {"quotas": "off", "labeller": None}
    if (
        not get_family(cfg.prompt.family).recipe_labels
        and cfg.labels == LabelsConfig()
        and args.quotas is None
        and getattr(args, "labels", None) is None
    ):
        # The recipe was measured on GPT3Mix prompts; the other families keep their own
        # labels unless quotas or a labeller are asked for.
        cfg = cfg.model_copy(update={"labels": cfg.labels.model_copy(update=lm_labels)})
    if getattr(args, "labels", None) == "lm":
        cfg = cfg.model_copy(update={"labels": cfg.labels.model_copy(update=lm_labels)})
    if args.quotas is not None:
        cfg = cfg.model_copy(
            update={"labels": cfg.labels.model_copy(update={"quotas": args.quotas})}
        )
    return cfg


def _logger(args: argparse.Namespace) -> Any:
    """Progress lines to stderr as ``[mixaug] ...`` (nothing with ``--quiet``)."""
    return (lambda _: None) if args.quiet else (lambda line: _err(f"[mixaug] {line}"))


def _task(args: argparse.Namespace, cfg: Any) -> Any:
    """The task spec ``--task`` (else the config's ``task``) names; refused when neither."""
    from mixaug.errors import ConfigError
    from mixaug.specs import get_spec, spec_from_dict

    task = args.task if args.task is not None else cfg.task
    if task is None:
        msg = "Which task? Pass --task (e.g. sst2, trec6, generic, or a spec .yaml)."
        raise ConfigError(msg)
    return spec_from_dict(task) if isinstance(task, dict) else get_spec(task)


def _resolve_augment(args: argparse.Namespace) -> _AugmentJob:
    """Config, task, data and output path, all checked; read-only."""
    from mixaug.data import check_labels, load_examples
    from mixaug.errors import ConfigError
    from mixaug.paths import check_side_files, refuse_inputs
    from mixaug.providers import llm_settings
    from mixaug.runstate import RunFiles, file_hash, fingerprint
    from mixaug.selectors import check_strategy

    cfg = _augment_config(args)
    spec = _task(args, cfg)
    check_strategy(cfg.anchors.strategy)
    if not args.dry_run:
        _check_model(cfg.llm)
    examples = load_examples(args.data)
    spec = check_labels(examples, spec)
    out = _writable(args.out)
    files = RunFiles(out)
    eval_files = list(args.eval or [])
    written = {"--out": out} | {
        f"--out's {p.name[len(out.stem) :] or p.name}": p for p in files.all()[1:]
    }
    refuse_inputs(
        written,
        {"--data": args.data, "--val": args.val, "--config": args.config}
        | {f"--leakage {p}": p for p in eval_files},
    )
    job = _AugmentJob(cfg, spec, examples, out, files, {}, [], [], None)
    check_side_files([*files.all()[1:], job.summary_file])
    if eval_files and cfg.filter is None:
        msg = (
            "--leakage (--eval) is for the filter's leakage check; add a 'filter:' section "
            "to the config."
        )
        raise ConfigError(msg)
    job.eval_examples = [e for path in eval_files for e in load_examples(path)]
    job.settings = {
        "config": cfg.model_dump(mode="json", exclude={"loop"}) | {"llm": llm_settings(cfg.llm)},
        "task": spec.model_dump(mode="json"),
        "data": file_hash(args.data),
        "dry_run": bool(args.dry_run),
    }
    if eval_files:
        job.settings["eval"] = [file_hash(path) for path in eval_files]
    _resolve_validation(job, args)
    job.fp = fingerprint(job.settings)
    return job


def _resolve_validation(job: _AugmentJob, args: argparse.Namespace) -> None:
    """``--val`` (for ``--guard``, the labeller and ``val`` quotas) and the quotas."""
    from mixaug.data import check_labels, load_examples
    from mixaug.errors import ConfigError
    from mixaug.runstate import file_hash

    cfg = job.cfg
    if args.guard and not args.val:
        msg = "--guard measures the gain on labelled validation data: pass --val FILE."
        raise ConfigError(msg)
    job.val_examples = load_examples(args.val) if args.val else []
    if job.val_examples:
        check_labels(job.val_examples, job.spec)
        job.settings["val"] = file_hash(args.val)
        job.settings["guard"] = bool(args.guard)
    if args.guard:
        from mixaug.recipe import RecipeConfig, split_validation

        if RecipeConfig().searches(len(job.val_examples)):  # a small --val is not split
            split_validation(job.val_examples, 0.5, cfg.seed)  # too small to split: refused now
    if cfg.labels.quotas == "val" and not job.val_examples:
        msg = "quotas 'val' spread n like the validation data's classes: pass --val FILE."
        raise ConfigError(msg)
    job.quotas = _quotas(
        cfg.labels.quotas,
        cfg.n,
        job.val_examples if cfg.labels.quotas == "val" else job.examples,
        job.spec.label_names,
    )


def _check_augment_output(job: _AugmentJob, args: argparse.Namespace) -> int | None:
    """Answer a finished or conflicting ``--out`` before anything is built (0: done)."""
    from mixaug.runstate import RunConflict

    if args.overwrite:
        return None
    out, files = job.out, job.files
    manifest = files.read_manifest()
    same = manifest is not None and manifest.get("fingerprint") == job.fp
    complete = bool(manifest and manifest.get("complete"))
    if out.exists() and not (same and (args.dry_run or complete)):
        msg = (
            f"{out} already holds records of another run (different settings or data); "
            "pass --overwrite to replace it, or choose another --out."
        )
        raise RunConflict(msg)
    if out.exists() and not args.dry_run:
        _out(f"{out} is already complete for these settings; nothing to do.")
        _out(f"summary: {job.summary_file}")
        return 0
    if (files.part.exists() or files.journal.exists()) and not same:
        msg = (
            f"{out} has an unfinished run with different settings or data; run that "
            "command again to resume it, or pass --overwrite to start this one."
        )
        raise RunConflict(msg)
    return None


def _build_augment_parts(job: _AugmentJob, args: argparse.Namespace) -> _AugmentParts:
    """Selector, model (lazily: no weights load), scorer, filter and labeller.

    All are built before any file changes, so a missing API key or package leaves every
    file as it was, ``--overwrite`` included.
    """
    from mixaug.augmentation import build_llm
    from mixaug.providers import build_scorer
    from mixaug.selectors import STRATEGIES, make_selector

    cfg, examples = job.cfg, job.examples
    if STRATEGIES[cfg.anchors.strategy].embedded and not args.quiet:
        _err(f"[mixaug] embedding {len(examples)} examples for {cfg.anchors.strategy} anchors ...")
    family = get_family(cfg.prompt.family)
    k = family.anchors_per_prompt(cfg.k)
    family.check_examples(examples)
    selector = make_selector(
        cfg.anchors.strategy,
        examples,
        k=k,
        seed=cfg.seed,
        store_dir=cfg.anchors.store,
        options=cfg.anchors.options,
    )
    parts = _AugmentParts(selector=selector, k=k)
    if args.dry_run:
        return parts
    parts.llm = build_llm(cfg.llm, seed=cfg.seed)
    parts.scorer = build_scorer(cfg.llm, parts.llm)
    if args.executor == "ray":
        from mixaug.executors import RayExecutor

        parts.executor = RayExecutor(
            cfg.llm, workers=args.workers, address=args.ray_address, llm_seed=cfg.seed
        )
        parts.executor.connect()  # before any file changes
    if cfg.filter is not None:
        from mixaug.filtering import build_record_filter

        say = _logger(args)
        parts.record_filter = build_record_filter(
            cfg.filter,
            job.spec,
            examples,
            llm_config=cfg.llm,
            eval_examples=job.eval_examples,
            llm=parts.llm,
            scorer=parts.scorer,
            seed=cfg.seed,
            log=say,
        )
    if cfg.labels.labeller is not None:
        parts.labeller, _ = _build_labeller(
            cfg, job.spec, examples, job.val_examples, parts.llm, args
        )
    return parts


def _augment_dry_run(job: _AugmentJob, parts: _AugmentParts) -> int:
    """Write the prompts a run would send (no model called)."""
    from mixaug.augmentation import dry_run_rows
    from mixaug.io import JsonlWriter, write_json_atomic
    from mixaug.runstate import MANIFEST_VERSION

    cfg = job.cfg
    rows = dry_run_rows(
        job.spec,
        parts.selector,
        n=cfg.n,
        seed=cfg.seed,
        family=cfg.prompt.family,
        pool=job.examples,
        n_items=cfg.prompt.items_per_prompt,
        shares=cfg.prompt.shares,
    )
    writer = JsonlWriter(job.out)
    writer.write(rows)
    writer.commit()
    job.files.write_manifest(
        {
            "version": MANIFEST_VERSION,
            "fingerprint": job.fp,
            "complete": True,
            **{k: v for k, v in job.settings.items() if k != "config"},
        }
    )
    dry_summary: dict[str, Any] = {
        "task": job.spec.name,
        "dry_run": True,
        "requested": cfg.n,
        "prompts": len(rows),
        "prompt_family": cfg.prompt.family,
        "k": parts.k,
        "anchor_strategy": parts.selector.strategy,
        "seed": cfg.seed,
        "output": str(job.out),
    }
    write_json_atomic(job.summary_file, dry_summary)
    _out(f"dry run: wrote {len(rows)} prompts (no model called) to {job.out}")
    _out(f"summary: {job.summary_file}")
    return 0


def _augment_restore(job: _AugmentJob, args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """Where an interrupted run stopped and its records, or a fresh manifest."""
    from mixaug.records import SyntheticRecord
    from mixaug.runstate import MANIFEST_VERSION

    files, cfg = job.files, job.cfg
    if not (files.part.exists() or files.journal.exists()):
        files.write_manifest(
            {
                "version": MANIFEST_VERSION,
                "fingerprint": job.fp,
                "complete": False,
                "seed": cfg.seed,
                "n": cfg.n,
                "task": job.spec.name,
                "data": job.settings["data"],
                "data_path": str(args.data),
                "config": cfg.model_dump(mode="json", exclude={"loop"}),
                "engine": get_provider(cfg.llm.provider).engine(cfg.llm),
            }
        )
        return None, []
    restored = files.restore()
    done = (
        [
            SyntheticRecord.model_validate_json(line)
            for line in files.part.read_text(encoding="utf-8").splitlines()
        ]
        if files.part.exists()
        else []
    )
    if not args.quiet:
        _err(
            f"[mixaug] resuming {job.out}: {len(done)} records kept from the "
            f"interrupted run ({restored.batch_no} batches done)"
        )
    return restored, done


def _augment_run(job: _AugmentJob, parts: _AugmentParts, args: argparse.Namespace) -> int:
    """Generate (resuming if a run was interrupted), guard, commit and report."""
    from mixaug.augmentation import GenerationAborted

    unfinished = job.files.part.exists() or job.files.journal.exists()
    restored, done_records = _augment_restore(job, args)
    out = _AugmentOutputs(job, unfinished, with_rejects=bool(parts.record_filter or parts.labeller))
    cfg = job.cfg
    if not args.quiet:
        _err(
            f"[mixaug] augmenting {job.spec.name} with {cfg.llm.model} ({cfg.llm.mode}, "
            f"{cfg.prompt.family} prompts); loading model ..."
        )
    try:
        try:
            result = _augment_generate(job, parts, out, restored, done_records, args.quiet)
        finally:
            if parts.executor is not None:
                parts.executor.close()
                ex = parts.executor
                if not args.quiet:
                    _err(
                        f"[mixaug] ray: {ex.workers} workers; {ex.used_early} batches ran ahead "
                        f"of the driver, {ex.dropped_early} early results dropped (plans changed)"
                    )
    except GenerationAborted as e:
        out.close()
        _err(f"mixaug: error: {e}")
        _err(
            f"mixaug: the model calls kept failing; the records made so far are in "
            f"{out.writer.part}. Fix the cause above (is the server at llm.base_url up?) and "
            "run the same command again to resume."
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        out.close()
        _err(
            f"mixaug: interrupted; the records made so far are in {out.writer.part}. "
            "Run the same command again to resume."
        )
        return 130
    try:
        guard = _augment_guard(job, result.records, args)
    except KeyboardInterrupt:
        out.close()
        _err("mixaug: interrupted during the guard; run the same command again to resume.")
        return 130
    out.commit()
    job.files.write_manifest({**(job.files.read_manifest() or {}), "complete": True})
    return _augment_report(job, parts, result, guard, args)


class _AugmentOutputs:
    """The records file and the rejects file of a run, appended to while it runs."""

    def __init__(self, job: _AugmentJob, unfinished: bool, *, with_rejects: bool) -> None:
        from mixaug.io import JsonlWriter

        self.writer = JsonlWriter(job.out, append=unfinished)
        self.rejects = JsonlWriter(job.files.rejects, append=unfinished) if with_rejects else None

    def on_reject(self, rejected: list[Any]) -> None:
        assert self.rejects is not None
        self.rejects.write([r.to_json_dict() for r in rejected])

    def close(self) -> None:
        self.writer.close()
        if self.rejects is not None:
            self.rejects.close()

    def commit(self) -> None:
        self.writer.commit()
        if self.rejects is not None:
            self.rejects.commit()


def _augment_generate(
    job: _AugmentJob,
    parts: _AugmentParts,
    out: _AugmentOutputs,
    restored: Any,
    done_records: list[Any],
    quiet: bool,
) -> Any:
    """:func:`~mixaug.augmentation.augment` with the job's settings, writing as it goes."""
    from mixaug.augmentation import augment

    cfg = job.cfg

    def on_batch(result: Any, new: list[Any]) -> None:
        out.writer.write([r.model_dump(mode="json") for r in new])
        if not quiet:
            _err(
                f"[mixaug] {len(result.records)}/{cfg.n} records, {result.attempts} tried, "
                f"{result.seconds:.1f}s"
            )

    return augment(
        job.examples, job.spec, parts.llm, n=cfg.n, k=cfg.k, seed=cfg.seed,
        selector=parts.selector, batch_size=cfg.llm.batch_size, max_attempts=cfg.max_attempts,
        top_logprobs=cfg.llm.top_logprobs, scorer=parts.scorer,
        concurrency=get_provider(cfg.llm.provider).concurrency(cfg.llm), on_batch=on_batch,
        checkpoint=job.files, restored=restored, done_records=done_records,
        record_filter=parts.record_filter, on_reject=out.on_reject,
        family=cfg.prompt.family, n_items=cfg.prompt.items_per_prompt, shares=cfg.prompt.shares,
        quotas=job.quotas, labeller=parts.labeller, executor=parts.executor,
    )  # fmt: skip


def _augment_guard(
    job: _AugmentJob, records: list[Any], args: argparse.Namespace
) -> dict[str, Any] | None:
    """``--guard``: the measured gain of the records on ``--val``."""
    if not (args.guard and records):
        return None
    from mixaug.recipe import guard_records

    if not args.quiet:
        _err("[mixaug] guard: training with and without the records on --val ...")
    report, weight = guard_records(
        job.examples,
        job.val_examples,
        records,
        labels=job.spec.label_names,
        seed=job.cfg.seed,
        fixed_weight=job.cfg.labels.synthetic_weight or 1.0,
    )
    return report.model_dump(mode="json") | {"synthetic_weight": weight}


def _augment_report(
    job: _AugmentJob,
    parts: _AugmentParts,
    result: Any,
    guard: dict[str, Any] | None,
    args: argparse.Namespace,
) -> int:
    """Write the summary, print it; exit 1 when the retry budget ran out."""
    from mixaug.io import write_json_atomic

    cfg = job.cfg
    summary = result.summary(
        task=job.spec.name,
        model=cfg.llm.model,
        seed=cfg.seed,
        k=parts.k,
        strategy=parts.selector.strategy,
        requested=cfg.n,
        output=str(job.out),
        family=cfg.prompt.family,
    )
    summary = summary.model_copy(
        update={
            "quotas": job.quotas,
            "labeller": None if parts.labeller is None else parts.labeller.name,
            "guard": guard,
        }
    )
    write_json_atomic(job.summary_file, summary.to_json_dict())
    if args.json:
        _out(json.dumps(summary.to_json_dict()))
    else:
        _print_summary(summary.to_json_dict(), job.summary_file)
    if not result.complete:
        _err(
            f"mixaug: warning: only {summary.kept} of {cfg.n} records after "
            f"{summary.attempts} attempts (retry budget); raise --max-attempts to try longer."
        )
        return EXIT_FAILED
    return 0


def _quotas(mode: str, n: int, examples: list[Any], labels: list[str]) -> dict[str, int] | None:
    """Per-class quotas summing to ``n``: like the real data's classes, or even."""
    if mode == "off":
        return None
    from collections import Counter

    counts = Counter(e.label for e in examples)
    weights = {c: (1 if mode == "uniform" else counts[c]) for c in labels}
    if mode != "uniform":
        weights = {c: w for c, w in weights.items() if w > 0}
    total = sum(weights.values())
    exact = {c: n * w / total for c, w in weights.items()}
    out = {c: int(v) for c, v in exact.items()}
    # Largest remainders get the records rounding left over (ties: label order).
    for c in sorted(exact, key=lambda c: (out[c] - exact[c], labels.index(c)))[
        : n - sum(out.values())
    ]:
        out[c] += 1
    return out


def _build_labeller(
    cfg: Any, spec: Any, examples: list[Any], val: list[Any], llm: Any, args: argparse.Namespace
) -> tuple[Any, list[Any]]:
    """The record labeller: chosen on --val's selection half with --guard, else the config's."""
    from mixaug.labelmix import fit_record_labeller
    from mixaug.recipe import RecipeConfig, choose_record_labeller, split_validation

    say = _logger(args)
    if args.guard and not RecipeConfig().searches(len(val)):
        say(
            f"{len(val)} validation examples: too few to choose the labeller on; "
            "the default labeller is used and all of --val guards"
        )
    if args.guard and RecipeConfig().searches(len(val)):
        selection, _ = split_validation(val, 0.5, cfg.seed)
        say(f"choosing the labeller on {len(selection)} validation examples ...")
        labeller, choices = choose_record_labeller(
            examples, selection, llm=llm, spec=spec, seed=cfg.seed, k=cfg.k
        )
        say(f"labeller {labeller.name} ({100 * choices[0].accuracy:.1f}% on validation texts)")
        return labeller, choices
    say(f"fitting the labeller {cfg.labels.labeller.describe()} on the real data ...")
    labeller = fit_record_labeller(
        examples, spec, llm, cfg.labels.labeller, validation=val, seed=cfg.seed, k=cfg.k
    )
    return labeller, []


def cmd_filter(args: argparse.Namespace) -> int:
    """``mixaug filter``: dedup, calibrate and criticise records; write kept and rejects."""
    import time

    from mixaug.config import load_config
    from mixaug.filtering import build_record_filter
    from mixaug.io import write_json_atomic, write_jsonl_atomic

    cfg = load_config(args.config)
    fcfg = _filter_config(args, cfg)
    src, out, rejects, summary_file = _filter_outputs(args)
    records, spec, train, eval_examples = _filter_inputs(args, cfg, src)
    say = _logger(args)
    started = time.perf_counter()
    record_filter = build_record_filter(
        fcfg, spec, train, llm_config=cfg.llm, eval_examples=eval_examples, seed=cfg.seed, log=say
    )
    kept: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    step = 64
    for i in range(0, len(records), step):
        outcome = record_filter.invoke(records[i : i + step])
        kept += [r.model_dump(mode="json") for r in outcome.kept]
        rejected += [r.to_json_dict() for r in outcome.rejected]
        say(f"{min(i + step, len(records))}/{len(records)} records filtered, {len(kept)} kept")
    write_jsonl_atomic(out, kept)
    write_jsonl_atomic(rejects, rejected)
    summary = {
        **record_filter.summary.model_dump(mode="json"),
        "input_file": str(src),
        "output": str(out),
        "rejects_file": str(rejects),
        "total_seconds": round(time.perf_counter() - started, 2),
    }
    write_json_atomic(summary_file, summary)
    if args.json:
        _out(json.dumps(summary))
        return 0
    _filter_report(record_filter.summary)
    _out(f"kept written to {out}; rejects (with reasons) to {rejects}")
    _out(f"summary written to {summary_file}")
    return 0


def _filter_config(args: argparse.Namespace, cfg: Any) -> Any:
    """The ``filter`` section of the config with the command's flags applied."""
    from mixaug.config import FilterConfig
    from mixaug.errors import ConfigError

    fcfg = (cfg.filter or FilterConfig()).model_copy(deep=True)
    if args.critic:
        fcfg.critic.enabled = True
    if args.calibrate:
        fcfg.calibration.enabled = True
    if args.no_near:
        fcfg.dedup.near = False
    if args.threshold is not None:
        if not 0.0 < args.threshold <= 1.0:
            msg = f"--threshold must be a cosine in (0, 1], got {args.threshold}."
            raise ConfigError(msg)
        fcfg.dedup.threshold = args.threshold
    return fcfg


def _filter_outputs(args: argparse.Namespace) -> tuple[Path, Path, Path, Path]:
    """(input, kept, rejects, summary): outputs checked before anything is read or written."""
    from mixaug.augmentation import summary_path
    from mixaug.errors import ConfigError
    from mixaug.paths import check_side_files, refuse_inputs

    src = Path(args.input)
    out, rejects = _writable(args.out), _writable(args.rejects, "--rejects")
    summary_file = summary_path(out)
    if out.resolve() == rejects.resolve():
        msg = "--out and --rejects must be two different files."
        raise ConfigError(msg)
    written = {"--out": out, "--rejects": rejects, "--out's summary": summary_file}
    refuse_inputs(
        written,
        {"IN": src, "--train": args.train, "--config": args.config}
        | {f"--leakage {p}": p for p in args.eval or []},
    )
    if rejects.resolve() == summary_file.resolve():
        msg = f"--rejects {str(rejects)!r} is where --out's summary goes; choose another path."
        raise ConfigError(msg)
    check_side_files([summary_file])
    for flag, target in written.items():
        if target.exists() and not args.overwrite:
            msg = f"{flag} {str(target)!r} already exists; pass --overwrite or choose another path."
            raise ConfigError(msg)
    return src, out, rejects, summary_file


def _filter_inputs(
    args: argparse.Namespace, cfg: Any, src: Path
) -> tuple[list[Any], Any, list[Any], list[Any]]:
    """(records, spec, train, leakage examples), the records' labels checked against the task."""
    from mixaug.data import check_labels, load_examples, load_records
    from mixaug.errors import ConfigError, DataError
    from mixaug.specs import BUILTIN_SPECS, get_spec, spec_from_dict

    records = load_records(src)
    task = args.task if args.task is not None else cfg.task
    if task is None:
        names = sorted({r.task for r in records})
        if len(names) != 1 or names[0] not in BUILTIN_SPECS:
            msg = f"Which task? The records name {names}; pass --task (a built-in or spec .yaml)."
            raise ConfigError(msg)
        task = names[0]
    spec = spec_from_dict(task) if isinstance(task, dict) else get_spec(task)
    train = load_examples(args.train)
    spec = check_labels(train, spec)
    eval_examples = [e for path in args.eval or [] for e in load_examples(path)]
    known = set(spec.label_names)
    for r in records:
        if set(r.soft_label) != known:
            msg = (
                f"{src}: record {r.id!r} has soft-label labels {sorted(r.soft_label)}, but task "
                f"{spec.name!r} has {sorted(known)}; pass the --task the records were made for."
            )
            raise DataError(msg)
    return records, spec, train, eval_examples


def _filter_report(s: Any) -> None:
    """The filter summary, a line per step."""
    _out(
        f"records         {s.input} in, {s.kept} kept ({s.downweighted} down-weighted), "
        f"{s.dropped} rejected"
    )
    _out(f"rules tripped   {s.reasons or 'none'}")
    _out(f"dropped by      {s.dropped_by or 'none'}")
    if s.judge is not None:
        j = s.judge
        _out(
            f"critic check    {j.examples} held-out: fluency AUROC {j.fluency_auroc}, "
            f"consistency AUROC {j.consistency_auroc}, relabel accuracy {j.relabel_accuracy}; "
            f"thresholds {s.thresholds}"
        )
        if s.disabled_rules:
            _out(f"switched off    {s.disabled_rules} (the judge failed its held-out check)")
    if s.critic_scored:
        _out(
            f"critic          {s.critic_scored} scored; mean fluency {s.mean_fluency}, "
            f"consistency {s.mean_consistency}, relabel agrees {s.relabel_agreement}"
        )
    for name, rep in (("train", s.calibration), ("eval", s.calibration_eval)):
        if rep is not None:
            _out(
                f"calibration     {name} ({rep.examples}): ECE {rep.ece_raw:.3f} -> "
                f"{rep.ece_calibrated:.3f}, accuracy {rep.accuracy_raw:.1%} -> "
                f"{rep.accuracy_calibrated:.1%} (T={rep.temperature})"
            )


def _training_args(args: argparse.Namespace, base: Any = None) -> Any:
    from pydantic import ValidationError

    from mixaug.errors import ConfigError, describe_validation_error
    from mixaug.training import TrainingArguments

    data = base.model_dump() if base is not None else {}
    keys = ("epochs", "batch_size", "learning_rate", "patience", "max_length", "seed")
    for key in (*keys, "synthetic_weight"):
        value = getattr(args, key, None)
        if value is not None:
            data[key] = value
    if getattr(args, "freeze_encoder", False):
        data["freeze_encoder"] = True
        data.pop("head_learning_rate", None)
    data["progress"] = not args.quiet
    try:
        return TrainingArguments.model_validate(data)
    except ValidationError as e:
        msg = f"Invalid training settings: {describe_validation_error(e)}."
        raise ConfigError(msg) from None


def cmd_recipe(args: argparse.Namespace) -> int:
    """``mixaug recipe``: choose how synthetic records are used, on validation data only."""
    import yaml

    from mixaug.augmentation import augment, build_llm
    from mixaug.config import load_config
    from mixaug.data import check_labels, load_examples
    from mixaug.io import write_json_atomic, write_text_atomic
    from mixaug.providers import build_scorer
    from mixaug.recipe import RecipeConfig, run_recipe
    from mixaug.selectors import make_selector

    cfg = load_config(args.config)
    task, spec = _recipe_task(args, cfg)
    examples = load_examples(args.data)
    spec = check_labels(examples, spec)
    val = load_examples(args.val)
    check_labels(val, spec)
    out, report_file = _recipe_outputs(args)
    say = _logger(args)
    llm = build_llm(cfg.llm, seed=cfg.seed)
    n = min(args.ratio * len(examples), args.max_synthetic)
    say(f"generating a pool of {n} records with targeted anchors ...")
    selector = make_selector("targeted", examples, k=min(cfg.k, len(examples)), seed=cfg.seed)
    pool = augment(
        examples, spec, llm, n=n, k=cfg.k, seed=cfg.seed, selector=selector,
        batch_size=cfg.llm.batch_size, top_logprobs=cfg.llm.top_logprobs,
        scorer=build_scorer(cfg.llm, llm),
    )  # fmt: skip
    result = run_recipe(
        examples, val, pool.records, llm=llm, spec=spec, seed=cfg.seed, log=say,
        config=RecipeConfig(search=args.search),
    )  # fmt: skip
    rep = result.report
    document: dict[str, Any] = {"task": spec.name if not isinstance(task, dict) else task}
    if rep.ratio is not None:  # none when the real data alone won: no n to suggest
        document["n"] = math.ceil(rep.ratio * len(examples))
    document |= {"anchors": {"strategy": "targeted"}, "labels": _recipe_labels(rep)}
    unsharpened = rep.labeller.split("^")[0]
    choice = next((c for c in rep.labeller_candidates if c["name"] == unsharpened), None)
    header = (
        f"# mixaug recipe for {args.data} (validation {args.val}, seed {cfg.seed}).\n"
        f"# labeller {rep.labeller}"
        + ("" if choice is None else f" ({100 * choice['accuracy']:.1f}% on validation texts)")
        + f"; guard: {rep.guard.verdict if rep.guard else 'not run'}\n"
    )
    write_json_atomic(report_file, rep.model_dump(mode="json"))
    write_text_atomic(out, header + yaml.safe_dump(document, sort_keys=False))
    summary = {
        "config": str(out),
        "report": str(report_file),
        "labeller": rep.labeller,
        "ratio": rep.ratio,
        "weight": rep.weight,
        "guard": None if rep.guard is None else rep.guard.verdict,
    }
    _out(json.dumps(summary))
    return 0


def _recipe_task(args: argparse.Namespace, cfg: Any) -> tuple[Any, Any]:
    """(task as given, its spec); the model's reference is checked too."""
    spec = _task(args, cfg)
    _check_model(cfg.llm)
    return (args.task if args.task is not None else cfg.task), spec


def _recipe_outputs(args: argparse.Namespace) -> tuple[Path, Path]:
    """(config file, report file), refused if they exist or are inputs; flags checked."""
    from mixaug.errors import ConfigError

    out = _writable(args.out)
    report_file = out.with_name(out.stem + ".report.json")
    for path in (out, report_file):
        if path.exists() and not args.overwrite:
            msg = f"{path} exists; pass --overwrite to replace it, or choose another --out."
            raise ConfigError(msg)
    inputs = {Path(args.data).resolve(), Path(args.val).resolve()}
    if args.config:
        inputs.add(Path(args.config).resolve())
    if out.resolve() in inputs or report_file.resolve() in inputs:
        msg = f"--out {out} would overwrite an input file; choose another path."
        raise ConfigError(msg)
    if args.ratio < 1 or args.max_synthetic < 1:
        msg = "--ratio and --max-synthetic must be positive."
        raise ConfigError(msg)
    return out, report_file


def _recipe_labels(rep: Any) -> dict[str, Any]:
    """The ``labels:`` section that reproduces the recipe's choice."""
    from mixaug.labelmix import candidate_configs

    labels: dict[str, Any] = {"quotas": "off" if rep.ratio is None else "real"}
    power = {"sharpen": rep.sharpen or 1.0}
    config = next(
        (
            c.model_copy(update=power)
            for c in candidate_configs(["classifier", "centroid"])
            if c.model_copy(update=power).describe() == rep.labeller
        ),
        None,
    )
    labels["labeller"] = None if config is None else config.model_dump(mode="json")
    labels["synthetic_weight"] = rep.weight if rep.weight is not None else 0.0
    if rep.prior == "validation":
        labels["quotas"] = "val"
    return labels


def cmd_train(args: argparse.Namespace) -> int:
    """``mixaug train``: train the classifier on real (+ synthetic) data; print metrics."""
    from mixaug.paths import LockSet

    with LockSet() as locks:
        return _train(args, locks)


def _train(args: argparse.Namespace, locks: Any) -> int:
    from mixaug.paths import check_out_folder, refuse_inputs_inside
    from mixaug.training import TextClassifier, TextDataset, Trainer

    out = check_out_folder(args.out, overwrite=args.overwrite)
    refuse_inputs_inside(
        out,
        {
            "--train": args.train,
            "--test": args.eval,
            "--val": args.val,
            "--synthetic": args.synthetic,
            "--encoder": args.encoder,
        },  # fmt: skip
    )
    _check_encoder(args.encoder)
    locks.take(out)
    train, evaluation, validation, synthetic, labels = _train_data(args)
    if args.classifier == "setfit":
        return _train_setfit(args, out, train, evaluation, synthetic, labels)
    targs = _training_args(args)
    train_ds = TextDataset.build(train, synthetic, labels=labels, hard_synthetic=args.hard_labels)
    val_ds = TextDataset.build(validation, labels=labels) if validation else None
    eval_ds = TextDataset.build(evaluation, labels=labels)
    from mixaug.training.trainer import set_seed

    set_seed(targs.seed)  # the head's initial weights follow --seed too
    model = TextClassifier.from_encoder(args.encoder, labels, max_length=targs.max_length)
    trainer = Trainer(model, targs, train_ds, val_ds)
    result = trainer.train()
    metrics = trainer.evaluate(eval_ds)
    _save_model(model, out)
    report = {
        **metrics,
        "train_examples": len(train_ds),
        "synthetic_examples": sum(train_ds.synthetic),
        "steps": result.steps,
        "best_step": result.best_step,
        "stopped_early": result.stopped_early,
        "train_seconds": result.seconds,
        "labels": labels,
        "model": str(out),
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _out(json.dumps(report))
    return 0


def _train_setfit(
    args: argparse.Namespace,
    out: Path,
    train: list[Any],
    evaluation: list[Any],
    synthetic: list[Any],
    labels: list[str],
) -> int:
    """``mixaug train --classifier setfit``: SetFit, the records in its head, saved.

    The encoder is tuned on the real examples' pairs; the head is fitted on them plus the
    records (soft labels; ``--hard-labels``: the final label).
    """
    import time

    from mixaug.baselines.setfit import score_setfit, train_setfit
    from mixaug.paths import mark_folder, replace_folder, staging_folder

    started = time.perf_counter()
    model = train_setfit(
        train,
        labels=labels,
        records=synthetic,
        mode="head-hard" if args.hard_labels else "head",
        synthetic_weight=args.synthetic_weight if args.synthetic_weight is not None else 1.0,
        seed=args.seed or 0,
        encoder=args.encoder,
        iterations=args.setfit_iterations,
    )
    metrics = score_setfit(model, evaluation, labels)
    staged = staging_folder(out)
    try:
        model.save_pretrained(str(staged))
        mark_folder(staged, "train")
    except BaseException:
        import shutil

        shutil.rmtree(staged, ignore_errors=True)
        raise
    replace_folder(staged, out)
    report = {
        **metrics,
        "classifier": "setfit",
        "train_examples": len(train) + len(synthetic),
        "synthetic_examples": len(synthetic),
        "train_seconds": round(time.perf_counter() - started, 2),
        "labels": labels,
        "model": str(out),
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _out(json.dumps(report))
    return 0


def _save_model(model: Any, out: Path) -> None:
    """Save ``model`` into ``out``: built beside it, then swapped in whole."""
    from mixaug.paths import mark_folder, replace_folder, staging_folder

    staged = staging_folder(out)
    try:
        model.save(staged)
        mark_folder(staged, "train")
    except BaseException:
        import shutil

        shutil.rmtree(staged, ignore_errors=True)
        raise
    replace_folder(staged, out)


def _train_data(
    args: argparse.Namespace,
) -> tuple[list[Any], list[Any], list[Any] | None, list[Any], list[str]]:
    """(train, test, validation, synthetic records, labels), every label checked."""
    from mixaug.data import check_labels, load_examples, load_records
    from mixaug.errors import ConfigError
    from mixaug.specs import get_spec

    train = load_examples(args.train)
    evaluation = load_examples(args.eval)
    validation = load_examples(args.val) if args.val else None
    synthetic = load_records(args.synthetic) if args.synthetic else []
    if args.task:
        spec = check_labels(train, get_spec(args.task))
        labels = list(spec.label_names)
    else:  # the real data's labels: records of another task are refused below
        labels = sorted({e.label for e in train})
    foreign = sorted(
        {lab for r in synthetic for lab, p in r.soft_label.items() if p > 0} - set(labels)
    )
    if foreign:
        msg = (
            f"--synthetic has labels {foreign} the training data lacks (labels: {labels}): "
            "records of another task? Pass --task to name the label set."
        )
        raise ConfigError(msg)
    for name, rows in (("--test", evaluation), ("--val", validation or [])):
        extra = sorted({e.label for e in rows} - set(labels))
        if extra:
            msg = f"{name} has labels {extra} the training data lacks (labels: {labels})."
            raise ConfigError(msg)
    return train, evaluation, validation, synthetic, labels


def cmd_bench(args: argparse.Namespace) -> int:
    """``mixaug bench``: the paper's protocol; writes results, a table and a plot."""
    from pydantic import ValidationError

    from mixaug.bench import BenchConfig, run_bench
    from mixaug.config import load_config
    from mixaug.errors import ConfigError, describe_validation_error

    cfg = load_config(args.config)
    try:
        levels = [float(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        msg = f"--levels must be comma-separated fractions like 0.001,0.01, got {args.levels!r}."
        raise ConfigError(msg) from None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    data: dict[str, Any] = {
        "data": args.data,
        "task": args.task,
        "levels": levels,
        "seeds": args.seeds,
        "methods": methods,
        "ratio": args.ratio,
        "max_synthetic": args.max_synthetic or None,
        "out": args.out,
        "llm": cfg.llm.model_dump(),
        "k": cfg.k,
        "training": _training_args(args).model_dump(),
        "encoder": args.encoder,
        "val_size": args.val_size,
        "protocol": args.protocol,
        "test_size": args.test_size,
    }
    try:
        bench_cfg = BenchConfig.model_validate(data)
    except ValidationError as e:
        msg = f"Invalid bench settings: {describe_validation_error(e)}."
        raise ConfigError(msg) from None
    from mixaug.paths import bench_folder

    out = bench_folder(
        args.out, {"--data": args.data, "--encoder": args.encoder, "--config": args.config}
    )
    _check_encoder(args.encoder)
    if any(_uses_llm(m) for m in methods):
        _check_model(cfg.llm)
    say = _logger(args)
    from mixaug.paths import LockSet

    with LockSet() as locks:
        locks.take(out)
        from mixaug.paths import mark_folder

        mark_folder(out, "bench")
        summary = run_bench(bench_cfg, log=say, progress=not args.quiet)
    _out(json.dumps({k: v for k, v in summary.items() if k != "config"}))
    return 0


def cmd_loop(args: argparse.Namespace) -> int:
    """``mixaug loop``: augmentation in rounds, aimed by a quick classifier; resumable."""
    from mixaug.paths import LockSet

    with LockSet() as locks:
        return _loop(args, locks)


def _loop(args: argparse.Namespace, locks: Any) -> int:
    from mixaug.config import FilterConfig
    from mixaug.filtering import build_record_filter
    from mixaug.loop import LoopContext, run_loop
    from mixaug.loop.runner import check_loop_out
    from mixaug.providers import build_llm, build_scorer
    from mixaug.runstate import file_hash

    cfg = _loop_config(args)
    spec, train, validation = _loop_data(args, cfg)
    from mixaug.paths import refuse_inputs_inside, writable_folder

    out = writable_folder(args.out)
    refuse_inputs_inside(
        out,
        {
            "--data": args.data,
            "--val": args.eval,
            "--config": args.config,
            "--held-out": getattr(args, "held_out", None),
        },
    )
    guard_val = _loop_held_out(args, spec, cfg.seed)
    settings = {
        "config": cfg.model_dump(mode="json"),
        "task": spec.model_dump(mode="json"),
        "data": file_hash(args.data),
        "eval": file_hash(args.eval),
    }
    check_loop_out(out, settings, overwrite=args.overwrite)  # before any model loads
    _check_encoder(args.encoder)
    locks.take(out)
    say = _logger(args)
    llm = build_llm(cfg.llm, seed=cfg.seed)
    scorer = build_scorer(cfg.llm, llm)
    fcfg = cfg.filter or FilterConfig.model_validate({"critic": {"enabled": True}})
    record_filter = build_record_filter(
        fcfg, spec, train, llm_config=cfg.llm, eval_examples=validation, llm=llm,
        scorer=scorer, seed=cfg.seed, log=say,
    )  # fmt: skip
    ctx = LoopContext(
        cfg=cfg, spec=spec, train=train, validation=validation, llm=llm, scorer=scorer,
        record_filter=record_filter, encoder=args.encoder,
        on_round=_round_printer(args, cfg.loop), log=say,
    )  # fmt: skip
    from mixaug.augmentation import GenerationAborted

    try:
        report = run_loop(ctx, out, settings=settings, overwrite=args.overwrite)
    except GenerationAborted as e:
        _err(f"mixaug: error: {e}")
        _err(
            f"mixaug: the loop stopped; every finished step is checkpointed in {out}. Fix the "
            "cause above and run the same command again to resume."
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err(f"mixaug: interrupted; run the same command again to resume from {out}.")
        return 130
    if args.guard:
        report["guard"] = _loop_guard(args, out, train, guard_val, spec, cfg.seed, say)
        from mixaug.io import write_json_atomic

        write_json_atomic(out / "report.json", report)
    _out(json.dumps({k: v for k, v in report.items() if k != "rounds"}))
    return 0


def _loop_config(args: argparse.Namespace) -> Any:
    """The config with the command's flags merged in (``loop`` settings included)."""
    from mixaug.config import apply_overrides, load_config

    cfg = apply_overrides(
        load_config(args.config),
        {key: getattr(args, key) for key in ("k", "seed", "prompt")},
        {key: getattr(args, key) for key in ("model", "mode", "batch_size")},
    )
    loop = cfg.loop.model_dump()
    for key in ("max_rounds", "budget_tokens", "budget_seconds", "per_round", "quota"):
        if getattr(args, key, None) is not None:
            loop[key] = getattr(args, key)
    return apply_overrides(cfg, {"loop": loop}, {})


def _loop_data(args: argparse.Namespace, cfg: Any) -> tuple[Any, list[Any], list[Any]]:
    """(spec, train, validation), labels checked; the model's reference checked too."""
    from mixaug.data import check_labels, load_examples
    from mixaug.errors import ConfigError

    spec = _task(args, cfg)
    _check_model(cfg.llm)
    train = load_examples(args.data)
    validation = load_examples(args.eval)
    spec = check_labels(train, spec)
    check_labels(validation, spec)
    if len({e.label for e in train}) < 2:
        msg = "The loop's classifier needs training examples of at least two labels."
        raise ConfigError(msg)
    return spec, train, validation


def _loop_held_out(args: argparse.Namespace, spec: Any, seed: int) -> list[Any]:
    """``--held-out`` for ``--guard`` (refused now if missing, the ``--val`` file, or too small)."""
    from mixaug.data import check_labels, load_examples
    from mixaug.errors import ConfigError

    if not args.guard:
        return []
    if not args.held_out:
        msg = (
            "--guard measures the gain on labelled data the loop never saw: pass "
            "--held-out FILE (not the --val file, on which the loop chose its rounds)."
        )
        raise ConfigError(msg)
    if Path(args.held_out).resolve() == Path(args.eval).resolve():
        msg = "--held-out must not be the --val file: the loop chose its rounds on it."
        raise ConfigError(msg)
    guard_val = load_examples(args.held_out)
    check_labels(guard_val, spec)
    from mixaug.recipe import split_validation

    split_validation(guard_val, 0.5, seed)  # too small to split: refused now
    return guard_val


def _round_printer(args: argparse.Namespace, lc: Any) -> Any:
    """The loop's progress line per round (nothing with ``--quiet``)."""

    def on_round(report: dict[str, Any], state: Any) -> None:
        if args.quiet:
            return
        kept = ", ".join(f"{k} {v}" for k, v in report["kept_per_class"].items())
        budget = f"/{lc.budget_tokens:,}" if lc.budget_tokens else ""
        base = state.get("baseline", {}).get("accuracy")
        _err(
            f"[mixaug] round {report['round']}/{lc.max_rounds}  {report['strategy']:<20} "
            f"kept +{report['kept_new']} ({kept})  tokens {report['tokens_total']:,}{budget}  "
            f"val acc {report['val_accuracy']:.1%} (best {report['best_accuracy']:.1%}, "
            f"real only {base:.1%})"
            + (f"  -> stop: {report['stop_reason']}" if report["stop_reason"] else "")
        )

    return on_round


def _loop_guard(
    args: argparse.Namespace,
    out: Path,
    train: list[Any],
    val: list[Any],
    spec: Any,
    seed: int,
    say: Any,
) -> dict[str, Any]:
    """The guard of ``loop --guard``: the kept records with and without, on ``--val``."""
    from mixaug.data import load_records
    from mixaug.recipe import guard_records

    records = load_records(out / "records.jsonl") if (out / "records.jsonl").is_file() else []
    if not records:
        return {"verdict": "no records were kept; nothing to guard", "helps": False}
    say(f"guard: training with and without the {len(records)} kept records on --val ...")
    rep, weight = guard_records(
        train, val, records, labels=spec.label_names, seed=seed, encoder=args.encoder
    )
    say(rep.verdict)
    return rep.model_dump(mode="json") | {"synthetic_weight": weight}


def _print_summary(s: dict[str, Any], summary_file: Path) -> None:
    fails = ", ".join(f"{k} {v}" for k, v in s["failures"].items()) or "none"
    agree = "n/a" if s["label_agreement"] is None else f"{s['label_agreement']:.0%}"
    _out(
        f"task            {s['task']}  (model {s['model']}, prompt "
        f"{s.get('prompt_family', 'mix')}, k={s['k']}, seed {s['seed']})"
    )
    _out(
        f"records         {s['kept']} of {s['requested']} requested "
        f"({s['attempts']} tried, {s['surplus']} surplus)"
    )
    _out(f"parse rate      {s['parse_rate']:.0%}   dropped: {fails}")
    sim = s["mean_anchor_similarity"]
    sim_text = "" if sim is None else f", mean pairwise cosine {sim:.3f}"
    _out(f"anchors         {s['anchor_strategy']}{sim_text}")
    _out(f"labels          {s['label_counts']}")
    filt = s.get("filter")
    if filt:
        _out(
            f"filter          {s['rejected']} rejected {filt['dropped_by'] or ''}, "
            f"{filt['downweighted']} down-weighted; rules tripped {filt['reasons'] or 'none'}"
        )
    if s.get("quotas"):
        full = s.get("quota_surplus") or {}
        _out(f"quotas          {s['quotas']}   surplus of full classes: {full or 'none'}")
    if s.get("labeller"):
        _out(f"final labels    {s['labeller']}  ({s.get('relabelled', 0)} differ from the LM's)")
    _out(f"argmax = generated label  {agree}   soft labels: {s['soft_label_sources']}")
    _out(f"tokens          {s['prompt_tokens']} prompt, {s['completion_tokens']} completion")
    _out(f"time            {s['seconds']:.1f}s ({s['examples_per_second']:.2f} records/s)")
    guard = s.get("guard")
    if guard:
        _out(f"guard           {guard['verdict']}")
    _out(f"records written to {s['output']}")
    _out(f"summary written to {summary_file}")


def cmd_models(args: argparse.Namespace) -> int:
    """``mixaug models``: the embedded models and where their weights are."""
    from mixaug.models.registry import (
        DEFAULT_MODEL,
        converted_dir,
        gguf_path,
        is_installed,
        list_embedded_models,
    )

    rows = []
    for m in list_embedded_models():
        row: dict[str, Any] = {
            "name": m.name,
            "default": m.name == DEFAULT_MODEL,
            "package": m.package,
            "installed": is_installed(m),
            "description": m.description,
            "chat_template": m.chat_template,
        }
        if row["installed"]:
            gguf = gguf_path(m.name, assemble=False)
            row["gguf"] = str(gguf)
            row["gguf_ready"] = gguf.is_file()
            if gguf.is_file():
                conv = converted_dir(gguf)
                row["converted"] = str(conv) if (conv / "config.json").is_file() else None
        else:
            row["install"] = m.install
        rows.append(row)
    if args.json:
        _out(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        mark = " (default)" if r["default"] else ""
        _out(f"{r['name']}{mark}: {r['description']}")
        _out(f"  package   {r['package']} ({'installed' if r['installed'] else 'not installed'})")
        if r["installed"]:
            ready = "" if r["gguf_ready"] else " (assembled on first use)"
            _out(f"  gguf      {r['gguf']}{ready}")
            _out(f"  converted {r.get('converted') or '(on first use)'}")
        else:
            _out(f"  install   {r['install']}")
    return 0


def cmd_specs(args: argparse.Namespace) -> int:
    """``mixaug specs``: the built-in task specs."""
    from mixaug.specs import BUILTIN_SPECS

    for name, s in BUILTIN_SPECS.items():
        words = (
            "identity" if s.is_identity else ", ".join(f"{k}->{v}" for k, v in s.mapping.items())
        )
        _out(f"{name:8} {s.text_type} / {s.label_type} / {words}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mixaug``."""
    parser = argparse.ArgumentParser(
        prog="mixaug", description="Augment small labelled text data sets with language models."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("augment", help="generate soft-labelled synthetic examples (GPT3Mix)")
    a.add_argument("--data", required=True, help="labelled data: .jsonl or .csv with text, label")
    a.add_argument(
        "--task", help="built-in task (sst2, cr, mpqa, subj, cola, trec6, generic) or spec .yaml"
    )
    a.add_argument("--n", type=int, help="number of synthetic records to make")
    a.add_argument("--out", required=True, help="output JSONL (a .summary.json goes beside it)")
    a.add_argument("--k", type=int, help="anchors per prompt (default 2)")
    a.add_argument("--seed", type=int, help="random seed (default 0)")
    a.add_argument(
        "--anchors",
        help="anchor strategy: random (default), balanced, same-class, mixed-class, "
        "diverse or similar",
    )
    a.add_argument(
        "--store",
        help="persistent embedding cache for embedded anchors: a folder, or a Chroma server "
        "(http://HOST:PORT) that many workers share",
    )
    a.add_argument(
        "--prompt",
        help=f"prompt family: {', '.join(FAMILIES)} (default mix, GPT3Mix)",
    )
    a.add_argument("--config", help="YAML config file")
    a.add_argument(
        "--leakage",
        "--eval",
        dest="eval",
        action="append",
        help="evaluation/test data the filter checks for leakage (repeatable; needs "
        "'filter:'; --eval: the old spelling)",
    )
    a.add_argument(
        "--val",
        help="labelled validation data (.jsonl/.csv): early-stops the teacher; with --guard "
        "it also chooses the labeller and measures the gain",
    )
    a.add_argument(
        "--guard",
        action="store_true",
        help="train with and without the records on --val and report the measured gain",
    )
    a.add_argument(
        "--quotas",
        choices=["real", "val", "uniform", "off"],
        help="per-class quotas of the final label: like the real data's classes (the "
        "default), like --val's, even, or none",
    )
    a.add_argument(
        "--labels",
        choices=["recipe", "lm"],
        help="final labels: the recipe's (calibrated LM x real-data teacher, class quotas; "
        "the default) or the LM's own soft labels with no quotas (the paper's GPT3Mix)",
    )
    a.add_argument("--model", help="embedded model name, .gguf file or HF folder")
    a.add_argument("--mode", choices=["completion", "chat"], help="prompt form")
    a.add_argument(
        "--engine",
        choices=["auto", "llamacpp", "transformers"],
        help="local model engine (default auto: llama.cpp where installed)",
    )
    a.add_argument("--batch-size", type=int, dest="batch_size", help="prompts per batch")
    a.add_argument("--max-attempts", type=int, dest="max_attempts", help="retry budget")
    a.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="where batches run: here (the default) or on a Ray cluster; same records",
    )
    a.add_argument(
        "--workers", type=int, default=2, help="--executor ray: model replicas (Ray actors)"
    )
    a.add_argument(
        "--ray-address",
        dest="ray_address",
        help="--executor ray: the cluster (HOST:PORT of `ray start --head`); default: a local one",
    )
    a.add_argument(
        "--dry-run", action="store_true", help="write anchors and prompts; call no model"
    )
    a.add_argument(
        "--overwrite", action="store_true", help="replace an output made with other settings"
    )
    a.add_argument("--json", action="store_true", help="print the summary as JSON")
    a.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    a.set_defaults(func=cmd_augment)

    f = sub.add_parser("filter", help="dedup, calibrate and criticise synthetic records")
    f.add_argument("input", help="synthetic records (.jsonl from mixaug augment)")
    f.add_argument("--train", required=True, help="the real training data (.jsonl or .csv)")
    f.add_argument(
        "--leakage",
        "--eval",
        dest="eval",
        action="append",
        help="evaluation/test data checked for leakage (repeatable; --eval: the old spelling)",
    )
    f.add_argument("--out", required=True, help="kept records (.jsonl)")
    f.add_argument("--rejects", required=True, help="removed records with their reasons (.jsonl)")
    f.add_argument("--config", help="YAML config (its 'filter' section and 'llm')")
    f.add_argument("--task", help="task spec (default: the records' task)")
    f.add_argument("--critic", action="store_true", help="run the LLM critic (config's llm)")
    f.add_argument("--calibrate", action="store_true", help="calibrate soft labels")
    f.add_argument("--no-near", action="store_true", dest="no_near", help="exact duplicates only")
    f.add_argument("--threshold", type=float, help="near-duplicate cosine (default 0.95)")
    f.add_argument("--overwrite", action="store_true", help="replace existing --out/--rejects")
    f.add_argument("--json", action="store_true", help="print the summary as JSON")
    f.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    f.set_defaults(func=cmd_filter)

    t = sub.add_parser("train", help="train the classifier on real (+ synthetic) data")
    t.add_argument("--train", required=True, help="real labelled data (.jsonl or .csv)")
    t.add_argument("--synthetic", help="synthetic records from mixaug augment (.jsonl)")
    t.add_argument(
        "--test",
        "--eval",
        dest="eval",
        required=True,
        help="labelled data the metrics are measured on (--eval: the old spelling)",
    )
    t.add_argument("--val", help="labelled validation data for early stopping")
    t.add_argument("--out", required=True, help="folder for the trained model")
    t.add_argument("--task", help="task spec (fixes the label order)")
    t.add_argument("--encoder", help="local HF encoder folder (default: all-MiniLM-L6-v2)")
    t.add_argument(
        "--hard-labels",
        action="store_true",
        dest="hard_labels",
        help="train on the generated label instead of the soft label",
    )
    t.add_argument(
        "--classifier",
        choices=["mixaug", "setfit"],
        default="mixaug",
        help="mixaug: the encoder + 2 FC trained with soft-label cross-entropy (default); "
        "setfit: SetFit's contrastive tuning on the real examples, the records in its head "
        '(needs pip install "mixaug[setfit]"; --val and the epoch flags do not apply)',
    )
    t.add_argument(
        "--setfit-iterations",
        type=int,
        default=20,
        dest="setfit_iterations",
        help="SetFit: contrastive pairs per real example (default 20)",
    )
    _add_training_flags(t)
    t.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    t.set_defaults(func=cmd_train)

    b = sub.add_parser("bench", help="the paper's protocol: methods x levels x seeds")
    b.add_argument("--data", required=True, help="folder with train.jsonl and dev/test.jsonl")
    b.add_argument("--task", required=True, help="task spec (sst2, trec6, cola, ...)")
    b.add_argument("--levels", default="0.001,0.003,0.01", help="sub-sample fractions")
    b.add_argument("--seeds", type=int, default=3, help="data seeds per level")
    b.add_argument(
        "--methods",
        default="noaug,eda,bt,mix-hard,mix-soft",
        help="comma-separated: noaug, eda, bt, mix-soft/mix-hard (the recipe), "
        "mix-plain-soft/-hard (GPT3Mix as published), abl-* (the recipe without one step), "
        "mix-sungen (the recipe with SunGen record weights), "
        "noaug-prior (NoAug, logits adjusted to the validation class prior), "
        "setfit (on the sub-sample), setfit-8/setfit-16 (SetFit on 8 or 16 per class), "
        "setfit-mix/setfit-8-mix/setfit-16-mix (the same plus the recipe's records), "
        "and <family>-hard/-soft for the prompt families "
        + ", ".join(f.method_prefix for f in FAMILIES.values() if f.name != "mix"),
    )
    b.add_argument("--ratio", type=int, default=5, help="synthetic examples per real one")
    b.add_argument(
        "--max-synthetic",
        type=int,
        default=128,
        dest="max_synthetic",
        help="cap on the synthetic examples generated per sub-sample (0: no cap)",
    )
    b.add_argument("--out", required=True, help="results folder")
    b.add_argument("--config", help="YAML config (its llm: the mix generator)")
    b.add_argument("--encoder", help="local HF encoder folder (default: all-MiniLM-L6-v2)")
    b.add_argument(
        "--val-size",
        type=int,
        default=500,
        dest="val_size",
        help="paper protocol: validation examples every method shares (default 500)",
    )
    b.add_argument(
        "--protocol",
        choices=["paper", "few-shot"],
        default="paper",
        help="paper: one validation set of --val-size for all; few-shot: per level and seed "
        "a validation set as large as the sub-sample, disjoint from it (what a few-shot "
        "user has)",
    )
    b.add_argument("--test-size", type=int, dest="test_size", help="cap on test examples")
    _add_training_flags(b)
    b.set_defaults(func=cmd_bench)

    r = sub.add_parser(
        "recipe",
        help="choose labeller, ratio and weight on validation data; write the config",
    )
    r.add_argument("--data", required=True, help="the real labelled training data")
    r.add_argument("--val", required=True, help="labelled validation data (never test data)")
    r.add_argument("--task", help="task spec (sst2, trec6, ... or a spec .yaml)")
    r.add_argument("--out", required=True, help="the config to write (.yaml)")
    r.add_argument("--config", help="YAML config (its llm: the generator)")
    r.add_argument("--ratio", type=int, default=5, help="pool size per real example")
    r.add_argument("--max-synthetic", type=int, default=256, dest="max_synthetic")
    r.add_argument(
        "--search",
        choices=["auto", "validation", "fixed"],
        default="auto",
        help="choose the settings on half of --val (validation), keep the defaults (fixed), "
        "or search only when --val has 200 examples or more (auto, the default)",
    )
    r.add_argument("--overwrite", action="store_true")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_recipe)

    lp = sub.add_parser(
        "loop", help="agentic augmentation in rounds, aimed by a quick classifier (resumable)"
    )
    lp.add_argument("--data", required=True, help="labelled training data (.jsonl or .csv)")
    lp.add_argument(
        "--val",
        "--eval",
        dest="eval",
        required=True,
        help="labelled validation data the loop aims and stops on (--eval: the old spelling)",
    )
    lp.add_argument("--task", help="task spec (sst2, trec6, ... or a spec .yaml)")
    lp.add_argument("--out", required=True, help="folder; rerun with the same folder to resume")
    lp.add_argument("--max-rounds", type=int, dest="max_rounds")
    lp.add_argument("--budget-tokens", type=int, dest="budget_tokens")
    lp.add_argument("--budget-seconds", type=float, dest="budget_seconds")
    lp.add_argument("--per-round", type=int, dest="per_round", help="records per round")
    lp.add_argument("--quota", type=int, help="stop once every class has this many records")
    lp.add_argument("--config", help="YAML config (llm, filter, prompt, loop)")
    lp.add_argument("--prompt", help=f"prompt family: {', '.join(FAMILIES)} (default mix)")
    lp.add_argument("--model")
    lp.add_argument("--mode", choices=["completion", "chat"])
    lp.add_argument("--batch-size", type=int, dest="batch_size")
    lp.add_argument("--k", type=int)
    lp.add_argument("--seed", type=int)
    lp.add_argument("--encoder", help="local HF encoder folder of the quick classifier")
    lp.add_argument(
        "--guard",
        action="store_true",
        help="at the end, train with and without the kept records on --val and report the gain",
    )
    lp.add_argument(
        "--held-out", dest="held_out", help="labelled data held out from --val, for --guard"
    )
    lp.add_argument("--overwrite", action="store_true", help="start again in --out")
    lp.add_argument("--quiet", action="store_true")
    lp.set_defaults(func=cmd_loop)

    m = sub.add_parser("models", help="list the embedded models and where their weights are")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    s = sub.add_parser("specs", help="list the built-in task specs")
    s.set_defaults(func=cmd_specs)
    return parser


def _add_training_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, help="training epochs (default 10)")
    p.add_argument("--batch-size", type=int, dest="batch_size", help="default 16")
    p.add_argument("--learning-rate", type=float, dest="learning_rate", help="default 3e-5")
    p.add_argument("--patience", type=int, help="early-stopping patience (default 3)")
    p.add_argument("--max-length", type=int, dest="max_length", help="tokens per text (64)")
    p.add_argument("--seed", type=int, help="training seed (default 0)")
    p.add_argument(
        "--synthetic-weight",
        type=float,
        dest="synthetic_weight",
        help="loss weight of synthetic records, real ones weigh 1 (default 1)",
    )
    p.add_argument(
        "--freeze-encoder",
        action="store_true",
        dest="freeze_encoder",
        help="train only the two fully connected layers (fast)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _positive(args: argparse.Namespace) -> None:
    from mixaug.errors import ConfigError

    keys = ("n", "k", "batch_size", "max_attempts", "epochs", "seeds", "ratio", "patience")
    for key in (*keys, "max_rounds", "budget_tokens", "per_round", "quota"):
        value = getattr(args, key, None)
        if value is not None and value < 1:
            flag = "--" + key.replace("_", "-")
            msg = f"{flag} must be a positive integer, got {value}."
            raise ConfigError(msg)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 for anything the user can fix)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "quiet", False):
        # Before transformers or huggingface_hub is imported: no loading bars either.
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        _positive(args)
        return int(args.func(args))
    except MixaugError as e:
        _err(f"mixaug: error: {e}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err(
            "mixaug: interrupted; finished outputs are untouched and a resumable run "
            "goes on when the same command runs again."
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
