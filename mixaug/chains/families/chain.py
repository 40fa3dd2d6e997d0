"""One chain for every family: ``FamilyPromptTemplate | generation | FamilyParser``.

The template and the parser hold a family's name and ask the registry for it, so a
family registered later (:func:`~mixaug.chains.families.register_family`) works
everywhere these do.

Example:
    >>> from mixaug.specs import get_spec
    >>> p = FamilyPromptTemplate(spec=get_spec("sst2"), family="instruct")
    >>> p.format(anchors=[], target="positive", n=3).splitlines()
    ['Write 3 movie reviews whose sentiment is positive.', '1.']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from langchain_core.runnables.utils import Input, Output
from pydantic import ConfigDict, Field, field_validator
from typing_extensions import override

from mixaug.chains.families.base import PromptFamily, check_family, get_family
from mixaug.chains.generation import GenerationStep, generate_with_logprobs
from mixaug.chains.parser import PromptGeneration, read_soft_label
from mixaug.chains.prompts import _anchors, render_mix_prompt
from mixaug.errors import ParseFailure
from mixaug.records import LabelledItem
from mixaug.softlabels import LabelScorer
from mixaug.specs import TaskSpec

REQUEST_KEYS = ("anchors", "target", "shares", "n")
"""What a request may hold (by family)."""


def render_family_prompt(
    spec: TaskSpec, family: str, request: Mapping[str, Any], *, chat: bool = False
) -> str:
    """The prompt text of one request (for chat: the user turn).

    Example:
        >>> from mixaug.specs import get_spec
        >>> req = {"anchors": [{"text": "a gem", "label": "positive"}]}
        >>> render_family_prompt(get_spec("sst2"), "paraphrase", req).splitlines()
        ["Write a new movie review with the same meaning as: 'a gem'", 'Movie review:']
    """
    return get_family(family).render(spec, request, chat=chat)


class FamilyPromptValue(StringPromptValue):
    """A completion prompt that remembers the request it was made from."""

    request: dict[str, Any] = Field(default_factory=dict)
    family: str = "mix"


class FamilyChatPromptValue(ChatPromptValue):
    """A chat prompt that remembers the request it was made from."""

    request: dict[str, Any] = Field(default_factory=dict)
    family: str = "mix"


class FamilyPromptTemplate(BasePromptTemplate[str]):
    """The prompt of one family, completion or chat form.

    Input: a request, ``{"anchors": [...], "target": label, "shares": {...}, "n": N}``
    (keys by family). Output: a prompt value carrying the request.

    Example:
        >>> from mixaug.specs import get_spec
        >>> p = FamilyPromptTemplate(spec=get_spec("sst2"), family="fewshot")
        >>> p.format(anchors=[{"text": "a gem", "label": "positive"}]).splitlines()[-3:]
        ['Text: a gem', 'Label: positive', 'Text:']
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: TaskSpec
    family: str = "mix"
    chat: bool = False
    system: str | None = None
    """Chat system turn (default: the family's own; may use the spec's placeholders)."""
    input_variables: list[str] = ["anchors"]

    @field_validator("family")
    @classmethod
    def _known(cls, v: str) -> str:
        return check_family(v)

    def _system(self) -> str:
        s = self.spec
        if self.system is not None:
            return s.fill(self.system)
        return s.fill(getattr(s.prompts, get_family(self.family).system_text))

    @override
    def format_prompt(self, **kwargs: Any) -> PromptValue:
        request = self._merge_partial_and_user_variables(**kwargs)
        request = {k: v for k, v in request.items() if k in REQUEST_KEYS}
        request["anchors"] = [a.model_dump() for a in _anchors(request.get("anchors", []))]
        text = render_family_prompt(self.spec, self.family, request, chat=self.chat)
        if not self.chat:
            return FamilyPromptValue(text=text, request=request, family=self.family)
        messages: list[BaseMessage] = [
            SystemMessage(content=self._system()),
            HumanMessage(content=text),
        ]
        return FamilyChatPromptValue(messages=messages, request=request, family=self.family)

    @override
    async def aformat_prompt(self, **kwargs: Any) -> PromptValue:
        return self.format_prompt(**kwargs)

    @override
    def format(self, **kwargs: Any) -> str:
        return self.format_prompt(**kwargs).to_string()

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        """The prompt as chat messages (the completion form as one human turn)."""
        return self.format_prompt(**kwargs).to_messages()

    @property
    @override
    def _prompt_type(self) -> str:
        return f"mixaug-{self.family}"


