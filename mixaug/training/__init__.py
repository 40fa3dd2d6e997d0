"""Training on real plus synthetic data: the soft-label loss and its targets."""

from mixaug.training.loss import soft_cross_entropy, target_distributions

__all__ = ["soft_cross_entropy", "target_distributions"]
