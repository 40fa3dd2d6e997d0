"""Reliability: no command destroys what the user did not name; secrets stay secret.

Each test is one case of the hostile-user pass (issue 18); the bad-input table in
``test_cli.py`` holds the one-line refusals.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import fake_chat, labelled_reply, write_jsonl
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

import mixaug.augmentation
from mixaug.cli import main
from mixaug.paths import MARKER, RunBusy, RunLock

POS = ["a bright warm comedy", "the cast sparkles", "a moving portrait", "clever and funny"]
NEG = ["a dull film", "the pacing is glacial", "noisy and long", "a lazy sequel"]


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rows = [{"text": f"{t} {i}", "label": "positive"} for i in range(3) for t in POS]
    rows += [{"text": f"{t} {i}", "label": "negative"} for i in range(3) for t in NEG]
    return write_jsonl(tmp_path / "real.jsonl", rows)


def _train_args(data: Path, out: Path | str, *extra: str) -> list[str]:
    return ["train", "--train", str(data), "--eval", str(data), "--out", str(out),
            "--task", "sst2", "--freeze-encoder", "--epochs", "1", "--quiet", *extra]  # fmt: skip


# -- 1. train --overwrite replaces only a folder mixaug wrote ----------------------


def test_train_overwrite_refuses_a_folder_mixaug_did_not_write(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = tmp_path / "s"
    (user / "a").mkdir(parents=True)
    (user / "thesis.tex").write_text("years of work")
    (user / "a" / "notes.txt").write_text("more")
    before = _tree(user)
    for out in (user, f"{user}/a/.."):  # the second resolves to s/ as well
        assert main(_train_args(data, out, "--overwrite")) == 2
        assert "was not written by mixaug" in capsys.readouterr().err
        assert _tree(user) == before


def test_train_overwrite_replaces_its_own_folder_whole(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    assert main(_train_args(data, out)) == 0
    assert (out / MARKER).is_file() and (out / "model.safetensors").is_file()
    (out / "stale.txt").write_text("from an old run")
    assert main(_train_args(data, out)) == 2  # not empty, no --overwrite
    assert main(_train_args(data, out, "--overwrite")) == 0
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "real.jsonl"]  # no debris
    capsys.readouterr()


def test_train_out_holding_an_input_is_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / MARKER).write_text("written by mixaug train\n")  # even a marked folder
    assert main(_train_args(data, tmp_path, "--overwrite")) == 2
    assert "holds --train" in capsys.readouterr().err
    assert data.is_file()


# -- 2. two runs on one --out: the second is refused -------------------------------


def test_a_second_run_on_a_locked_out_is_refused(
    tmp_path: Path,
    reviews_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("a refused run must not build a model")

    monkeypatch.setattr(mixaug.augmentation, "build_llm", boom)
    out = tmp_path / "syn.jsonl"
    before = {p.name for p in tmp_path.iterdir()}
    with RunLock(out):  # the first run, still writing
        code = main(["augment", "--data", str(reviews_file), "--task", "sst2", "--n", "2",
                     "--out", str(out), "--labels", "lm"])  # fmt: skip
    assert code == 2
    assert "Another mixaug run is writing" in capsys.readouterr().err
    assert {p.name for p in tmp_path.iterdir()} == before  # the lock file went with it


def test_a_lock_is_exclusive_across_processes_and_dies_with_its_holder(tmp_path: Path) -> None:
    out = tmp_path / "syn.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from mixaug.paths import RunLock; "
         f"RunLock(Path({str(out)!r})).acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusy):
            RunLock(out).acquire()
    finally:
        holder.kill()
        holder.wait()
    lock = RunLock(out).acquire()  # a killed holder leaves a free lock
    lock.release()
    assert not lock.path.exists()


# -- 3. an output that is an input is refused, --overwrite or not ------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_augment_out_equal_to_data_is_refused(
    reviews_file: Path, overwrite: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    before = reviews_file.read_bytes()
    argv = ["augment", "--data", str(reviews_file), "--task", "sst2", "--n", "2",
            "--out", str(reviews_file)] + (["--overwrite"] if overwrite else [])  # fmt: skip
    assert main(argv) == 2
    assert "same file as --data" in capsys.readouterr().err
    assert reviews_file.read_bytes() == before


def test_augment_out_linked_to_data_is_refused(
    reviews_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "link.jsonl"
    os.link(reviews_file, link)  # a hard link: another name, the same file
    argv = ["augment", "--data", str(reviews_file), "--task", "sst2", "--n", "2",
            "--out", str(link), "--overwrite"]  # fmt: skip
    assert main(argv) == 2
    assert "same file as --data" in capsys.readouterr().err


def _records(path: Path, n: int = 3) -> Path:
    rows = [
        {"id": f"r{i}", "text": f"an invented review number {i}", "soft_label":
         {"positive": 0.7, "negative": 0.3}, "generated_label": "positive", "label_mass": 0.9,
         "anchors": [], "anchor_strategy": "random", "model": "m", "prompt_hash": "0",
         "seed": 0, "task": "sst2", "soft_label_source": "inline"}
        for i in range(n)
    ]  # fmt: skip
    return write_jsonl(path, rows)


@pytest.mark.parametrize("case", ["out is train", "rejects is eval", "out is config"])
def test_filter_never_writes_over_an_input(
    case: str, reviews_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    syn = _records(tmp_path / "syn.jsonl")
    evalf = write_jsonl(tmp_path / "eval.jsonl", [{"text": "x y z", "label": "positive"}])
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("filter: {dedup: {near: false}}\n")
    out, rejects = tmp_path / "kept.jsonl", tmp_path / "rej.jsonl"
    if case == "out is train":
        out = reviews_file
    elif case == "rejects is eval":
        rejects = evalf
    else:
        out = cfg
    before = _tree(tmp_path)
    argv = ["filter", str(syn), "--train", str(reviews_file), "--eval", str(evalf),
            "--config", str(cfg), "--out", str(out), "--rejects", str(rejects),
            "--overwrite", "--no-near", "--quiet"]  # fmt: skip
    assert main(argv) == 2
    assert "mixaug never writes over its inputs" in capsys.readouterr().err
    assert _tree(tmp_path) == before


# -- 5. filter: its summary is not overwritten silently; "dir/" is a folder ---------


def test_filter_keeps_an_existing_summary_and_refuses_a_folder_path(
    reviews_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    syn = _records(tmp_path / "syn.jsonl")
    summary = tmp_path / "kept.summary.json"
    summary.write_text('{"mine": true}')
    argv = ["filter", str(syn), "--train", str(reviews_file), "--out",
            str(tmp_path / "kept.jsonl"), "--rejects", str(tmp_path / "rej.jsonl"),
            "--no-near", "--quiet"]  # fmt: skip
    assert main(argv) == 2
    assert "kept.summary.json" in capsys.readouterr().err
    assert summary.read_text() == '{"mine": true}'
    argv[5] = str(tmp_path / "newdir") + "/"
    assert main(argv) == 2
    assert "is a folder" in capsys.readouterr().err
    assert not (tmp_path / "newdir").exists()


# -- 6. secrets never reach stderr or a file -----------------------------------------


class _Echo401(GenericFakeChatModel):
    """A provider whose error quotes the request's Authorization header."""

    key: str = ""

    def _generate(self, *a: object, **k: object) -> object:  # type: ignore[override]
        header = f"Authorization: Bearer {self.key}"
        msg = f"Error code: 401 - {{'error': 'key {self.key} is invalid', 'header': '{header}'}}"
        raise RuntimeError(msg)


