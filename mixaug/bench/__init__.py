"""The benchmark harness: sub-samples, baselines and GPT3Mix, trained and tested (Table 1)."""

from mixaug.bench.runner import (
    ABLATIONS,
    ALL_METHODS,
    METHODS,
    VARIANTS,
    Bench,
    BenchConfig,
    aggregate,
    all_methods,
    generation_table,
    markdown_table,
    plot,
    run_bench,
)
from mixaug.bench.splits import Splits, balanced_subsample, load_splits

__all__ = [
    "ABLATIONS",
    "VARIANTS",
    "ALL_METHODS",
    "METHODS",
    "Bench",
    "BenchConfig",
    "Splits",
    "aggregate",
    "all_methods",
    "balanced_subsample",
    "generation_table",
    "load_splits",
    "markdown_table",
    "plot",
    "run_bench",
]
