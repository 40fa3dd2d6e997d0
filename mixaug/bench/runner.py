"""The benchmark harness: the paper's protocol (Table 1) on our stack.

For each sub-sample level and data seed, one class-balanced sub-sample is drawn
and every method trains a classifier on it (plus its synthetic data) and is
tested on the same test set:

- ``noaug``: the sub-sample alone;
- ``eda``: EDA variants (``ratio`` per example);
- ``bt``: back-translations through Apertium (up to ``ratio`` per example);
- ``mix-hard`` / ``mix-soft``: GPT3Mix records (``ratio`` per example) with the
  generated label one-hot, or with the soft label;
- ``<family>-hard``/``-soft`` (``para-*``, ``instruct-*``, ``fewshot-*``,
  ``boundary-*`` and any family registered later): the other prompt families
  (:mod:`mixaug.chains.families`), hard (the label the prompt asked for or the model
  wrote) or soft.

Synthetic data is cached under ``OUT/cache`` per (data, level, seed, family,
settings hash), so reruns reuse it (``mix-hard`` and ``mix-soft`` share one
generation). Results are appended to ``OUT/results.jsonl`` as they finish; a rerun
skips the ones there.

Example:
    >>> cfg = BenchConfig(data="../shared/datasets/sst2", task="sst2", levels=[0.001],
    ...                   seeds=1, methods=["noaug"], out="runs/bench")  # doctest: +SKIP
    >>> run_bench(cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mixaug.baselines.setfit import SetFitMode
from mixaug.bench.splits import Splits, balanced_subsample, load_splits, matched_sample
from mixaug.chains.families import FAMILIES, get_family
from mixaug.config import LLMConfig
from mixaug.errors import ConfigError
from mixaug.io import write_json_atomic, write_jsonl_atomic
from mixaug.providers import get_provider, llm_settings
from mixaug.records import Example, SyntheticRecord
from mixaug.specs import TaskSpec
from mixaug.training.args import TrainingArguments

Method = str
"""A bench method's name; :func:`all_methods` lists them."""
METHODS: tuple[Method, ...] = ("noaug", "eda", "bt", "mix-hard", "mix-soft")
"""The paper's Table 1 methods (the default). ``mix-soft``/``mix-hard`` run the recipe
(:mod:`mixaug.recipe`); ``mix-plain-*`` are GPT3Mix as the paper ran it."""

ABLATIONS: dict[str, dict[str, Any]] = {
    "abl-rawlabel": {"labeller": {"calibration": "none", "teacher": "none"}},
    "abl-nocal": {"calibrations": ["none"]},
    "abl-noteacher": {"teachers": []},
    "abl-noquota": {"quotas": False},
    "abl-nosharpen": {"sharpen": [1.0]},
    "abl-noprior": {"prior_match": False},
    "abl-nofallback": {"fallback": False},
    "abl-fixed": {"ratios": [5.0], "weights": [1.0], "priors": ["real"], "fallback": False},
}
"""The recipe without one step, as :class:`~mixaug.recipe.RecipeConfig` changes:

- ``abl-rawlabel``: the LM's own soft label (no calibration, no teacher);
- ``abl-nocal``: no calibration of the LM part;
- ``abl-noteacher``: no teacher from the real data;
- ``abl-noquota``: the first records, whatever their class;
- ``abl-nosharpen``: the soft labels as the labeller makes them (no power chosen);
- ``abl-noprior``: soft labels not matched to the records' class shares;
- ``abl-nofallback``: synthetic records are always used;
- ``abl-fixed``: no training choices (ratio 5, weight 1, real class counts, always used).
"""
VARIANTS: dict[str, dict[str, Any]] = {"mix-sungen": {"reweight": "sungen"}}
"""The recipe with one step added, as :class:`~mixaug.recipe.RecipeConfig` changes:

- ``mix-sungen``: the chosen records reweighted by SunGen
  (:func:`mixaug.training.reweight.sungen_reweight`).
"""
SETFIT_SHOTS: dict[str, int] = {"setfit-8": 8, "setfit-16": 16}
"""SetFit on a fixed number of real examples per class (its paper's setting), whatever the
level: the peer a user with that many labels would pick instead of augmenting."""
SETFIT_MIX: dict[str, int | None] = {"setfit-mix": None, "setfit-8-mix": 8, "setfit-16-mix": 16}
"""SetFit on the real examples plus the default recipe's records (on the level's
sub-sample, or on 8/16 real examples per class as ``setfit-8``/``setfit-16``)."""
SETFIT_MIX_MODE: SetFitMode = "head"
"""How ``setfit-*-mix`` gives SetFit the records (:mod:`mixaug.baselines.setfit`): the
encoder tuned on the real pairs (the cost of SetFit alone, the same tuned encoder as the
``setfit`` row), the head refitted on real + soft-labelled records. Every mix row also
holds the ``head-hard`` variant under ``setfit_modes`` (docs/effect.md)."""
SETFIT_MIX_VARIANTS: tuple[SetFitMode, ...] = ("head", "head-hard")
RECIPE_METHODS = frozenset({"mix-soft", "mix-hard", *ABLATIONS, *VARIANTS})
"""Methods that run :func:`mixaug.recipe.run_recipe` on targeted GPT3Mix records."""


