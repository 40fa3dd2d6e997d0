"""Prompt families: five ways to ask a model for labelled data, on one footing.

- ``mix``: GPT3Mix (k anchors, the model writes an item and its label);
- ``paraphrase``: one anchor, "write a new <text type> with the same meaning as"
  (the label is carried over and re-scored as a soft label);
- ``instruct``: zero-shot "write N <text type>s whose <label type> is <word>", per
  class, parsed into one record per list item;
- ``fewshot``: a ``Task:``/``Classes:``/``Context:``/``Labeled examples:`` template
  with ``Text:``/``Label:`` pairs, then a new item and its label;
- ``boundary``: PromptMix-style, anchors of two classes and a request for an item that
  mixes them in given shares, relabelled by soft labels.

Every family is a LangChain prompt template (completion and chat forms) plus a
parser, composed as ``prompt | generation | parser``; each request is a dict with
``anchors`` and, by family, ``target`` (a label) or ``shares`` (label -> percent).
The prompt's value carries its request to the parser, so the chain stays a plain
sequence whose ``batch`` sends one batched model call. Soft labels are read where the
model wrote a label (``mix``, ``fewshot``, and ``boundary`` when it labels its item);
otherwise the label words are scored after the mix prompt over the request's anchors.
Every word comes from the spec's :class:`~mixaug.specs.PromptTexts`, so a spec written
in another language gives prompts in that language.

Example:
    >>> from mixaug.specs import get_spec
    >>> p = FamilyPromptTemplate(spec=get_spec("sst2"), family="instruct")
    >>> p.format(anchors=[], target="positive", n=3).splitlines()
    ['Write 3 movie reviews whose sentiment is positive.', '1.']
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field
from typing_extensions import override

from mixaug.chains.mix import generate_with_logprobs, label_end_pattern
from mixaug.chains.parser import (
    PromptGeneration,
    parse_continuation,
    read_soft_label,
)
from mixaug.chains.prompts import _anchors, clean_text, render_mix_prompt
from mixaug.config import PromptFamily
from mixaug.errors import ConfigError, ParseFailure
from mixaug.records import Example, LabelledItem
from mixaug.softlabels import LabelScorer
from mixaug.specs import TaskSpec

Family = PromptFamily
FAMILIES: tuple[Family, ...] = get_args(PromptFamily)

_NUMBERED = re.compile(r"^\s*(?:\(?\d{1,3}[.):]|[-*•])\s*(.*)$")


def check_family(name: str) -> Family:
    """``name`` as a family, or a :class:`~mixaug.errors.ConfigError` listing them."""
    if name not in FAMILIES:
        msg = f"Unknown prompt family {name!r}; use one of {', '.join(FAMILIES)}."
        raise ConfigError(msg)
    return name


def anchors_per_prompt(family: str, k: int) -> int:
    """How many anchors a request of ``family`` holds (``paraphrase``: 1; ``boundary``: 2)."""
    return {"paraphrase": 1, "boundary": 2}.get(family, k)


def items_per_prompt(family: str, n_items: int) -> int:
    """Items one prompt asks for (``instruct``: ``n_items``; the others: 1)."""
    return n_items if family == "instruct" else 1


# -- rendering -------------------------------------------------------------------------


def _shares(request: Mapping[str, Any]) -> list[tuple[str, int]]:
    shares = request.get("shares") or {}
    return sorted(((str(k), int(v)) for k, v in shares.items()), key=lambda kv: -kv[1])


def _boundary_line(spec: TaskSpec, request: Mapping[str, Any]) -> str:
    (first, a), (second, b) = _shares(request)[:2]
    return spec.fill(
        spec.prompts.boundary,
        first_word=spec.word_for(first),
        first_share=a,
        second_word=spec.word_for(second),
        second_share=b,
    )


def _fewshot_body(spec: TaskSpec, anchors: Sequence[Example]) -> list[str]:
    t = spec.prompts
    lines = [
        f"{t.task_key} {spec.fill(t.task)}",
        f"{t.classes_key} {spec.fill('{words}')}",
        f"{t.context_key} {spec.fill(t.context)}",
        t.examples_key,
    ]
    for a in anchors:
        lines += [f"{t.text_key} {clean_text(a.text)}", f"{t.label_key} {spec.word_for(a.label)}"]
    return lines


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
    anchors = _anchors(request.get("anchors", []))
    t = spec.prompts
    if family == "mix":
        return render_mix_prompt(spec, anchors)
    if family == "paraphrase":
        if len(anchors) != 1:
            msg = f"a paraphrase request needs exactly one anchor, got {len(anchors)}"
            raise ValueError(msg)
        line = spec.fill(t.paraphrase, text=clean_text(anchors[0].text))
        return line if chat else f"{line}\n{spec.text_prefix}"
    if family == "instruct":
        target = request.get("target")
        if target is None:
            msg = "an instruct request needs a 'target' label"
            raise ValueError(msg)
        n = int(request.get("n", 1))
        line = spec.fill(t.instruct, n=n, word=spec.word_for(str(target)))
        return line if chat else f"{line}\n1."
    if family == "fewshot":
        return "\n".join([*_fewshot_body(spec, anchors), t.text_key])
    if family == "boundary":
        lines = [spec.header()]
        lines += [spec.item_line(clean_text(a.text), a.label) for a in anchors]
        lines += [_boundary_line(spec, request), spec.text_prefix]
        return "\n".join(lines)
    check_family(family)
    raise AssertionError  # pragma: no cover


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
    family: Family = "mix"
    chat: bool = False
    system: str | None = None
    """Chat system turn (default: the family's own; may use the spec's placeholders)."""
    input_variables: list[str] = ["anchors"]

    def _system(self) -> str:
        s, t = self.spec, self.spec.prompts
        if self.system is not None:
            return s.fill(self.system)
        own = {
            "instruct": t.instruct_system,
            "paraphrase": t.paraphrase_system,
            "fewshot": t.fewshot_system,
        }
        return s.fill(own.get(self.family, t.system))

    @override
    def format_prompt(self, **kwargs: Any) -> PromptValue:
        request = self._merge_partial_and_user_variables(**kwargs)
        request = {k: v for k, v in request.items() if k in ("anchors", "target", "shares", "n")}
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

    @property
    @override
    def _prompt_type(self) -> str:
        return f"mixaug-{self.family}"


# -- parsing ---------------------------------------------------------------------------


def _strip_item(text: str, spec: TaskSpec) -> str:
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


def _first_line(completion: str) -> str | None:
    for line in completion.split("\n"):
        if line.strip():
            return line
    return None


def parse_list(completion: str, spec: TaskSpec, *, n: int, leading_item: bool) -> list[str]:
    """The items of a numbered (or bulleted) list, at most ``n``.

    ``leading_item``: the prompt ended with ``1.``, so the first line is item 1 without
    its number (completion form).
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
        text = _strip_item(text, spec)
        if text:
            items.append(text)
        if len(items) >= n:
            break
    return items


