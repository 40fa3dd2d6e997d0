"""Task specs: what the items are, what the label is, and how labels become words.

A :class:`TaskSpec` is the paper's S = (text type, label type, verbalizer). The
built-in specs follow Table 7 of Yoo et al. (2021).

Example:
    >>> spec = get_spec("sst2")
    >>> spec.header()[:60]
    'Each item in the following list contains a movie review and'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mixaug.errors import SpecError, describe_validation_error
from mixaug.yamlfile import read_yaml

#: Characters a verbalizer word may not contain: they delimit the prompt's fields.
FORBIDDEN_WORD_CHARS = ("(", ")", ":", "'", "\n", "\r")

#: Line breaks other than ``\n``: tokenizers and ``str.splitlines`` split on them.
LINE_BREAKS = frozenset("\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def bad_char(value: str, allow: str = "\t\n") -> str | None:
    """The first control character (C0, DEL, C1) or odd line break in ``value``.

    Example:
        >>> bad_char("ok\u2028no")
        '\u2028'
    """
    for ch in value:
        code = ord(ch)
        if ch in allow:
            continue
        if code < 32 or code == 0x7F or 0x80 <= code <= 0x9F or ch in LINE_BREAKS:
            return ch
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [x for v in value for x in _strings(v)]
    return []


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


_PLACEHOLDERS = {
    "text_type": "x",
    "Text_type": "x",
    "label_type": "x",
    "Label_type": "x",
    "choices": "x",
    "words": "x",
    "text_prefix": "x",
    "label_marker": "x",
    "text_key": "x",
    "label_key": "x",
    "text": "x",
    "n": "x",
    "word": "x",
    "first_word": "x",
    "first_share": "x",
    "second_word": "x",
    "second_share": "x",
}


class PromptTexts(BaseModel):
    """The words every prompt family uses, in the spec's language.

    Each may use the placeholders ``{text_type}``, ``{Text_type}`` (capitalised),
    ``{label_type}``, ``{Label_type}``, ``{choices}`` (the label words quoted and
    joined: ``'positive' or 'negative'``) and ``{words}`` (``positive, negative``);
    ``{text_prefix}`` (``Movie review:``), ``{label_marker}`` (``(Sentiment:``),
    ``{text_key}`` and ``{label_key}``;
    ``paraphrase`` also ``{text}``; ``instruct`` also ``{n}`` and ``{word}``;
    ``boundary`` also ``{first_word}``, ``{first_share}``, ``{second_word}`` and
    ``{second_share}``. Write them in another language and every family speaks it.

    Example:
        >>> PromptTexts(instruct="{word} {text_type} {n}개를 쓰세요.").instruct[:6]
        '{word} '
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: str = (
        "Each item in the following list contains a {text_type} and the respective "
        "{label_type}. {Label_type} is one of {choices}."
    )
    """The mix (GPT3Mix) header line."""
    system: str = (
        "You extend a list of labelled examples for a data set. Reply with exactly one "
        "new item on a single line, in the same format as the items in the list: "
        "'{text_prefix} <a new {text_type}> {label_marker} <{label_type}>)'."
    )
    """The chat system turn of ``mix`` and ``boundary``."""
    paraphrase_system: str = (
        "You rewrite {text_type}s. Reply with the new {text_type} only, on a single line."
    )
    fewshot_system: str = (
        "You extend a labelled data set. Reply with one new item: a line "
        "'{text_key} <a new {text_type}>' and then a line '{label_key} <one of {words}>'."
    )
    or_word: str = "or"
    """Joins the last two label words in ``{choices}``."""
    paraphrase: str = "Write a new {text_type} with the same meaning as: '{text}'"
    instruct: str = "Write {n} {text_type}s whose {label_type} is {word}."
    instruct_system: str = (
        "You write realistic, varied {text_type}s for a data set. Reply with a numbered "
        "list, one {text_type} per line, and nothing else."
    )
    """The system turn of ``instruct`` in chat mode (the persona)."""
    boundary: str = (
        "Write a new {text_type} that is {first_share}% {first_word} and "
        "{second_share}% {second_word}."
    )
    task: str = "Classify the {label_type} of each {text_type}."
    """The few-shot template's ``Task:`` line."""
    context: str = "{Text_type}s, each labelled with its {label_type}."
    """The few-shot template's ``Context:`` line."""
    task_key: str = "Task:"
    classes_key: str = "Classes:"
    context_key: str = "Context:"
    examples_key: str = "Labeled examples:"
    text_key: str = "Text:"
    label_key: str = "Label:"

    @model_validator(mode="after")
    def _check(self) -> PromptTexts:
        for name, value in self.model_dump().items():
            if not value.strip():
                msg = f"prompts.{name} must not be empty"
                raise SpecError(msg)
            try:
                value.format(**_PLACEHOLDERS)
            except (KeyError, IndexError, ValueError) as e:
                known = ", ".join("{" + k + "}" for k in _PLACEHOLDERS)
                msg = f"prompts.{name} has a bad placeholder ({e}); use only {known}"
                raise SpecError(msg) from None
        for name in ("text_key", "label_key"):
            if "\n" in getattr(self, name):
                msg = f"prompts.{name} must be on one line"
                raise SpecError(msg)
        return self


class TaskSpec(BaseModel):
    """A GPT3Mix task specification.

    Example:
        >>> TaskSpec(text_type="question", label_type="type",
        ...          verbalizer={"LOC": "location", "HUM": "human"}).words
        ['location', 'human']
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    """Short name of the task (for records and summaries)."""
    text_type: str = Field(min_length=1)
    """What an item is, e.g. ``"movie review"``."""
    label_type: str = Field(min_length=1)
    """What the label is, e.g. ``"sentiment"``."""
    verbalizer: dict[str, str] | None = None
    """Label -> word shown to the model. ``None`` means identity over ``labels``."""
    labels: list[str] | None = None
    """Labels of an identity-verbalizer spec (``generic``); inferred from data if unset."""
    prompts: PromptTexts = Field(default_factory=PromptTexts)
    """The prompts' words (English by default; write them in the data's language)."""

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        for value in _strings(self.model_dump()):
            ch = bad_char(value)
            if ch is not None:
                msg = (
                    f"Task spec {self.name!r}: {value!r} contains the character "
                    f"U+{ord(ch):04X} (a control character or line break other than \\n); "
                    "remove it."
                )
                raise SpecError(msg)
        for field in ("text_type", "label_type"):
            value = getattr(self, field)
            if not value.strip() or any(c in value for c in ("(", ")", ":", "\n")):
                msg = (
                    f"Task spec {self.name!r}: {field} must be non-empty and free of "
                    f"'(', ')', ':' and newlines, but got {value!r}."
                )
                raise SpecError(msg)
        if self.verbalizer is not None:
            self._check_verbalizer(self.verbalizer)
        if self.labels is not None and self.verbalizer is None:
            TaskSpec(
                name=self.name,
                text_type=self.text_type,
                label_type=self.label_type,
                verbalizer={lab: lab for lab in self.labels},
            )
        return self

    def _check_verbalizer(self, verbalizer: dict[str, str]) -> None:
        """Two labels or more, each with its own non-empty word free of delimiters."""
        if len(verbalizer) < 2:
            msg = (
                f"Task spec {self.name!r}: the verbalizer needs at least two labels, "
                f"but got {verbalizer!r}."
            )
            raise SpecError(msg)
        seen: dict[str, str] = {}
        for label, word in verbalizer.items():
            if not isinstance(word, str) or not word.strip():
                msg = (
                    f"Task spec {self.name!r}: label {label!r} maps to an empty word; "
                    "give every label a non-empty word."
                )
                raise SpecError(msg)
            if word != word.strip():
                msg = (
                    f"Task spec {self.name!r}: the word for label {label!r} has "
                    f"leading or trailing spaces ({word!r}); remove them."
                )
                raise SpecError(msg)
            bad = [c for c in FORBIDDEN_WORD_CHARS if c in word]
            if bad:
                msg = (
                    f"Task spec {self.name!r}: the word {word!r} for label {label!r} "
                    f"contains {''.join(bad)!r}, which delimits the prompt; choose a "
                    "word without ( ) : ' or newlines."
                )
                raise SpecError(msg)
            key = word.lower()
            if key in seen:
                msg = (
                    f"Task spec {self.name!r}: labels {seen[key]!r} and {label!r} both "
                    f"map to the word {word!r}; each label needs its own word."
                )
                raise SpecError(msg)
            seen[key] = label

    # -- derived views -----------------------------------------------------
    @property
    def is_identity(self) -> bool:
        """Whether labels are shown to the model as themselves."""
        return self.verbalizer is None

    def with_labels(self, labels: list[str]) -> TaskSpec:
        """Return this spec with an identity verbalizer over ``labels`` if it has none.

        Raises:
            SpecError: if the labels are not valid words.
        """
        if self.verbalizer is not None:
            return self
        return TaskSpec(**{**self.model_dump(), "labels": list(labels)})

    @property
    def mapping(self) -> dict[str, str]:
        """Label -> word, identity when the spec has no verbalizer."""
        if self.verbalizer is not None:
            return dict(self.verbalizer)
        if self.labels is None:
            msg = (
                f"Task spec {self.name!r} has no verbalizer and no labels yet; "
                "call spec.with_labels(...) or load data first."
            )
            raise SpecError(msg)
        return {lab: lab for lab in self.labels}

    @property
    def label_names(self) -> list[str]:
        """Labels in verbalizer order."""
        return list(self.mapping)

    @property
    def words(self) -> list[str]:
        """Verbalizer words in label order."""
        return list(self.mapping.values())

    def word_for(self, label: str) -> str:
        """The word for ``label``.

        Raises:
            SpecError: if the label is not in the spec.
        """
        mapping = self.mapping
        if label not in mapping:
            msg = (
                f"Label {label!r} is not one of task {self.name!r}'s labels "
                f"{sorted(mapping)}; fix the data or use a spec that lists it."
            )
            raise SpecError(msg)
        return mapping[label]

    def label_for_word(self, word: str) -> str | None:
        """The label whose word is ``word`` (case-insensitive), or ``None``."""
        key = word.strip().lower()
        for label, w in self.mapping.items():
            if w.lower() == key:
                return label
        return None

    @property
    def text_prefix(self) -> str:
        """``"Movie review:"``: what starts each item line."""
        return f"{_cap(self.text_type)}:"

    @property
    def label_marker(self) -> str:
        """``"(Sentiment:"``: what opens the label at the end of an item line."""
        return f"({_cap(self.label_type)}:"

    def fill(self, template: str, **values: Any) -> str:
        """``template`` with the spec's placeholders (and ``values``) filled in."""
        quoted = [f"'{w}'" for w in self.words]
        joiner = f" {self.prompts.or_word} "
        choices = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + joiner + quoted[-1]
        return template.format(
            **{
                "text_type": self.text_type,
                "Text_type": _cap(self.text_type),
                "label_type": self.label_type,
                "Label_type": _cap(self.label_type),
                "choices": choices,
                "words": ", ".join(self.words),
                "text_prefix": self.text_prefix,
                "label_marker": self.label_marker,
                "text_key": self.prompts.text_key,
                "label_key": self.prompts.label_key,
                **values,
            }
        )

    def header(self) -> str:
        """The paper's header line listing the label words."""
        return self.fill(self.prompts.header)

    def item_line(self, text: str, label: str) -> str:
        """One anchor line: ``Movie review: <text> (Sentiment: <word>)``."""
        return f"{self.text_prefix} {text} {self.label_marker} {self.word_for(label)})"