def recipe_config(method: str) -> Any:
    """The :class:`~mixaug.recipe.RecipeConfig` a recipe method runs (see :data:`ABLATIONS`)."""
    from mixaug.recipe import RecipeConfig

    # The bench trains the recipe's records even when the guard would veto them, so both
    # are measured: a vetoed run is the NoAug run by construction, and
    # benchmarks/effect.py applies the veto from the row's guard (abl-noveto: as trained).
    # The SetFit rows use the records the default recipe ships (veto applied).
    if method in SETFIT_MIX:
        return RecipeConfig()
    changes = {"mix-soft": {}, "mix-hard": {"hard": True}, **ABLATIONS, **VARIANTS}[method]
    return RecipeConfig.model_validate({"guard": method == "mix-soft", "veto": False, **changes})


def all_methods() -> tuple[Method, ...]:
    """Every method: the baselines, the recipe and its ablations, SetFit, and more.

    ``<family>-hard``/``-soft`` are listed for every registered prompt family.
    """
    families = [
        f"{f.method_prefix}-{form}"
        for f in FAMILIES.values()
        if f.name != "mix"
        for form in ("hard", "soft")
    ]
    return (
        *METHODS[:1],
        "noaug-prior",
        *METHODS[1:],
        *families,
        "mix-plain-hard",
        "mix-plain-soft",
        *ABLATIONS,
        *VARIANTS,
        "setfit",
        *SETFIT_SHOTS,
        *SETFIT_MIX,
    )


ALL_METHODS: tuple[Method, ...] = all_methods()
"""The built-in methods (:func:`all_methods` also lists families registered later)."""


def method_family(method: str) -> str:
    """What makes ``method``'s synthetic data: a prompt family, ``eda`` or ``bt``."""
    if method in ("eda", "bt"):
        return method
    if method in RECIPE_METHODS or method in SETFIT_MIX or method.startswith("mix-"):
        return "mix"
    prefix = method.rsplit("-", 1)[0]
    for f in FAMILIES.values():
        if f.method_prefix == prefix:
            return f.name
    msg = f"method {method!r} makes no synthetic data"
    raise ConfigError(msg)


class BenchConfig(BaseModel):
    """What ``mixaug bench`` runs."""

    model_config = ConfigDict(extra="forbid")

    data: str
    """Folder of ``train.jsonl`` and ``dev.jsonl``/``test.jsonl``."""
    task: str
    levels: list[float] = Field(default_factory=lambda: [0.001, 0.003, 0.01], min_length=1)
    seeds: int = Field(default=3, ge=1)
    methods: list[Method] = Field(default_factory=lambda: list(METHODS), min_length=1)
    ratio: int = Field(default=5, ge=1, le=100)
    """Synthetic examples per real one."""
    max_synthetic: int | None = Field(default=128, ge=1)
    """Cap on the synthetic examples generated per sub-sample (a generation budget)."""
    out: str
    llm: LLMConfig = Field(default_factory=LLMConfig)
    """The generator of ``mix-*``."""
    k: int = Field(default=2, ge=1)
    training: TrainingArguments = Field(default_factory=TrainingArguments)
    encoder: str | None = None
    """Local HF encoder folder (default: the packaged all-MiniLM-L6-v2)."""
    val_size: int = Field(default=500, ge=1)
    """``paper`` protocol: validation examples (a fixed subset of dev, or carved from train)."""
    protocol: Literal["paper", "few-shot"] = "paper"
    """``paper``: every method early-stops (and the recipe chooses) on the same
    ``val_size`` validation examples. ``few-shot``: each (level, seed) gets its own
    validation set, drawn from the pool with the sub-sample's class counts and none of
    its texts (LM-BFF: as many validation examples as training ones), and every method
    sees only that one."""
    test_size: int | None = Field(default=None, ge=1)
    """Cap on test examples (a fixed random subset; ``None``: all)."""

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        bad = [x for x in v if not 0.0 < x <= 1.0]
        if bad:
            msg = f"levels must be fractions in (0, 1], got {bad}"
            raise ValueError(msg)
        return sorted(v)


def _hash(data: Any) -> str:
    raw = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:12]


