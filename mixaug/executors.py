"""Where :func:`~mixaug.augment`'s batches run: in this process, or on a Ray cluster.

The driver (the process that called ``augment``) keeps the run: it plans every batch
exactly as a local run does, admits and journals the records in batch order, and is the
only writer. An executor only turns a planned batch (its requests and seed) into the
chain's outputs, which depend on nothing else, so the records of a seed are the same
bytes whichever executor made them, and a killed run resumes from the driver's journal.

To run batches side by side, an executor also works *ahead*: while batch ``b`` runs it
starts the batches the driver would plan next if nothing changed (the selector's random
state after ``b``'s draws, the same batch size and class hints). When the driver gets to
one, it plans it for real and uses the early result only if the plan is identical
(anchors, requests and seed); otherwise that result is dropped and the batch runs again.
Plans change when a batch's records change what comes next: the last batches of a run
(smaller), and runs with class quotas or targeted anchors (hints follow the records).

Example:
    >>> from mixaug import LLMConfig
    >>> with RayExecutor(LLMConfig(), workers=2) as ex:  # doctest: +SKIP
    ...     augment(examples, spec, n=1000, executor=ex)
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mixaug.config import LLMConfig
from mixaug.errors import ConfigError, ModelError
from mixaug.specs import TaskSpec


def ray_available() -> bool:
    """Whether Ray is installed (``pip install 'mixaug[ray]'``)."""
    return importlib.util.find_spec("ray") is not None


@dataclass(frozen=True)
class PlannedBatch:
    """One batch as the driver plans it: its number, requests and sampling seed."""

    batch_no: int
    requests: list[dict[str, Any]]
    seed: int | None

    def key(self) -> str:
        """What must match for an early result to stand for this batch."""
        return json.dumps([self.batch_no, self.seed, self.requests], sort_keys=True, default=str)


Ahead = Callable[[int], list[PlannedBatch]]
"""The driver's guess of its next ``count`` batches, if nothing changed."""


