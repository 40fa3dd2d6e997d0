"""Reading items out of what a model wrote: shared by the families."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mixaug.specs import TaskSpec

_NUMBERED = re.compile(r"^\s*(?:\(?\d{1,3}[.):]|[-*•])\s*(.*)$")


def strip_item(text: str, spec: TaskSpec) -> str:
    """A generated line without a repeated ``Movie review:`` prefix, label or quotes."""
    line = text.strip()
    low = line.lower()
    prefix = spec.text_prefix.lower()
    if low.startswith(prefix):
        line = line[len(prefix) :]
    idx = line.lower().rfind(spec.label_marker.lower())
    if idx >= 0:
        line = line[:idx]
    line = " ".join(line.split())
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "'\"“”":
        line = line[1:-1].strip()
    return line.strip('“”"').strip()


def first_line(completion: str) -> str | None:
    """The first line of ``completion`` that is not blank."""
    for line in completion.split("\n"):
        if line.strip():
            return line
    return None


def parse_list(completion: str, spec: TaskSpec, *, n: int, leading_item: bool) -> list[str]:
    r"""The items of a numbered (or bulleted) list, at most ``n``.

    ``leading_item``: the prompt ended with ``1.``, so the first line is item 1 without
    its number (completion form).

    Example:
        >>> from mixaug.specs import get_spec
        >>> parse_list("a gem\n2. a mess", get_spec("sst2"), n=5, leading_item=True)
        ['a gem', 'a mess']
    """
    items: list[str] = []
    for i, raw in enumerate(completion.split("\n")):
        m = _NUMBERED.match(raw)
        if m:
            text = m.group(1)
        elif i == 0 and leading_item:
            text = raw
        else:
            continue
        text = strip_item(text, spec)
        if text:
            items.append(text)
        if len(items) >= n:
            break
    return items


def shares_of(request: Mapping[str, Any]) -> list[tuple[str, int]]:
    """A request's ``shares`` (label -> percent), largest first."""
    shares = request.get("shares") or {}
    return sorted(((str(k), int(v)) for k, v in shares.items()), key=lambda kv: -kv[1])


def majority(request: Mapping[str, Any]) -> str | None:
    """The label with the largest share of a request, if it has shares."""
    shares = shares_of(request)
    return shares[0][0] if shares else None