def _builtin() -> dict[str, TaskSpec]:
    sentiment = {"positive": "positive", "negative": "negative"}
    return {
        "sst2": TaskSpec(
            name="sst2", text_type="movie review", label_type="sentiment", verbalizer=sentiment
        ),
        "cr": TaskSpec(
            name="cr", text_type="customer review", label_type="sentiment", verbalizer=sentiment
        ),
        "mpqa": TaskSpec(
            name="mpqa", text_type="text", label_type="sentiment", verbalizer=sentiment
        ),
        "subj": TaskSpec(
            name="subj",
            text_type="text",
            label_type="objective",
            verbalizer={"subjective": "no", "objective": "yes"},
        ),
        "cola": TaskSpec(
            name="cola",
            text_type="text",
            label_type="grammar",
            verbalizer={"acceptable": "correct", "unacceptable": "incorrect"},
        ),
        "trec6": TaskSpec(
            name="trec6",
            text_type="question",
            label_type="type",
            verbalizer={
                "ABBR": "abbreviation",
                "DESC": "description",
                "ENTY": "entity",
                "HUM": "human",
                "LOC": "location",
                "NUM": "numeric",
            },
        ),
        "generic": TaskSpec(name="generic", text_type="text", label_type="label"),
    }


BUILTIN_SPECS: dict[str, TaskSpec] = _builtin()
"""The paper's specs (Table 7) plus ``generic`` (identity verbalizer)."""