class BatchExecutor:
    """Runs planned batches, working ahead on the driver's guesses.

    Subclasses implement :meth:`start`, :meth:`_submit` and :meth:`_result`; this class
    keeps the early results and checks them against the real plans.
    """

    lookahead: int = 0
    """Batches started ahead of the driver."""

    def __init__(self) -> None:
        self._early: dict[int, tuple[str, Any]] = {}
        self.used_early = 0
        """Batches whose early result stood (they ran side by side with earlier ones)."""
        self.dropped_early = 0
        """Early results thrown away because the real plan differed."""

    def start(self, spec: TaskSpec, family: str, chain_options: dict[str, Any]) -> None:
        """Get ready to run ``family`` chains for ``spec`` (called once by ``augment``)."""
        raise NotImplementedError

    def _submit(self, batch: PlannedBatch) -> Any:
        """Start ``batch``; returns a handle for :meth:`_result`."""
        raise NotImplementedError

    def _result(self, handle: Any) -> list[Any]:
        """The chain's outputs (items or exceptions) of a started batch, in order."""
        raise NotImplementedError

    def run(self, batch: PlannedBatch, ahead: Ahead) -> list[Any]:
        """The outputs of ``batch``, from an early start if its plan is unchanged."""
        key = batch.key()
        early = self._early.pop(batch.batch_no, None)
        for b in [b for b in self._early if b < batch.batch_no]:
            del self._early[b]
            self.dropped_early += 1
        if early is not None and early[0] == key:
            handle = early[1]
            self.used_early += 1
        else:
            if early is not None:
                self.dropped_early += 1
            handle = self._submit(batch)
        if self.lookahead:
            for guess in ahead(self.lookahead):
                have = self._early.get(guess.batch_no)
                if have is None or have[0] != guess.key():
                    if have is not None:
                        self.dropped_early += 1
                    self._early[guess.batch_no] = (guess.key(), self._submit(guess))
        return self._result(handle)

    def close(self) -> None:
        """Stop working ahead and free the workers."""
        self._early.clear()

    def __enter__(self) -> BatchExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Worker:
    """A Ray actor: one model, the chain built per batch with the batch's seed."""

    def __init__(
        self, llm: dict[str, Any], spec: dict[str, Any], family: str, options: dict[str, Any]
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from mixaug.providers import build_llm, build_scorer

        options = dict(options)
        self.config = LLMConfig.model_validate(llm)
        self.spec = TaskSpec.model_validate(spec)
        self.family = family
        self.llm = build_llm(self.config, seed=options.pop("llm_seed", None))
        self.scorer = build_scorer(self.config, self.llm)
        self.options = options

    def run(self, requests: list[dict[str, Any]], seed: int | None) -> list[Any]:
        from mixaug.chains.families import build_family_chain

        # The driver sends a seed only for a model that takes one (as its local run does).
        extra: dict[str, Any] = {} if seed is None else {"seed": seed}
        chain = build_family_chain(
            self.llm, self.spec, self.family, scorer=self.scorer, **self.options, **extra
        )
        outputs = chain.batch(requests, return_exceptions=True)
        return [_portable(o) for o in outputs]


def _portable(out: Any) -> Any:
    """``out``, or for an exception that does not survive pickling, a plain stand-in."""
    if not isinstance(out, BaseException):
        return out
    try:
        pickle.loads(pickle.dumps(out))
    except Exception:  # noqa: BLE001 - any pickling failure gets the stand-in
        return RuntimeError(f"{type(out).__name__}: {out}")
    return out


def _probe(address: str) -> None:
    """Refuse a cluster address where nothing listens (one TCP connection, 5 s).

    Raises:
        ConfigError: for an address that is not ``[ray://]HOST:PORT``.
        ModelError: when the connection fails.
    """
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        msg = f"--ray-address must be HOST:PORT (of `ray start --head`), got {address!r}"
        raise ConfigError(msg)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            pass
    except OSError as e:
        msg = (
            f"Could not connect to Ray at {address}: {e.strerror or e}; is `ray start --head` "
            "running there?"
        )
        raise ModelError(msg) from None


class RayExecutor(BatchExecutor):
    """Batches as Ray actor calls: ``workers`` actors, each with its own model.

    Joins the cluster at ``address`` (``HOST:PORT`` of a ``ray start --head``), or starts
    a local one on 127.0.0.1. For the embedded model each actor loads it once (with
    ``cpus_per_worker`` threads unless ``llm.threads`` is set: the llama.cpp engine's
    numbers do not depend on the thread count); for a server provider each actor sends its
    batch's requests, ``llm.concurrency`` in flight.

    Raises:
        ConfigError: when ``ray`` is not installed or ``workers`` is below 1.
    """

    def __init__(
        self,
        llm: LLMConfig,
        *,
        workers: int = 2,
        address: str | None = None,
        cpus_per_worker: float = 1.0,
        llm_seed: int | None = None,
    ) -> None:
        super().__init__()
        if workers < 1:
            msg = f"--workers must be at least 1, got {workers}"
            raise ConfigError(msg)
        if not ray_available():
            msg = "--executor ray needs Ray; run: pip install 'mixaug[ray]'"
            raise ConfigError(msg)
        self.llm = llm
        self.workers = workers
        self.address = address
        self.cpus_per_worker = cpus_per_worker
        self.llm_seed = llm_seed
        self.lookahead = workers
        self._actors: list[Any] = []
        self._submitted = 0
        self._owns_ray = False

    def connect(self) -> None:
        """Join the cluster at ``address``, or start a local one on 127.0.0.1; once.

        Raises:
            ModelError: when nothing answers at ``address`` (checked with one TCP
                connection first: Ray itself would retry for minutes).
        """
        # No usage reports from an offline toolkit (Ray would try to send them).
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        import ray

        if ray.is_initialized():
            return
        options: dict[str, Any] = {}
        if self.address:
            _probe(self.address)
        else:
            # A local cluster serves this process only: keep it off the network.
            options = {"num_cpus": max(os.cpu_count() or 1, self.workers),
                       "_node_ip_address": "127.0.0.1"}  # fmt: skip
        try:
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                **options,
            )
        except Exception as e:  # noqa: BLE001 - Ray raises several kinds here
            where = self.address or "a local cluster"
            msg = f"Could not connect to Ray at {where}: {e}"
            raise ModelError(msg) from None
        self._owns_ray = True

    def start(self, spec: TaskSpec, family: str, chain_options: dict[str, Any]) -> None:
        """Connect, and start the actors (each loads its model on its first batch)."""
        import ray

        self.connect()
        llm = self.llm
        if llm.provider == "local" and llm.threads is None:
            llm = llm.model_copy(update={"threads": max(1, int(self.cpus_per_worker))})
        options = {k: v for k, v in chain_options.items() if k != "scorer"}
        options["llm_seed"] = self.llm_seed
        actor = ray.remote(num_cpus=self.cpus_per_worker)(_Worker)
        self._actors = [
            actor.remote(
                llm.model_dump(mode="json"), spec.model_dump(mode="json"), family, options
            )  # fmt: skip
            for _ in range(self.workers)
        ]

    def _submit(self, batch: PlannedBatch) -> Any:
        # In turn: batches are started in plan order, and an actor runs its calls in order.
        actor = self._actors[self._submitted % len(self._actors)]
        self._submitted += 1
        return actor.run.remote(batch.requests, batch.seed)

    def _result(self, handle: Any) -> list[Any]:
        import ray

        try:
            return list(ray.get(handle))
        except ray.exceptions.RayError as e:
            msg = f"A Ray worker failed: {e}"
            raise ModelError(msg) from None

    def close(self) -> None:
        """Stop the actors, and the local cluster if this executor started it."""
        super().close()
        if not self._actors and not self._owns_ray:
            return
        import ray

        for a in self._actors:
            ray.kill(a)
        self._actors = []
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False


def ray_near_pairs(
    vectors: Any, threshold: float, *, address: str | None = None, workers: int = 2
) -> Callable[[list[tuple[int, int]]], list[list[tuple[int, int]]]]:
    """A ``map_shards`` for :func:`~mixaug.dedup.near_duplicate_mask`: shards as Ray tasks.

    The vectors go to Ray's object store once; each task finds one shard's near pairs.

    Example:
        >>> near_duplicate_mask(v, 0.95, map_shards=ray_near_pairs(v, 0.95))  # doctest: +SKIP
    """
    runner = RayExecutor(LLMConfig(), workers=workers, address=address)

    def run(shards: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
        import ray

        from mixaug.dedup import near_pairs

        runner.connect()
        try:
            ref = ray.put(vectors)
            task = ray.remote(num_cpus=1)(near_pairs)
            return list(ray.get([task.remote(ref, a, b, threshold) for a, b in shards]))
        finally:
            runner.close()

    return run
