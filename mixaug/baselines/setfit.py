"""SetFit (Tunstall et al., 2022): the few-shot learner a user would pick, alone or with records.

Contrastive fine-tuning of the same sentence encoder (the packaged all-MiniLM-L6-v2) on
pairs of the few labelled examples, then a logistic-regression head. Synthetic records
can join in three ways (``mode``):

- ``hard``: records whose final label is at least ``min_confidence`` sure join the real
  examples as labelled texts, for the pairs and the head alike;
- ``head``: the encoder is tuned on the real pairs only; the head is refitted on the real
  examples plus every record, each record once per class weighted by its soft label
  (soft-label cross-entropy is a weighted logistic regression). It costs what SetFit on
  the real examples costs, and a tuned encoder can be reused (``body``);
- ``head-hard``: as ``head``, each record with its final label alone;
- ``pairs``: records (hard labels, as ``hard``) join the contrastive pairs only; the head
  is fitted on the real examples alone.

Needs the ``setfit`` package (``pip install "mixaug[setfit]"``); it runs offline on a local
encoder folder.

Example:
    >>> scores = setfit_scores(train, test, labels=["negative", "positive"])  # doctest: +SKIP
    >>> scores["accuracy"]  # doctest: +SKIP
    0.71
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from mixaug.errors import DataError, ModelError
from mixaug.records import Example, SyntheticRecord

SetFitMode = Literal["hard", "head", "head-hard", "pairs"]
SETFIT_MODES: tuple[SetFitMode, ...] = ("hard", "head", "head-hard", "pairs")


def setfit_available() -> bool:
    """Whether the ``setfit`` package is installed."""
    return importlib.util.find_spec("setfit") is not None


def _require() -> None:
    if not setfit_available():
        msg = 'SetFit needs the setfit package; run: pip install "mixaug[setfit]"'
        raise ModelError(msg)


def train_setfit(
    train: Sequence[Example],
    *,
    labels: Sequence[str],
    records: Sequence[SyntheticRecord] = (),
    mode: SetFitMode = "hard",
    min_confidence: float = 0.0,
    synthetic_weight: float = 1.0,
    seed: int = 0,
    encoder: str | None = None,
    iterations: int = 20,
    batch_size: int = 16,
    body: Any = None,
) -> Any:
    """A trained ``setfit.SetFitModel`` over ``train`` (plus ``records``, see the module doc).

    ``body``: a model already tuned on ``train`` alone (``head`` modes): copied, its head
    refitted, its encoder not trained again.

    Raises:
        ModelError: when ``setfit`` is not installed.
        DataError: for an unknown mode, no real examples, or a label outside ``labels``.
    """
    _require()
    if mode not in SETFIT_MODES:
        msg = f"unknown SetFit mode {mode!r}; choose from {list(SETFIT_MODES)}"
        raise DataError(msg)
    names = list(labels)
    if not train:
        msg = "SetFit needs real labelled examples"
        raise DataError(msg)
    bad = sorted({e.label for e in train if e.label not in names})
    if bad:
        msg = f"labels {bad} are not among the task's labels {names}"
        raise DataError(msg)
    import logging

    from datasets import Dataset  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from setfit import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
        SetFitModel,
        Trainer,
        TrainingArguments,
    )

    from mixaug.training.model import default_encoder

    for name in ("setfit", "sentence_transformers", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    sure = [r for r in records if max(r.soft_label.values(), default=0.0) >= min_confidence]
    head_only = mode in ("head", "head-hard")
    if body is not None and head_only:
        import copy

        model = copy.deepcopy(body)
        if records:
            _refit_head(model, train, sure, names, synthetic_weight, hard=mode == "head-hard")
        return model
    pair_texts = [e.text for e in train]
    pair_labels = [names.index(e.label) for e in train]
    if mode in ("hard", "pairs"):
        pair_texts += [r.text for r in sure]
        pair_labels += [names.index(r.label) for r in sure]
    model = SetFitModel.from_pretrained(encoder or default_encoder(), labels=names)
    args = TrainingArguments(
        batch_size=batch_size,
        num_epochs=1,
        num_iterations=iterations,
        seed=seed,
        show_progress_bar=False,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
    )
    data = Dataset.from_dict({"text": pair_texts, "label": pair_labels})
    Trainer(model=model, args=args, train_dataset=data).train()
    if mode == "pairs" or (head_only and records):
        extra = sure if head_only else ()
        _refit_head(model, train, extra, names, synthetic_weight, hard=mode == "head-hard")
    return model


def _refit_head(
    model: Any,
    train: Sequence[Example],
    records: Sequence[SyntheticRecord],
    names: list[str],
    weight: float,
    *,
    hard: bool = False,
) -> None:
    """Fit the logistic-regression head again: real examples weigh 1, records their soft label."""
    texts = [e.text for e in train]
    y = [names.index(e.label) for e in train]
    w = [1.0] * len(train)
    for r in records:
        dist = {r.label: 1.0} if hard else r.soft_label
        for c, p in dist.items():
            if p > 1e-4 and c in names:
                texts.append(r.text)
                y.append(names.index(c))
                w.append(weight * p)
    feats = np.asarray(model.model_body.encode(texts, convert_to_numpy=True))
    model.model_head.fit(feats, np.asarray(y), sample_weight=np.asarray(w))


def setfit_probs(model: Any, texts: Sequence[str], n_classes: int) -> np.ndarray:
    """Class probabilities of a trained SetFit model, columns in label order."""
    probs = np.asarray(model.predict_proba(list(texts)), dtype=float)
    classes = getattr(model.model_head, "classes_", None)
    if classes is not None and len(classes) != n_classes:  # a class never seen in training
        full = np.zeros((len(texts), n_classes))
        full[:, [int(c) for c in classes]] = probs
        return full
    return probs


def setfit_scores(
    train: Sequence[Example],
    test: Sequence[Example],
    *,
    labels: Sequence[str],
    seed: int = 0,
    encoder: str | None = None,
    iterations: int = 20,
    batch_size: int = 16,
    records: Sequence[SyntheticRecord] = (),
    mode: SetFitMode = "hard",
    min_confidence: float = 0.0,
    synthetic_weight: float = 1.0,
    adjustment: Sequence[float] | np.ndarray | None = None,
    body: Any = None,
) -> dict[str, Any]:
    """Train SetFit on ``train`` (and ``records``) and score it on ``test``.

    Returns ``accuracy``, ``macro_f1``, ``mcc``, ``examples`` and ``seconds``, and with
    ``adjustment`` (added to the log-probabilities: post-hoc logit adjustment) the same
    metrics under ``adjusted``.

    Raises:
        ModelError: when ``setfit`` is not installed.
    """
    started = time.perf_counter()
    names = list(labels)
    model = train_setfit(
        train,
        labels=names,
        records=records,
        mode=mode,
        min_confidence=min_confidence,
        synthetic_weight=synthetic_weight,
        seed=seed,
        encoder=encoder,
        iterations=iterations,
        batch_size=batch_size,
        body=body,
    )
    out = score_setfit(model, test, names, adjustment)
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def score_setfit(
    model: Any,
    test: Sequence[Example],
    labels: Sequence[str],
    adjustment: Sequence[float] | np.ndarray | None = None,
) -> dict[str, Any]:
    """``accuracy``, ``macro_f1``, ``mcc`` and ``examples`` of a SetFit model on ``test``.

    With ``adjustment`` (added to the log-probabilities) the same under ``adjusted``.
    """
    from mixaug.training.metrics import classification_metrics

    names = list(labels)
    logp = np.log(np.clip(setfit_probs(model, [e.text for e in test], len(names)), 1e-12, None))
    gold = [names.index(e.label) for e in test]
    out: dict[str, Any] = {
        **classification_metrics(logp.argmax(1).tolist(), gold, n_classes=len(names)),
        "examples": len(test),
    }
    if adjustment is not None:
        shifted = logp + np.asarray(adjustment, dtype=float)
        out["adjusted"] = classification_metrics(
            shifted.argmax(1).tolist(), gold, n_classes=len(names)
        )
    return out
