"""The local engine's sampler, on known distributions (no model needed)."""

from __future__ import annotations

import math

import pytest
import torch

from mixaug.models.engine import LocalEngine, SamplingParams

PROBS = torch.tensor([0.05, 0.6, 0.0, 0.25, 0.1])


def _draws(params: SamplingParams, n: int = 20000, seed: int = 0) -> torch.Tensor:
    scores = PROBS.log().repeat(n, 1)
    gen = torch.Generator().manual_seed(seed)
    return LocalEngine._sample(scores, params, params.temperature <= 0, gen)


def test_draws_follow_the_distribution() -> None:
    freq = torch.bincount(_draws(SamplingParams()), minlength=5).float() / 20000
    assert freq[2] == 0  # a token of probability zero is never drawn
    assert torch.allclose(freq, PROBS, atol=0.015)


def test_temperature_sharpens_and_flattens() -> None:
    cold = torch.bincount(_draws(SamplingParams(temperature=0.5)), minlength=5).float()
    hot = torch.bincount(_draws(SamplingParams(temperature=2.0)), minlength=5).float()
    want = PROBS**2 / (PROBS**2).sum()
    assert torch.allclose(cold / 20000, want, atol=0.015)
    assert hot[0] > cold[0] and hot[1] < cold[1]


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    # 0.6 + 0.25 = 0.85 >= 0.8: only tokens 1 and 3 remain, renormalised.
    freq = torch.bincount(_draws(SamplingParams(top_p=0.8)), minlength=5).float() / 20000
    assert freq[0] == 0 and freq[4] == 0
    assert freq[1] == pytest.approx(0.6 / 0.85, abs=0.015)
    # Below the top token's own mass the top token alone remains.
    assert set(_draws(SamplingParams(top_p=0.3)).tolist()) == {1}


def test_greedy_and_seeds() -> None:
    assert set(_draws(SamplingParams(temperature=0)).tolist()) == {1}
    assert torch.equal(_draws(SamplingParams(), seed=3), _draws(SamplingParams(), seed=3))
    assert not torch.equal(_draws(SamplingParams(), seed=3), _draws(SamplingParams(), seed=4))


def test_minus_infinity_scores_are_never_drawn() -> None:
    scores = torch.tensor([[-math.inf, 0.0, -math.inf, 0.0]]).repeat(5000, 1)
    out = LocalEngine._sample(scores, SamplingParams(), False, torch.Generator().manual_seed(1))
    assert set(out.tolist()) == {1, 3}
