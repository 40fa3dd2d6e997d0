"""The LM's label scores of given texts, "as if generated" after anchors.

GPT3Mix reads a soft label at the label position of a generated item. The same
reading can be taken for any text: render the prompt over some anchors, append the
text and the label marker, and score the label words. That is how a labeller is
checked on *real* labelled texts (validation) before it labels synthetic ones, and
how records are re-read with the model's last hidden state (for hidden-state
calibration).

A local model (:class:`~mixaug.models.TransformersLLM` or
:class:`~mixaug.models.ChatTransformers`) scores a batch of texts in one padded
forward pass and also returns the hidden states; any other
:class:`~mixaug.softlabels.LabelScorer` is asked text by text (no hidden states).

Example:
    >>> scores = score_texts(llm, get_spec("sst2"), [(anchors, "a gem")])  # doctest: +SKIP
    >>> scores.probs.round(2)  # doctest: +SKIP
    array([[0.14, 0.86]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mixaug.chains.prompts import clean_text, render_mix_prompt
from mixaug.errors import ModelError
from mixaug.records import Example
from mixaug.softlabels import logsumexp, rescore_word_probs, word_variants
from mixaug.specs import TaskSpec


@dataclass
class LMScores:
    """Label-word log-scores (rows: texts; columns: the spec's labels) and hidden states."""

    logp: np.ndarray
    """Log of the probability mass on each label word (case variants summed)."""
    hidden: np.ndarray | None = None
    """The LM's last hidden state at the label position (local models only)."""

    @property
    def probs(self) -> np.ndarray:
        """``logp`` normalised over the labels."""
        x = self.logp - self.logp.max(axis=1, keepdims=True)
        e = np.exp(x)
        return e / e.sum(axis=1, keepdims=True)

    def take(self, rows: Sequence[int]) -> LMScores:
        """The scores of some rows."""
        idx = list(rows)
        return LMScores(self.logp[idx], None if self.hidden is None else self.hidden[idx])


def label_prefix(spec: TaskSpec, anchors: Sequence[Example], text: str) -> str:
    """``prompt over anchors + " " + text + " " + label marker`` (no trailing space)."""
    return f"{render_mix_prompt(spec, anchors)} {clean_text(text)} {spec.label_marker}"


def _single_token_variants(engine: Any, words: Sequence[str]) -> list[list[str]] | None:
    """Per word, its case variants that are one token (``None``: a word is not)."""
    tok = engine.tokenizer
    out = []
    for w in words:
        vs = [v for v in word_variants(w) if len(tok.encode(v, add_special_tokens=False)) == 1]
        if f" {w}" not in vs:
            return None
        out.append(vs)
    return out


def score_texts(
    llm: Any,
    spec: TaskSpec,
    items: Sequence[tuple[Sequence[Example], str]],
    *,
    batch_size: int = 16,
) -> LMScores:
    """Score each ``(anchors, text)`` pair's label words after ``text``.

    Raises:
        ModelError: when ``llm`` can neither batch-score nor score continuations.
    """
    words = spec.words
    prefixes = [label_prefix(spec, a, t) for a, t in items]
    engine = getattr(llm, "engine", None)
    variants = None
    if engine is not None and hasattr(engine, "score_next"):
        variants = _single_token_variants(engine, words)
    if engine is not None and variants is not None:
        flat = [v for vs in variants for v in vs]
        scores, states = engine.score_next(prefixes, flat, batch_size=batch_size)
        logp = np.empty((len(prefixes), len(words)))
        for r, row in enumerate(scores):
            i = 0
            for c, vs in enumerate(variants):
                logp[r, c] = logsumexp(row[i : i + len(vs)])
                i += len(vs)
        return LMScores(logp, np.asarray(states, dtype=np.float32))
    if not hasattr(llm, "score_continuations"):
        msg = f"{type(llm).__name__} cannot score label words; use a model with a scorer."
        raise ModelError(msg)
    logp = np.empty((len(prefixes), len(words)))
    for r, prefix in enumerate(prefixes):
        probs = rescore_word_probs(llm, prefix, words)
        logp[r] = [math.log(max(probs[w], 1e-30)) for w in words]
    return LMScores(logp)
