"""Back-translation through Apertium (offline): English -> Spanish -> English.

A text's i-th variant is i round trips deep, so ``ratio`` variants differ where
the round trip keeps changing the text; repeats are dropped.

Example:
    >>> back_translate(["a good film ."])  # doctest: +SKIP
    ['A good film .']
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from mixaug.errors import ConfigError

PAIR = ("eng-spa", "spa-eng")


def _apertium(pair: str, lines: list[str], timeout: float) -> list[str]:
    exe = shutil.which("apertium")
    if exe is None:
        msg = (
            "Back-translation needs Apertium; install it with: "
            "apt-get install apertium apertium-eng-spa"
        )
        raise ConfigError(msg)
    text = "".join(" ".join(line.split()) + "\n" for line in lines)
    proc = subprocess.run(
        [exe, "-u", pair], input=text, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        msg = f"apertium {pair} failed (exit {proc.returncode}): {proc.stderr.strip()[:300]}"
        raise ConfigError(msg)
    out = proc.stdout.split("\n")
    if out and out[-1] == "":
        out = out[:-1]
    if len(out) != len(lines):
        msg = f"apertium {pair} returned {len(out)} lines for {len(lines)}"
        raise ConfigError(msg)
    return [o.strip() for o in out]


def back_translate(texts: Sequence[str], *, timeout: float = 600.0) -> list[str]:
    """One English -> Spanish -> English round trip per text."""
    if not texts:
        return []
    spanish = _apertium(PAIR[0], list(texts), timeout)
    return _apertium(PAIR[1], spanish, timeout)


def backtranslation_augment(
    texts: Sequence[str], labels: Sequence[str], *, ratio: int
) -> list[tuple[str, str]]:
    """Up to ``ratio`` distinct back-translations per labelled text (1..ratio round trips)."""
    current = list(texts)
    seen = [{" ".join(t.lower().split())} for t in texts]
    out: list[list[str]] = [[] for _ in texts]
    for _ in range(ratio):
        current = back_translate(current)
        for i, t in enumerate(current):
            key = " ".join(t.lower().split())
            if t and key not in seen[i]:
                seen[i].add(key)
                out[i].append(t)
    return [(v, labels[i]) for i in range(len(texts)) for v in out[i]]
