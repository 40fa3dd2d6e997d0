"""Sub-sampling, splits, the bench end to end on a tiny data set, and ``mixaug train``."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
from fakes import fake_chat, labelled_reply, write_jsonl
from langchain_core.messages import AIMessage

import mixaug.providers
from mixaug.bench import (
    Bench,
    BenchConfig,
    aggregate,
    balanced_subsample,
    load_splits,
    markdown_table,
)
from mixaug.cli import main
from mixaug.errors import DataError
from mixaug.records import Example

POS = [
    "a bright warm comedy",
    "the cast sparkles",
    "a moving portrait",
    "clever and funny",
    "a joyous lovely film",
    "great acting",
    "a delight",
    "wonderful music and story",
]
NEG = [
    "a dull film",
    "the pacing is glacial",
    "noisy and long",
    "a lazy sequel",
    "a tedious mess",
    "awful acting",
    "boring from start to end",
    "terrible jokes",
]


def _rows(texts: list[str], label: str) -> list[dict[str, str]]:
    return [{"text": t, "label": label} for t in texts]


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    d = tmp_path / "tiny"
    d.mkdir()
    train = [
        {"text": f"{r['text']} {i}", "label": r["label"]}
        for i in range(3)
        for r in _rows(POS, "positive") + _rows(NEG, "negative")
    ]
    write_jsonl(d / "train.jsonl", train)
    write_jsonl(d / "dev.jsonl", _rows(POS[:3], "positive") + _rows(NEG[:3], "negative"))
    write_jsonl(d / "test.jsonl", _rows(POS[3:], "positive") + _rows(NEG[3:], "negative"))
    return d


def test_balanced_subsample_is_balanced_deterministic_and_covers_every_class() -> None:
    pool = [Example(text=f"t{i}", label=lab) for i, lab in enumerate("a" * 90 + "b" * 9 + "c")]
    sub = balanced_subsample(pool, 0.01, seed=0)  # 1 example asked, 3 classes
    assert Counter(e.label for e in sub) == {"a": 1, "b": 1, "c": 1}
    sub = balanced_subsample(pool, 0.3, seed=4)  # 30: c has only 1, b 9, a the rest
    assert Counter(e.label for e in sub) == {"a": 20, "b": 9, "c": 1}
    assert balanced_subsample(pool, 0.3, seed=4) == sub
    assert balanced_subsample(pool, 0.3, seed=5) != sub
    even = balanced_subsample(pool[:60] + pool[90:99], 0.1, seed=1)
    counts = Counter(e.label for e in even)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_splits_follow_the_folder(tiny_data: Path, tmp_path: Path) -> None:
    s = load_splits(tiny_data)
    assert (s.validation_source, s.test_source) == ("dev", "test") and len(s.pool) == 48
    (tiny_data / "dev.jsonl").unlink()  # like TREC-6: carve validation from train
    s = load_splits(tiny_data, val_size=6)
    assert s.validation_source == "train (carved)" and len(s.validation) == 6
    assert len(s.pool) == 42 and not {e.text for e in s.validation} & {e.text for e in s.pool}
    assert load_splits(tiny_data, val_size=6).validation == s.validation  # fixed
    (tiny_data / "test.jsonl").rename(tiny_data / "dev.jsonl")  # like CoLA: test on dev
    s = load_splits(tiny_data, val_size=6)
    assert s.test_source == "dev" and s.validation_source == "train (carved)"
    with pytest.raises(DataError, match="no train.jsonl"):
        load_splits(tmp_path)


def test_table_format() -> None:
    rows = [
        {"method": "noaug", "level": 0.01, "accuracy": 0.8},
        {"method": "noaug", "level": 0.01, "accuracy": 0.9},
        {"method": "mix-soft", "level": 0.01, "accuracy": 0.85},
    ]
    agg = aggregate(rows)
    table = markdown_table(agg, "sst2")
    assert table.splitlines()[0] == "| sst2 | 1% |"
    assert "| noaug | 85.0±7.1 |" in table and "| mix-soft | 85.0±0.0 |" in table


def test_bench_end_to_end_with_cached_generation(
    tiny_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls = []

    def fake_llm(*a: object, **k: object) -> object:
        calls.append(1)
        # Every fourth reply has no label: the parse rate must show it.
        replies = [
            labelled_reply(f"made up review {i}", "positive", {" positive": 0.7, " negative": 0.3})
            if i % 4
            else AIMessage(content=" a review with no label", response_metadata={})
            for i in range(200)
        ]
        return fake_chat(replies)

    monkeypatch.setattr(mixaug.providers, "build_llm", fake_llm)
    out = tmp_path / "results"
    args = [
        "bench",
        "--data",
        str(tiny_data),
        "--task",
        "sst2",
        "--levels",
        "0.05,0.1",
        "--seeds",
        "2",
        "--methods",
        "noaug,mix-plain-hard,mix-plain-soft,mix-soft",
        "--ratio",
        "2",
        "--out",
        str(out),
        "--freeze-encoder",
        "--epochs",
        "2",
        "--quiet",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 4
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and r["test_examples"] == 10
        if r["method"] == "noaug":
            assert r["n_synthetic"] == r["n_requested"] == 0 and r["parse_rate"] is None
            continue
        assert r["n_requested"] == 2 * r["n_real"]
        assert 0.5 < r["parse_rate"] < 1.0
        if r["method"].startswith("mix-plain"):
            assert r["n_synthetic"] == 2 * r["n_real"]
        else:
            # The recipe on six validation examples: too few to choose settings on, so
            # the fixed defaults (augment's labeller, no search), quotas, and the guard.
            assert r["recipe"]["searched"] is False
            assert r["recipe"]["labeller"] == "lm[prior]xcentroid(1:1)^4"
            assert r["n_synthetic"] == r["recipe"]["synthetic_used"] <= r["n_requested"]
            assert r["guard"]["examples"] > 0 and "verdict" in r["guard"]
            assert len(r["guard"]["with_synthetic"]) == 3
    # Same sub-sample for every method of a (level, seed).
    for level in (0.05, 0.1):
        assert len({r["n_real"] for r in rows if r["level"] == level}) == 1
    # mix-plain-hard and -soft share one generation per (level, seed); the recipe's
    # targeted anchors make their own.
    assert len(list((out / "cache").glob("*-mix-targeted-*.jsonl"))) == 4
    assert len(list((out / "cache").glob("*-mix-*.jsonl"))) == 8
    assert sum(r["generation_cached"] for r in rows if r["method"] == "mix-plain-soft") == 4
    table = (out / "table.md").read_text()
    assert table.startswith("| tiny | 5% | 10% |")
    assert "| tiny: parse rate / made÷asked | 5% | 10% |" in table
    assert "| mix-soft | " in table.split("parse rate")[1]
    assert (out / "plot.png").read_bytes()[:4] == b"\x89PNG"
    written = json.loads((out / "summary.json").read_text())
    assert written["config"]["llm"]["engine"] == "auto"
    assert written["engine"] in {"llamacpp", "transformers"}  # what auto resolved to
    assert {a["method"] for a in summary["aggregate"]} == {
        "noaug",
        "mix-plain-hard",
        "mix-plain-soft",
        "mix-soft",
    }
    # A rerun reuses every result and generates nothing.
    calls.clear()
    assert main(args) == 0
    assert not calls
    assert len((out / "results.jsonl").read_text().splitlines()) == 16
    # The cached generation is reachable from Python for other uses of the records.
    bench = Bench(
        BenchConfig(data=str(tiny_data), task="sst2", levels=[0.05], ratio=2, out=str(out)),
        progress=False,
    )
    recs, stats = bench.synthetic("mix-plain-soft", 0.05, 1)
    assert not calls
    assert len(recs) == stats["requested"] == 2 * len(bench.subsample(0.05, 1))
    assert stats["parse_rate"] < 1.0 and stats["attempts"] > len(recs)


def test_train_cli_prints_metrics_and_saves(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    syn = write_jsonl(
        tmp_path / "syn.jsonl",
        [
            {
                "id": "s-0",
                "text": "a lovely new film",
                "label": "positive",
                "soft_label": {"positive": 0.8, "negative": 0.2},
                "generated_label": "positive",
                "label_mass": 0.9,
                "anchors": [],
                "anchor_strategy": "random",
                "model": "m",
                "prompt_hash": "0",
                "seed": 0,
                "task": "sst2",
                "soft_label_source": "inline",
            }
        ],
    )
    out = tmp_path / "model"
    args = [
        "train",
        "--train",
        str(tiny_data / "train.jsonl"),
        "--synthetic",
        str(syn),
        "--eval",
        str(tiny_data / "test.jsonl"),
        "--val",
        str(tiny_data / "dev.jsonl"),
        "--out",
        str(out),
        "--task",
        "sst2",
        "--freeze-encoder",
        "--epochs",
        "3",
        "--quiet",
    ]
    assert main(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "loss"} <= set(metrics)
    assert metrics["synthetic_examples"] == 1 and metrics["train_examples"] == 49
    assert (out / "model.safetensors").is_file()
    assert main(args) == 2  # --out is not empty now
    assert "not empty" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [{"text": "x", "label": "neutral"}])
    args2 = [
        "train",
        "--train",
        str(tiny_data / "train.jsonl"),
        "--eval",
        str(bad),
        "--out",
        str(tmp_path / "m2"),
        "--quiet",
    ]
    assert main(args2) == 2
    assert "labels ['neutral']" in capsys.readouterr().err


def test_bench_runs_other_prompt_families(
    tiny_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from langchain_core.messages import AIMessage

    class Scorer:
        def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
            return [-0.5 if c == " positive" else -1.5 for c in continuations]

    replies = [
        AIMessage(
            content="\n".join(f"{j + 1}. invented review {i} {j}" for j in range(5)),
            response_metadata={"finish_reason": "stop"},
        )
        for i in range(300)
    ]
    monkeypatch.setattr(mixaug.providers, "build_llm", lambda *a, **k: fake_chat(replies))
    monkeypatch.setattr(mixaug.providers, "build_scorer", lambda *a, **k: Scorer())
    out = tmp_path / "fam"
    args = [
        "bench",
        "--data",
        str(tiny_data),
        "--task",
        "sst2",
        "--levels",
        "0.1",
        "--seeds",
        "1",
        "--methods",
        "noaug,para-soft,instruct-hard,instruct-soft",
        "--ratio",
        "2",
        "--out",
        str(out),
        "--freeze-encoder",
        "--epochs",
        "1",
        "--quiet",
    ]
    assert main(args) == 0
    rows = {
        r["method"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())
    }
    assert set(rows) == {"noaug", "para-soft", "instruct-hard", "instruct-soft"}
    assert rows["para-soft"]["n_synthetic"] == 2 * rows["para-soft"]["n_real"]
    assert rows["instruct-soft"]["generation_cached"]  # shares instruct-hard's generation
    cached = sorted(p.name.split("-")[3] for p in (out / "cache").glob("*.jsonl"))
    assert cached == ["instruct", "paraphrase"]
    recs = (out / "cache").glob("*-paraphrase-*.jsonl")
    rows_p = [json.loads(x) for x in next(recs).read_text().splitlines()[1:]]
    assert all(r["prompt_family"] == "paraphrase" and len(r["anchors"]) == 1 for r in rows_p)


def test_train_cli_same_seed_same_weights(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The head is built after the seed is set, so --seed fixes its initial weights too.
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = ["train", "--train", str(tiny_data / "train.jsonl"), "--eval",
                str(tiny_data / "test.jsonl"), "--out", str(out), "--task", "sst2",
                "--freeze-encoder", "--epochs", "2", "--seed", "0", "--synthetic-weight",
                "0.5", "--quiet"]  # fmt: skip
        assert main(args) == 0
        outs.append(json.loads(capsys.readouterr().out))
        # A random draw in between must not matter.
        import torch

        torch.rand(7)
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("a", "b"))
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    assert outs[0]["accuracy"] == outs[1]["accuracy"]


def _fake_setfit_score(model: object, test: list[Example], *a: object) -> dict[str, object]:
    m = {"accuracy": 0.5, "macro_f1": 0.5, "mcc": 0.0}
    return m | {"adjusted": m, "examples": len(test)}


def test_setfit_peers_train_on_a_fixed_number_per_class(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mixaug.baselines.setfit as peer

    seen: list[list[Example]] = []

    def fake_train(train: list[Example], **kw: object) -> object:
        seen.append(list(train))
        return ("model", len(train))

    monkeypatch.setattr(peer, "train_setfit", fake_train)
    monkeypatch.setattr(peer, "score_setfit", _fake_setfit_score)
    cfg = BenchConfig(
        data=str(tiny_data), task="sst2", levels=[0.05, 0.5], seeds=2,
        methods=["setfit-8", "setfit-16"], out=str(tmp_path / "b"),
    )  # fmt: skip
    rows = Bench(cfg, progress=False).run()
    assert [r["method"] for r in rows[:2]] == ["setfit-8", "setfit-16"]
    counts = [Counter(e.label for e in s) for s in seen]
    assert counts[0] == {"positive": 8, "negative": 8}
    assert counts[1] == {"positive": 16, "negative": 16}
    # The shots do not depend on the level: trained once per seed (other shots for
    # another seed), the row repeated at every level.
    assert len(seen) == 4 and seen[0] != seen[2]
    assert [r["level"] for r in rows] == [0.05] * 4 + [0.5] * 4
    assert rows[0] | {"level": 0.5} == rows[4]
    assert all(r["n_real"] in (16, 32) for r in rows)


def test_few_shot_validation_is_as_large_as_the_sub_sample_and_disjoint_from_it() -> None:
    from mixaug.bench.splits import matched_sample

    pool = [Example(text=f"t{i}", label="abc"[i % 3]) for i in range(300)]
    sub = balanced_subsample(pool, 0.03, seed=4)
    val = matched_sample(pool, sub, seed=4)
    assert Counter(e.label for e in val) == Counter(e.label for e in sub)
    assert not {e.text for e in val} & {e.text for e in sub}
    assert matched_sample(pool, sub, seed=4) == val and matched_sample(pool, sub, seed=5) != val
    # A class with too few examples left gives what it has.
    short = [*pool[:3], Example(text="only", label="d")]
    assert Counter(e.label for e in matched_sample(short, [short[3]], seed=0)) == Counter()


def test_bench_few_shot_protocol_gives_every_method_only_its_own_validation_set(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mixaug.bench.runner as runner

    seen: list[tuple[int, list[Example]]] = []
    fit = runner.Bench._fit_and_test

    def spy(self: runner.Bench, train: object, args: object, val_set: list[Example], *a: object):
        seen.append((len(train.texts), list(val_set)))  # type: ignore[attr-defined]
        return fit(self, train, args, val_set, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(runner.Bench, "_fit_and_test", spy)
    cfg = BenchConfig(
        data=str(tiny_data), task="sst2", levels=[0.1, 0.2], seeds=2, protocol="few-shot",
        methods=["noaug", "noaug-prior"], out=str(tmp_path / "fs"),
        training={"freeze_encoder": True, "epochs": 2},
    )  # fmt: skip
    bench = Bench(cfg, progress=False)
    rows = bench.run()
    assert len(rows) == 8 and {r["protocol"] for r in rows} == {"few-shot"}
    dev = {e.text for e in bench.splits.validation}
    for level in (0.1, 0.2):
        for seed in (0, 1):
            sub = bench.subsample(level, seed)
            val = bench.validation(level, seed, sub)
            assert Counter(e.label for e in val) == Counter(e.label for e in sub)
            assert not {e.text for e in val} & ({e.text for e in sub} | dev)
    assert all(r["n_validation"] == r["n_real"] for r in rows)
    assert all(not {e.text for e in v} & dev for _, v in seen)  # dev's 500 never used
    for r in rows:
        assert {"accuracy", "macro_f1", "mcc"} <= set(r) and set(r["adjusted"]) == {
            "accuracy", "macro_f1", "mcc",
        }  # fmt: skip
    # A balanced sub-sample and a balanced validation set: nothing to adjust.
    by = {(r["level"], r["seed"], r["method"]): r for r in rows}
    for level in (0.1, 0.2):
        for seed in (0, 1):
            plain, prior = by[(level, seed, "noaug")], by[(level, seed, "noaug-prior")]
            assert prior["accuracy"] == plain["adjusted"]["accuracy"] == plain["accuracy"]
    # The paper protocol is another fingerprint: its rows are not these.
    paper = Bench(cfg.model_copy(update={"protocol": "paper"}), progress=False)
    assert paper.fingerprint() != bench.fingerprint()
    assert paper.validation(0.1, 0, bench.subsample(0.1, 0)) == bench.splits.validation


def test_noaug_prior_moves_the_logits_to_the_validation_prior(
    tiny_data: Path, tmp_path: Path
) -> None:
    # A skewed validation set (5 positive, 1 negative) against a balanced sub-sample:
    # the adjustment adds log(5/1) in favour of positive, so noaug-prior predicts
    # positive at least as often as noaug does, on the same trained classifier.
    write_jsonl(tiny_data / "dev.jsonl", _rows(POS[:5], "positive") + _rows(NEG[:1], "negative"))
    cfg = BenchConfig(
        data=str(tiny_data), task="sst2", levels=[0.125], seeds=1,
        methods=["noaug", "noaug-prior"], out=str(tmp_path / "p"),
        training={"freeze_encoder": True, "epochs": 3},
    )  # fmt: skip
    bench = Bench(cfg, progress=False)
    from mixaug.bench.runner import train_prior
    from mixaug.training import TextDataset, class_prior, prior_adjustment

    sub = bench.subsample(0.125, 0)
    train = TextDataset.build(sub, labels=bench.labels)
    assert train_prior(train).tolist() == [0.5, 0.5]  # 3 + 1 of each, smoothed
    shift = prior_adjustment(class_prior([e.label for e in bench.splits.validation],
                                         bench.labels), train_prior(train))  # fmt: skip
    pos, neg = bench.labels.index("positive"), bench.labels.index("negative")
    assert shift[pos] - shift[neg] == pytest.approx(math.log(6 / 2))
    plain, prior = bench.run()
    assert prior["accuracy"] == plain["adjusted"]["accuracy"]
    assert prior["macro_f1"] == plain["adjusted"]["macro_f1"]
    assert prior["steps"] == plain["steps"]  # the same training, only the logits move


def test_aggregate_and_tables_give_every_metric() -> None:
    rows = [
        {"method": "noaug", "level": 0.01, "accuracy": a, "macro_f1": f, "mcc": m}
        for a, f, m in [(0.8, 0.7, 0.4), (0.6, 0.5, 0.2)]
    ] + [{"method": "mix-soft", "level": 0.01, "accuracy": 0.7}]  # an old row: no f1/mcc
    agg = {a["method"]: a for a in aggregate(rows)}
    assert agg["noaug"]["mean"] == 70.0 and agg["noaug"]["macro_f1"] == 60.0
    assert agg["noaug"]["mcc"] == 30.0 and agg["noaug"]["mcc_std"] == pytest.approx(14.14)
    assert agg["mix-soft"]["macro_f1"] is None
    table = markdown_table(list(agg.values()), "cola", "mcc")
    assert table.splitlines()[0] == "| cola (mcc) | 1% |"
    assert "| noaug | 30.0±14.1 |" in table and "| mix-soft |  |" in table


def test_bench_never_writes_among_its_inputs_or_into_a_users_folder(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tiny_data / "table.md").write_text("the user's notes\n")
    before = sorted(p.name for p in tiny_data.iterdir())
    base = ["bench", "--data", str(tiny_data), "--task", "sst2", "--levels", "0.1", "--seeds",
            "1", "--methods", "noaug", "--epochs", "1", "--freeze-encoder", "--quiet"]  # fmt: skip
    for out in (tiny_data, tiny_data / "results"):  # the data folder, or a folder inside it
        assert main([*base, "--out", str(out)]) == 2
        assert "--data" in capsys.readouterr().err
    assert sorted(p.name for p in tiny_data.iterdir()) == before
    assert (tiny_data / "table.md").read_text() == "the user's notes\n"
    user = tmp_path / "mine"
    user.mkdir()
    (user / "table.md").write_text("keep me\n")
    assert main([*base, "--out", str(user)]) == 2
    assert "not written by mixaug bench" in capsys.readouterr().err
    assert sorted(p.name for p in user.iterdir()) == ["table.md"]
    # Its own folder: written, marked, and resumed by a second run.
    mine = tmp_path / "b"
    assert main([*base, "--out", str(mine)]) == 0
    assert (mine / ".mixaug-output").is_file()
    assert main([*base, "--out", str(mine)]) == 0
    # A bench folder from before the marker (bench rows only) is still resumed.
    (mine / ".mixaug-output").unlink()
    assert main([*base, "--out", str(mine)]) == 0


def test_setfit_mix_gives_setfit_the_recipes_records_on_the_same_tuned_encoder(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mixaug.baselines.setfit as peer

    replies = [
        labelled_reply(f"made up review {i}", "positive" if i % 2 else "negative",
                       {" positive": 0.7, " negative": 0.3} if i % 2 else
                       {" positive": 0.3, " negative": 0.7})
        for i in range(400)
    ]  # fmt: skip
    monkeypatch.setattr(mixaug.providers, "build_llm", lambda *a, **k: fake_chat(replies))
    trained: list[tuple[int, int, str, object]] = []

    def fake_train(train: list[Example], **kw: object) -> object:
        recs = kw.get("records") or []
        trained.append((len(train), len(recs), str(kw.get("mode")), kw.get("body")))  # type: ignore[arg-type]
        return ("model", len(trained))

    monkeypatch.setattr(peer, "train_setfit", fake_train)
    monkeypatch.setattr(peer, "score_setfit", _fake_setfit_score)
    cfg = BenchConfig(
        data=str(tiny_data), task="sst2", levels=[0.5], seeds=1, protocol="few-shot",
        methods=["setfit-8", "setfit-8-mix"], out=str(tmp_path / "b"), ratio=2,
        training={"freeze_encoder": True, "epochs": 1},
    )  # fmt: skip
    alone, mix = Bench(cfg, progress=False).run()
    assert alone["method"] == "setfit-8" and mix["method"] == "setfit-8-mix"
    # One encoder tuned on the 16 real examples, then one head per variant over it.
    assert trained[0][:2] == (16, 0) and trained[0][3] is None
    assert [t[2] for t in trained[1:]] == ["head", "head-hard"]
    assert all(t[3] == ("model", 1) and t[0] == 16 for t in trained[1:])
    assert mix["n_synthetic"] == trained[1][1] and mix["n_validation"] == 16
    assert set(mix["setfit_modes"]) == {"head", "head-hard"}
    assert mix["recipe"]["searched"] is False