def _parse_fewshot(completion: str, spec: TaskSpec, finish: str | None) -> tuple[str, str, int]:
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


class FamilyParser(RunnableSerializable[PromptGeneration, list[LabelledItem]]):
    """Turn one generation of any family into soft-labelled items (a list).

    ``instruct`` gives up to ``n`` items; the others one. Raises
    :class:`~mixaug.errors.ParseFailure` when no item can be read.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: TaskSpec
    family: Family = "mix"
    scorer: Any = Field(default=None, exclude=True)
    """A :class:`~mixaug.softlabels.LabelScorer` for scoring passes, or ``None``."""

    @override
    def invoke(
        self, input: PromptGeneration, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[LabelledItem]:
        return self._call_with_config(self._parse, input, config)

    def _parse(self, pg: PromptGeneration) -> list[LabelledItem]:
        try:
            return self._items(pg)
        except ParseFailure as e:
            e.prompt_tokens, e.completion_tokens = pg.usage()
            raise

    def _request(self, pg: PromptGeneration) -> dict[str, Any]:
        return dict(getattr(pg.prompt, "request", {}) or {})

    def _label_prefix(self, request: Mapping[str, Any], text: str) -> str:
        """Where a text without a written label is scored: the mix prompt over its anchors."""
        spec = self.spec
        base = render_mix_prompt(spec, request.get("anchors", []))
        return f"{base} {text} {spec.label_marker}"

    def _item(
        self,
        pg: PromptGeneration,
        text: str,
        *,
        word: str | None,
        label_start: int | None,
        prefix: str,
        generated: str | None,
        usage: tuple[int, int],
    ) -> LabelledItem:
        soft, mass, source = read_soft_label(
            pg, self.spec, self.scorer, label_start=label_start, rescore_prefix=prefix, text=text
        )
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

    def _items(self, pg: PromptGeneration) -> list[LabelledItem]:
        spec, family = self.spec, self.family
        completion = pg.completion_text
        finish = pg.metadata.get("finish_reason")
        request = self._request(pg)
        usage = pg.usage()
        chat = isinstance(pg.prompt, ChatPromptValue)
        if family in ("mix", "boundary"):
            try:
                parsed = parse_continuation(completion, spec, finish_reason=finish)
            except ParseFailure as e:
                line = _first_line(completion)
                if family == "mix" or e.reason != "no_label" or line is None:
                    raise
                # PromptMix relabels anyway: an unlabelled line is scored.
                text = _strip_item(line, spec)
                if not text:
                    raise
                return [
                    self._item(
                        pg,
                        text,
                        word=None,
                        label_start=None,
                        prefix=self._label_prefix(request, text),
                        generated=_majority(request),
                        usage=usage,
                    )
                ]
            word = parsed.word
            generated = spec.label_for_word(word) if word else None
            if family == "boundary" and generated is None:
                generated = _majority(request)
            return [
                self._item(
                    pg,
                    parsed.text,
                    word=word,
                    label_start=parsed.label_start,
                    prefix=f"{pg.prompt_text} {parsed.text} {spec.label_marker}",
                    generated=generated,
                    usage=usage,
                )
            ]
        if family == "fewshot":
            text, word, start = _parse_fewshot(completion, spec, finish)
            text = _strip_item(text, spec)
            return [
                self._item(
                    pg,
                    text,
                    word=word,
                    label_start=start,
                    prefix=f"{pg.prompt_text} {text}\n{spec.prompts.label_key}",
                    generated=spec.label_for_word(word) if word else None,
                    usage=usage,
                )
            ]
        target = request.get("target")
        if family == "paraphrase":
            anchors = request.get("anchors") or [{}]
            target = anchors[0].get("label")
            line = _first_line(completion)
            text = _strip_item(line, spec) if line is not None else ""
            if not text:
                reason = "truncated" if finish == "length" else "empty_text"
                msg = f"no paraphrase in continuation {completion[:200]!r}"
                raise ParseFailure(reason=reason, message=msg, completion=completion)
            texts = [text]
        else:  # instruct
            n = int(request.get("n", 1))
            texts = parse_list(completion, spec, n=n, leading_item=not chat)
            if not texts:
                reason = "truncated" if finish == "length" else "no_items"
                msg = f"no list items in continuation {completion[:200]!r}"
                raise ParseFailure(reason=reason, message=msg, completion=completion)
        out: list[LabelledItem] = []
        first_error: ParseFailure | None = None
        for text in texts:
            try:
                item = self._item(
                    pg,
                    text,
                    word=None,
                    label_start=None,
                    prefix=self._label_prefix(request, text),
                    generated=None if target is None else str(target),
                    # Tokens are counted once, on the first item of a prompt.
                    usage=(0, 0) if out else usage,
                )
            except ParseFailure as e:  # one bad item of a list loses only itself
                first_error = first_error or e
                continue
            out.append(item)
        if not out and first_error is not None:
            raise first_error
        return out


def _majority(request: Mapping[str, Any]) -> str | None:
    shares = _shares(request)
    return shares[0][0] if shares else None


# -- requests --------------------------------------------------------------------------


def plan_requests(
    family: str,
    anchor_sets: Sequence[Sequence[Mapping[str, Any]]],
    *,
    spec: TaskSpec,
    pool: Sequence[Example],
    counts: Mapping[str, int] | None = None,
    n_items: int = 5,
    shares: Sequence[int] = (50, 70),
    seed: int = 0,
    batch_no: int = 0,
) -> list[dict[str, Any]]:
    """One request per anchor set, as ``family`` needs it.

    - ``instruct``: each request asks for ``n_items`` items of the label with the
      fewest records so far (``counts``, updated as requests are planned);
    - ``boundary``: the two anchors are made to differ in label (the second is
      redrawn from ``pool`` when needed) and the first gets a share drawn from
      ``shares`` (percent), the second the rest;
    - the others: the anchors as they are.

    Deterministic in (``seed``, ``batch_no``) and the anchor sets, so a resumed run
    plans the same requests.
    """
    labels = spec.label_names
    requests: list[dict[str, Any]] = []
    filled = Counter({lab: 0 for lab in labels})
    filled.update(counts or {})
    for i, anchors in enumerate(anchor_sets):
        req: dict[str, Any] = {"anchors": [dict(a) for a in anchors]}
        if family == "instruct":
            target = min(labels, key=lambda lab: (filled[lab], labels.index(lab)))
            filled[target] += n_items
            req |= {"target": target, "n": n_items}
        elif family == "boundary":
            rng = random.Random(f"{seed}-{batch_no}-{i}")
            a = req["anchors"]
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
            req["anchors"] = a[:2]
            req["shares"] = {a[0]["label"]: first, a[1]["label"]: 100 - first}
        requests.append(req)
    return requests


def target_of(family: str, request: Mapping[str, Any]) -> dict[str, float] | None:
    """What a request asked for, as label -> share (``None`` for mix and fewshot)."""
    if family == "instruct" and request.get("target") is not None:
        return {str(request["target"]): 1.0}
    if family == "paraphrase" and request.get("anchors"):
        return {str(request["anchors"][0]["label"]): 1.0}
    if family == "boundary" and request.get("shares"):
        return {k: round(v / 100, 4) for k, v in request["shares"].items()}
    return None


# -- chain -----------------------------------------------------------------------------


def build_family_chain(
    llm: BaseLanguageModel[Any],
    spec: TaskSpec,
    family: Family = "mix",
    *,
    mode: Literal["auto", "chat", "completion"] = "auto",
    scorer: LabelScorer | Literal["auto"] | None = "auto",
    top_logprobs: int = 20,
    concurrency: int | None = None,
    n_items: int = 5,
    **kwargs: Any,
) -> Runnable[dict[str, Any], list[LabelledItem]]:
    """``prompt | generation | parser`` for one family: a request in, items out.

    Args:
        llm: any LangChain chat or completion model (logprobs, or a scorer).
        spec: the task spec (its ``prompts`` give the words).
        family: ``mix``, ``paraphrase``, ``instruct``, ``fewshot`` or ``boundary``.
        mode: prompt form; ``auto`` uses the chat form for chat models.
        scorer: scores label words where the model wrote none (``auto``: ``llm``
            itself when it can score). Without one, families that don't write a
            label need logprobs they can't get and fail with ``no_logprobs``.
        top_logprobs: alternatives requested per token.
        concurrency: one request per prompt with this many in flight (remote).
        n_items: items an ``instruct`` prompt asks for (scales ``max_tokens``).
        **kwargs: extra call arguments for the model.

    Example:
        >>> chain = build_family_chain(llm, get_spec("sst2"), "paraphrase")  # doctest: +SKIP
        >>> chain.invoke({"anchors": [{"text": "a gem", "label": "positive"}]})  # doctest: +SKIP
        [LabelledItem(text='a real treasure', soft_label={'positive': 0.93, ...}, ...)]
    """
    family = check_family(family)
    chat = isinstance(llm, BaseChatModel) if mode == "auto" else mode == "chat"
    local = "stop_after" in type(llm).model_fields
    t = spec.prompts
    stop: list[str]
    if family == "instruct":
        stop = ["\n\n", f"\n{n_items + 1}."]
        per_item = getattr(llm, "max_tokens", None) or 100
        kwargs.setdefault("max_tokens", int(per_item) * n_items)
    elif family == "fewshot":
        stop = [f"\n{t.text_key}", "\n\n"]
        if local:
            kwargs.setdefault("stop_after", [r"(?i)\n\s*" + re.escape(t.label_key) + r"[^\n]*\n"])
    else:
        stop = ["\n"]
        if local and family in ("mix", "boundary"):
            kwargs.setdefault("stop_after", [label_end_pattern(spec)])
    if scorer == "auto":
        scorer = llm if isinstance(llm, LabelScorer) else None
    prompt = FamilyPromptTemplate(spec=spec, family=family, chat=chat)
    step = generate_with_logprobs(
        llm, top_logprobs=top_logprobs, stop=stop, concurrency=concurrency, **kwargs
    )
    return prompt | step | FamilyParser(spec=spec, family=family, scorer=scorer)
