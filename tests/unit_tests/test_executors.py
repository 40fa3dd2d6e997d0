"""Executors: batches run elsewhere and ahead of the driver, the records unchanged.

A deterministic fake model (its reply is a function of the prompt and seed) runs in the
executor's real worker class, on threads here instead of Ray actors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from fakes import REVIEWS, completion_generation
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseLanguageModel, BaseLLM
from langchain_core.outputs import LLMResult

import mixaug.executors as executors
from mixaug import ConfigError, Example, LLMConfig, augment, get_spec
from mixaug.executors import BatchExecutor, PlannedBatch, RayExecutor, _Worker
from mixaug.providers import PROVIDERS, Provider, build_llm, register_provider
from mixaug.selectors import RandomAnchorSelector
from mixaug.softlabels import LabelScorer
from mixaug.specs import TaskSpec

SST2 = get_spec("sst2")
EXAMPLES = [Example(text=t, label=lab) for t, lab in REVIEWS]


class SeededEcho(BaseLLM):
    """Replies as a pure function of (prompt, seed); one in five replies has no label."""

    seed: int | None = None

    @property
    def _llm_type(self) -> str:
        return "seeded-echo"

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        seed = kwargs.get("seed", self.seed)
        gens = []
        for prompt in prompts:
            h = int(hashlib.sha256(f"{seed}|{prompt}".encode()).hexdigest()[:12], 16)
            word = "positive" if h % 2 else "negative"
            p = 0.55 + (h % 40) / 100
            pieces: list[tuple[str, dict[str, float]]] = [
                (f" echo {h % 997}", {}),
                (" (Sentiment:", {}),
            ]
            if h % 5:
                pieces += [(f" {word}", {f" {word}": p, " neutral": 1 - p}), (")", {})]
            gens.append([completion_generation("".join(t for t, _ in pieces), pieces)])
        return LLMResult(generations=gens)


class Echo(Provider):
    name = "echo"
    batches_locally = True

    def build_llm(self, config: LLMConfig, *, seed: int | None = None) -> BaseLanguageModel[Any]:
        return SeededEcho(seed=seed)

    def build_scorer(self, config: LLMConfig, llm: BaseLanguageModel[Any]) -> LabelScorer | None:
        return None


@pytest.fixture(autouse=True)
def echo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(PROVIDERS, "_items", dict(PROVIDERS._items))
    register_provider(Echo)
    yield


class ThreadWorkers(BatchExecutor):
    """The executor's worker class on threads: what RayExecutor does, in process."""

    def __init__(self, config: LLMConfig, workers: int = 2) -> None:
        super().__init__()
        self.config = config
        self.lookahead = workers
        self.pool = ThreadPoolExecutor(workers)
        self.submitted: list[int] = []

    def start(self, spec: TaskSpec, family: str, chain_options: dict[str, Any]) -> None:
        options = {k: v for k, v in chain_options.items() if k != "scorer"}
        self.worker = _Worker(
            self.config.model_dump(mode="json"), spec.model_dump(mode="json"), family, options
        )

    def _submit(self, batch: PlannedBatch) -> Future[list[Any]]:
        self.submitted.append(batch.batch_no)
        return self.pool.submit(self.worker.run, batch.requests, batch.seed)

    def _result(self, handle: Any) -> list[Any]:
        return list(handle.result())

    def close(self) -> None:
        super().close()
        self.pool.shutdown()


def _run(executor: BatchExecutor | None, **options: Any) -> list[str]:
    cfg = LLMConfig(provider="echo", model="m")
    res = augment(
        EXAMPLES,
        SST2,
        build_llm(cfg, seed=1),
        n=30,
        seed=1,
        batch_size=4,
        selector=RandomAnchorSelector(EXAMPLES, k=2, seed=1),
        executor=executor,
        **options,
    )
    return [r.model_dump_json() for r in res.records]


def test_batches_run_ahead_and_the_records_are_the_local_ones() -> None:
    local = _run(None)
    with ThreadWorkers(LLMConfig(provider="echo", model="m")) as ex:
        assert _run(ex) == local
    assert len(local) == 30
    # Without quotas only the last, smaller batches are planned otherwise than guessed.
    assert ex.used_early >= 5
    assert ex.dropped_early <= 3


def test_a_guess_the_records_proved_wrong_is_run_again() -> None:
    # Quotas aim each batch at the class furthest from its quota: the hints follow the
    # records, so guesses made before a batch's records exist often miss.
    quotas = {"positive": 20, "negative": 10}
    local = _run(None, quotas=quotas)
    with ThreadWorkers(LLMConfig(provider="echo", model="m")) as ex:
        assert _run(ex, quotas=quotas) == local
    assert ex.dropped_early > 0
    assert len(ex.submitted) > len(set(ex.submitted))  # some batches ran twice


def test_guessing_draws_no_anchors() -> None:
    # The guesses use the selector's random state and put it back: a run that works
    # ahead draws the same anchors as one that does not (checked through the records
    # above); here directly, with a lookahead larger than the run.
    with ThreadWorkers(LLMConfig(provider="echo", model="m"), workers=6) as ex:
        assert _run(ex) == _run(None)


def test_ray_executor_refuses_bad_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        RayExecutor(LLMConfig(), workers=0)
    monkeypatch.setattr(executors, "ray_available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'mixaug\[ray\]'"):
        RayExecutor(LLMConfig())


def test_failures_come_back_from_a_worker_whole() -> None:
    import pickle

    from mixaug.errors import ParseFailure

    failure = ParseFailure("no_label", "no label in the reply", completion=" echo 3")
    failure.prompt_tokens, failure.completion_tokens = 7, 3
    back = pickle.loads(pickle.dumps(failure))
    assert (back.reason, str(back), back.completion) == (
        "no_label",
        "no label in the reply",
        " echo 3",
    )
    assert (back.prompt_tokens, back.completion_tokens) == (7, 3)

    class Unpicklable(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"{a}/{b}")

    out = executors._portable(Unpicklable(1, 2))
    assert isinstance(out, RuntimeError) and str(out) == "Unpicklable: 1/2"
