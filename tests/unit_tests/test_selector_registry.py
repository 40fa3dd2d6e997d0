"""A new anchor strategy is one module: register it, with its own options, and the config,
``make_selector`` and the CLI reach it (here: this file's ``Window``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import REVIEWS, write_jsonl
from pydantic import BaseModel, ConfigDict, Field

from mixaug.cli import main
from mixaug.config import AnchorConfig
from mixaug.errors import ConfigError
from mixaug.records import Example
from mixaug.selectors import STRATEGIES, AnchorSelector, make_selector, register_selector
from mixaug.selectors.index import AnchorIndex

POOL = [Example(text=t, label=lab) for t, lab in REVIEWS]


class Window(AnchorSelector):
    """k consecutive pool examples, starting at ``start`` and moving on by ``step``."""

    strategy = "window"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        start: int = Field(default=0, ge=0)
        step: int = Field(default=1, ge=1)

    @classmethod
    def create(
        cls,
        examples: list[Example],
        *,
        k: int,
        seed: int,
        index: AnchorIndex | None,
        options: BaseModel,
    ) -> AnchorSelector:
        return cls(examples, k=k, seed=seed, **options.model_dump())

    def __init__(self, examples: list[Example], k: int, seed: int, start: int, step: int) -> None:
        super().__init__(k, seed)
        self.pool = [e.model_dump() for e in examples]
        self.at, self.step = start, step

    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        out = [self.pool[(self.at + i) % len(self.pool)] for i in range(self.k)]
        self.at += self.step
        return out

    def add_example(self, example: dict[str, str]) -> None:
        self.pool.append(dict(example))


@pytest.fixture
def window() -> Iterator[None]:
    register_selector(Window)
    yield
    STRATEGIES.pop("window")  # the registry as it was


def test_built_in_strategies_own_their_options() -> None:
    assert list(STRATEGIES)[:3] == ["random", "balanced", "targeted"]
    assert AnchorConfig.model_validate({"strategy": "diverse", "mmr_lambda": 0.1}).options == {
        "mmr_lambda": 0.1
    }  # a flat option beside the strategy is read as the strategy's option
    with pytest.raises(ValueError, match="takes no options"):
        AnchorConfig.model_validate({"strategy": "random", "options": {"mmr_lambda": 0.1}})
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['lamda'\] for 'diverse'"):
        AnchorConfig.model_validate({"strategy": "diverse", "options": {"lamda": 0.1}})


def test_a_registered_strategy_gets_its_options(window: None) -> None:
    cfg = AnchorConfig.model_validate({"strategy": "window", "options": {"start": 2, "step": 3}})
    sel = make_selector(cfg.strategy, POOL, k=2, options=cfg.options)
    assert [a["text"] for a in sel.select_examples({})] == [POOL[2].text, POOL[3].text]
    assert [a["text"] for a in sel.select_examples({})] == [POOL[5].text, POOL[6].text]
    with pytest.raises(ConfigError, match="Input should be greater than or equal to 1"):
        make_selector("window", POOL, k=2, options={"step": 0})


def test_the_cli_runs_a_registered_strategy(window: None, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("anchors: {strategy: window, options: {start: 1, step: 2}}\n")
    out = tmp_path / "dry.jsonl"
    argv = ["augment", "--data", str(data), "--task", "sst2", "--n", "2", "--dry-run"]
    assert main([*argv, "--labels", "lm", "--config", str(cfg), "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    firsts = [r["anchors"][0]["text"] for r in rows]
    assert firsts == [REVIEWS[1][0], REVIEWS[3][0]]
