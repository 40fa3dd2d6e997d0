"""The anchor-selector interface: a LangChain example selector that can be seeded."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from langchain_core.example_selectors import BaseExampleSelector


class AnchorSelector(BaseExampleSelector):
    """Chooses the k anchors of one prompt.

    Subclasses implement :meth:`select_examples` (``input_variables`` may carry
    hints such as a target label) and name their strategy in ``strategy``.
    """

    strategy: str = "base"

    @abstractmethod
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        """Return k anchors as ``{"text", "label"}`` dicts."""
