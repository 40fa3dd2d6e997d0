import math

import pytest

from mixaug.softlabels import (
    TokenLP,
    label_position,
    normalise,
    rescore_word_probs,
    tokens_from_logprobs,
    word_probs_from_top,
)


def test_chat_shape() -> None:
    lp = {
        "content": [
            {"token": " a", "logprob": -0.1, "top_logprobs": [{"token": " a", "logprob": -0.1}]},
            {"token": "!", "logprob": -2.0, "top_logprobs": []},
        ]
    }
    toks = tokens_from_logprobs(lp)
    assert toks == [TokenLP(" a", -0.1, {" a": -0.1}), TokenLP("!", -2.0, {})]
    assert tokens_from_logprobs(lp["content"]) == toks


def test_completion_shape() -> None:
    lp = {
        "tokens": [" x", " y"],
        "token_logprobs": [-1.0, None],
        "top_logprobs": [{" x": -1.0, " z": -1.5}, None],
        "text_offset": [0, 2],
    }
    toks = tokens_from_logprobs(lp)
    assert toks is not None
    assert toks[0] == TokenLP(" x", -1.0, {" x": -1.0, " z": -1.5})
    assert math.isnan(toks[1].logprob) and toks[1].top == {}


@pytest.mark.parametrize("empty", [None, {}, [], {"content": []}, {"content": None}, "junk"])
def test_missing_logprobs(empty: object) -> None:
    assert tokens_from_logprobs(empty) is None


def _toks(pieces: list[str]) -> list[TokenLP]:
    return [TokenLP(p, -1.0, {}) for p in pieces]


def test_label_position_clean_and_spanning() -> None:
    text = " good (Sentiment: positive)"
    start = text.index(":") + 1
    assert (
        label_position(_toks([" good", " (", "Sentiment", ":", " positive", ")"]), text, start) == 4
    )
    # A token spanning ':' and the word has no clean position.
    assert (
        label_position(_toks([" good", " (", "Sentiment", ": positive", ")"]), text, start) is None
    )
    # Tokens that don't spell the text are not trusted.
    assert label_position(_toks([" bad", " (", "Sentiment", ":", " positive"]), text, start) is None


def test_word_probs_sum_case_variants_and_report_found() -> None:
    top = {" positive": math.log(0.5), " Positive": math.log(0.2), " negative": math.log(0.1)}
    probs, found = word_probs_from_top(top, ["positive", "negative", "neutral"])
    assert probs["positive"] == pytest.approx(0.7)
    assert probs["negative"] == pytest.approx(0.1)
    assert probs["neutral"] == 0.0
    assert found == {"positive", "negative"}


def test_normalise_keeps_mass() -> None:
    dist, mass = normalise({"a": 0.6, "b": 0.2})
    assert dist == pytest.approx({"a": 0.75, "b": 0.25})
    assert mass == pytest.approx(0.8)
    with pytest.raises(ValueError, match="no probability mass"):
        normalise({"a": 0.0, "b": 0.0})


class TableScorer:
    """Scores continuations from a table of token logprobs (multi-token words summed)."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.calls: list[tuple[str, list[str]]] = []

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        self.calls.append((prefix, continuations))
        return [self.table.get(c, -math.inf) for c in continuations]


def test_rescore_multi_token_words() -> None:
    # " abbreviation" as two tokens: log p = log(0.1) + log(0.5) given to the whole word.
    scorer = TableScorer(
        {
            " abbreviation": math.log(0.1) + math.log(0.5),
            " human": math.log(0.3),
            " Human": math.log(0.1),
        }
    )
    probs = rescore_word_probs(scorer, "Q: x (Type:", ["abbreviation", "human"])
    assert probs["abbreviation"] == pytest.approx(0.05)
    assert probs["human"] == pytest.approx(0.4)
    prefix, conts = scorer.calls[0]
    assert prefix == "Q: x (Type:"
    assert " abbreviation" in conts and " Human" in conts
