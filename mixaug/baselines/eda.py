"""EDA (Wei & Zou 2019): synonym replacement, random insertion, swap and deletion.

Follows the authors' reference code: text is lower-cased to letters and spaces,
each operation changes ``max(1, alpha * words)`` words (deletion drops each word
with probability ``p_rd``), and ``num_aug`` augmented sentences are made per text,
about a quarter by each operation.

Example:
    >>> import random
    >>> random_swap("a b c d".split(), 1, random.Random(0))
    ['a', 'd', 'c', 'b']
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from mixaug.baselines.wordnet import load_wordnet, synonyms

#: EDA's stop words (never replaced by synonyms).
STOP_WORDS = frozenset(
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his "
    "himself she her hers herself it its itself they them their theirs themselves what which "
    "who whom this that these those am is are was were be been being have has had having do "
    "does did doing a an the and but if or because as until while of at by for with about "
    "against between into through during before after above below to from up down in out on "
    "off over under again further then once here there when where why how all any both each "
    "few more most other some such no nor not only own same so than too very s t can will "
    "just don should now".split()
)
_NOT_LETTER = re.compile(r"[^a-z ]+")


def clean(text: str) -> list[str]:
    """Lower-case words of letters only (EDA's ``get_only_chars``)."""
    text = _NOT_LETTER.sub(" ", text.lower().replace("'", "").replace("-", " "))
    return text.split()


def synonym_replacement(words: list[str], n: int, rng: random.Random, wn: Any) -> list[str]:
    """Replace up to ``n`` non-stop words by a random WordNet synonym."""
    out = list(words)
    candidates = [w for w in dict.fromkeys(words) if w not in STOP_WORDS]
    rng.shuffle(candidates)
    replaced = 0
    for w in candidates:
        syns = sorted(synonyms(wn, w))
        if syns:
            pick = rng.choice(syns)
            out = [pick if x == w else x for x in out]
            replaced += 1
        if replaced >= n:
            break
    return " ".join(out).split()


def random_insertion(words: list[str], n: int, rng: random.Random, wn: Any) -> list[str]:
    """Insert a synonym of a random word at a random position, ``n`` times."""
    out = list(words)
    for _ in range(n):
        for _attempt in range(10):
            if not out:
                break
            syns = sorted(synonyms(wn, rng.choice(out)))
            if syns:
                out.insert(rng.randint(0, len(out)), rng.choice(syns))
                break
    return " ".join(out).split()


def random_swap(words: list[str], n: int, rng: random.Random) -> list[str]:
    """Swap two random words, ``n`` times."""
    out = list(words)
    if len(out) < 2:
        return out
    for _ in range(n):
        i, j = rng.randrange(len(out)), rng.randrange(len(out))
        out[i], out[j] = out[j], out[i]
    return out


def random_deletion(words: list[str], p: float, rng: random.Random) -> list[str]:
    """Drop each word with probability ``p`` (one word always survives)."""
    if len(words) <= 1:
        return list(words)
    kept = [w for w in words if rng.random() > p]
    return kept or [rng.choice(words)]


def eda(
    text: str,
    *,
    num_aug: int = 4,
    alpha_sr: float = 0.1,
    alpha_ri: float = 0.1,
    alpha_rs: float = 0.1,
    p_rd: float = 0.1,
    rng: random.Random | None = None,
    wn: Any = None,
) -> list[str]:
    """``num_aug`` EDA variants of ``text`` (may repeat for very short texts)."""
    rng = rng or random.Random(0)
    wn = wn if wn is not None else load_wordnet()
    words = clean(text)
    if not words:
        return []
    n = len(words)
    per = num_aug // 4 + 1
    out: list[str] = []
    for _ in range(per):
        out.append(" ".join(synonym_replacement(words, max(1, int(alpha_sr * n)), rng, wn)))
        out.append(" ".join(random_insertion(words, max(1, int(alpha_ri * n)), rng, wn)))
        out.append(" ".join(random_swap(words, max(1, int(alpha_rs * n)), rng)))
        out.append(" ".join(random_deletion(words, p_rd, rng)))
    rng.shuffle(out)
    return out[:num_aug]


def eda_augment(
    texts: Sequence[str], labels: Sequence[str], *, ratio: int, seed: int = 0
) -> list[tuple[str, str]]:
    """``ratio`` EDA variants per labelled text, each with its source's label."""
    rng = random.Random(seed)
    wn = load_wordnet()
    out = []
    for text, label in zip(texts, labels, strict=True):
        out += [(v, label) for v in eda(text, num_aug=ratio, rng=rng, wn=wn) if v]
    return out
