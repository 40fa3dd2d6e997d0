"""Offline WordNet for EDA: Debian's ``wordnet-base`` files read by nltk.

nltk's reader also wants a ``lexnames`` file the Debian package lacks; it is
written (beside copies of the Debian files, about 30 MB) into a folder in mixaug's cache.

Example:
    >>> wn = load_wordnet()  # doctest: +SKIP
    >>> sorted(synonyms(wn, "film"))[:3]  # doctest: +SKIP
    ['celluloid', 'flick', 'motion picture']
"""

from __future__ import annotations

import os
import shutil
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from mixaug.errors import ConfigError

#: Where Debian's wordnet-base installs the database.
DEBIAN_WORDNET = Path("/usr/share/wordnet")

#: The 45 lexicographer files of WordNet 3.0, in number order (``lexnames``).
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
    "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group "
    "noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant "
    "noun.possession noun.process noun.quantity noun.relation noun.shape noun.state "
    "noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_POS_NUMBER = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>syntactic category`` per line."""
    return "".join(
        f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES)
    )


def wordnet_dir(source: Path = DEBIAN_WORDNET, cache: Path | None = None) -> Path:
    """A folder nltk can read: links to ``source``'s files plus a generated ``lexnames``.

    Raises:
        ConfigError: when the WordNet files are missing (with the apt command).
    """
    if not (source / "data.noun").is_file():
        msg = (
            f"Offline WordNet not found in {source}; install it with: "
            "apt-get install wordnet-base wordnet-sense-index"
        )
        raise ConfigError(msg)
    from mixaug.models.registry import cache_dir

    out = cache or (cache_dir() / "wordnet")
    out.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        target = out / f.name
        if f.is_file() and not target.exists():
            # Copies: nltk refuses symlinks that leave its root, and hard links.
            tmp = target.with_name(target.name + ".tmp")
            shutil.copyfile(f, tmp)
            os.replace(tmp, target)
    lex = out / "lexnames"
    if not lex.exists():
        tmp = lex.with_name("lexnames.tmp")
        tmp.write_text(lexnames_text(), encoding="utf-8")
        os.replace(tmp, lex)
    return out


@lru_cache(maxsize=1)
def load_wordnet() -> Any:
    """Nltk's WordNet reader over the offline files (cached).

    Raises:
        ConfigError: when nltk or the WordNet files are missing.
    """
    try:
        import nltk  # type: ignore[import-untyped]
        from nltk.corpus.reader.wordnet import (  # type: ignore[import-untyped]
            WordNetCorpusReader,
        )
    except ImportError as e:
        msg = "EDA needs nltk; run: pip install 'mixaug[baselines]'"
        raise ConfigError(msg) from e
    root = wordnet_dir()
    # nltk reads only under its data paths: allow the folder and the files it links to.
    for allowed in (str(root), str(DEBIAN_WORDNET.resolve())):
        if allowed not in nltk.data.path:
            nltk.data.path.append(allowed)

    class OfflineWordNet(WordNetCorpusReader):
        """No mapping to WordNet 3.0 for the multilingual data (it needs a download)."""

        def map_wn(self, version: str = "3.0") -> dict[str, Any]:
            return {}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "multilingual functions not available"
        return OfflineWordNet(str(root), None)


def synonyms(wn: Any, word: str) -> set[str]:
    """WordNet synonyms of ``word`` (lemma names with spaces), without the word itself."""
    out: set[str] = set()
    for syn in wn.synsets(word):
        for lemma in syn.lemmas():
            name = lemma.name().replace("_", " ").replace("-", " ").lower()
            name = "".join(ch for ch in name if ch in " qwertyuiopasdfghjklzxcvbnm")
            if name and name != word:
                out.add(name)
    return out
