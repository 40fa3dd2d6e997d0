"""Parse a continuation into a new item and read its soft label.

Example:
    >>> from mixaug.specs import get_spec
    >>> parse_continuation(" a fine film (Sentiment: positive)", get_spec("sst2")).word
    'positive'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from pydantic import BaseModel, ConfigDict

from mixaug.errors import ParseFailure
from mixaug.softlabels import (
    LabelScorer,
    label_position,
    normalise,
    rescore_word_probs,
    tokens_from_logprobs,
    word_probs_from_top,
)
from mixaug.specs import TaskSpec

#: Parse-failure reasons, counted in the run summary.
FAILURE_REASONS = (
    "no_label",  # the model ended the line without "(Label type: ...)"
    "truncated",  # max tokens hit before the label
    "empty_text",  # nothing before the label marker
    "no_logprobs",  # provider gave no logprobs and no scorer is available
    "no_label_mass",  # zero probability on every label word
    "copied_anchor",  # the new text is one of its anchors
    "generation_error",  # the model call failed
    "no_items",  # instruct: the reply held no list items
    "short_list",  # instruct: fewer items in the list than asked for
    "repeated_item",  # instruct: the list repeats an item
)


@dataclass(frozen=True)
class ParsedContinuation:
    """The pieces of one continuation."""

    text: str
    """The new item's text, whitespace collapsed."""
    word: str
    """What the model wrote after the label marker (may be no label word)."""
    label_start: int
    """Character offset in the continuation right after the label marker."""


def parse_continuation(
    completion: str, spec: TaskSpec, *, finish_reason: str | None = None
) -> ParsedContinuation:
    """Split ``completion`` into text and label word.

    Accepts the completion form (``" text (Sentiment: positive)"``, continuing the
    prompt's ``Movie review:``) and a chat reply that repeats the prefix
    (``"Movie review: text (Sentiment: positive)"``). The label is read after the
    *last* label marker on the first line that has one, so a marker inside the
    text doesn't confuse it. If the model wrote two items on one line, the last
    one (the one the label belongs to) is kept.

    Raises:
        ParseFailure: with reason ``no_label``, ``truncated`` or ``empty_text``.
    """
    marker = spec.label_marker.lower()
    prefix = spec.text_prefix.lower()
    offset = 0
    for line in completion.split("\n"):
        lower = line.lower()
        idx = lower.rfind(marker)
        if idx >= 0:
            head = line[:idx]
            cut = head.lower().rfind(prefix)
            if cut >= 0:
                head = head[cut + len(prefix) :]
            text = " ".join(head.split())
            if not text:
                msg = f"no text before {spec.label_marker!r} in {completion!r}"
                raise ParseFailure(reason="empty_text", message=msg, completion=completion)
            after = line[idx + len(marker) :]
            word = after.split(")")[0].strip()
            return ParsedContinuation(text=text, word=word, label_start=offset + idx + len(marker))
        if line.strip() and finish_reason != "length":
            # The first non-empty line ended without a label: the item is unlabelled.
            break
        offset += len(line) + 1
    reason = "truncated" if finish_reason == "length" else "no_label"
    msg = f"no {spec.label_marker!r} label in continuation {completion[:200]!r}"
    raise ParseFailure(reason=reason, message=msg, completion=completion)


class PromptGeneration(BaseModel):
    """A prompt and the model's generation for it (what the parser consumes)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    prompt: PromptValue
    generation: Generation

    @property
    def completion_text(self) -> str:
        """The generated text."""
        return self.generation.text

    @property
    def prompt_text(self) -> str:
        """The completion-form prompt: the string, or a chat prompt's last message."""
        if isinstance(self.prompt, ChatPromptValue):
            return str(self.prompt.messages[-1].content)
        return self.prompt.to_string()

    @property
    def metadata(self) -> dict[str, Any]:
        """generation_info, or the chat message's response_metadata."""
        if isinstance(self.generation, ChatGeneration):
            return dict(self.generation.message.response_metadata or {})
        return dict(self.generation.generation_info or {})

    def usage(self) -> tuple[int, int]:
        """(prompt tokens, completion tokens) as reported by the provider."""
        if isinstance(self.generation, ChatGeneration):
            um = getattr(self.generation.message, "usage_metadata", None)
            if um:
                return int(um.get("input_tokens", 0)), int(um.get("output_tokens", 0))
        info = self.metadata
        usage = info.get("token_usage") or info
        return int(usage.get("prompt_tokens", 0) or 0), int(usage.get("completion_tokens", 0) or 0)


def read_soft_label(
    pg: PromptGeneration,
    spec: TaskSpec,
    scorer: Any,
    *,
    label_start: int | None,
    rescore_prefix: str,
    text: str,
) -> tuple[dict[str, float], float, str]:
    """(soft label by label, mass on the label words, source) for one item.

    Read from the logprobs at character ``label_start`` of the completion when the
    model wrote the label there and every label word is in the top-k; otherwise the
    label words are scored after ``rescore_prefix`` (which ends with the label
    marker) by ``scorer``; without one, the words seen are renormalised.

    Raises:
        ParseFailure: ``no_logprobs`` or ``no_label_mass``.
    """
    completion = pg.completion_text
    words = spec.words
    probs: dict[str, float] | None = None
    source = "inline"
    partial: dict[str, float] | None = None
    tokens = tokens_from_logprobs(pg.metadata.get("logprobs")) if label_start is not None else None
    if tokens and label_start is not None:
        i = label_position(tokens, completion, label_start)
        if i is not None:
            seen, found = word_probs_from_top(tokens[i].top, words)
            if found == set(words):
                probs = seen
            elif any(seen.values()):
                partial = seen
    if probs is None:
        if scorer is not None and isinstance(scorer, LabelScorer):
            probs = rescore_word_probs(scorer, rescore_prefix, words)
            source = getattr(scorer, "soft_label_source", "rescored")
        elif partial is not None:
            probs, source = partial, "partial"
        else:
            where = "at the label position" if label_start is not None else "(nothing to read)"
            msg = f"the provider returned no logprobs {where} and no scorer is set"
            raise ParseFailure(reason="no_logprobs", message=msg, completion=completion)
    try:
        dist, mass = normalise(probs)
    except ValueError:
        msg = f"no probability on any label word for {text!r}"
        raise ParseFailure(reason="no_label_mass", message=msg, completion=completion) from None
    by_word = {w: lab for lab, w in spec.mapping.items()}
    return {by_word[w]: p for w, p in dist.items()}, mass, source
