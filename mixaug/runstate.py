"""Resumable runs: a manifest and a journal beside the output.

``OUT.manifest.json`` pins what the run is (config fingerprint, data hash, seed, n).
``OUT.journal.jsonl`` gets one ``plan`` line per batch (the anchors, as positions in
the data, and the selector's random state) before the batch is generated, and one
``done`` line (cumulative counters) after its records were flushed and fsync'd to
``OUT.jsonl.part``. After a crash (kill -9 at any moment) the same command reads the
journal back, drops record lines no ``done`` line covers (including a torn last
line), restores the counters and the selector's state, and goes on: the output is
the one an uninterrupted run would have written.

Example:
    >>> fingerprint({"llm": {"model": "m"}, "seed": 0})[:8]  # doctest: +SKIP
    '3f1c2a9b'
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixaug.errors import MixaugError
from mixaug.io import append_line, write_json_atomic

MANIFEST_VERSION = 1

#: Settings that change how a run is carried out, not what it produces.
OPERATIONAL = {"concurrency", "timeout", "max_retries", "threads", "max_attempts", "store"}


class RunConflict(MixaugError):
    """An output path holds a different run (use --overwrite or another --out)."""


def fingerprint(settings: dict[str, Any]) -> str:
    """Hash of the settings that determine a run's output."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in sorted(value.items()) if k not in OPERATIONAL}
        return value

    raw = json.dumps(strip(settings), sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes (the data a run was made from)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


@dataclass
class Restored:
    """Where a previous run stopped."""

    batch_no: int = 0
    records: int = 0
    counters: dict[str, Any] = field(default_factory=dict)
    rng_state: Any = None
    pending_plan: list[list[int]] | None = None
    """Anchors of a planned batch that never finished (re-run with the same anchors)."""


class RunFiles:
    """The files of one run: records (``.part`` until done), manifest, journal, summary."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.part = out.with_name(out.name + ".part")
        stem = out.name[: -len(out.suffix)] if out.suffix else out.name
        self.manifest = out.with_name(stem + ".manifest.json")
        self.journal = out.with_name(stem + ".journal.jsonl")
        self.summary = out.with_name(stem + ".summary.json")
        self.rejects = out.with_name(stem + ".rejects.jsonl")
        """Records a filter removed, with their reasons (``.part`` until done)."""
        self.rejects_part = self.rejects.with_name(self.rejects.name + ".part")

    def all(self) -> list[Path]:
        """Every file this run may have written."""
        return [
            self.out,
            self.part,
            self.manifest,
            self.journal,
            self.summary,
            self.rejects,
            self.rejects_part,
        ]

    def remove(self) -> None:
        """Delete every file of the run (for ``--overwrite``)."""
        for p in self.all():
            if p.exists():
                p.unlink()

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, or ``None`` when there is none (or it can't be read)."""
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_manifest(self, data: dict[str, Any]) -> None:
        """Write the manifest atomically."""
        write_json_atomic(self.manifest, data)

    # -- journal ---------------------------------------------------------------
    def plan(self, batch_no: int, anchors: list[list[int]], rng_state: Any) -> None:
        """Record a batch's anchors and the selector state before it is generated."""
        line = {"type": "plan", "batch": batch_no, "anchors": anchors, "rng": rng_state}
        append_line(self.journal, json.dumps(line))

    def done(self, batch_no: int, records: int, counters: dict[str, Any], rng_state: Any) -> None:
        """Record that a batch's records are on disk (after they were fsync'd)."""
        line = {
            "type": "done",
            "batch": batch_no,
            "records": records,
            "counters": counters,
            "rng": rng_state,
        }
        append_line(self.journal, json.dumps(line))

    def restore(self) -> Restored:
        """Read the journal back and cut the records file to what it covers."""
        state = Restored()
        plans: dict[int, list[list[int]]] = {}
        if self.journal.exists():
            lines = self.journal.read_text(encoding="utf-8").split("\n")
            good: list[str] = []
            for raw in lines:
                if not raw.strip():
                    continue
                try:
                    event = json.loads(raw)
                except ValueError:
                    break  # a torn last line: everything before it stands
                good.append(raw)
                if event.get("type") == "plan":
                    plans[int(event["batch"])] = event["anchors"]
                elif event.get("type") == "done":
                    state.batch_no = int(event["batch"]) + 1
                    state.records = int(event["records"])
                    state.counters = dict(event["counters"])
                    state.rng_state = event["rng"]
            self.journal.write_text("".join(g + "\n" for g in good), encoding="utf-8")
        state.pending_plan = plans.get(state.batch_no)
        self._truncate(self.part, state.records)
        self._truncate(self.rejects_part, int(state.counters.get("rejected", 0)))
        return state

    def _truncate(self, part: Path, keep: int) -> None:
        """Cut ``part`` to its first ``keep`` lines (what the journal covers)."""
        if not part.exists():
            if keep:
                msg = (
                    f"The journal says {keep} records were written but {part} is "
                    "missing; remove the run's files or use --overwrite."
                )
                raise RunConflict(msg)
            return
        with part.open("rb") as fh:
            data = fh.read()
        lines = data.split(b"\n")
        complete = lines[:-1]  # the piece after the last newline is torn (or empty)
        if len(complete) < keep:
            msg = (
                f"{part} holds {len(complete)} records but the journal expects {keep}; "
                "the files were changed by hand. Use --overwrite to start again."
            )
            raise RunConflict(msg)
        kept = b"".join(line + b"\n" for line in complete[:keep])
        if kept != data:
            with part.open("wb") as fh:
                fh.write(kept)
                fh.flush()
                os.fsync(fh.fileno())
