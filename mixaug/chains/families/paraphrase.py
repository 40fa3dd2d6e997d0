"""``paraphrase``: one anchor, "write a new <text type> with the same meaning as".

The anchor's label is carried over as the generated label; the soft label is scored
after the mix prompt over the anchor.

Example:
    >>> from mixaug.specs import get_spec
    >>> req = {"anchors": [{"text": "a gem", "label": "positive"}]}
    >>> FAMILIES["paraphrase"].render(get_spec("sst2"), req, chat=True)
    "Write a new movie review with the same meaning as: 'a gem'"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from typing_extensions import override

from mixaug.chains.families.base import FAMILIES, PromptFamily, register_family
from mixaug.chains.families.chain import ParseContext
from mixaug.chains.families.text import first_line, strip_item
from mixaug.chains.prompts import _anchors, clean_text
from mixaug.records import LabelledItem
from mixaug.specs import TaskSpec

__all__ = ["FAMILIES", "Paraphrase"]


@register_family
class Paraphrase(PromptFamily):
    """Rewrite one anchor; its label is the target."""

    name = "paraphrase"
    method = "para"
    system_text = "paraphrase_system"

    @override
    def anchors_per_prompt(self, k: int) -> int:
        return 1

    @override
    def render(self, spec: TaskSpec, request: Mapping[str, Any], *, chat: bool) -> str:
        anchors = _anchors(request.get("anchors", []))
        if len(anchors) != 1:
            msg = f"a paraphrase request needs exactly one anchor, got {len(anchors)}"
            raise ValueError(msg)
        line = spec.fill(spec.prompts.paraphrase, text=clean_text(anchors[0].text))
        return line if chat else f"{line}\n{spec.text_prefix}"

    @override
    def parse(self, ctx: ParseContext) -> list[LabelledItem]:
        anchors = ctx.request.get("anchors") or [{}]
        target = anchors[0].get("label")
        line = first_line(ctx.completion)
        text = strip_item(line, ctx.spec) if line is not None else ""
        if not text:
            raise ctx.failure(reason="empty_text", what="no paraphrase")
        return [
            ctx.item(
                text,
                word=None,
                label_start=None,
                prefix=ctx.mix_prefix(text),
                generated=None if target is None else str(target),
            )
        ]

    @override
    def target(self, request: Mapping[str, Any]) -> dict[str, float] | None:
        anchors = request.get("anchors")
        return {str(anchors[0]["label"]): 1.0} if anchors else None
