"""Training on real plus synthetic data: the classifier, its trainer and the soft-label loss."""

from mixaug.training.args import TrainingArguments
from mixaug.training.data import TextDataset
from mixaug.training.features import FeatureCache, encoder_checksum
from mixaug.training.loss import soft_cross_entropy, target_distributions
from mixaug.training.metrics import (
    accuracy,
    class_prior,
    classification_metrics,
    macro_f1,
    mcc,
    prior_adjustment,
)
from mixaug.training.model import ClassifierConfig, TextClassifier, default_encoder
from mixaug.training.reweight import SunGenConfig, sungen_reweight, sungen_weights
from mixaug.training.trainer import Trainer, TrainOutput, set_seed

__all__ = [
    "ClassifierConfig",
    "FeatureCache",
    "SunGenConfig",
    "TextClassifier",
    "TextDataset",
    "TrainOutput",
    "Trainer",
    "TrainingArguments",
    "accuracy",
    "class_prior",
    "classification_metrics",
    "default_encoder",
    "encoder_checksum",
    "macro_f1",
    "mcc",
    "prior_adjustment",
    "set_seed",
    "soft_cross_entropy",
    "sungen_reweight",
    "sungen_weights",
    "target_distributions",
]
