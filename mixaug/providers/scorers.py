"""Scorers for providers whose replies lack some label words' logprobs.

Example:
    >>> scorer = CompletionScorer(llm=OpenAI(...), top_logprobs=20)  # doctest: +SKIP
    >>> prefix = "Movie review: a gem (Sentiment:"
    >>> scorer.score_continuations(prefix, [" positive"])  # doctest: +SKIP
    [-0.11]
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Any

from langchain_core.language_models import BaseLanguageModel, BaseLLM

from mixaug.softlabels import tokens_from_logprobs


class CompletionScorer:
    """Scores continuations through a completions endpoint that returns top-k logprobs.

    Each step asks for one token (``max_tokens=1``) with the top-k alternatives and
    follows the alternative that spells the continuation furthest; a multi-token
    word costs one short request per token. Requests are cached per prefix, so the
    label words share their first one. A word that leaves the top-k scores ``-inf``.
    """

    soft_label_source = "rescored"

    def __init__(self, llm: BaseLLM, top_logprobs: int = 20) -> None:
        self.llm = llm
        self.top_logprobs = top_logprobs
        self._cache: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def _next(self, prefix: str) -> dict[str, float]:
        with self._lock:
            if prefix in self._cache:
                return self._cache[prefix]
        result = self.llm.generate(
            [prefix], max_tokens=1, logprobs=self.top_logprobs, temperature=0
        )
        info = result.generations[0][0].generation_info or {}
        toks = tokens_from_logprobs(info.get("logprobs"))
        top = dict(toks[0].top) if toks else {}
        with self._lock:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[prefix] = top
        return top

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation (``-inf`` when it leaves the top-k)."""
        out = []
        for cont in continuations:
            total, ctx, rest = 0.0, prefix, cont
            while rest:
                top = self._next(ctx)
                fits = [t for t in top if t and rest.startswith(t)]
                if not fits:
                    total = -math.inf
                    break
                tok = max(fits, key=len)
                total += top[tok]
                ctx, rest = ctx + tok, rest[len(tok) :]
            out.append(total)
        return out


class VoteScorer:
    """Soft labels from label frequencies over several sampled completions.

    For providers without logprobs: after ``prefix`` (which ends with the label
    marker) the model writes the label ``votes`` times; each continuation's share
    of the votes is its probability (``-inf`` for no vote).
    """

    soft_label_source = "votes"

    def __init__(
        self,
        llm: BaseLanguageModel[Any],
        votes: int = 5,
        call_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.llm = llm
        self.votes = votes
        self.call_kwargs = dict(call_kwargs or {})
        """Extra call arguments, e.g. a short generation length for the label."""

    def _sample(self, prefix: str) -> list[str]:
        if isinstance(self.llm, BaseLLM):
            result = self.llm.generate([prefix] * self.votes, **self.call_kwargs)
            replies = [g[0].text for g in result.generations]
        else:
            replies = [self.llm.invoke(prefix, **self.call_kwargs).text for _ in range(self.votes)]
        return [" " + r.strip().split(")")[0].strip() for r in replies]

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        """log(share of votes) of each continuation."""
        counts = Counter(self._sample(prefix))
        return [math.log(counts[c] / self.votes) if counts[c] else -math.inf for c in continuations]
