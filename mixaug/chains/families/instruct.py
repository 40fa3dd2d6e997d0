"""``instruct``: zero-shot "write N <text type>s whose <label type> is <word>", per class.

Each request asks for the label with the fewest records planned so far; the reply is
parsed into one record per list item, each scored after the mix prompt.

Example:
    >>> from mixaug.specs import get_spec
    >>> req = {"anchors": [], "target": "positive", "n": 3}
    >>> FAMILIES["instruct"].render(get_spec("sst2"), req, chat=False).splitlines()
    ['Write 3 movie reviews whose sentiment is positive.', '1.']
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from typing_extensions import override

from mixaug.chains.families.base import FAMILIES, PromptFamily, register_family
from mixaug.chains.families.chain import ParseContext
from mixaug.chains.families.text import parse_list
from mixaug.errors import ParseFailure
from mixaug.records import Example, LabelledItem
from mixaug.specs import TaskSpec

__all__ = ["FAMILIES", "Instruct"]


@register_family
class Instruct(PromptFamily):
    """A numbered list of items of one asked-for class."""

    name = "instruct"
    system_text = "instruct_system"

    @override
    def items_per_prompt(self, n_items: int) -> int:
        return n_items

    @override
    def render(self, spec: TaskSpec, request: Mapping[str, Any], *, chat: bool) -> str:
        target = request.get("target")
        if target is None:
            msg = "an instruct request needs a 'target' label"
            raise ValueError(msg)
        n = int(request.get("n", 1))
        line = spec.fill(spec.prompts.instruct, n=n, word=spec.word_for(str(target)))
        return line if chat else f"{line}\n1."

    @override
    def plan(
        self,
        request: dict[str, Any],
        *,
        spec: TaskSpec,
        pool: Sequence[Example],
        filled: Counter[str],
        n_items: int,
        shares: Sequence[int],
        rng: random.Random,
    ) -> dict[str, Any]:
        labels = spec.label_names
        target = min(labels, key=lambda lab: (filled[lab], labels.index(lab)))
        filled[target] += n_items
        return request | {"target": target, "n": n_items}

    @override
    def stop(self, spec: TaskSpec, *, local: bool, n_items: int) -> list[str]:
        return ["\n\n", f"\n{n_items + 1}."]

    @override
    def call_options(
        self, spec: TaskSpec, *, local: bool, n_items: int, max_tokens: int | None
    ) -> dict[str, Any]:
        return {"max_tokens": int(max_tokens or 100) * n_items}

    @override
    def parse(self, ctx: ParseContext) -> list[LabelledItem]:
        request = ctx.request
        target = request.get("target")
        texts = parse_list(
            ctx.completion, ctx.spec, n=int(request.get("n", 1)), leading_item=not ctx.chat
        )
        if not texts:
            raise ctx.failure(reason="no_items", what="no list items")
        out: list[LabelledItem] = []
        first_error: ParseFailure | None = None
        for text in texts:
            try:
                item = ctx.item(
                    text,
                    word=None,
                    label_start=None,
                    prefix=ctx.mix_prefix(text),
                    generated=None if target is None else str(target),
                    first=not out,  # tokens are counted once, on a prompt's first item
                )
            except ParseFailure as e:  # one bad item of a list loses only itself
                first_error = first_error or e
                continue
            out.append(item)
        if not out and first_error is not None:
            raise first_error
        return out

    @override
    def target(self, request: Mapping[str, Any]) -> dict[str, float] | None:
        t = request.get("target")
        return None if t is None else {str(t): 1.0}