def test_a_key_echoed_by_the_provider_is_redacted(
    reviews_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = "k3y-VERY-secret-0042"  # no known key shape: only registration catches it
    monkeypatch.setenv("MIXAUG_TEST_KEY", key)
    from mixaug.providers.openai import api_key

    def build(config: object, seed: object = None) -> object:
        api_key(config)  # type: ignore[arg-type]  # what the real one reads
        return _Echo401(messages=iter([]), key=key)

    monkeypatch.setattr(mixaug.augmentation, "build_llm", build)
    monkeypatch.setattr(mixaug.augmentation, "build_scorer", lambda *a, **k: None, raising=False)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "llm: {provider: openai, model: m, mode: chat, api_key_env: MIXAUG_TEST_KEY, "
        "base_url: 'http://user:pa55word@127.0.0.1:9/v1', max_retries: 0}\n"
    )
    out = tmp_path / "syn.jsonl"
    code = main(["augment", "--data", str(reviews_file), "--task", "sst2", "--n", "2",
                 "--out", str(out), "--config", str(cfg), "--labels", "lm",
                 "--max-attempts", "40"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "401" in err
    assert key not in err and "pa55word" not in err
    written = [p for p in tmp_path.iterdir() if p.name.startswith("syn")]
    assert any(p.name.endswith("journal.jsonl") for p in written)
    for p in written:
        text = p.read_text()
        assert key not in text and "pa55word" not in text, p.name


def test_a_base_url_with_another_scheme_is_refused(
    reviews_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("llm: {provider: openai, model: m, base_url: 'file:///etc/passwd'}\n")
    argv = ["augment", "--data", str(reviews_file), "--task", "sst2", "--n", "2",
            "--out", str(tmp_path / "o.jsonl"), "--config", str(cfg)]  # fmt: skip
    assert main(argv) == 2
    assert "http:// or https://" in capsys.readouterr().err


def test_redact_removes_tokens_keys_and_url_credentials() -> None:
    from mixaug.redact import redact, redact_url

    assert redact("Authorization: Bearer abc.DEF-123456") == "Authorization: Bearer ***"
    assert redact("key sk-proj-AbCdEf0123456789 given") == "key *** given"
    assert redact("GET https://bob:hunter22@api.example/v1 failed") == (
        "GET https://***@api.example/v1 failed"
    )
    assert redact_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"
    assert redact("nothing secret here") == "nothing secret here"
    assert redact("Authorization: Basic dXNlcjpodW50ZXIyMjIy") == "Authorization: Basic ***"
    plain = "the basic settings of a bearer bond and a task-12345678 id"
    assert redact(plain) == plain  # ordinary words are left alone


# -- 7. refused up front, nothing written --------------------------------------------


def test_infinite_or_nan_weights_are_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("Infinity", "NaN"):
        syn = tmp_path / "syn.jsonl"
        _records(syn, 1)
        syn.write_text(syn.read_text().replace('"seed": 0', f'"weight": {bad}, "seed": 0'))
        out = tmp_path / "m"
        assert main(_train_args(data, out, "--synthetic", str(syn))) == 2
        assert "weight" in capsys.readouterr().err
        assert not out.exists()


def test_unreadable_special_files_are_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)  # reading it would block forever
    base = ["augment", "--task", "sst2", "--n", "2", "--out", str(tmp_path / "o.jsonl")]
    assert main([*base, "--data", str(fifo)]) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert main([*base, "--data", str(data), "--config", "/dev/zero"]) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_side_files_that_are_folders_are_refused(
    reviews_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for side in ("o.summary.json", "o.manifest.json"):
        folder = tmp_path / side
        folder.mkdir()
        argv = ["augment", "--data", str(reviews_file), "--task", "sst2", "--n", "2",
                "--out", str(tmp_path / "o.jsonl"), "--dry-run"]  # fmt: skip
        assert main(argv) == 2
        assert "is a folder, but mixaug writes a file there" in capsys.readouterr().err
        folder.rmdir()


def test_train_and_bench_out_under_a_file_are_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert main(_train_args(data, plain / "model")) == 2
    assert "which is a file" in capsys.readouterr().err
    bench = ["bench", "--data", str(tmp_path), "--task", "sst2", "--methods", "noaug",
             "--out", str(plain / "runs"), "--quiet"]  # fmt: skip
    assert main(bench) == 2
    assert "which is a file" in capsys.readouterr().err


def test_a_pickle_only_encoder_is_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "config.json").write_text('{"model_type": "bert"}')
    (enc / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    out = tmp_path / "m"
    assert main(_train_args(data, out, "--encoder", str(enc))) == 2
    err = capsys.readouterr().err
    assert "only pickle weights" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("'movie\\u2028review'", "U+2028"),
        ("'movie\\rreview'", "U+000D"),
        ("'movie\\x85review'", "U+0085"),
    ],
)
def test_line_breaks_in_spec_fields_are_refused(
    reviews_file: Path, tmp_path: Path, value: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f'text_type: "{value[1:-1]}"\nlabel_type: sentiment\n'
        "verbalizer: {positive: positive, negative: negative}\n"
    )
    argv = ["augment", "--data", str(reviews_file), "--task", str(spec), "--n", "2",
            "--out", str(tmp_path / "o.jsonl"), "--dry-run"]  # fmt: skip
    assert main(argv) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


# -- 8. loop: a conflicting --out is refused before any model; Ctrl-C is one line ----


def test_loop_refuses_a_conflicting_out_before_loading_models(
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import mixaug.providers

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("no model may load before --out is checked")

    monkeypatch.setattr(mixaug.providers, "build_llm", boom)
    out = tmp_path / "loop"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"fingerprint": "another run"}))
    argv = ["loop", "--data", str(data), "--eval", str(data), "--task", "sst2",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 2
    assert "holds a loop with other settings" in capsys.readouterr().err


def test_ctrl_c_during_a_dry_run_is_one_line(
    reviews_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def interrupted(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(mixaug.augmentation, "dry_run_rows", interrupted)
    argv = ["augment", "--data", str(reviews_file), "--task", "sst2", "--n", "2",
            "--out", str(tmp_path / "o.jsonl"), "--dry-run", "--anchors", "random"]  # fmt: skip
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mixaug: interrupted")
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "o.jsonl.lock").exists()


# -- 4. bench: results are keyed by data and settings ----------------------------------


def test_bench_rerun_with_other_settings_does_not_report_old_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "tiny"
    d.mkdir()
    rows = [{"text": f"{t} {i}", "label": lab} for i in range(4)
            for lab, ts in (("positive", POS), ("negative", NEG)) for t in ts]  # fmt: skip
    write_jsonl(d / "train.jsonl", rows)
    write_jsonl(d / "test.jsonl", rows[:8])
    out = tmp_path / "runs"
    argv = ["bench", "--data", str(d), "--task", "sst2", "--levels", "0.25", "--seeds", "1",
            "--methods", "noaug", "--out", str(out), "--freeze-encoder", "--epochs", "1",
            "--val-size", "4", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert main([*argv[:-1], "--epochs", "2", "--quiet"]) == 0  # other training settings
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["settings"] != lines[1]["settings"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["training"]["epochs"] == 2
    assert main([*argv[:-1], "--epochs", "2", "--quiet"]) == 0  # same again: reused
    assert len((out / "results.jsonl").read_text().splitlines()) == 2
    capsys.readouterr()


def test_bench_rows_of_recipe_methods_are_keyed_by_their_recipe(tmp_path: Path) -> None:
    from mixaug.bench.runner import Bench, BenchConfig

    d = tmp_path / "tiny"
    d.mkdir()
    rows = [{"text": f"{t} {i}", "label": lab} for i in range(4)
            for lab, ts in (("positive", POS), ("negative", NEG)) for t in ts]  # fmt: skip
    write_jsonl(d / "train.jsonl", rows)
    write_jsonl(d / "test.jsonl", rows[:8])
    bench = Bench(BenchConfig(data=str(d), task="sst2", out=str(tmp_path / "o"), val_size=4),
                  progress=False)  # fmt: skip
    fp = bench.fingerprint()
    assert bench.row_fingerprint("noaug") == bench.row_fingerprint("eda") == fp
    keyed = {m: bench.row_fingerprint(m) for m in ("mix-soft", "mix-hard", "abl-noprior")}
    assert fp not in keyed.values() and len(set(keyed.values())) == 3
    assert bench.row_fingerprint("mix-soft") == keyed["mix-soft"]  # stable


def test_marker_is_what_a_mixaug_folder_holds(tmp_path: Path) -> None:
    from mixaug.paths import check_out_folder, mark_folder

    mine = tmp_path / "mine"
    mark_folder(mine, "train")
    (mine / "x").write_text("1")
    assert check_out_folder(mine, overwrite=True) == mine.resolve()
    with pytest.raises(Exception, match="not empty"):
        check_out_folder(mine)


def test_full_run_leaves_no_lock_behind(
    reviews_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    replies = [labelled_reply(f"text {i}", "positive", {" positive": 0.8, " negative": 0.2})
               for i in range(3)]  # fmt: skip
    monkeypatch.setattr(mixaug.augmentation, "build_llm", lambda *a, **k: fake_chat(replies))
    out = tmp_path / "syn.jsonl"
    argv = ["augment", "--data", str(reviews_file), "--task", "sst2", "--n", "3", "--out",
            str(out), "--labels", "lm", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert not (tmp_path / "syn.jsonl.lock").exists() and len(out.read_text().splitlines()) == 3
    capsys.readouterr()


def test_the_embedded_gguf_is_built_beside_its_place_and_renamed_in_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two runs that start at once must not see each other's half-written file: the
    # weights package's own assemble() writes into its target and refuses a file with
    # other bytes, so the second run failed with "unexpected sha256".
    import hashlib
    import types

    from mixaug.models import registry

    body = b"gguf-bytes" * 1000
    calls: list[Path] = []

    def assemble(target: Path, overwrite: bool = False) -> Path:
        target = Path(target)
        calls.append(target)
        if target.exists() and not overwrite:
            if hashlib.sha256(target.read_bytes()).digest() != hashlib.sha256(body).digest():
                raise FileExistsError(f"{target} already exists with an unexpected sha256")
            return target
        target.write_bytes(body[:10])  # what another process would see mid-write
        real = tmp_path / "gguf" / "m.gguf"
        assert not real.exists() or real.read_bytes() != body[:10]  # never at the real place
        target.write_bytes(body)
        return target

    pkg = types.SimpleNamespace(MODEL_NAME="m.gguf", assemble=assemble)
    target = tmp_path / "gguf" / "m.gguf"
    assert registry._assemble(pkg, target) == target and target.read_bytes() == body
    assert calls[0] != target and calls[0].parent == target.parent  # built beside it
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.gguf"]  # no temp left
    calls.clear()
    assert registry._assemble(pkg, target) == target and calls == [target]  # reused
    target.write_bytes(b"torn")  # a killed build's leftovers: built again
    assert registry._assemble(pkg, target) == target and target.read_bytes() == body


TWO_REVIEWS = [
    {"text": "a fine film", "label": "positive"},
    {"text": "a dull film", "label": "negative"},
]


def _sst2_record(**changes: object) -> dict[str, object]:
    """One synthetic SST-2 record as JSON, with ``changes``."""
    return {
        "id": "r0", "text": "a warm film", "label": "positive",
        "soft_label": {"positive": 0.9, "negative": 0.1}, "generated_label": "positive",
        "label_mass": 1.0, "anchors": [], "anchor_strategy": "random", "model": "m",
        "prompt_hash": "h", "seed": 0, "task": "sst2", "soft_label_source": "inline",
    } | changes  # fmt: skip


def test_a_users_file_at_the_lock_path_is_never_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A user's syn.jsonl.lock (or uv.lock beside --out uv): a dry run used to write its
    # PID over the first bytes and delete the file at the end.
    from mixaug.paths import RunLock

    data = write_jsonl(tmp_path / "d.jsonl", TWO_REVIEWS)
    lock = tmp_path / "syn.jsonl.lock"
    lock.write_text("the user's own file\n")
    before = (lock.stat().st_ino, lock.read_bytes())
    args = ["augment", "--data", str(data), "--task", "sst2", "--n", "2", "--dry-run",
            "--out", str(tmp_path / "syn.jsonl"), "--k", "1"]  # fmt: skip
    assert main(args) == 2
    assert "is not a mixaug lock file" in capsys.readouterr().err
    assert (lock.stat().st_ino, lock.read_bytes()) == before
    assert not (tmp_path / "syn.jsonl").exists()
    # An input named like the lock (--data x.jsonl.lock --out x.jsonl), or a hard link of
    # one, is refused and its bytes are never overwritten.
    keep = data.read_bytes()
    (tmp_path / "x.jsonl.lock").write_bytes(keep)
    os.link(data, tmp_path / "h.jsonl.lock")
    for out in ("x.jsonl", "h.jsonl"):
        with pytest.raises(mixaug.errors.DataError, match="not a mixaug lock file"):
            RunLock(tmp_path / out).acquire()
        assert (tmp_path / f"{out}.lock").read_bytes() == keep
    assert data.read_bytes() == keep
    # A FIFO or a symlink there is not mixaug's either (and opening it does not block).
    os.mkfifo(tmp_path / "f.jsonl.lock")
    (tmp_path / "s.jsonl.lock").symlink_to(data)
    for out in ("f.jsonl", "s.jsonl"):
        with pytest.raises(mixaug.errors.DataError):
            RunLock(tmp_path / out).acquire()
    assert (tmp_path / "s.jsonl.lock").is_symlink() and (tmp_path / "f.jsonl.lock").exists()


def test_a_lock_left_by_a_killed_run_is_taken_over_and_removed(tmp_path: Path) -> None:
    from mixaug.paths import LOCK_HEADER, RunBusy, RunLock

    out = tmp_path / "syn.jsonl"
    with RunLock(out):
        left = (tmp_path / "syn.jsonl.lock").read_bytes()
        assert left.startswith(LOCK_HEADER)
        with pytest.raises(RunBusy):
            RunLock(out).acquire()  # held: busy, and the holder's file stays
        assert (tmp_path / "syn.jsonl.lock").read_bytes() == left
    assert not (tmp_path / "syn.jsonl.lock").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary left either
    (tmp_path / "syn.jsonl.lock").write_bytes(LOCK_HEADER + b"pid 1\n")  # a killed run's
    with RunLock(out):
        pass
    assert not (tmp_path / "syn.jsonl.lock").exists()


def test_a_record_weight_that_would_overflow_the_loss_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # weight 1e308 used to pass: train saved a model of NaN tensors, "loss": NaN, exit 0.
    from fakes import REVIEWS

    train = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    rec = _sst2_record(weight=1e308)
    syn = write_jsonl(tmp_path / "s.jsonl", [rec])
    out = tmp_path / "model"
    args = ["train", "--train", str(train), "--synthetic", str(syn), "--test", str(train),
            "--task", "sst2", "--out", str(out), "--freeze-encoder", "--epochs", "1"]  # fmt: skip
    assert main(args) == 2
    assert "weight" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    "yaml_text",
    [
        "llm:\n  temperature: false\n",
        "llm:\n  top_p: true\n",
        "labels:\n  synthetic_weight: true\n",
    ],
)
def test_booleans_are_not_numbers_in_a_config(tmp_path: Path, yaml_text: str) -> None:
    # Lax validation read `temperature: false` as 0.0 and `top_p: true` as 1.0.
    from mixaug.config import load_config
    from mixaug.errors import ConfigError

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError, match="not true/false"):
        load_config(cfg)
    cfg.write_text(yaml_text.replace("false", "0.5").replace("true", "0.5"))
    assert load_config(cfg) is not None  # a number is fine


def test_train_refuses_records_of_another_task_without_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without --task the labels were the union of both files: an 8-class model that
    # mixed sentiment and question types.
    rows = [{"text": f"what is {i} ?", "label": "DESC" if i % 2 else "NUM"} for i in range(8)]
    train = write_jsonl(tmp_path / "trec.jsonl", rows)
    rec = _sst2_record()
    syn = write_jsonl(tmp_path / "s.jsonl", [rec])
    out = tmp_path / "model"
    args = ["train", "--train", str(train), "--synthetic", str(syn), "--test", str(train),
            "--out", str(out), "--freeze-encoder", "--epochs", "1"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--synthetic has labels ['negative', 'positive']" in err and not out.exists()


def test_an_output_that_is_a_fifo_or_device_is_refused_even_with_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --out FIFO --overwrite unlinked the node and wrote a regular file there (and as
    # root, --out /dev/null --overwrite took the same path).
    data = write_jsonl(tmp_path / "d.jsonl", TWO_REVIEWS)
    fifo = tmp_path / "out.jsonl"
    os.mkfifo(fifo)
    for out in (fifo, Path("/dev/null")):
        args = ["augment", "--data", str(data), "--task", "sst2", "--n", "2", "--dry-run",
                "--k", "1", "--out", str(out), "--overwrite"]  # fmt: skip
        assert main(args) == 2
        assert "not a regular file" in capsys.readouterr().err
    import stat as st

    assert st.S_ISFIFO(os.stat(fifo).st_mode) and st.S_ISCHR(os.stat("/dev/null").st_mode)
