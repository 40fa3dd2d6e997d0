"""SetFit (Tunstall et al., 2022) as a peer: what a user would pick instead of augmenting.

Contrastive fine-tuning of the same sentence encoder (the packaged all-MiniLM-L6-v2) on
pairs of the few labelled examples, then a logistic-regression head. Needs the
``setfit`` package (``pip install setfit``); it runs offline on a local encoder folder.

Example:
    >>> scores = setfit_scores(train, test, labels=["negative", "positive"])  # doctest: +SKIP
    >>> scores["accuracy"]  # doctest: +SKIP
    0.71
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from typing import Any

from mixaug.errors import ModelError
from mixaug.records import Example


def setfit_available() -> bool:
    """Whether the ``setfit`` package is installed."""
    return importlib.util.find_spec("setfit") is not None


def setfit_scores(
    train: Sequence[Example],
    test: Sequence[Example],
    *,
    labels: Sequence[str],
    seed: int = 0,
    encoder: str | None = None,
    iterations: int = 20,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Train SetFit on ``train`` and score it on ``test``.

    Returns ``accuracy``, ``macro_f1``, ``examples`` and ``seconds``.

    Raises:
        ModelError: when ``setfit`` is not installed.
    """
    if not setfit_available():
        msg = "The SetFit peer needs the setfit package; run: pip install setfit"
        raise ModelError(msg)
    import logging

    from datasets import Dataset  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from setfit import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
        SetFitModel,
        Trainer,
        TrainingArguments,
    )

    from mixaug.training.metrics import accuracy, macro_f1
    from mixaug.training.model import default_encoder

    for name in ("setfit", "sentence_transformers", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    started = time.perf_counter()
    names = list(labels)
    model = SetFitModel.from_pretrained(encoder or default_encoder(), labels=names)
    args = TrainingArguments(
        batch_size=batch_size,
        num_epochs=1,
        num_iterations=iterations,
        seed=seed,
        show_progress_bar=False,
        report_to="none",
        save_strategy="no",
    )
    data = Dataset.from_dict(
        {"text": [e.text for e in train], "label": [names.index(e.label) for e in train]}
    )
    Trainer(model=model, args=args, train_dataset=data).train()
    preds = model.predict([e.text for e in test])
    pred_idx = [names.index(p) if isinstance(p, str) else int(p) for p in preds]
    gold = [names.index(e.label) for e in test]
    return {
        "accuracy": round(accuracy(pred_idx, gold), 5),
        "macro_f1": round(macro_f1(pred_idx, gold, n_classes=len(names)), 5),
        "examples": len(test),
        "seconds": round(time.perf_counter() - started, 2),
    }
