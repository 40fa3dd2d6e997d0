"""Reading YAML files safely, with errors that say where and what to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mixaug.errors import MixaugError


def yaml_where(e: yaml.YAMLError) -> str:
    """`` (line L, column C: problem)`` for a YAML error, on one line."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if mark is None:
        return f" ({problem})"
    return f" (line {mark.line + 1}, column {mark.column + 1}: {problem})"


def read_yaml(path: str | Path, what: str, error: type[MixaugError]) -> Any:
    """``yaml.safe_load`` of a file; failures raise ``error`` naming ``what`` and the path.

    Example:
        >>> read_yaml("missing.yaml", "Config file", MixaugError)  # doctest: +SKIP
        MixaugError: Config file 'missing.yaml' does not exist; check the path.
    """
    from mixaug.paths import MAX_CONFIG_BYTES, read_input

    p = Path(path)
    try:
        return yaml.safe_load(read_input(p, what, limit=MAX_CONFIG_BYTES, error=error).decode())
    except UnicodeDecodeError as e:
        msg = f"{what} {str(p)!r} could not be read: {e}"
        raise error(msg) from None
    except yaml.YAMLError as e:
        msg = f"{what} {str(p)!r} is not valid YAML{yaml_where(e)}; fix the file."
        raise error(msg) from None
