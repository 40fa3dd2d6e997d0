"""Test helpers: small hand-written data and fake models that return logprobs."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import Generation, LLMResult

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REVIEWS = [
    ("a bright, generous comedy with real warmth .", "positive"),
    ("the cast sparkles and the script is sharp .", "positive"),
    ("a moving portrait of a family in trouble .", "positive"),
    ("clever, fast and often very funny .", "positive"),
    ("a dull film that never finds its story .", "negative"),
    ("the pacing is glacial and the jokes fall flat .", "negative"),
    ("noisy, confused and far too long .", "negative"),
    ("a lazy sequel with nothing new to say .", "negative"),
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def chat_logprobs(pieces: list[tuple[str, dict[str, float]]]) -> dict[str, Any]:
    """Build OpenAI chat-shaped logprobs: each piece is (token, {alt: prob})."""
    content = []
    for tok, alts in pieces:
        probs = alts or {tok: 1.0}
        content.append(
            {
                "token": tok,
                "logprob": math.log(probs.get(tok, 1e-6)),
                "top_logprobs": [
                    {"token": a, "logprob": math.log(p)}
                    for a, p in sorted(probs.items(), key=lambda kv: -kv[1])
                ],
            }
        )
    return {"content": content}


def labelled_reply(text: str, word: str, label_probs: dict[str, float]) -> AIMessage:
    """A chat reply ' <text> (Sentiment: <word>)' with logprobs at the label position."""
    pieces: list[tuple[str, dict[str, float]]] = [(" " + w, {}) for w in text.split(" ")]
    pieces += [(" (", {}), ("Sentiment", {}), (":", {}), (" " + word, label_probs), (")", {})]
    return AIMessage(
        content="".join(p for p, _ in pieces),
        response_metadata={"logprobs": chat_logprobs(pieces), "finish_reason": "stop"},
        usage_metadata={
            "input_tokens": 50,
            "output_tokens": len(pieces),
            "total_tokens": 50 + len(pieces),
        },
    )


def fake_chat(messages: list[AIMessage]) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter(messages))


class FakeCompletionLLM(BaseLLM):
    """A completion model that replays texts with completions-shaped logprobs."""

    replies: list[tuple[str, list[tuple[str, dict[str, float]]]]]
    calls: list[list[str]] = []
    i: int = 0

    @property
    def _llm_type(self) -> str:
        return "fake-completion"

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        self.calls.append(list(prompts))
        gens = []
        for _ in prompts:
            text, pieces = self.replies[self.i % len(self.replies)]
            self.i += 1
            gens.append([completion_generation(text, pieces)])
        return LLMResult(generations=gens)


def completion_generation(text: str, pieces: list[tuple[str, dict[str, float]]]) -> Generation:
    """A completion ``text`` with completions-shaped logprobs: per piece, its alternatives'
    probabilities (none: no top list)."""
    info = {
        "finish_reason": "stop",
        "logprobs": {
            "tokens": [p for p, _ in pieces],
            "token_logprobs": [0.0 for _ in pieces],
            "top_logprobs": [
                {a: math.log(p) for a, p in alts.items()} if alts else None for _, alts in pieces
            ],
        },
    }
    return Generation(text=text, generation_info=info)


def completion_reply(
    text: str, word: str, label_probs: dict[str, float], marker: str = "(Sentiment:"
) -> tuple[str, list[tuple[str, dict[str, float]]]]:
    pieces: list[tuple[str, dict[str, float]]] = [(" " + w, {}) for w in text.split(" ")]
    pieces += [(" " + marker, {}), (" " + word, label_probs), (")", {})]
    return "".join(p for p, _ in pieces), pieces


class KeywordEmbedding:
    """A tiny embedder for tests: one dimension per topic word, so geometry is known.

    Texts sharing topic words are close; a small per-text hash term breaks ties.
    """

    TOPICS = ("cast", "plot", "music", "ending", "effects", "jokes", "pace", "story")

    def _vec(self, text: str) -> list[float]:
        import hashlib

        words = text.lower().split()
        v = [float(words.count(t)) for t in self.TOPICS]
        h = hashlib.sha256(text.encode()).digest()
        v += [b / 2550.0 for b in h[:4]]
        return v

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


def near_copies(base: int, copies: int, dim: int, noise: float, seed: int) -> Any:
    """Unit vectors, shuffled: ``base`` random ones and ``copies`` noisy copies of them
    (float32; a numpy array), so a set has near duplicates and distinct rows both."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(base, dim)).astype(np.float32)
    near = rows[rng.integers(0, base, copies)] + noise * rng.normal(size=(copies, dim))
    v = np.concatenate([rows, near.astype(np.float32)])[rng.permutation(base + copies)]
    return v / np.linalg.norm(v, axis=1, keepdims=True)
