"""Exceptions raised by mixaug.

Every error a user can cause derives from :class:`MixaugError`, carries a message
that names the problem and the fix, and makes the CLI exit with status 2.
"""

from __future__ import annotations

from typing import Any


class MixaugError(Exception):
    """Base class for errors a user can fix (bad data, config, spec or arguments).

    Deliberately not a ``ValueError``: pydantic would wrap it inside validators.
    """


class DataError(MixaugError):
    """A data file is missing, unreadable or malformed."""


class SpecError(MixaugError):
    """A task spec is invalid (duplicate, empty or unsafe verbalizer words)."""


class ConfigError(MixaugError):
    """A configuration file or value is invalid."""


class ModelError(MixaugError):
    """A model could not be found, assembled or loaded."""


def describe_validation_error(error: Any) -> str:
    """One line per problem of a pydantic ``ValidationError``: ``field.path: message``."""
    return "; ".join(
        f"{'.'.join(str(x) for x in err['loc']) or 'value'}: {err['msg']}" for err in error.errors()
    )


class ParseFailure(ValueError):
    """An LLM continuation could not be turned into a record.

    Attributes:
        reason: short machine-readable reason, counted in the run summary.
        completion: the raw text the model produced.
        prompt_tokens: tokens of the prompt the failed call used (if known).
        completion_tokens: tokens the failed call generated (if known).
    """

    def __init__(self, reason: str, message: str, completion: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.completion = completion
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled whole (a Ray worker sends failures back to the driver).
        return (type(self), (self.reason, str(self), self.completion), dict(self.__dict__))
