"""Soft labels from token logprobs (the paper's equation 1), for any provider.

One function reads logprobs in either of langchain-openai's shapes, the chat shape
(``AIMessage.response_metadata["logprobs"]["content"]``) and the completion shape
(``generation_info["logprobs"]`` with ``tokens``/``token_logprobs``/``top_logprobs``),
finds the label position, and turns the top-k alternatives there into a
distribution over the verbalizer words.

Example:
    >>> top = {" positive": math.log(0.6), " negative": math.log(0.3)}
    >>> probs, found = word_probs_from_top(top, ["positive", "negative"])
    >>> normalise(probs)
    ({'positive': 0.666..., 'negative': 0.333...}, 0.9)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class TokenLP:
    """A token of a continuation with its log-probability and top alternatives."""

    token: str
    logprob: float
    top: Mapping[str, float]


@runtime_checkable
class LabelScorer(Protocol):
    """Anything that can score continuations of a prefix (local models, servers)."""

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation given ``prefix``."""
        ...


def tokens_from_logprobs(logprobs: Any) -> list[TokenLP] | None:
    """Normalise either OpenAI logprobs shape into a list of :class:`TokenLP`.

    Accepts the chat shape ``{"content": [{"token","logprob","top_logprobs"}]}`` (or
    just that list) and the completion shape ``{"tokens", "token_logprobs",
    "top_logprobs"}``. Returns ``None`` when ``logprobs`` is empty or unknown.
    """
    if not logprobs:
        return None
    if isinstance(logprobs, Mapping) and "content" in logprobs:
        logprobs = logprobs["content"]
    if isinstance(logprobs, Mapping) and "tokens" in logprobs:
        toks = list(logprobs.get("tokens") or [])
        lps = list(logprobs.get("token_logprobs") or [None] * len(toks))
        tops = list(logprobs.get("top_logprobs") or [None] * len(toks))
        out: list[TokenLP] = []
        # A provider may send fewer logprob rows than tokens: use what lines up.
        for tok, lp, top in zip(toks, lps, tops, strict=False):
            out.append(
                TokenLP(
                    token=str(tok),
                    logprob=float(lp) if lp is not None else math.nan,
                    top=dict(top or {}),
                )
            )
        return out
    if isinstance(logprobs, Sequence) and not isinstance(logprobs, str | bytes):
        out = []
        for item in logprobs:
            if not isinstance(item, Mapping) or "token" not in item:
                return None
            top_list = item.get("top_logprobs") or []
            alts: dict[str, float] = {}
            for alt in top_list:
                # Keep the first (highest) logprob of a token string seen twice.
                alts.setdefault(str(alt["token"]), float(alt["logprob"]))
            out.append(TokenLP(token=str(item["token"]), logprob=float(item["logprob"]), top=alts))
        return out or None
    return None


def label_position(tokens: Sequence[TokenLP], text: str, label_start: int) -> int | None:
    """Index of the token that starts exactly at character ``label_start`` of ``text``.

    Returns ``None`` when the tokens don't spell ``text`` or no token starts there
    (e.g. a token spans the ``:`` and the label word), in which case the caller
    falls back to a scoring pass.
    """
    joined = "".join(t.token for t in tokens)
    if not joined.startswith(text[:label_start]):
        return None
    pos = 0
    for i, t in enumerate(tokens):
        if pos == label_start:
            return i
        if pos > label_start:
            return None
        pos += len(t.token)
    return None


def word_variants(word: str) -> list[str]:
    """Token strings that count for ``word`` at a label position after ``":"``."""
    forms = dict.fromkeys([word, word.lower(), word[:1].upper() + word[1:], word.upper()])
    return [" " + f for f in forms]


def word_probs_from_top(
    top: Mapping[str, float], words: Sequence[str]
) -> tuple[dict[str, float], set[str]]:
    """Probability of each label word among the top-k alternatives at one position.

    Case variants of a word (`` positive``/`` Positive``) are summed. Returns the
    probabilities and the set of words whose main form (`` word``) was seen.
    """
    probs: dict[str, float] = {}
    found: set[str] = set()
    for w in words:
        p = 0.0
        for v in word_variants(w):
            if v in top:
                p += math.exp(top[v])
        probs[w] = p
        if " " + w in top:
            found.add(w)
    return probs, found


def normalise(word_probs: Mapping[str, float]) -> tuple[dict[str, float], float]:
    """Normalise word probabilities; return (distribution, mass on the words).

    Raises:
        ValueError: if no word has any probability.
    """
    mass = float(sum(word_probs.values()))
    if mass <= 0.0 or not math.isfinite(mass):
        msg = "no probability mass on any label word"
        raise ValueError(msg)
    return {w: p / mass for w, p in word_probs.items()}, min(mass, 1.0)


def logsumexp(values: Iterable[float]) -> float:
    """Numerically stable log(sum(exp(values)))."""
    vals = [v for v in values if v != -math.inf]
    if not vals:
        return -math.inf
    m = max(vals)
    return m + math.log(sum(math.exp(v - m) for v in vals))


def rescore_word_probs(scorer: LabelScorer, prefix: str, words: Sequence[str]) -> dict[str, float]:
    """Probability of each label word after ``prefix``, case variants summed.

    ``prefix`` ends with the label marker and no trailing space, e.g.
    ``"...Movie review: text (Sentiment:"``. Multi-token words are scored as the
    sum of their tokens' logprobs.
    """
    variants = [word_variants(w) for w in words]
    flat = [v for vs in variants for v in vs]
    scores = scorer.score_continuations(prefix, flat)
    out: dict[str, float] = {}
    i = 0
    for w, vs in zip(words, variants, strict=True):
        out[w] = math.exp(logsumexp(scores[i : i + len(vs)]))
        i += len(vs)
    return out
