"""The agentic loop: targeting, rounds, budgets, files and resuming (fake models)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import REVIEWS, fake_chat, labelled_reply, write_jsonl

import mixaug.providers
from mixaug import AugmentConfig, Example, SyntheticRecord, get_spec
from mixaug.cli import main
from mixaug.config import FilterConfig
from mixaug.filtering import build_record_filter
from mixaug.loop import LoopContext, Target, find_targets, plan_round, run_loop
from mixaug.runstate import RunConflict

SST2 = get_spec("sst2")
TRAIN = [Example(text=t, label=lab) for t, lab in REVIEWS]
VAL = [
    Example(text="a warm and funny film", label="positive"),
    Example(text="sharp writing and a fine cast", label="positive"),
    Example(text="a dull and lazy mess", label="negative"),
    Example(text="far too long and never funny", label="negative"),
]


class HalfScorer:
    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        return [math.log(0.5)] * len(continuations)


def _replies(n: int, start: int = 0) -> list[Any]:
    out = []
    for i in range(start, start + n):
        word = "positive" if i % 3 else "negative"
        p = 0.8 if word == "positive" else 0.3
        out.append(
            labelled_reply(f"invented review {i}", word, {" positive": p, " negative": 1 - p})
        )
    return out


def _ctx(llm: Any, tmp: Path, **loop: Any) -> LoopContext:
    cfg = AugmentConfig.model_validate(
        {"loop": {"per_round": 4, "max_rounds": 2, "epochs": 2, **loop}, "llm": {"batch_size": 4}}
    )
    return LoopContext(cfg=cfg, spec=SST2, train=TRAIN, validation=VAL, llm=llm)


# -- targeting ---------------------------------------------------------------------------


def test_find_targets_takes_wrong_and_unsure_examples_hardest_first() -> None:
    probs = [[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.4, 0.6]]
    gold = [0, 0, 1, 0]
    vecs = np.eye(4)
    targets = find_targets(probs, gold, vecs, ["pos", "neg"], margin=0.2)
    # #3 is wrong (gold pos, 0.4 vs 0.6), #1 right by only 0.1; #0 and #2 are sure.
    assert [(t.gold, t.pred) for t in targets] == [("pos", "neg"), ("pos", "neg")]
    assert targets[0].vector == [0.0, 0.0, 0.0, 1.0]


def test_plan_round_puts_anchors_on_the_boundary_and_fills_thin_classes() -> None:
    train = [
        Example(text="p-near", label="pos"),
        Example(text="p-far", label="pos"),
        Example(text="n-near", label="neg"),
        Example(text="n-far", label="neg"),
    ]
    vecs = np.array([[1, 0.1], [-1, 0.2], [0.9, 0.3], [-1, -0.5]], dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    target = Target(vector=[1.0, 0.0], gold="pos", pred="neg")
    plan = plan_round(train, vecs, [target], counts={"pos": 10, "neg": 2}, prompts=4, k=2, seed=0)
    boundary = plan.anchor_sets[0]
    assert sorted(a["text"] for a in boundary) == ["n-near", "p-near"]
    assert plan.parts == {"boundary": 1, "fill": 3, "random": 0}
    # The class with fewer kept records gets same-class anchors.
    assert all({a["label"] for a in s} == {"neg"} for s in plan.anchor_sets[1:])
    assert plan.strategy == "boundary+fill"
    # Balanced counts and no targets: random.
    plain = plan_round(train, vecs, [], counts={"pos": 3, "neg": 3}, prompts=3, k=2, seed=0)
    assert plain.parts == {"boundary": 0, "fill": 0, "random": 3}


# -- the loop ------------------------------------------------------------------------------


def test_loop_runs_rounds_writes_files_and_aims_the_second(tmp_path: Path) -> None:
    ctx = _ctx(fake_chat(_replies(40)), tmp_path)
    seen: list[dict[str, Any]] = []
    ctx.on_round = lambda report, state: seen.append(report)
    report = run_loop(ctx, tmp_path / "run", settings={"t": 1})
    assert report["stop_reason"] == "max_rounds" and report["rounds_run"] == 2
    assert [r["round"] for r in seen] == [1, 2]
    rounds = json.loads((tmp_path / "run" / "rounds.json").read_text())
    assert rounds[0]["strategy"] == "random" and rounds[1]["strategy"] != "random"
    for r in rounds:
        assert set(r["kept_per_class"]) == {"positive", "negative"}
        assert r["tokens"] > 0 and 0.0 <= r["val_accuracy"] <= 1.0
    assert rounds[1]["tokens_total"] == rounds[0]["tokens"] + rounds[1]["tokens"]
    recs = [
        SyntheticRecord.model_validate_json(x)
        for x in (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    ]
    assert len(recs) == 8 and len({r.id for r in recs}) == 8
    assert sum(rounds[-1]["kept_per_class"].values()) == 8
    assert report["baseline_accuracy"] is not None
    assert (tmp_path / "run" / "accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_token_budget_stops_the_loop(tmp_path: Path) -> None:
    ctx = _ctx(fake_chat(_replies(60)), tmp_path, max_rounds=10, budget_tokens=600, patience=50)
    report = run_loop(ctx, tmp_path / "b", settings={})
    assert report["stop_reason"] == "budget_tokens"
    # The last round was shrunk to fit: the overshoot is less than one round.
    per_round = report["rounds"][0]["tokens"]
    assert report["tokens"] < 600 + per_round


def test_no_gain_stops_the_loop(tmp_path: Path) -> None:
    ctx = _ctx(fake_chat(_replies(80)), tmp_path, max_rounds=10, patience=1, min_gain=1.0)
    report = run_loop(ctx, tmp_path / "g", settings={})
    assert report["stop_reason"] == "no_gain" and report["rounds_run"] == 1


def test_a_stopped_loop_resumes_without_redoing_rounds(tmp_path: Path) -> None:
    out = tmp_path / "r"
    # Round 1 gets 4 good replies, then the fake runs dry and every call fails:
    # round 2's generation aborts, as with a server that went down.
    ctx = _ctx(fake_chat(_replies(4)), tmp_path)
    with pytest.raises(Exception, match="failed on every prompt"):
        run_loop(ctx, out, settings={"s": 1})
    first = json.loads((out / "rounds.json").read_text())
    assert len(first) == 1
    kept_before = (out / "records.jsonl").read_text()
    # A second process resumes at round 2's generation.
    ctx2 = _ctx(fake_chat(_replies(8, start=100)), tmp_path)
    report = run_loop(ctx2, out, settings={"s": 1})
    assert report["rounds_run"] == 2
    lines = (out / "records.jsonl").read_text()
    assert lines.startswith(kept_before)  # round 1's records kept as they were
    assert "invented review 100" in lines and "invented review 0" in lines
    # Finished: a third run does nothing; other settings are refused.
    again = run_loop(_ctx(fake_chat([]), tmp_path), out, settings={"s": 1})
    assert again["rounds_run"] == 2
    with pytest.raises(RunConflict):
        run_loop(_ctx(fake_chat([]), tmp_path), out, settings={"s": 2})


def test_the_filter_runs_each_round_and_rejects_are_kept(tmp_path: Path) -> None:
    dup = labelled_reply(REVIEWS[5][0], "negative", {" positive": 0.2, " negative": 0.8})
    ctx = _ctx(fake_chat([dup, *_replies(30)]), tmp_path, max_rounds=1)
    cfg = FilterConfig.model_validate({"dedup": {"near": False}})
    ctx.record_filter = build_record_filter(cfg, SST2, TRAIN, llm=None, scorer=HalfScorer(),
                                            embed=None)  # fmt: skip
    report = run_loop(ctx, tmp_path / "f", settings={})
    rejects = [json.loads(x) for x in (tmp_path / "f" / "rejects.jsonl").read_text().splitlines()]
    assert report["rejected"] >= 1 and rejects
    # The copy of a training review is dropped, or it is one of the prompt's anchors.
    assert rejects[0]["reject"]["reasons"][0] in ("exact_train", "exact_anchor")


def test_loop_cli_prints_the_report_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(mixaug.providers, "build_llm", lambda *a, **k: fake_chat(_replies(50)))
    monkeypatch.setattr(mixaug.providers, "build_scorer", lambda *a, **k: HalfScorer())
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    dev = write_jsonl(tmp_path / "d.jsonl", [e.model_dump() for e in VAL])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "filter: {dedup: {near: false}}\nloop: {per_round: 4, epochs: 2}\nllm: {batch_size: 4}\n"
    )
    args = ["loop", "--data", str(data), "--eval", str(dev), "--task", "sst2", "--max-rounds",
            "2", "--out", str(tmp_path / "L"), "--config", str(cfg)]  # fmt: skip
    assert main(args) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["rounds_run"] == 2 and report["stop_reason"] == "max_rounds"
    assert "round 1/2" in err and "val acc" in err
    assert main(args) == 0
    assert "already complete" in capsys.readouterr().err
    assert main([*args[:-2], "--config", str(cfg), "--seed", "5"]) == 2
    assert "other settings" in capsys.readouterr().err
    bad = ["loop", "--data", str(data), "--eval", str(tmp_path / "missing.jsonl"), "--task",
           "sst2", "--out", str(tmp_path / "M")]  # fmt: skip
    assert main(bad) == 2 and not (tmp_path / "M").exists()


def test_loop_cli_guard_reports_the_gain_on_held_out_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(mixaug.providers, "build_llm", lambda *a, **k: fake_chat(_replies(50)))
    monkeypatch.setattr(mixaug.providers, "build_scorer", lambda *a, **k: HalfScorer())
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    dev = write_jsonl(tmp_path / "d.jsonl", [e.model_dump() for e in VAL])
    held = write_jsonl(
        tmp_path / "v.jsonl", [{"text": f"{t} (again)", "label": lab} for t, lab in REVIEWS] * 2
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "filter: {dedup: {near: false}}\nloop: {per_round: 4, epochs: 2}\nllm: {batch_size: 4}\n"
    )
    base = ["loop", "--data", str(data), "--eval", str(dev), "--task", "sst2", "--max-rounds",
            "1", "--out", str(tmp_path / "G"), "--config", str(cfg), "--quiet",
            "--guard"]  # fmt: skip
    assert main(base) == 2  # no --held-out
    assert "--held-out" in capsys.readouterr().err
    assert main([*base, "--held-out", str(dev)]) == 2  # the loop's own --eval is not held out
    assert "must not be the --val file" in capsys.readouterr().err
    assert not (tmp_path / "G").exists()
    assert main([*base, "--held-out", str(held)]) == 0
    report = json.loads(capsys.readouterr().out)
    guard = report["guard"]
    assert guard["examples"] > 0 and len(guard["without"]) == 3
    # 16 held-out examples: too few to choose a weight on, so all of them guard, and a
    # gain within one standard error either way is reported as too small to tell.
    assert guard["examples"] == 16
    if guard["verdict"].startswith("too few validation examples to tell"):
        assert guard["helps"]
    else:
        assert guard["verdict"].startswith("augmentation") and guard["helps"] == (guard["gain"] > 0)
    saved = json.loads((tmp_path / "G" / "report.json").read_text())
    assert saved["guard"] == guard


def test_loop_with_another_prompt_family(tmp_path: Path) -> None:
    from langchain_core.messages import AIMessage

    replies = [
        AIMessage(content=f"a new take number {i}", response_metadata={"finish_reason": "stop"})
        for i in range(40)
    ]
    ctx = _ctx(fake_chat(replies), tmp_path)
    ctx.cfg = ctx.cfg.model_copy(update={"prompt": ctx.cfg.prompt.model_copy(
        update={"family": "paraphrase"})})  # fmt: skip
    ctx.scorer = HalfScorer()
    report = run_loop(ctx, tmp_path / "p", settings={})
    assert report["rounds_run"] == 2
    recs = [json.loads(x) for x in (tmp_path / "p" / "records.jsonl").read_text().splitlines()]
    assert recs and all(r["prompt_family"] == "paraphrase" and len(r["anchors"]) == 1 for r in recs)


def test_loop_cli_stops_cleanly_when_the_model_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(mixaug.providers, "build_llm", lambda *a, **k: fake_chat([]))
    monkeypatch.setattr(mixaug.providers, "build_scorer", lambda *a, **k: HalfScorer())
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    dev = write_jsonl(tmp_path / "d.jsonl", [e.model_dump() for e in VAL])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("filter: {dedup: {near: false}}\nloop: {per_round: 2, epochs: 1}\n")
    args = ["loop", "--data", str(data), "--eval", str(dev), "--task", "sst2",
            "--out", str(tmp_path / "L"), "--config", str(cfg)]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "failed on every prompt" in err and "run the same command again" in err
    assert (tmp_path / "L" / "checkpoints.sqlite").exists()


def test_loop_never_writes_into_a_users_folder_or_over_its_held_out_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # loop --out lp/user overwrote the user's records.jsonl and report.json, and
    # --held-out lp/h/records.jsonl --overwrite replaced the held-out input.
    monkeypatch.setattr(mixaug.providers, "build_llm", lambda *a, **k: fake_chat(_replies(50)))
    monkeypatch.setattr(mixaug.providers, "build_scorer", lambda *a, **k: HalfScorer())
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    dev = write_jsonl(tmp_path / "d.jsonl", [e.model_dump() for e in VAL])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "filter: {dedup: {near: false}}\nloop: {per_round: 4, epochs: 2}\nllm: {batch_size: 4}\n"
    )
    user = tmp_path / "user"
    user.mkdir()
    (user / "records.jsonl").write_text("mine\n")
    (user / "report.json").write_text("{}\n")
    base = ["loop", "--data", str(data), "--eval", str(dev), "--task", "sst2", "--max-rounds",
            "1", "--config", str(cfg), "--quiet"]  # fmt: skip
    for extra in ([], ["--overwrite"]):
        assert main([*base, "--out", str(user), *extra]) == 2
        assert "not written by mixaug loop" in capsys.readouterr().err
    assert (user / "records.jsonl").read_text() == "mine\n"
    assert sorted(p.name for p in user.iterdir()) == ["records.jsonl", "report.json"]
    held_dir = tmp_path / "h"
    held_dir.mkdir()
    held = write_jsonl(held_dir / "records.jsonl", [{"text": "x", "label": "positive"}] * 4)
    keep = held.read_bytes()
    args = [*base, "--out", str(held_dir), "--overwrite", "--guard", "--held-out", str(held)]
    assert main(args) == 2
    assert "--held-out" in capsys.readouterr().err and held.read_bytes() == keep
    # Its own folder is marked, and a second run resumes it.
    own = tmp_path / "own"
    assert main([*base, "--out", str(own)]) == 0
    assert (own / ".mixaug-output").is_file()
    assert main([*base, "--out", str(own)]) == 0
