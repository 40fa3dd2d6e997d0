"""A new prompt family is one module: register it and the chain, augment, config, CLI
and bench all know it (here the module is this file's ``Opposite`` class)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes import REVIEWS, fake_chat, write_jsonl
from langchain_core.messages import AIMessage

from mixaug import Example, PromptConfig, augment, get_spec
from mixaug.bench import all_methods
from mixaug.bench.runner import method_family
from mixaug.chains.families import (
    FAMILIES,
    ParseContext,
    PromptFamily,
    build_family_chain,
    family_names,
    get_family,
    register_family,
)
from mixaug.chains.families.text import first_line, strip_item
from mixaug.cli import build_parser, main
from mixaug.errors import ConfigError
from mixaug.records import LabelledItem
from mixaug.specs import TaskSpec

SST2 = get_spec("sst2")
EXAMPLES = [Example(text=t, label=lab) for t, lab in REVIEWS]


class Opposite(PromptFamily):
    """One anchor; ask for a text whose label is another one (a contrast set)."""

    name = "opposite"
    method = "opp"

    def anchors_per_prompt(self, k: int) -> int:
        return 1

    def render(self, spec: TaskSpec, request: Mapping[str, Any], *, chat: bool) -> str:
        anchor = request["anchors"][0]
        word = spec.word_for(self._other(spec, anchor["label"]))
        return (
            f"Rewrite so that its {spec.label_type} is {word}: {anchor['text']}\n{spec.text_prefix}"
        )

    def parse(self, ctx: ParseContext) -> list[LabelledItem]:
        line = first_line(ctx.completion)
        text = strip_item(line, ctx.spec) if line else ""
        if not text:
            raise ctx.failure(reason="empty_text", what="no rewrite")
        asked = self._other(ctx.spec, ctx.request["anchors"][0]["label"])
        return [
            ctx.item(
                text, word=None, label_start=None, prefix=ctx.mix_prefix(text), generated=asked
            )
        ]

    def target(self, request: Mapping[str, Any]) -> dict[str, float] | None:
        return None

    @staticmethod
    def _other(spec: TaskSpec, label: str) -> str:
        return next(lab for lab in spec.label_names if lab != label)


class NegativeIfAwful:
    """Scores 'awful' texts negative (0.9), the rest positive (0.9)."""

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        item = re.split(r"Movie review:", prefix)[-1]
        neg = "awful" in item
        probs = {" negative": 0.9 if neg else 0.1, " positive": 0.1 if neg else 0.9}
        return [math.log(probs[c]) if c in probs else -math.inf for c in continuations]


@pytest.fixture
def opposite(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The registry is restored after the test.
    monkeypatch.setattr(FAMILIES, "_items", dict(FAMILIES._items))
    register_family(Opposite)
    yield


def _reply(text: str) -> AIMessage:
    return AIMessage(content=text, response_metadata={"finish_reason": "stop"})


def test_built_in_families_are_registered_in_order() -> None:
    assert family_names() == ("mix", "paraphrase", "instruct", "fewshot", "boundary")
    assert get_family("paraphrase").method_prefix == "para"
    with pytest.raises(ConfigError, match="use one of mix, paraphrase"):
        get_family("opposite")


def test_a_registered_family_runs_through_its_chain(opposite: None) -> None:
    llm = fake_chat([_reply("an awful, joyless film")])
    [item] = build_family_chain(llm, SST2, "opposite", scorer=NegativeIfAwful()).invoke(
        {"anchors": [{"text": "a joyful film", "label": "positive"}]}
    )
    assert item.text == "an awful, joyless film"
    assert item.generated_label == "negative"  # what the family asked for
    assert item.label == "negative" and item.soft_label["negative"] == pytest.approx(0.9)


def test_a_registered_family_reaches_augment_config_cli_and_bench(
    opposite: None, tmp_path: Path
) -> None:
    replies = [_reply(f"an awful take number {i}") for i in range(4)]
    res = augment(
        EXAMPLES, SST2, fake_chat(replies), n=3, batch_size=3, family="opposite",
        scorer=NegativeIfAwful(),
    )  # fmt: skip
    assert len(res.records) == 3
    assert all(len(r.anchors) == 1 and r.prompt_family == "opposite" for r in res.records)
    assert all(r.generated_label != r.anchors[0].label for r in res.records)

    assert PromptConfig.model_validate("opposite").family == "opposite"
    assert {"opp-hard", "opp-soft"} <= set(all_methods())
    assert method_family("opp-soft") == "opposite"
    help_text = build_parser().format_help() + _sub_help("augment")
    assert "opposite" in help_text

    data = write_jsonl(tmp_path / "d.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    out = tmp_path / "o.jsonl"
    argv = ["augment", "--data", str(data), "--task", "sst2", "--n", "3", "--dry-run"]
    assert main([*argv, "--prompt", "opposite", "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3 and all(r["prompt"].startswith("Rewrite so that") for r in rows)


def test_an_unregistered_family_is_refused_everywhere(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown prompt family 'opposite'"):
        PromptConfig(family="opposite")
    assert "opp-soft" not in all_methods()
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    argv = ["augment", "--data", str(data), "--task", "sst2", "--n", "3", "--dry-run"]
    assert main([*argv, "--prompt", "opposite", "--out", str(tmp_path / "o.jsonl")]) == 2
    assert not (tmp_path / "o.jsonl").exists()


def test_a_family_needs_an_identifier_name() -> None:
    class Nameless(PromptFamily):
        pass

    with pytest.raises(ValueError, match="identifier"):
        register_family(Nameless)


def _sub_help(command: str) -> str:
    parser = build_parser()
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        choices: dict[str, Any] = getattr(action, "choices", None) or {}
        if command in choices:
            return str(choices[command].format_help())
    raise AssertionError(command)
