"""``mix``: GPT3Mix (Yoo et al., 2021): k anchors, the model writes an item and its label.

Example:
    >>> from mixaug.specs import get_spec
    >>> req = {"anchors": [{"text": "a gem", "label": "positive"}]}
    >>> FAMILIES["mix"].render(get_spec("sst2"), req, chat=False).splitlines()[1:]
    ['Movie review: a gem (Sentiment: positive)', 'Movie review:']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseLanguageModel
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field
from typing_extensions import override

from mixaug.chains.families.base import FAMILIES, PromptFamily, register_family
from mixaug.chains.families.chain import (
    FamilyPromptTemplate,
    ParseContext,
    bounded,
    family_steps,
    parse_generation,
)
from mixaug.chains.generation import label_end_pattern
from mixaug.chains.parser import PromptGeneration, parse_continuation
from mixaug.chains.prompts import render_mix_prompt
from mixaug.records import LabelledItem
from mixaug.softlabels import LabelScorer
from mixaug.specs import TaskSpec

__all__ = [
    "FAMILIES",
    "Mix",
    "MixChatPromptTemplate",
    "MixPromptTemplate",
    "SoftLabelParser",
    "build_mix_chain",
]


@register_family
class Mix(PromptFamily):
    """The paper's prompt; the soft label is read where the model wrote the label."""

    name = "mix"
    recipe_labels = True

    @override
    def render(self, spec: TaskSpec, request: Mapping[str, Any], *, chat: bool) -> str:
        return render_mix_prompt(spec, request.get("anchors", []))

    @override
    def call_options(
        self, spec: TaskSpec, *, local: bool, n_items: int, max_tokens: int | None
    ) -> dict[str, Any]:
        # Local models can also stop right after the label's closing parenthesis.
        return {"stop_after": [label_end_pattern(spec)]} if local else {}

    @override
    def parse(self, ctx: ParseContext) -> list[LabelledItem]:
        spec = ctx.spec
        parsed = parse_continuation(ctx.completion, spec, finish_reason=ctx.finish)
        word = parsed.word
        return [
            ctx.item(
                parsed.text,
                word=word,
                label_start=parsed.label_start,
                prefix=f"{ctx.pg.prompt_text} {parsed.text} {spec.label_marker}",
                generated=spec.label_for_word(word) if word else None,
            )
        ]


class MixPromptTemplate(FamilyPromptTemplate):
    """The GPT3Mix completion prompt: header, one line per anchor, then ``<Text type>:``.

    The ``mix`` family's template in completion form.

    Example:
        >>> from mixaug.specs import get_spec
        >>> p = MixPromptTemplate(spec=get_spec("trec6"))
        >>> p.invoke({"anchors": [{"text": "Who ?", "label": "HUM"}]}).to_string()[-10:]
        'Question:'
    """

    family: str = "mix"
    chat: bool = False


class MixChatPromptTemplate(FamilyPromptTemplate):
    """The GPT3Mix chat prompt: a system instruction, then the paper's prompt as the user turn.

    Example:
        >>> from mixaug.specs import get_spec
        >>> msgs = MixChatPromptTemplate(spec=get_spec("sst2")).format_messages(anchors=[])
        >>> [m.type for m in msgs]
        ['system', 'human']
    """

    family: str = "mix"
    chat: bool = True


class SoftLabelParser(RunnableSerializable[PromptGeneration, LabelledItem]):
    """The ``mix`` family's parser for one item: text and soft label of a generation.

    The distribution over the verbalizer words is read from the logprobs captured
    at the generated label position. When that position can't be found or a label
    word is missing from the top-k, the label words are scored after
    ``prompt + " " + text + " (<Label type>:"`` by ``scorer``; without a scorer the
    words seen are renormalised (``soft_label_source="partial"``).

    Example:
        >>> parser = SoftLabelParser(spec=get_spec("sst2"))  # doctest: +SKIP
        >>> (prompt | generate_with_logprobs(llm) | parser).invoke({"anchors": anchors})
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: TaskSpec
    scorer: Any = Field(default=None, exclude=True)
    """A :class:`~mixaug.softlabels.LabelScorer` for the fallback pass, or ``None``."""

    @override
    def invoke(
        self, input: PromptGeneration, config: RunnableConfig | None = None, **kwargs: Any
    ) -> LabelledItem:
        return self._call_with_config(self._parse, input, config)

    def _parse(self, pg: PromptGeneration) -> LabelledItem:
        return parse_generation("mix", self.spec, pg, self.scorer)[0]


def build_mix_chain(
    llm: BaseLanguageModel[Any],
    spec: TaskSpec,
    *,
    mode: Literal["auto", "chat", "completion"] = "auto",
    scorer: LabelScorer | Literal["auto"] | None = "auto",
    top_logprobs: int = 20,
    stop: Sequence[str] | None = None,
    concurrency: int | None = None,
    **kwargs: Any,
) -> Runnable[dict[str, Any], LabelledItem]:
    """The GPT3Mix chain: ``{"anchors": [...]}`` in, one soft-labelled item out.

    The ``mix`` family's chain (the one ``augment`` runs) with a one-item parser; the
    arguments are :func:`~mixaug.chains.families.build_family_chain`'s.

    Example:
        >>> from mixaug import TransformersLLM, get_spec
        >>> chain = build_mix_chain(TransformersLLM(), get_spec("sst2"))  # doctest: +SKIP
        >>> chain.invoke({"anchors": [{"text": "a gem", "label": "positive"},
        ...                           {"text": "a mess", "label": "negative"}]})  # doctest: +SKIP
        LabelledItem(text='...', soft_label={'positive': 0.7, 'negative': 0.3}, ...)
    """
    prompt, step, scorer_ = family_steps(
        llm,
        spec,
        "mix",
        mode=mode,
        scorer=scorer,
        top_logprobs=top_logprobs,
        stop=stop,
        concurrency=concurrency,
        **kwargs,
    )
    return prompt | step | bounded(SoftLabelParser(spec=spec, scorer=scorer_), concurrency)
