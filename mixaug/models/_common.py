"""Helpers shared by the completion and chat model classes."""

from __future__ import annotations

from typing import Any

from mixaug.models.engine import Completion, SamplingParams


def sampling_params(
    model: Any, stop: list[str] | None, kwargs: dict[str, Any], top_logprobs: int
) -> SamplingParams:
    """Sampling settings of one call: call arguments over the model's fields."""
    return SamplingParams(
        max_new_tokens=int(kwargs.get("max_tokens", model.max_tokens) or 100),
        temperature=float(kwargs.get("temperature", model.temperature)),
        top_p=float(kwargs.get("top_p", model.top_p)),
        frequency_penalty=float(kwargs.get("frequency_penalty", model.frequency_penalty)),
        stop=list(stop if stop is not None else (model.stop or [])),
        stop_after=list(kwargs.get("stop_after", model.stop_after) or []),
        top_logprobs=top_logprobs,
        seed=kwargs.get("seed", model.seed),
    )


def chat_logprobs(c: Completion) -> dict[str, Any]:
    """Logprobs in the OpenAI chat shape."""
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "bytes": list(t.token.encode("utf-8")),
                "top_logprobs": [{"token": a, "logprob": b} for a, b in t.top],
            }
            for t in c.tokens
        ]
    }


def completion_logprobs(c: Completion) -> dict[str, Any]:
    """Logprobs in the OpenAI (legacy) completions shape."""
    offsets, pos = [], 0
    for t in c.tokens:
        offsets.append(pos)
        pos += len(t.token)
    tops: list[dict[str, float]] = []
    for t in c.tokens:
        top: dict[str, float] = {}
        for a, b in t.top:
            top.setdefault(a, b)
        tops.append(top)
    return {
        "tokens": [t.token for t in c.tokens],
        "token_logprobs": [t.logprob for t in c.tokens],
        "top_logprobs": tops,
        "text_offset": offsets,
    }
