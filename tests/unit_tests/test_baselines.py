"""EDA operations on offline WordNet, and back-translation through Apertium."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from mixaug.baselines import eda, eda_augment, synonyms
from mixaug.baselines.eda import (
    STOP_WORDS,
    clean,
    random_deletion,
    random_insertion,
    random_swap,
    synonym_replacement,
)
from mixaug.baselines.wordnet import lexnames_text, wordnet_dir
from mixaug.errors import ConfigError

WORDS = "the plot is dull and the cast is awful".split()
needs_wordnet = pytest.mark.skipif(
    not Path("/usr/share/wordnet/data.noun").is_file(),
    reason="apt-get install wordnet-base wordnet-sense-index",
)
needs_apertium = pytest.mark.skipif(
    shutil.which("apertium") is None, reason="apt-get install apertium apertium-eng-spa"
)


@pytest.fixture(scope="module")
def wn() -> object:
    from mixaug.baselines import load_wordnet

    return load_wordnet()


def test_clean_keeps_lowercase_letters() -> None:
    assert clean("It's a GREAT film -- 10/10!") == ["its", "a", "great", "film"]


def test_swap_and_deletion_keep_the_words() -> None:
    rng = random.Random(0)
    swapped = random_swap(WORDS, 2, rng)
    assert sorted(swapped) == sorted(WORDS) and swapped != WORDS
    kept = random_deletion(WORDS, 0.5, random.Random(1))
    assert 0 < len(kept) < len(WORDS)
    assert all(w in WORDS for w in kept)
    # Order is preserved by deletion.
    assert kept == [w for w in WORDS if w in kept][: len(kept)] or len(set(WORDS)) < len(WORDS)
    assert random_deletion(["only"], 1.0, rng) == ["only"]
    assert len(random_deletion(WORDS, 1.0, rng)) == 1  # one word always survives


def test_lexnames_file_lists_the_45_lexicographer_files() -> None:
    lines = lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1"
    assert lines[-1] == "44\tadj.ppl\t3"


def test_missing_wordnet_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="apt-get install wordnet-base"):
        wordnet_dir(tmp_path / "nowhere", tmp_path / "cache")


@needs_wordnet
def test_synonyms_come_from_wordnet(wn: object) -> None:
    film = synonyms(wn, "film")
    assert {"movie", "flick"} <= film and "film" not in film


@needs_wordnet
def test_synonym_replacement_and_insertion(wn: object) -> None:
    rng = random.Random(3)
    replaced = synonym_replacement(WORDS, 1, rng, wn)
    changed = [w for w in replaced if w not in WORDS]
    assert changed, replaced
    assert all(w not in STOP_WORDS for w in set(WORDS) - set(replaced))  # stop words stay
    inserted = random_insertion(WORDS, 2, random.Random(4), wn)
    assert len(inserted) >= len(WORDS) + 2
    # Every original word is still there, in order.
    it = iter(inserted)
    assert all(any(w == x for x in it) for w in WORDS)


@needs_wordnet
def test_eda_makes_num_aug_variants_deterministically(wn: object) -> None:
    a = eda("The plot is dull, and the cast is awful.", num_aug=5, rng=random.Random(0), wn=wn)
    b = eda("The plot is dull, and the cast is awful.", num_aug=5, rng=random.Random(0), wn=wn)
    assert a == b and len(a) == 5
    pairs = eda_augment(["a good film", "a bad film"], ["positive", "negative"], ratio=3)
    assert len(pairs) == 6 and [lab for _, lab in pairs] == ["positive"] * 3 + ["negative"] * 3


@needs_apertium
def test_back_translation_round_trip() -> None:
    from mixaug.baselines import back_translate, backtranslation_augment

    (out,) = back_translate(["who invented the telephone ?"])
    assert out.lower().startswith("who invented the telephone")
    pairs = backtranslation_augment(
        ["the plot is dull and the cast is awful .", "a good film ."],
        ["negative", "positive"],
        ratio=3,
    )
    texts = [t for t, _ in pairs]
    assert len(texts) == len(set(texts))  # repeats dropped
    assert all(lab in ("negative", "positive") for _, lab in pairs)
    assert "the plot is dull and the cast is awful ." not in texts  # never the source itself


def test_setfit_peer_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from mixaug.baselines import setfit as peer
    from mixaug.errors import ModelError
    from mixaug.records import Example

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "setfit" else real(name, *a)
    )
    with pytest.raises(ModelError, match=r"pip install \"mixaug\[setfit\]\""):
        peer.setfit_scores([Example(text="a", label="x")], [], labels=["x", "y"])
