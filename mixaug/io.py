"""Durable writes: a file is either its old self or complete, never half-written.

Every JSON, JSONL and text file mixaug writes goes through here: a complete file is
written beside the target (flushed and fsync'd) and renamed over it; records that
grow batch by batch go to ``OUT.part`` (:class:`JsonlWriter`) and are renamed into
place when the run is done; journal lines are appended and fsync'd one by one.

Example:
    >>> write_json_atomic(Path("run.summary.json"), {"kept": 10})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through an fsync'd temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def jsonl_text(rows: Iterable[dict[str, Any]]) -> str:
    """Rows as JSON Lines (one object per line, UTF-8 kept as is)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_jsonl_atomic(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` as JSON Lines to ``path`` atomically."""
    write_text_atomic(path, jsonl_text(rows))


def append_line(path: Path, line: str) -> None:
    """Append one line to ``path`` and fsync it (a journal entry)."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class JsonlWriter:
    """Append records to ``<out>.part`` durably; :meth:`commit` renames it to ``out``.

    A run that dies leaves the ``.part`` file with every finished batch in it and
    never a half-written ``out``.
    """

    def __init__(self, out: Path, *, append: bool = False) -> None:
        self.out = out
        self.part = out.with_name(out.name + ".part")
        out.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.part.open("a" if append else "w", encoding="utf-8")

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Append rows and flush them to disk."""
        self._fh.write(jsonl_text(rows))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def commit(self) -> None:
        """Close and atomically move the records into place."""
        self._fh.close()
        os.replace(self.part, self.out)

    def close(self) -> None:
        """Close without committing (the ``.part`` file stays)."""
        if not self._fh.closed:
            self._fh.close()