def load_spec_yaml(path: str | Path) -> TaskSpec:
    """Load a user spec from YAML (keys: name, text_type, label_type, verbalizer).

    Raises:
        SpecError: if the file is missing, not YAML, or not a valid spec.
    """
    p = Path(path)
    raw: Any = read_yaml(p, "Task spec file", SpecError)
    if isinstance(raw, dict) and "task" in raw and isinstance(raw["task"], dict):
        raw = raw["task"]
    if not isinstance(raw, dict):
        msg = (
            f"Task spec file {str(p)!r} must hold a mapping with text_type, label_type "
            "and verbalizer."
        )
        raise SpecError(msg)
    raw.setdefault("name", p.stem)
    return spec_from_dict(raw, source=str(p))


def spec_from_dict(raw: dict[str, Any], *, source: str = "config") -> TaskSpec:
    """Validate a spec given as a mapping.

    Raises:
        SpecError: naming the offending field.
    """
    try:
        return TaskSpec.model_validate(raw)
    except SpecError:
        raise
    except ValidationError as e:
        problems = describe_validation_error(e)
        msg = f"Invalid task spec in {source}: {problems}."
        raise SpecError(msg) from None


def get_spec(name_or_path: str | Path | TaskSpec) -> TaskSpec:
    """A built-in spec by name, or a user spec from a YAML path.

    Raises:
        SpecError: for an unknown name (listing the valid ones) or a bad file.
    """
    if isinstance(name_or_path, TaskSpec):
        return name_or_path
    key = str(name_or_path)
    if key in BUILTIN_SPECS:
        return BUILTIN_SPECS[key]
    if key.endswith((".yaml", ".yml")) or Path(key).is_file():
        return load_spec_yaml(key)
    msg = (
        f"Unknown task {key!r}; use one of {', '.join(sorted(BUILTIN_SPECS))} "
        "or the path of a YAML spec file."
    )
    raise SpecError(msg)
