"""Prompt families: ways to ask a model for labelled data, each one registered object.

- ``mix``: GPT3Mix (k anchors, the model writes an item and its label);
- ``paraphrase``: one anchor, "write a new <text type> with the same meaning as"
  (the label is carried over and re-scored as a soft label);
- ``instruct``: zero-shot "write N <text type>s whose <label type> is <word>", per
  class, parsed into one record per list item;
- ``fewshot``: a ``Task:``/``Classes:``/``Context:``/``Labeled examples:`` template
  with ``Text:``/``Label:`` pairs, then a new item and its label;
- ``boundary``: PromptMix-style, anchors of two classes and a request for an item that
  mixes them in given shares, relabelled by soft labels.

Each family is one module here: a :class:`PromptFamily` subclass (render, plan, stop,
parse, target) under :func:`register_family`. The chain (``FamilyPromptTemplate |
generation | FamilyParser``), ``augment``, the config, the CLI and the bench all look
families up in :data:`FAMILIES`, so a family of your own is one module::

    @register_family
    class Question(PromptFamily):
        name = "question"
        def render(self, spec, request, *, chat): ...
        def parse(self, ctx): ...

Every word comes from the spec's :class:`~mixaug.specs.PromptTexts`, so a spec written
in another language gives prompts in that language.

Example:
    >>> from mixaug.specs import get_spec
    >>> p = FamilyPromptTemplate(spec=get_spec("sst2"), family="instruct")
    >>> p.format(anchors=[], target="positive", n=3).splitlines()
    ['Write 3 movie reviews whose sentiment is positive.', '1.']
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

# The built-in families register themselves on import, in this order.
# isort: off
from mixaug.chains.families import mix as _mix  # noqa: F401
from mixaug.chains.families import paraphrase as _paraphrase  # noqa: F401
from mixaug.chains.families import instruct as _instruct  # noqa: F401
from mixaug.chains.families import fewshot as _fewshot  # noqa: F401
from mixaug.chains.families import boundary as _boundary  # noqa: F401

# isort: on
from mixaug.chains.families.base import (
    FAMILIES,
    PromptFamily,
    check_family,
    family_names,
    get_family,
    register_family,
)
from mixaug.chains.families.chain import (
    FamilyChatPromptValue,
    FamilyParser,
    FamilyPromptTemplate,
    FamilyPromptValue,
    ParseContext,
    build_family_chain,
    render_family_prompt,
)
from mixaug.chains.families.text import parse_list
from mixaug.records import Example
from mixaug.specs import TaskSpec

Family = str
"""A registered family's name."""


def anchors_per_prompt(family: str, k: int) -> int:
    """How many anchors a request of ``family`` holds (``paraphrase``: 1; ``boundary``: 2)."""
    return get_family(family).anchors_per_prompt(k)


def items_per_prompt(family: str, n_items: int) -> int:
    """Items one prompt asks for (``instruct``: ``n_items``; the others: 1)."""
    return get_family(family).items_per_prompt(n_items)


def plan_requests(
    family: str,
    anchor_sets: Sequence[Sequence[Mapping[str, Any]]],
    *,
    spec: TaskSpec,
    pool: Sequence[Example],
    counts: Mapping[str, int] | None = None,
    n_items: int = 5,
    shares: Sequence[int] = (50, 70),
    seed: int = 0,
    batch_no: int = 0,
) -> list[dict[str, Any]]:
    """One request per anchor set, as ``family`` needs it (:meth:`PromptFamily.plan`).

    - ``instruct``: each request asks for ``n_items`` items of the label with the
      fewest records so far (``counts``, updated as requests are planned);
    - ``boundary``: the two anchors are made to differ in label (the second is
      redrawn from ``pool`` when needed) and the first gets a share drawn from
      ``shares`` (percent), the second the rest;
    - the others: the anchors as they are.

    Deterministic in (``seed``, ``batch_no``) and the anchor sets, so a resumed run
    plans the same requests.
    """
    fam = get_family(family)
    filled = Counter({lab: 0 for lab in spec.label_names})
    filled.update(counts or {})
    return [
        fam.plan(
            {"anchors": [dict(a) for a in anchors]},
            spec=spec,
            pool=pool,
            filled=filled,
            n_items=n_items,
            shares=shares,
            rng=random.Random(f"{seed}-{batch_no}-{i}"),
        )
        for i, anchors in enumerate(anchor_sets)
    ]


def target_of(family: str, request: Mapping[str, Any]) -> dict[str, float] | None:
    """What a request asked for, as label -> share (``None`` for mix and fewshot)."""
    return get_family(family).target(request)


__all__ = [
    "FAMILIES",
    "Family",
    "FamilyChatPromptValue",
    "FamilyParser",
    "FamilyPromptTemplate",
    "FamilyPromptValue",
    "ParseContext",
    "PromptFamily",
    "anchors_per_prompt",
    "build_family_chain",
    "check_family",
    "family_names",
    "get_family",
    "items_per_prompt",
    "parse_list",
    "plan_requests",
    "register_family",
    "render_family_prompt",
    "target_of",
]
