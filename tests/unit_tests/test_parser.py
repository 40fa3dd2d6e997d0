import pytest

from mixaug import ParseFailure, get_spec, parse_continuation

SST2 = get_spec("sst2")


def test_completion_form() -> None:
    c = " a fine , funny film (Sentiment: positive)"
    p = parse_continuation(c, SST2)
    assert (p.text, p.word) == ("a fine , funny film", "positive")
    assert c[p.label_start :] == " positive)"


def test_chat_reply_repeating_the_prefix() -> None:
    c = "Movie review: a dull film (Sentiment: Negative)"
    p = parse_continuation(c, SST2)
    assert (p.text, p.word) == ("a dull film", "Negative")
    assert SST2.label_for_word(p.word) == "negative"


def test_leading_blank_lines_in_a_chat_reply() -> None:
    c = "\n\nMovie review: fun (Sentiment: positive)\nMovie review: more"
    p = parse_continuation(c, SST2)
    assert p.text == "fun"
    assert c[p.label_start :].startswith(" positive)")


def test_marker_inside_the_text_uses_the_last_one() -> None:
    c = " they said (Sentiment: bad) but it was good (Sentiment: positive)"
    p = parse_continuation(c, SST2)
    assert p.word == "positive"
    assert p.text == "they said (Sentiment: bad) but it was good"


def test_two_items_on_one_line_keeps_the_labelled_one() -> None:
    c = " first one. Movie review: second one (Sentiment: negative)"
    assert parse_continuation(c, SST2).text == "second one"


def test_label_without_closing_parenthesis() -> None:
    assert parse_continuation(" ok (Sentiment: positive", SST2).word == "positive"


@pytest.mark.parametrize(
    ("completion", "finish", "reason"),
    [
        (" a film with no label at all", "stop", "no_label"),
        (" a film that goes on and on", "length", "truncated"),
        (" (Sentiment: positive)", "stop", "empty_text"),
        ("Movie review: (Sentiment: positive)", "stop", "empty_text"),
        ("", "stop", "no_label"),
        (" unlabelled\n next (Sentiment: positive)", "stop", "no_label"),
    ],
)
def test_failures_have_reasons(completion: str, finish: str, reason: str) -> None:
    with pytest.raises(ParseFailure) as e:
        parse_continuation(completion, SST2, finish_reason=finish)
    assert e.value.reason == reason
    assert e.value.completion == completion


def test_other_specs_markers() -> None:
    p = parse_continuation(" Who wrote it ? (Type: human)", get_spec("trec6"))
    assert get_spec("trec6").label_for_word(p.word) == "HUM"
    p = parse_continuation(" Him went home . (Grammar: incorrect)", get_spec("cola"))
    assert get_spec("cola").label_for_word(p.word) == "unacceptable"
