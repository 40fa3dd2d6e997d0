"""Training settings, validated with pydantic.

Example:
    >>> TrainingArguments(epochs=3).learning_rate
    3e-05
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainingArguments(BaseModel):
    """How the classifier is trained (defaults follow GPT3Mix: AdamW, lr 3e-5, warm-up)."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(default=3e-5, gt=0.0)
    """Learning rate of the encoder (and of the head when the encoder is trained)."""
    head_learning_rate: float | None = Field(default=None, gt=0.0)
    """Learning rate of the two fully connected layers (default: ``learning_rate``;
    with a frozen encoder, 1e-3)."""
    weight_decay: float = Field(default=0.01, ge=0.0)
    batch_size: int = Field(strict=True, default=16, ge=1)
    epochs: int = Field(strict=True, default=10, ge=1)
    max_steps: int | None = Field(strict=True, default=None, ge=1)
    """Stop after this many optimiser steps (overrides ``epochs``)."""
    warmup_ratio: float = Field(default=0.1, ge=0.0, lt=1.0)
    """Share of the steps the learning rate warms up linearly over (then decays linearly)."""
    patience: int = Field(strict=True, default=3, ge=1)
    """Evaluations without a better validation loss before stopping early."""
    eval_every: int | None = Field(strict=True, default=None, ge=1)
    """Validate every this many steps (default: once per epoch)."""
    min_steps: int = Field(strict=True, default=0, ge=0)
    """Never stop early before this many steps."""
    max_length: int = Field(strict=True, default=64, ge=4, le=512)
    """Tokens per text (longer texts are cut)."""
    freeze_encoder: bool = False
    """Train only the two fully connected layers on fixed encoder features (fast)."""
    seed: int = Field(default=0, ge=0, le=2**32 - 1, strict=True)
    """Random seed, 0 ... 2**32 - 1 (what numpy and the engines take)."""
    synthetic_weight: float = Field(default=1.0, ge=0.0, le=10.0)
    """Loss weight of every synthetic record (times its own ``weight``); real ones
    weigh 1. Below 1 the real data leads and synthetic records only nudge."""
    synthetic_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Label smoothing of synthetic targets (``(1-e) p + e/C``), as FewGen/SuperGen."""
    threads: int | None = Field(strict=True, default=None, ge=1)
    """Torch CPU threads (``None``: torch's default)."""
    progress: bool = False
    """Show progress bars."""

    @model_validator(mode="after")
    def _check(self) -> TrainingArguments:
        if self.head_learning_rate is None:
            self.head_learning_rate = 1e-3 if self.freeze_encoder else self.learning_rate
        return self