@dataclass
class ParseContext:
    """One generation as a family's :meth:`~PromptFamily.parse` sees it."""

    spec: TaskSpec
    pg: PromptGeneration
    scorer: Any
    """A :class:`~mixaug.softlabels.LabelScorer` for scoring passes, or ``None``."""

    @property
    def completion(self) -> str:
        """The model's continuation."""
        return self.pg.completion_text

    @property
    def finish(self) -> str | None:
        """Why the model stopped (``length``: it hit its token limit)."""
        finish = self.pg.metadata.get("finish_reason")
        return None if finish is None else str(finish)

    @property
    def request(self) -> dict[str, Any]:
        """The request the prompt was made from."""
        return dict(getattr(self.pg.prompt, "request", {}) or {})

    @property
    def chat(self) -> bool:
        """Whether the prompt was a chat prompt."""
        return isinstance(self.pg.prompt, ChatPromptValue)

    def mix_prefix(self, text: str) -> str:
        """Where a text without a written label is scored: the mix prompt over its anchors."""
        base = render_mix_prompt(self.spec, self.request.get("anchors", []))
        return f"{base} {text} {self.spec.label_marker}"

    def item(
        self,
        text: str,
        *,
        word: str | None,
        label_start: int | None,
        prefix: str,
        generated: str | None,
        first: bool = True,
    ) -> LabelledItem:
        """An item with its soft label.

        The soft label is read at ``label_start`` if the model wrote one, else scored
        after ``prefix``. Tokens are counted on a prompt's ``first`` item only.
        """
        pg = self.pg
        soft, mass, source = read_soft_label(
            pg, self.spec, self.scorer, label_start=label_start, rescore_prefix=prefix, text=text
        )
        usage = pg.usage() if first else (0, 0)
        return LabelledItem(
            text=text,
            soft_label=soft,
            generated_label=generated,
            generated_word=word or None,
            label_mass=mass,
            soft_label_source=source,
            completion=pg.completion_text,
            prompt_tokens=usage[0],
            completion_tokens=usage[1],
        )

    def failure(self, reason: str, what: str) -> ParseFailure:
        """A :class:`ParseFailure`: ``truncated`` when the model hit its token limit."""
        if self.finish == "length":
            reason = "truncated"
        msg = f"{what} in continuation {self.completion[:200]!r}"
        return ParseFailure(reason=reason, message=msg, completion=self.completion)


