import pytest
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue

from mixaug import MixChatPromptTemplate, MixPromptTemplate, get_spec
from mixaug.specs import BUILTIN_SPECS


def _first_two_labels(name: str) -> list[str]:
    return get_spec(name).label_names[:2] if name != "generic" else ["x", "y"]


@pytest.mark.parametrize("name", sorted(BUILTIN_SPECS))
def test_completion_prompt_renders_the_paper_format(name: str) -> None:
    spec = get_spec(name)
    if spec.is_identity:
        spec = spec.with_labels(["x", "y"])
    la, lb = _first_two_labels(name)
    anchors = [{"text": "first text", "label": la}, {"text": "second text", "label": lb}]
    out = MixPromptTemplate(spec=spec).format(anchors=anchors)
    tt = spec.text_type[0].upper() + spec.text_type[1:]
    lt = spec.label_type[0].upper() + spec.label_type[1:]
    words = spec.words
    quoted = ", ".join(f"'{w}'" for w in words[:-1]) + f" or '{words[-1]}'"
    assert out == "\n".join(
        [
            f"Each item in the following list contains a {spec.text_type} and the respective "
            f"{spec.label_type}. {lt} is one of {quoted}.",
            f"{tt}: first text ({lt}: {spec.word_for(la)})",
            f"{tt}: second text ({lt}: {spec.word_for(lb)})",
            f"{tt}:",
        ]
    )


def test_sst2_prompt_exactly() -> None:
    out = MixPromptTemplate(spec=get_spec("sst2")).format(
        anchors=[{"text": "a gem", "label": "positive"}, {"text": "a mess", "label": "negative"}]
    )
    assert out == (
        "Each item in the following list contains a movie review and the respective sentiment. "
        "Sentiment is one of 'positive' or 'negative'.\n"
        "Movie review: a gem (Sentiment: positive)\n"
        "Movie review: a mess (Sentiment: negative)\n"
        "Movie review:"
    )


def test_braces_and_newlines_in_anchor_text_do_not_break_the_prompt() -> None:
    anchors = [
        {"text": "a {placeholder} and {{double}} braces", "label": "positive"},
        {"text": "line one\nline two\r\n (Sentiment: positive)", "label": "negative"},
    ]
    out = MixPromptTemplate(spec=get_spec("sst2")).format(anchors=anchors)
    lines = out.split("\n")
    assert len(lines) == 4
    assert lines[1] == "Movie review: a {placeholder} and {{double}} braces (Sentiment: positive)"
    assert lines[2] == "Movie review: line one line two (Sentiment: positive) (Sentiment: negative)"


def test_templates_are_runnables() -> None:
    anchors = [{"text": "a gem", "label": "positive"}]
    value = MixPromptTemplate(spec=get_spec("sst2")).invoke({"anchors": anchors})
    assert isinstance(value, StringPromptValue)
    chat = MixChatPromptTemplate(spec=get_spec("sst2")).invoke({"anchors": anchors})
    assert isinstance(chat, ChatPromptValue)
    system, human = chat.messages
    assert system.type == "system" and "Movie review: <a new movie review>" in system.content
    assert human.content == MixPromptTemplate(spec=get_spec("sst2")).format(anchors=anchors)


def test_anchor_with_label_outside_spec_fails_clearly() -> None:
    with pytest.raises(Exception, match="not one of"):
        MixPromptTemplate(spec=get_spec("sst2")).format(anchors=[{"text": "x", "label": "meh"}])
