"""Encoder features shared across trainers: one frozen encoder, many classifiers.

The bench and the agentic loop train a fresh head per run or round on the same frozen
encoder and score the same validation and test sets every time. A
:class:`FeatureCache` given to each :class:`~mixaug.training.Trainer` computes a
dataset's features once. A key is the encoder's weights (a checksum), ``max_length``
and the dataset's texts in order, so a hit holds exactly what the trainer would have
computed (same texts, same batches).

Example:
    >>> cache = FeatureCache()
    >>> Trainer(model, args, train_ds, val_ds, feature_cache=cache)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

import torch

from mixaug.training.model import TextClassifier

_SHARED: dict[int, tuple[torch.nn.Module, str]] = {}
"""Checksums of shared frozen encoders, by id (the encoder object is held)."""


def encoder_checksum(model: TextClassifier) -> str:
    """A checksum of the encoder's weights (identical weights, identical checksum).

    A shared frozen encoder (``from_encoder(..., share_encoder=True)``) is hashed once.
    """
    shared = getattr(model, "shares_encoder", False)
    hit = _SHARED.get(id(model.encoder)) if shared else None
    if hit is not None and hit[0] is model.encoder:
        return hit[1]
    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in model.encoder.named_parameters():
            h.update(name.encode())
            h.update(str(p.dtype).encode() + str(tuple(p.shape)).encode())
            h.update(p.detach().contiguous().cpu().numpy().tobytes())
    digest = h.hexdigest()[:16]
    if shared:
        _SHARED[id(model.encoder)] = (model.encoder, digest)
    return digest


class FeatureCache:
    """Features of whole datasets by (encoder weights, ``max_length``, texts); LRU."""

    def __init__(self, max_entries: int = 16, *, per_text: bool = False) -> None:
        self.max_entries = max_entries
        self._rows: OrderedDict[tuple[str, int, str], torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.per_text = per_text
        """Also keep each text's features on its own (many small train sets that share
        texts, as in a recipe search, then encode every text once)."""
        self._texts: dict[tuple[str, int, str], torch.Tensor] = {}

    def get_texts(
        self, checksum: str, max_length: int, texts: Sequence[str]
    ) -> tuple[list[torch.Tensor | None], list[int]]:
        """Per-text features known so far, and the positions still to encode."""
        rows = [self._texts.get((checksum, max_length, t)) for t in texts]
        return rows, [i for i, r in enumerate(rows) if r is None]

    def put_texts(
        self, checksum: str, max_length: int, texts: Sequence[str], feats: torch.Tensor
    ) -> None:
        """Remember each text's features row."""
        for t, f in zip(texts, feats, strict=True):
            self._texts[(checksum, max_length, t)] = f

    def __len__(self) -> int:
        return len(self._rows)

    @staticmethod
    def key(checksum: str, max_length: int, texts: Sequence[str]) -> tuple[str, int, str]:
        """The cache key of ``texts`` under one encoder."""
        h = hashlib.sha256()
        for t in texts:
            h.update(t.encode("utf-8"))
            h.update(b"\x00")
        return (checksum, max_length, h.hexdigest())

    def get(self, key: tuple[str, int, str]) -> torch.Tensor | None:
        """The features stored under ``key``, or ``None``."""
        feats = self._rows.get(key)
        if feats is None:
            self.misses += 1
            return None
        self._rows.move_to_end(key)
        self.hits += 1
        return feats

    def put(self, key: tuple[str, int, str], feats: torch.Tensor) -> None:
        """Store ``feats`` under ``key`` (the least recently used entry goes when full)."""
        self._rows[key] = feats
        self._rows.move_to_end(key)
        while len(self._rows) > self.max_entries:
            self._rows.popitem(last=False)