class Bench:
    """Runs a :class:`BenchConfig`; see the module docstring."""

    def __init__(
        self, cfg: BenchConfig, log: Callable[[str], None] | None = None, *, progress: bool = True
    ) -> None:
        from mixaug.specs import get_spec

        self.cfg = cfg
        self.log = log or (lambda _: None)
        self.out = Path(cfg.out)
        self.cache = self.out / "cache"
        self.splits: Splits = load_splits(cfg.data, val_size=cfg.val_size)
        from mixaug.data import check_labels

        spec: TaskSpec = get_spec(cfg.task)
        self.spec = check_labels(self.splits.pool, spec)
        self.labels = list(self.spec.label_names)
        if cfg.test_size is not None and cfg.test_size < len(self.splits.test):
            import random

            self.splits.test = random.Random(99).sample(self.splits.test, cfg.test_size)
        self._llm: Any = None
        self.progress = progress
        from mixaug.training import FeatureCache

        self.features = FeatureCache(max_entries=64, per_text=True)
        """Frozen-encoder features of the validation and test sets, computed once."""

    # -- synthetic data -----------------------------------------------------------
    def subsample(self, level: float, seed: int) -> list[Example]:
        """The class-balanced sub-sample every method of ``(level, seed)`` trains on."""
        return balanced_subsample(self.splits.pool, level, seed=seed)

    def validation(self, level: float, seed: int, sub: list[Example]) -> list[Example]:
        """What every method of ``(level, seed)`` may validate on (see ``protocol``)."""
        if self.cfg.protocol == "paper":
            return self.splits.validation
        return matched_sample(self.splits.pool, sub, seed=seed * 100_003 + round(level * 1e6))

    def synthetic(
        self, method: Method, level: float, seed: int
    ) -> tuple[list[SyntheticRecord] | list[Example], dict[str, Any]]:
        """``method``'s synthetic data for ``(level, seed)`` (from the cache, else made).

        Returns the items and the generation stats (``seconds``, ``requested``, and for
        the LLM families ``parse_rate``, ``attempts``, token counts).
        """
        anchors = "targeted" if method in RECIPE_METHODS else "random"
        items, stats, _ = self._synthetic(
            method, self.subsample(level, seed), level, seed, anchors=anchors
        )
        return items, stats

    def _synthetic(
        self,
        method: Method,
        sub: list[Example],
        level: float,
        seed: int,
        *,
        anchors: str = "random",
    ) -> tuple[list[SyntheticRecord] | list[Example], dict[str, Any], bool]:
        """(synthetic items, generation stats, came from the cache).

        The stats hold ``seconds`` and ``requested``, and for the LLM families the
        generation's ``attempts``, ``parse_rate``, ``failures``, ``complete`` and token
        counts (caches written before these existed hold ``seconds`` only).
        """
        family = method_family(method)
        path = self._cache_path(family, sub, level, seed, anchors)
        if path.is_file():
            rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
            meta = rows.pop(0)
            return self._items(family, rows), meta, True
        self.cache.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        texts, labels = [e.text for e in sub], [e.label for e in sub]
        stats: dict[str, Any] = {"requested": self._wanted(sub)}
        if family == "eda":
            from mixaug.baselines.eda import eda_augment

            rows = [
                {"text": t, "label": lab}
                for t, lab in eda_augment(texts, labels, ratio=self.cfg.ratio, seed=seed)
            ]
        elif family == "bt":
            from mixaug.baselines.backtranslation import backtranslation_augment

            rows = [
                {"text": t, "label": lab}
                for t, lab in backtranslation_augment(texts, labels, ratio=self.cfg.ratio)
            ]
        else:
            rows, gen = self._generate(sub, seed, level, family, anchors=anchors)
            stats |= gen
        key = path.stem.rsplit("-", 1)[-1]  # the settings' hash, as in the file name
        meta = {"seconds": round(time.perf_counter() - t0, 2), "key": key, **stats}
        write_jsonl_atomic(path, [meta, *rows])
        return self._items(family, rows), meta, False

    def _cache_path(
        self, family: str, sub: list[Example], level: float, seed: int, anchors: str
    ) -> Path:
        """Where the synthetic data of ``(family, sub-sample, settings)`` is cached."""
        key = {
            "family": family,
            "data": self.splits.name,
            "sub": [(e.text, e.label) for e in sub],
            "ratio": self.cfg.ratio,
        }
        if family in FAMILIES:
            key |= {"llm": llm_settings(self.cfg.llm), "k": self.cfg.k}
        if family in FAMILIES and family != "mix":
            key |= {"prompt": family}  # mix keys stay as they were (caches reused)
        if anchors != "random":
            key |= {"anchors": anchors}
        if self._wanted(sub) < self.cfg.ratio * len(sub):
            key |= {"max": self.cfg.max_synthetic}  # only a cap that binds changes the key
        tag = family if anchors == "random" else f"{family}-{anchors}"
        name = f"{self.splits.name}-{level:g}-s{seed}-{tag}-{_hash(key)}.jsonl"
        return self.cache / name

    def _wanted(self, sub: list[Example]) -> int:
        """Synthetic examples to make for ``sub``: ``ratio`` per real one, capped."""
        n = self.cfg.ratio * len(sub)
        return n if self.cfg.max_synthetic is None else min(n, self.cfg.max_synthetic)

    def _items(self, family: str, rows: list[dict[str, Any]]) -> Any:
        if family in FAMILIES:
            return [SyntheticRecord.model_validate(r) for r in rows]
        return [Example(text=r["text"], label=r["label"]) for r in rows]

    def _generate(
        self,
        sub: list[Example],
        seed: int,
        level: float,
        family: str = "mix",
        *,
        anchors: str = "random",
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from mixaug.augmentation import augment
        from mixaug.providers import build_llm, build_scorer

        if self._llm is None:
            self._llm = build_llm(self.cfg.llm, seed=seed)
        llm = self._llm
        n = self._wanted(sub)
        fam = get_family(family)
        k = min(fam.anchors_per_prompt(self.cfg.k), len(sub) - 1) if len(sub) > 1 else 1
        k = max(k, fam.min_anchors)
        self.log(f"generating {n} {family} records for level {level:g}, seed {seed} ...")
        selector = None
        if anchors != "random":
            from mixaug.selectors import make_selector

            selector = make_selector(anchors, sub, k=k, seed=seed)
        result = augment(
            sub,
            self.spec,
            llm,
            n=n,
            k=k,
            seed=seed,
            batch_size=self.cfg.llm.batch_size,
            top_logprobs=self.cfg.llm.top_logprobs,
            scorer=build_scorer(self.cfg.llm, llm),
            family=family,
            selector=selector,
        )
        if not result.complete:
            self.log(
                f"  {family}: {len(result.records)} of {n} records after {result.attempts} "
                f"continuations (failures: {dict(result.failures)})"
            )
        stats = {
            "attempts": result.attempts,
            "parse_rate": result.parse_rate,
            "failures": dict(result.failures),
            "complete": result.complete,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
        }
        return [r.model_dump(mode="json") for r in result.records], stats

    # -- one run ------------------------------------------------------------------
    def run_one(
        self, method: Method, level: float, seed: int, sub: list[Example]
    ) -> dict[str, Any]:
        """Train and test one method on one sub-sample; returns the result row."""
        if method == "setfit":
            return self._setfit(method, level, seed, sub)
        if method in SETFIT_SHOTS:
            return self._setfit(method, level, seed, self.shots(seed, SETFIT_SHOTS[method]))
        if method in SETFIT_MIX:
            shots = SETFIT_MIX[method]
            real = sub if shots is None else self.shots(seed, shots)
            return self._setfit(method, 0.0 if shots else level, seed, real, mix=True) | {
                "level": level
            }
        val = self.validation(level, seed, sub)
        train, args, val_set, gen, extra = self._training_data(method, level, seed, sub, val)
        out, metrics = self._fit_and_test(train, args, val_set, seed, val)
        if method == "noaug-prior":  # NoAug, its logits moved to the validation prior
            metrics = metrics | metrics["adjusted"]
        return {
            "dataset": self.splits.name,
            "level": level,
            "seed": seed,
            "method": method,
            "protocol": self.cfg.protocol,
            "n_real": len(sub),
            "n_validation": len(val),
            "n_synthetic": sum(train.synthetic),
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "mcc": metrics["mcc"],
            "adjusted": metrics["adjusted"],
            "test_loss": metrics["loss"],
            "test_examples": metrics["examples"],
            "steps": out.steps,
            "best_step": out.best_step,
            "train_seconds": out.seconds,
            "generation_seconds": float(gen.get("seconds", 0.0)),
            "generation_cached": bool(gen.get("cached", False)),
            "n_requested": gen.get("requested", 0),
            "parse_rate": gen.get("parse_rate"),
            "completion_tokens": gen.get("completion_tokens"),
            **extra,
        }

    def shots(self, seed: int, per_class: int) -> list[Example]:
        """``per_class`` real examples of each class (SetFit's setting), seeded."""
        return balanced_subsample(self.splits.pool, 0.0, seed=seed, min_per_class=per_class)

    def _training_data(
        self, method: Method, level: float, seed: int, sub: list[Example], val: list[Example]
    ) -> tuple[Any, TrainingArguments, list[Example], dict[str, Any], dict[str, Any]]:
        """(train set, args, early-stopping set, generation stats, extra row fields)."""
        from mixaug.training import TextDataset

        args = self.cfg.training.model_copy(update={"seed": seed})
        if method in ("noaug", "noaug-prior"):
            return TextDataset.build(sub, labels=self.labels), args, val, {}, {}
        if method in RECIPE_METHODS:
            made, gen, cached = self._synthetic(method, sub, level, seed, anchors="targeted")
            pool = cast(list[SyntheticRecord], made)  # a prompt family's records
            records, r_args, val_set, extra = self._recipe(method, sub, pool, seed, args, val)
            if records:
                args = r_args
            else:  # the recipe chose the real data alone: that is exactly ``noaug``
                val_set = val
            train = TextDataset.build(sub, records, labels=self.labels)
            return train, args, val_set, gen | {"cached": cached}, extra
        syn, gen, cached = self._synthetic(method, sub, level, seed)
        if method in ("eda", "bt"):  # labelled texts, the sub-sample's labels
            train = TextDataset.build([*sub, *cast(list[Example], syn)], labels=self.labels)
            train.synthetic = [False] * len(sub) + [True] * len(syn)
        else:
            hard = method.endswith("-hard")
            records_ = cast(list[SyntheticRecord], syn)
            train = TextDataset.build(sub, records_, labels=self.labels, hard_synthetic=hard)
        return train, args, val, gen | {"cached": cached}, {}

    def _fit_and_test(
        self,
        train: Any,
        args: TrainingArguments,
        val_set: list[Example],
        seed: int,
        prior_of: list[Example],
    ) -> tuple[Any, dict[str, Any]]:
        """Train the classifier (early stopping on ``val_set``); (history, test metrics).

        The metrics hold ``adjusted``: the same classifier's, its logits moved from its
        training label prior to the class prior of ``prior_of`` (logit adjustment).
        """
        import torch

        from mixaug.training import TextClassifier, TextDataset, Trainer

        val = TextDataset.build(val_set, labels=self.labels)
        test = TextDataset.build(self.splits.test, labels=self.labels)
        torch.manual_seed(seed)
        model = TextClassifier.from_encoder(
            self.cfg.encoder,
            self.labels,
            max_length=args.max_length,
            share_encoder=args.freeze_encoder,
        )
        trainer = Trainer(model, args, train, val, feature_cache=self.features)
        out = trainer.train()
        metrics: dict[str, Any] = trainer.evaluate(test)
        shift = self._adjustment(train_prior(train, args.synthetic_weight), prior_of)
        adjusted = trainer.evaluate(test, adjustment=shift)
        metrics["adjusted"] = {k: adjusted[k] for k in ("accuracy", "macro_f1", "mcc")}
        return out, metrics

    def _setfit_body(self, sub: list[Example], seed: int) -> Any:
        """SetFit trained on ``sub`` alone, kept for the run (its mix rows reuse it)."""
        from mixaug.baselines.setfit import train_setfit

        key = _hash([[(e.text, e.label) for e in sub], seed])
        if not hasattr(self, "_bodies"):
            self._bodies: dict[str, Any] = {}
        if key not in self._bodies:
            self._bodies[key] = train_setfit(
                sub, labels=self.labels, seed=seed, encoder=self.cfg.encoder
            )
        return self._bodies[key]

    def _adjustment(self, trained_on: Any, prior_of: list[Example]) -> Any:
        from mixaug.training.metrics import class_prior, prior_adjustment

        return prior_adjustment(class_prior([e.label for e in prior_of], self.labels), trained_on)

    def _setfit(
        self, method: str, level: float, seed: int, sub: list[Example], *, mix: bool = False
    ) -> dict[str, Any]:
        """SetFit on ``sub`` (contrastive fine-tuning of the same encoder), tested.

        With ``mix`` the default recipe makes records for ``sub`` (its choices and guard on
        the protocol's validation set) and SetFit trains on both (:data:`SETFIT_MIX_MODE`).
        """
        from mixaug.baselines.setfit import score_setfit, train_setfit
        from mixaug.training.metrics import class_prior

        val = self.validation(level, seed, sub)
        t0 = time.perf_counter()
        body = self._setfit_body(sub, seed)
        records: list[SyntheticRecord] = []
        extra: dict[str, Any] = {}
        gen: dict[str, Any] = {}
        if not mix:
            adjust = self._adjustment(class_prior([e.label for e in sub], self.labels), val)
            scores = score_setfit(body, self.splits.test, self.labels, adjust)
        else:
            made, gen, cached = self._synthetic(method, sub, level, seed, anchors="targeted")
            gen = gen | {"cached": cached}
            args = self.cfg.training.model_copy(update={"seed": seed})
            pool = cast(list[SyntheticRecord], made)
            records, r_args, _, extra = self._recipe(method, sub, pool, seed, args, val)
            prior = [e.label for e in sub] + [r.label for r in records]
            adjust = self._adjustment(class_prior(prior, self.labels), val)
            variants = {}
            for mode in SETFIT_MIX_VARIANTS:
                model = train_setfit(
                    sub,
                    labels=self.labels,
                    records=records,
                    mode=mode,
                    synthetic_weight=float(r_args.synthetic_weight),
                    body=body,
                )
                variants[mode] = score_setfit(model, self.splits.test, self.labels, adjust)
            scores = variants[SETFIT_MIX_MODE]
            extra["setfit_modes"] = variants
        scores["seconds"] = round(time.perf_counter() - t0, 2)
        return {
            "dataset": self.splits.name,
            "level": level,
            "seed": seed,
            "method": method,
            "protocol": self.cfg.protocol,
            "n_real": len(sub),
            "n_validation": len(val) if mix else 0,
            "n_synthetic": len(records),
            "accuracy": scores["accuracy"],
            "macro_f1": scores["macro_f1"],
            "mcc": scores["mcc"],
            "adjusted": scores["adjusted"],
            "test_loss": None,
            "test_examples": scores["examples"],
            "steps": None,
            "best_step": None,
            "train_seconds": scores["seconds"],
            "generation_seconds": float(gen.get("seconds", 0.0)),
            "generation_cached": bool(gen.get("cached", False)),
            "n_requested": gen.get("requested", 0),
            "parse_rate": gen.get("parse_rate"),
            "completion_tokens": gen.get("completion_tokens"),
            **extra,
        }

    def _recipe(
        self,
        method: Method,
        sub: list[Example],
        syn: list[SyntheticRecord],
        seed: int,
        args: TrainingArguments,
        val: list[Example],
    ) -> tuple[list[SyntheticRecord], TrainingArguments, list[Example], dict[str, Any]]:
        """Run the recipe of ``method``: (records to train on, args, early-stopping set, row)."""
        from mixaug.recipe import run_recipe

        t0 = time.perf_counter()
        result = run_recipe(
            sub,
            val,
            syn,
            llm=None,
            spec=self.spec,
            config=recipe_config(method),
            training=args,
            encoder=self.cfg.encoder,
            feature_cache=self.features,
            seed=seed,
            score=self._score,
            log=lambda m: self.log(f"  {method}: {m}"),
        )
        rep = result.report
        row: dict[str, Any] = {
            "recipe": {
                "labeller": rep.labeller,
                "labeller_accuracy": rep.labeller_accuracy,
                "ratio": rep.ratio,
                "prior": rep.prior,
                "weight": rep.weight,
                "sharpen": rep.sharpen,
                "synthetic_used": rep.synthetic_used,
                "label_counts": rep.label_counts,
                "quota_surplus": rep.quota_surplus,
                "selection": rep.selection,
                "labeller_candidates": rep.labeller_candidates[:5],
                "searched": rep.searched,
                "vetoed": rep.vetoed,
                "gate": rep.gate,
            },
            "recipe_seconds": round(time.perf_counter() - t0, 2),
        }
        if rep.guard is not None:
            row["guard"] = rep.guard.model_dump(mode="json")
        args = result.training
        return result.records, args, result.selection_set, row

    def _score(self, items: list[tuple[list[Example], str]]) -> Any:
        """LM label scores of ``(anchors, text)`` pairs, cached on disk by prefix."""
        import numpy as np

        from mixaug.lmscores import LMScores, label_prefix, score_texts

        store = self.cache / "lm-scores.jsonl"
        if not hasattr(self, "_scores"):
            self._scores: dict[str, tuple[list[float], list[float]]] = {}  # by prefix hash
            if store.is_file():
                for line in store.read_text(encoding="utf-8").splitlines():
                    try:
                        r = json.loads(line)
                    except ValueError:
                        continue  # a torn last line
                    self._scores[r["h"]] = (r["logp"], r["hidden"])
        keys = [
            _hash([self.cfg.llm.model_dump(mode="json"), label_prefix(self.spec, a, t)])
            for a, t in items
        ]
        todo = [i for i, k in enumerate(keys) if k not in self._scores]
        if todo:
            from mixaug.providers import build_llm

            if self._llm is None:
                self._llm = build_llm(self.cfg.llm, seed=0)
            got = score_texts(self._llm, self.spec, [items[i] for i in todo])
            self.cache.mkdir(parents=True, exist_ok=True)
            with store.open("a", encoding="utf-8") as fh:
                for j, i in enumerate(todo):
                    hid = [] if got.hidden is None else [round(float(x), 4) for x in got.hidden[j]]
                    lp = [round(float(x), 5) for x in got.logp[j]]
                    self._scores[keys[i]] = (lp, hid)
                    fh.write(json.dumps({"h": keys[i], "logp": lp, "hidden": hid}) + "\n")
        logp = np.array([self._scores[k][0] for k in keys])
        rows = [self._scores[k][1] for k in keys]
        hidden = np.array(rows, dtype=np.float32) if all(rows) else None
        return LMScores(logp, hidden)

    def fingerprint(self) -> str:
        """Hash of what a result row depends on besides its (level, seed, method).

        The data (every split's texts and labels), the task, ratio and cap, the
        generator, k, the training settings and the encoder: a rerun in the same
        ``--out`` with any of them changed starts fresh rows instead of reporting old
        ones under new settings.
        """
        split_rows = {
            name: [(e.text, e.label) for e in rows]
            for name, rows in (
                ("pool", self.splits.pool),
                ("validation", self.splits.validation),
                ("test", self.splits.test),
            )
        }
        settings = self.cfg.model_dump(
            mode="json", exclude={"levels", "seeds", "methods", "out", "data"}
        )
        if settings.get("protocol") == "paper":
            del settings["protocol"]  # rows from before the protocol existed stay valid
        settings["llm"] = {
            k: v
            for k, v in llm_settings(self.cfg.llm).items()
            if k not in {"concurrency", "timeout"}
        }
        return _hash({"data": _hash(split_rows), "settings": settings})

    def row_fingerprint(self, method: str, base: str | None = None) -> str:
        """:meth:`fingerprint`, plus the recipe a recipe method runs (its search and steps).

        A changed recipe (a new default step, say) starts fresh rows for the recipe
        methods only; the others are reused.
        """
        fp = base or self.fingerprint()
        if method not in RECIPE_METHODS and method not in SETFIT_MIX:
            return fp
        if method in SETFIT_MIX:
            return _hash([fp, recipe_config(method).model_dump(mode="json"), SETFIT_MIX_MODE])
        return _hash([fp, recipe_config(method).model_dump(mode="json")])

    def run(self) -> list[dict[str, Any]]:
        """Every (level, seed, method) not already in ``results.jsonl``; returns all rows.

        Rows are keyed by :meth:`fingerprint` as well: rows of other settings or data
        in the same file are kept there but neither reused nor reported.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        results_file = self.out / "results.jsonl"
        fp = self.fingerprint()
        done: dict[tuple[float, int, str], dict[str, Any]] = {}
        other = 0
        if results_file.is_file():
            for line in results_file.read_text(encoding="utf-8").splitlines():
                try:
                    r = json.loads(line)
                except ValueError:
                    continue  # a torn last line
                if not isinstance(r, dict) or r.get("settings") != self.row_fingerprint(
                    str(r.get("method")), fp
                ):
                    other += 1
                    continue
                done[(r["level"], r["seed"], r["method"])] = r
        if other:
            self.log(
                f"{results_file}: {other} rows of other data or settings are kept there "
                "but not reused"
            )
        jobs = [
            (level, seed, m)
            for level in self.cfg.levels
            for seed in range(self.cfg.seeds)
            for m in self.cfg.methods
        ]
        todo = [j for j in jobs if j not in done]
        self.log(f"{len(jobs)} runs, {len(jobs) - len(todo)} already done")
        bar = _bar(len(todo), "bench") if self.progress else None
        with results_file.open("a", encoding="utf-8") as fh:
            for level, seed, method in todo:
                sub = self.subsample(level, seed)
                # SetFit on N per class does not depend on the level: train it once a seed.
                same = next(
                    (
                        r
                        for (lv, sd, m), r in done.items()
                        if m == method and sd == seed and _level_free(method)
                    ),
                    None,
                )
                row = (
                    (same | {"level": level})
                    if same is not None
                    else self.run_one(method, level, seed, sub)
                    | {"settings": self.row_fingerprint(method, fp)}
                )
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                done[(level, seed, method)] = row
                self.log(
                    f"{method:9} level {level:g} seed {seed}: accuracy {row['accuracy']:.4f} "
                    f"({row['n_real']} real + {row['n_synthetic']} synthetic, "
                    f"{row['train_seconds']:.0f}s)"
                )
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        return [done[j] for j in jobs]


def _level_free(method: str) -> bool:
    """Whether ``method``'s row is the same at every level (SetFit on N per class)."""
    return method in SETFIT_SHOTS or SETFIT_MIX.get(method) is not None


def train_prior(train: Any, synthetic_weight: float = 1.0) -> Any:
    """The class prior a classifier trained on ``train`` learns: its targets' weighted mass.

    Laplace-smoothed like :func:`~mixaug.training.metrics.class_prior` (one example's
    mass added to each class), so a validation set with the training set's class counts
    adjusts nothing.
    """
    import numpy as np

    t = np.asarray(train.targets, dtype=float)
    w = np.asarray(train.weights, dtype=float) * np.where(
        np.asarray(train.synthetic, dtype=bool), synthetic_weight, 1.0
    )
    mass = (t * w[:, None]).sum(0) + 1.0
    return mass / mass.sum()


def _bar(total: int, desc: str) -> Any:
    if total <= 0:
        return None
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    return tqdm(total=total, desc=desc)


METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "mcc")
"""What every row reports (``mcc``: GLUE's metric for CoLA; rows from before it lack it)."""


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and (sample) standard deviation per (method, level) of every metric, in points.

    ``mean``/``std`` are accuracy's; ``macro_f1``/``macro_f1_std`` and ``mcc``/``mcc_std``
    the others' (``None`` where no row has the metric).
    """
    groups: dict[tuple[str, float], dict[str, list[float]]] = {}
    parse: dict[tuple[str, float], list[float]] = {}
    fill: dict[tuple[str, float], list[float]] = {}
    for r in rows:
        key = (r["method"], r["level"])
        g = groups.setdefault(key, {m: [] for m in METRICS})
        for m in METRICS:
            if r.get(m) is not None:
                g[m].append(100 * r[m])
        if r.get("parse_rate") is not None:
            parse.setdefault(key, []).append(r["parse_rate"])
        if r.get("n_requested"):
            fill.setdefault(key, []).append(r["n_synthetic"] / r["n_requested"])
    out = []
    for (method, level), g in groups.items():
        acc_mean, acc_std = _mean_std(g["accuracy"])
        row: dict[str, Any] = {
            "method": method,
            "level": level,
            "mean": acc_mean,
            "std": acc_std,
            "runs": len(g["accuracy"]),
        }
        for m in METRICS[1:]:
            row[m], row[f"{m}_std"] = _mean_std(g[m]) if g[m] else (None, None)
        row["parse_rate"] = _mean(parse.get((method, level)))
        row["synthetic_per_requested"] = _mean(fill.get((method, level)))
        out.append(row)
    return out


def _mean_std(xs: list[float]) -> tuple[float, float]:
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((a - mean) ** 2 for a in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return round(mean, 2), round(std, 2)


def _mean(xs: list[float] | None) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def generation_table(agg: list[dict[str, Any]], dataset: str) -> str:
    """Parse rate and records made per record asked for, per method and level (Markdown).

    Empty when no method generated anything (``noaug`` only, or old caches without stats).
    """
    rows = [a for a in agg if a.get("synthetic_per_requested") is not None]
    if not rows:
        return ""
    levels = sorted({a["level"] for a in rows})
    cell = {(a["method"], a["level"]): a for a in rows}
    lines = [
        f"| {dataset}: parse rate / made÷asked | "
        + " | ".join(f"{lv * 100:g}%" for lv in levels)
        + " |",
        "|---|" + "---|" * len(levels),
    ]
    for m in [m for m in all_methods() if any(a["method"] == m for a in rows)]:
        cells = []
        for lv in levels:
            a = cell.get((m, lv))
            if a is None:
                cells.append("")
                continue
            pr = "–" if a["parse_rate"] is None else f"{100 * a['parse_rate']:.0f}%"
            cells.append(f"{pr} / {a['synthetic_per_requested']:.2f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_table(agg: list[dict[str, Any]], dataset: str, metric: str = "accuracy") -> str:
    """The paper's layout: one row per method, one column per level, ``mean±std``.

    ``metric``: ``accuracy`` (the paper's), ``macro_f1`` or ``mcc``.
    """
    mean_key, std_key = ("mean", "std") if metric == "accuracy" else (metric, f"{metric}_std")
    levels = sorted({a["level"] for a in agg})
    methods = [m for m in all_methods() if any(a["method"] == m for a in agg)]
    cell = {(a["method"], a["level"]): a for a in agg}
    name = dataset if metric == "accuracy" else f"{dataset} ({metric})"
    head = f"| {name} | " + " | ".join(f"{lv * 100:g}%" for lv in levels) + " |"
    lines = [head, "|---|" + "---|" * len(levels)]
    for m in methods:
        cells = []
        for lv in levels:
            a = cell.get((m, lv))
            ok = a is not None and a.get(mean_key) is not None
            cells.append(f"{a[mean_key]:.1f}±{a[std_key]:.1f}" if ok and a else "")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(agg: list[dict[str, Any]], dataset: str, path: Path) -> Path | None:
    """Accuracy against sub-sample level per method, as a PNG (``None`` without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in all_methods():
        pts = sorted((a["level"], a["mean"], a["std"]) for a in agg if a["method"] == m)
        if pts:
            xs, ys, es = zip(*pts, strict=True)
            ax.errorbar([100 * x for x in xs], ys, yerr=es, marker="o", capsize=3, label=m)
    ax.set_xscale("log")
    ticks = sorted({100 * a["level"] for a in agg})
    ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training data used (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(dataset)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_bench(
    cfg: BenchConfig, log: Callable[[str], None] | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Run the benchmark and write ``results.jsonl``, ``summary.json``, ``table.md``, ``plot.png``.

    Raises:
        ConfigError: for an unknown method or task.
    """
    unknown = sorted(set(cfg.methods) - set(all_methods()))
    if unknown:
        msg = f"unknown methods {unknown}; choose from {list(all_methods())}"
        raise ConfigError(msg)
    started = time.perf_counter()
    bench = Bench(cfg, log, progress=progress)
    rows = bench.run()
    agg = aggregate(rows)
    out = Path(cfg.out)
    table = "\n".join(markdown_table(agg, bench.splits.name, m) for m in METRICS)
    gen_table = generation_table(agg, bench.splits.name)
    (out / "table.md").write_text(table + ("\n" + gen_table if gen_table else ""), encoding="utf-8")
    png = plot(agg, bench.splits.name, out / "plot.png")
    summary = {
        "dataset": bench.splits.name,
        "task": cfg.task,
        "protocol": cfg.protocol,
        "validation": bench.splits.validation_source
        if cfg.protocol == "paper"
        else "pool (per level and seed, the sub-sample's size and class counts)",
        "test": bench.splits.test_source,
        "test_examples": len(bench.splits.test),
        "config": cfg.model_dump(mode="json"),
        # What ``engine: auto`` resolved to (``None``: the model runs elsewhere).
        "engine": get_provider(cfg.llm.provider).engine(cfg.llm),
        "aggregate": agg,
        "table": table,
        "generation_table": gen_table,
        "plot": None if png is None else str(png),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json_atomic(out / "summary.json", summary)
    return summary