class FamilyParser(RunnableSerializable[PromptGeneration, list[LabelledItem]]):
    """Turn one generation of any family into soft-labelled items (a list).

    ``instruct`` gives up to ``n`` items; the others one. Raises
    :class:`~mixaug.errors.ParseFailure` when no item can be read.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: TaskSpec
    family: str = "mix"
    scorer: Any = Field(default=None, exclude=True)
    """A :class:`~mixaug.softlabels.LabelScorer` for scoring passes, or ``None``."""

    @field_validator("family")
    @classmethod
    def _known(cls, v: str) -> str:
        return check_family(v)

    @override
    def invoke(
        self, input: PromptGeneration, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[LabelledItem]:
        return self._call_with_config(self._parse, input, config)

    def _parse(self, pg: PromptGeneration) -> list[LabelledItem]:
        return parse_generation(self.family, self.spec, pg, self.scorer)


def parse_generation(
    family: str, spec: TaskSpec, pg: PromptGeneration, scorer: Any = None
) -> list[LabelledItem]:
    """The items ``family`` reads from one generation (tokens kept on a failure)."""
    try:
        return get_family(family).parse(ParseContext(spec, pg, scorer))
    except ParseFailure as e:
        # A failed continuation still cost tokens: keep the count with the error.
        e.prompt_tokens, e.completion_tokens = pg.usage()
        raise


def family_steps(
    llm: BaseLanguageModel[Any],
    spec: TaskSpec,
    family: str = "mix",
    *,
    mode: Literal["auto", "chat", "completion"] = "auto",
    scorer: LabelScorer | Literal["auto"] | None = "auto",
    top_logprobs: int = 20,
    stop: Sequence[str] | None = None,
    concurrency: int | None = None,
    n_items: int = 5,
    **kwargs: Any,
) -> tuple[FamilyPromptTemplate, GenerationStep, LabelScorer | None]:
    """(prompt, generation step, scorer) of ``family`` on ``llm``: what its chains compose."""
    fam: PromptFamily = get_family(family)
    chat = isinstance(llm, BaseChatModel) if mode == "auto" else mode == "chat"
    local = "stop_after" in type(llm).model_fields
    max_tokens = getattr(llm, "max_tokens", None)
    for key, value in fam.call_options(
        spec, local=local, n_items=n_items, max_tokens=max_tokens
    ).items():
        kwargs.setdefault(key, value)
    if scorer == "auto":
        scorer = llm if isinstance(llm, LabelScorer) else None
    prompt = FamilyPromptTemplate(spec=spec, family=fam.name, chat=chat)
    step = generate_with_logprobs(
        llm,
        top_logprobs=top_logprobs,
        stop=fam.stop(spec, local=local, n_items=n_items) if stop is None else stop,
        concurrency=concurrency,
        **kwargs,
    )
    return prompt, step, scorer


def build_family_chain(
    llm: BaseLanguageModel[Any],
    spec: TaskSpec,
    family: str = "mix",
    *,
    mode: Literal["auto", "chat", "completion"] = "auto",
    scorer: LabelScorer | Literal["auto"] | None = "auto",
    top_logprobs: int = 20,
    stop: Sequence[str] | None = None,
    concurrency: int | None = None,
    n_items: int = 5,
    **kwargs: Any,
) -> Runnable[dict[str, Any], list[LabelledItem]]:
    """``prompt | generation | parser`` for one family: a request in, items out.

    Args:
        llm: any LangChain chat or completion model (logprobs, or a scorer).
        spec: the task spec (its ``prompts`` give the words).
        family: a registered family: ``mix``, ``paraphrase``, ``instruct``,
            ``fewshot``, ``boundary``, or one of your own.
        mode: prompt form; ``auto`` uses the chat form for chat models.
        scorer: scores label words where the model wrote none (``auto``: ``llm``
            itself when it can score). Without one, families that don't write a
            label need logprobs they can't get and fail with ``no_logprobs``.
        top_logprobs: alternatives requested per token.
        stop: stop strings (default: the family's).
        concurrency: one request per prompt with this many in flight (remote);
            the parser's scoring requests are held to the same number.
        n_items: items an ``instruct`` prompt asks for (scales ``max_tokens``).
        **kwargs: extra call arguments for the model.

    Returns:
        A runnable whose ``batch`` sends all prompts in one model call; use
        ``return_exceptions=True`` to get :class:`~mixaug.errors.ParseFailure` per item.

    Example:
        >>> chain = build_family_chain(llm, get_spec("sst2"), "paraphrase")  # doctest: +SKIP
        >>> chain.invoke({"anchors": [{"text": "a gem", "label": "positive"}]})  # doctest: +SKIP
        [LabelledItem(text='a real treasure', soft_label={'positive': 0.93, ...}, ...)]
    """
    prompt, step, scorer_ = family_steps(
        llm,
        spec,
        family,
        mode=mode,
        scorer=scorer,
        top_logprobs=top_logprobs,
        stop=stop,
        concurrency=concurrency,
        n_items=n_items,
        **kwargs,
    )
    parser = FamilyParser(spec=spec, family=prompt.family, scorer=scorer_)
    return prompt | step | bounded(parser, concurrency)


def bounded(parser: Runnable[Input, Output], concurrency: int | None) -> Runnable[Input, Output]:
    """``parser`` whose ``batch`` parses at most ``concurrency`` generations at once.

    Parsing may score label words through the provider (one request each), so a
    chain's ``concurrency`` bounds those requests too; ``None`` leaves LangChain's
    default (a local scorer sends no requests).
    """
    return parser if concurrency is None else parser.with_config(max_concurrency=concurrency)
