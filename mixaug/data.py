"""Read labelled data (JSONL or CSV with ``text`` and ``label``) with clear errors.

Example:
    >>> examples = load_examples("examples/data/movie_reviews.jsonl")  # doctest: +SKIP
    >>> examples[0].label
    'positive'
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from mixaug.errors import DataError
from mixaug.records import Example, SyntheticRecord
from mixaug.specs import TaskSpec

MAX_TEXT_CHARS = 10_000
"""Longest text accepted: a prompt holds k of them, and a small model's context is short."""

_CONTROL = (
    {chr(c) for c in range(32) if chr(c) not in "\t\n\r"}
    | {"\x7f"}
    | {chr(c) for c in range(0x80, 0xA0)}  # C1, U+0085 (next line) among them
    | {"\u2028", "\u2029"}  # line and paragraph separators split prompt lines
)


def load_examples(path: str | Path, *, skip_control: bool = False) -> list[Example]:
    """Read ``{"text", "label"}`` rows from a ``.jsonl`` or ``.csv`` file.

    ``skip_control`` drops rows whose text holds a control character instead of
    refusing the file (the benchmark's public data sets have a few such rows).

    Raises:
        DataError: naming the file, the line and the fix, for a missing or
            unreadable file, bad JSON, a missing/empty/non-string field, or no rows.
    """
    from mixaug.paths import read_input

    p = Path(path)
    if not p.exists():
        msg = f"Data file {str(p)!r} does not exist; check the path (--data)."
        raise DataError(msg)
    if p.is_dir():
        msg = f"Data path {str(p)!r} is a folder; pass a .jsonl or .csv file."
        raise DataError(msg)
    raw = read_input(p, "Data file")
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        msg = (
            f"Data file {str(p)!r} is not UTF-8 (bad byte at offset {e.start}); "
            "re-save it as UTF-8."
        )
        raise DataError(msg) from None
    if p.suffix.lower() == ".csv":
        rows = _csv_rows(content, p)
    else:
        rows = _jsonl_rows(content, p, skip_control)
    if not rows:
        msg = f"Data file {str(p)!r} has no examples; it needs rows with 'text' and 'label'."
        raise DataError(msg)
    return rows


def _field(row: dict[str, Any], key: str, where: str) -> str:
    if key not in row:
        msg = f"{where}: missing field {key!r}; every row needs 'text' and 'label'."
        raise DataError(msg)
    value = row[key]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        msg = f"{where}: field {key!r} is empty (null/NaN); fill it in or drop the row."
        raise DataError(msg)
    if isinstance(value, bool) or not isinstance(value, str | int):
        msg = f"{where}: field {key!r} must be a string, got {type(value).__name__}."
        raise DataError(msg)
    text = str(value).strip()
    if not text:
        msg = f"{where}: field {key!r} is empty; fill it in or drop the row."
        raise DataError(msg)
    bad = next((ch for ch in text if ch in _CONTROL), None)
    if bad is not None:
        msg = (
            f"{where}: field {key!r} contains the control character U+{ord(bad):04X}; "
            "remove control characters and line separators from the data."
        )
        raise DataError(msg)
    if len(text) > MAX_TEXT_CHARS:
        msg = (
            f"{where}: field {key!r} is {len(text):,} characters long; mixaug accepts up to "
            f"{MAX_TEXT_CHARS:,} (each prompt holds k texts): shorten or split it."
        )
        raise DataError(msg)
    return text


def _jsonl_rows(content: str, p: Path, skip_control: bool = False) -> list[Example]:
    out = []
    # JSON Lines are split at "\n" only (str.splitlines also splits at U+2028 and
    # U+0085, which may sit raw inside a JSON string and are refused below by name).
    for n, line in enumerate(content.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            msg = f"{where}: not valid JSON ({e.msg}); each line must be one JSON object."
            raise DataError(msg) from None
        if not isinstance(row, dict):
            msg = f"{where}: expected a JSON object with 'text' and 'label'."
            raise DataError(msg)
        if skip_control and isinstance(row.get("text"), str):
            if any(ch in _CONTROL for ch in row["text"].strip()):
                continue
        out.append(Example(text=_field(row, "text", where), label=_field(row, "label", where)))
    return out


def _csv_rows(content: str, p: Path) -> list[Example]:
    reader = csv.DictReader(io.StringIO(content))
    fields = reader.fieldnames or []
    missing = [k for k in ("text", "label") if k not in fields]
    if missing:
        msg = (
            f"CSV file {str(p)!r} has no {' or '.join(repr(m) for m in missing)} column "
            f"(columns: {fields}); rename the columns to 'text' and 'label'."
        )
        raise DataError(msg)
    out = []
    for n, row in enumerate(reader, start=2):
        where = f"{p}:{n}"
        out.append(Example(text=_field(row, "text", where), label=_field(row, "label", where)))
    return out


def check_labels(examples: list[Example], spec: TaskSpec) -> TaskSpec:
    """Check every label is in ``spec``; give an identity spec its labels.

    Returns:
        The spec to use (an identity spec gains the data's labels, sorted).

    Raises:
        DataError: listing labels outside the spec.
    """
    labels = sorted({e.label for e in examples})
    if spec.is_identity and spec.labels is None:
        try:
            return spec.with_labels(labels)
        except Exception as e:
            msg = f"The data's labels can't be used as label words: {e}"
            raise DataError(msg) from None
    known = set(spec.label_names)
    unknown = [lab for lab in labels if lab not in known]
    if unknown:
        msg = (
            f"Labels {unknown} are not in task {spec.name!r} (its labels: "
            f"{spec.label_names}); fix the data, or choose/write a spec that lists them."
        )
        raise DataError(msg)
    return spec


def load_records(path: str | Path) -> list[SyntheticRecord]:
    """Read synthetic records (``mixaug augment`` output) from a JSONL file.

    Raises:
        DataError: naming the file, the line and each bad field (a missing
            ``soft_label``, a distribution that doesn't sum to 1, ...).
    """
    from pydantic import ValidationError

    from mixaug.errors import describe_validation_error

    p = Path(path)
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "does not exist"
        msg = f"Records file {str(p)!r} {what}; pass the JSONL that 'mixaug augment' wrote."
        raise DataError(msg)
    from mixaug.paths import read_input

    try:
        content = read_input(p, "Records file").decode("utf-8")
    except UnicodeDecodeError as e:
        msg = f"Records file {str(p)!r} could not be read as UTF-8 text: {e}."
        raise DataError(msg) from None
    out = []
    for n, line in enumerate(content.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            msg = f"{where}: not valid JSON ({e.msg}); each line must be one record object."
            raise DataError(msg) from None
        if not isinstance(row, dict):
            msg = f"{where}: expected a JSON object (a synthetic record)."
            raise DataError(msg)
        row.pop("reject", None)  # a rejects file can be filtered again
        try:
            out.append(SyntheticRecord.model_validate(row))
        except ValidationError as e:
            msg = f"{where}: not a valid synthetic record: {describe_validation_error(e)}."
            raise DataError(msg) from None
    if not out:
        msg = f"Records file {str(p)!r} holds no records."
        raise DataError(msg)
    return out
