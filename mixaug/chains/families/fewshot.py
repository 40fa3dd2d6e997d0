"""``fewshot``: a labelled-examples template, then a new item and its label.

``Task:``/``Classes:``/``Context:``/``Labeled examples:`` lines with ``Text:``/``Label:``
pairs; the model continues after a last ``Text:``.

Example:
    >>> from mixaug.specs import get_spec
    >>> req = {"anchors": [{"text": "a gem", "label": "positive"}]}
    >>> FAMILIES["fewshot"].render(get_spec("sst2"), req, chat=False).splitlines()[-3:]
    ['Text: a gem', 'Label: positive', 'Text:']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from typing_extensions import override

from mixaug.chains.families.base import FAMILIES, PromptFamily, register_family
from mixaug.chains.families.chain import ParseContext
from mixaug.chains.families.text import strip_item
from mixaug.chains.prompts import _anchors, clean_text
from mixaug.errors import ParseFailure
from mixaug.records import LabelledItem
from mixaug.specs import TaskSpec

__all__ = ["FAMILIES", "FewShot", "parse_fewshot"]


@register_family
class FewShot(PromptFamily):
    """A labelled-examples template; the soft label is read after ``Label:``."""

    name = "fewshot"
    system_text = "fewshot_system"

    @override
    def render(self, spec: TaskSpec, request: Mapping[str, Any], *, chat: bool) -> str:
        t = spec.prompts
        lines = [
            f"{t.task_key} {spec.fill(t.task)}",
            f"{t.classes_key} {spec.fill('{words}')}",
            f"{t.context_key} {spec.fill(t.context)}",
            t.examples_key,
        ]
        for a in _anchors(request.get("anchors", [])):
            lines += [
                f"{t.text_key} {clean_text(a.text)}",
                f"{t.label_key} {spec.word_for(a.label)}",
            ]
        return "\n".join([*lines, t.text_key])

    @override
    def stop(self, spec: TaskSpec, *, local: bool, n_items: int) -> list[str]:
        return [f"\n{spec.prompts.text_key}", "\n\n"]

    @override
    def call_options(
        self, spec: TaskSpec, *, local: bool, n_items: int, max_tokens: int | None
    ) -> dict[str, Any]:
        if not local:
            return {}
        return {"stop_after": [r"(?i)\n\s*" + re.escape(spec.prompts.label_key) + r"[^\n]*\n"]}

    @override
    def parse(self, ctx: ParseContext) -> list[LabelledItem]:
        spec = ctx.spec
        text, word, start = parse_fewshot(ctx.completion, spec, ctx.finish)
        text = strip_item(text, spec)
        return [
            ctx.item(
                text,
                word=word,
                label_start=start,
                prefix=f"{ctx.pg.prompt_text} {text}\n{spec.prompts.label_key}",
                generated=spec.label_for_word(word) if word else None,
            )
        ]


def parse_fewshot(completion: str, spec: TaskSpec, finish: str | None) -> tuple[str, str, int]:
    r"""(text, label word, offset right after ``Label:``) of a few-shot continuation.

    Accepts the completion form (``" text\nLabel: word"``) and a chat reply that
    repeats the keys (``"Text: text\nLabel: word"``).

    Raises:
        ParseFailure: ``no_label``, ``truncated`` or ``empty_text``.
    """
    t = spec.prompts
    key, text_key = t.label_key.lower(), t.text_key.lower()
    parts: list[str] = []
    pos = 0
    for line in completion.split("\n"):
        start, pos = pos, pos + len(line) + 1
        stripped = line.strip()
        low = stripped.lower()
        if low.startswith(key):
            text = " ".join(" ".join(parts).split())
            if not text:
                msg = f"no text before {t.label_key!r} in {completion!r}"
                raise ParseFailure(reason="empty_text", message=msg, completion=completion)
            lead = len(line) - len(line.lstrip())
            word = stripped[len(t.label_key) :].strip().rstrip(".")
            return text, word, start + lead + len(t.label_key)
        if low.startswith(text_key):
            if parts:
                break  # a second item began before the first was labelled
            stripped = stripped[len(t.text_key) :].strip()
        if stripped:
            if parts:
                break  # the text ran on to a second line without a label
            parts.append(stripped)
    reason = "truncated" if finish == "length" else "no_label"
    msg = f"no {t.label_key!r} line in continuation {completion[:200]!r}"
    raise ParseFailure(reason=reason, message=msg, completion=completion)
