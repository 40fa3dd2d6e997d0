"""Classic augmentation baselines: EDA (offline WordNet) and back-translation (Apertium)."""

from mixaug.baselines.backtranslation import back_translate, backtranslation_augment
from mixaug.baselines.eda import eda, eda_augment
from mixaug.baselines.wordnet import load_wordnet, synonyms, wordnet_dir

__all__ = [
    "back_translate",
    "backtranslation_augment",
    "eda",
    "eda_augment",
    "load_wordnet",
    "synonyms",
    "wordnet_dir",
]
