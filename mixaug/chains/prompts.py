"""The GPT3Mix prompt as LangChain prompt templates (completion and chat forms).

The templates take one input, ``anchors`` (a list of ``{"text", "label"}``), and
render the paper's prompt by plain concatenation: anchor texts are never parsed
as templates, so braces or delimiters inside them cannot break the prompt.

Example:
    >>> from mixaug.specs import get_spec
    >>> p = MixPromptTemplate(spec=get_spec("sst2"))
    >>> lines = p.format(anchors=[{"text": "a gem", "label": "positive"}]).splitlines()
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

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompts import BaseChatPromptTemplate, StringPromptTemplate
from pydantic import ConfigDict
from typing_extensions import override

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


class MixPromptTemplate(StringPromptTemplate):
    """GPT3Mix completion prompt: header, one line per anchor, then ``<Text type>:``.

    Example:
        >>> p = MixPromptTemplate(spec=get_spec("trec6"))
        >>> p.invoke({"anchors": [{"text": "Who ?", "label": "HUM"}]}).to_string()[-10:]
        'Question:'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: TaskSpec
    input_variables: list[str] = ["anchors"]

    @override
    def format(self, **kwargs: Any) -> str:
        kwargs = self._merge_partial_and_user_variables(**kwargs)
        return render_mix_prompt(self.spec, kwargs["anchors"])

    @property
    @override
    def _prompt_type(self) -> str:
        return "mixaug-mix"


class MixChatPromptTemplate(BaseChatPromptTemplate):
    """GPT3Mix chat prompt: a system instruction, then the paper's prompt as the user turn.

    Example:
        >>> msgs = MixChatPromptTemplate(spec=get_spec("sst2")).format_messages(anchors=[])
        >>> [m.type for m in msgs]
        ['system', 'human']
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: TaskSpec
    system: str | None = None
    """System instruction (default: the spec's ``prompts.system``); may use the spec's
    placeholders ({text_type}, {label_type}, {text_prefix}, {label_marker}, ...)."""
    input_variables: list[str] = ["anchors"]

    @override
    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        kwargs = self._merge_partial_and_user_variables(**kwargs)
        s = self.spec
        system = s.fill(self.system if self.system is not None else s.prompts.system)
        return [
            SystemMessage(content=system),
            HumanMessage(content=render_mix_prompt(s, kwargs["anchors"])),
        ]

    @property
    @override
    def _prompt_type(self) -> str:
        return "mixaug-mix-chat"
