"""A read-only, name-keyed registry of extension objects (families, providers).

Example:
    >>> reg: Registry[int] = Registry("THINGS")
    >>> reg.add("one", 1)
    >>> list(reg), reg["one"]
    (['one'], 1)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Name -> object, in registration order; iterating gives the names."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._items: dict[str, T] = {}

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"{self._label}({', '.join(self._items)})"

    def add(self, name: str, item: T) -> None:
        """Register ``item`` as ``name`` (replacing an earlier one of that name)."""
        self._items[name] = item
