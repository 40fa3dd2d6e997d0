"""The GPT3Mix prompt text and the helpers every prompt family renders with.

Prompts are rendered by plain concatenation from ``anchors`` (a list of ``{"text",
"label"}``): anchor texts are never parsed as templates, so braces or delimiters
inside them cannot break the prompt. The LangChain templates are in
:mod:`mixaug.chains.families`.

Example:
    >>> from mixaug.specs import get_spec
    >>> text = render_mix_prompt(get_spec("sst2"), [{"text": "a gem", "label": "positive"}])
    >>> lines = text.splitlines()
    >>> lines[0][:46]
    'Each item in the following list contains a mov'
    >>> lines[1:]
    ['Movie review: a gem (Sentiment: positive)', 'Movie review:']
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mixaug.records import Example
from mixaug.specs import TaskSpec

_WS = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Collapse whitespace (newlines included) so one item stays on one line."""
    return _WS.sub(" ", text).strip()


def _anchors(value: Any) -> list[Example]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        msg = f"'anchors' must be a list of {{'text', 'label'}} items, got {type(value).__name__}"
        raise TypeError(msg)
    out = []
    for a in value:
        if isinstance(a, Example):
            out.append(a)
        elif isinstance(a, Mapping):
            out.append(Example(text=str(a["text"]), label=str(a["label"])))
        else:
            msg = f"each anchor must be a mapping with 'text' and 'label', got {a!r}"
            raise TypeError(msg)
    return out


def render_mix_prompt(spec: TaskSpec, anchors: Sequence[Example | Mapping[str, Any]]) -> str:
    """The paper's completion prompt for ``anchors``."""
    lines = [spec.header()]
    lines += [spec.item_line(clean_text(a.text), a.label) for a in _anchors(anchors)]
    lines.append(spec.text_prefix)
    return "\n".join(lines)


def prompt_hash(text: str) -> str:
    """Short stable hash of a rendered prompt."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
