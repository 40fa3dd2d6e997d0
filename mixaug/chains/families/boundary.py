"""``boundary``: PromptMix-style (Sahu et al., 2023), an item between two classes.

Anchors of two classes and a request for an item that mixes them in given shares,
relabelled by soft labels.

Example:
    >>> from mixaug.specs import get_spec
    >>> req = {"anchors": [{"text": "a gem", "label": "positive"},
    ...                    {"text": "a mess", "label": "negative"}],
    ...        "shares": {"positive": 70, "negative": 30}}
    >>> FAMILIES["boundary"].render(get_spec("sst2"), req, chat=False).splitlines()[-2]
    'Write a new movie review that is 70% positive and 30% negative.'
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from typing_extensions import override

from mixaug.chains.families.base import FAMILIES, PromptFamily, register_family
from mixaug.chains.families.chain import ParseContext
from mixaug.chains.families.text import first_line, majority, shares_of, strip_item
from mixaug.chains.generation import label_end_pattern
from mixaug.chains.parser import parse_continuation
from mixaug.chains.prompts import _anchors, clean_text
from mixaug.errors import ConfigError, ParseFailure
from mixaug.records import Example, LabelledItem
from mixaug.specs import TaskSpec

__all__ = ["FAMILIES", "Boundary"]


@register_family
class Boundary(PromptFamily):
    """Two anchors of different classes, an item between them."""

    name = "boundary"
    min_anchors = 2

    @override
    def anchors_per_prompt(self, k: int) -> int:
        return 2

    @override
    def check_examples(self, examples: Sequence[Example]) -> None:
        if len({e.label for e in examples}) < 2:
            msg = "The boundary prompt mixes two labels, but the data has only one."
            raise ConfigError(msg)

    @override
    def render(self, spec: TaskSpec, request: Mapping[str, Any], *, chat: bool) -> str:
        (first, a), (second, b) = shares_of(request)[:2]
        ask = spec.fill(
            spec.prompts.boundary,
            first_word=spec.word_for(first),
            first_share=a,
            second_word=spec.word_for(second),
            second_share=b,
        )
        lines = [spec.header()]
        lines += [
            spec.item_line(clean_text(x.text), x.label)
            for x in _anchors(request.get("anchors", []))
        ]
        return "\n".join([*lines, ask, spec.text_prefix])

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
        a = request["anchors"]
        if len(a) < 2:
            msg = "boundary requests need two anchors (k >= 2)"
            raise ValueError(msg)
        if a[0]["label"] == a[1]["label"]:
            others = [e for e in pool if e.label != a[0]["label"]]
            if not others:
                msg = "boundary prompts need examples of at least two labels"
                raise ConfigError(msg)
            pick = rng.choice(others)
            a[1] = {"text": pick.text, "label": pick.label}
        first = int(rng.choice(list(shares)))
        return request | {
            "anchors": a[:2],
            "shares": {a[0]["label"]: first, a[1]["label"]: 100 - first},
        }

    @override
    def call_options(
        self, spec: TaskSpec, *, local: bool, n_items: int, max_tokens: int | None
    ) -> dict[str, Any]:
        return {"stop_after": [label_end_pattern(spec)]} if local else {}

    @override
    def parse(self, ctx: ParseContext) -> list[LabelledItem]:
        spec, request = ctx.spec, ctx.request
        try:
            parsed = parse_continuation(ctx.completion, spec, finish_reason=ctx.finish)
        except ParseFailure as e:
            line = first_line(ctx.completion)
            if e.reason != "no_label" or line is None:
                raise
            # PromptMix relabels anyway: an unlabelled line is scored.
            text = strip_item(line, spec)
            if not text:
                raise
            return [
                ctx.item(
                    text,
                    word=None,
                    label_start=None,
                    prefix=ctx.mix_prefix(text),
                    generated=majority(request),
                )
            ]
        word = parsed.word
        generated = (spec.label_for_word(word) if word else None) or majority(request)
        return [
            ctx.item(
                parsed.text,
                word=word,
                label_start=parsed.label_start,
                prefix=f"{ctx.pg.prompt_text} {parsed.text} {spec.label_marker}",
                generated=generated,
            )
        ]

    @override
    def target(self, request: Mapping[str, Any]) -> dict[str, float] | None:
        shares = request.get("shares")
        return {k: round(v / 100, 4) for k, v in shares.items()} if shares else None
