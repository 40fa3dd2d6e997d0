"""Run the loop into a folder, resumably: ``mixaug loop`` calls :func:`run_loop`.

``OUT/`` holds ``checkpoints.sqlite`` (LangGraph's SQLite checkpointer: the state
after every node), ``manifest.json`` (the settings' fingerprint), and, rewritten
atomically after every round, ``rounds.json``, ``records.jsonl`` (kept records),
``rejects.jsonl``; at the end ``report.json`` and ``accuracy.png``. Running again
with the same ``OUT`` resumes from the last finished node; other settings are
refused unless ``overwrite``.

Example:
    >>> report = run_loop(ctx, "runs/loop", settings={"task": "sst2"})  # doctest: +SKIP
    >>> report["stop_reason"], report["rounds"][-1]["val_accuracy"]  # doctest: +SKIP
    ('no_gain', 0.71)
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from mixaug.io import write_text_atomic
from mixaug.loop.graph import LoopContext, LoopState, build_loop_graph, initial_state
from mixaug.runstate import RunConflict, fingerprint

THREAD_ID = "mixaug-loop"


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_round_files(out: Path, state: LoopState) -> None:
    """``rounds.json``, ``records.jsonl`` and ``rejects.jsonl`` from ``state``."""
    write_text_atomic(out / "rounds.json", json.dumps(state.get("rounds", []), indent=2) + "\n")
    write_text_atomic(out / "records.jsonl", _jsonl(state.get("kept", [])))
    write_text_atomic(out / "rejects.jsonl", _jsonl(state.get("rejected", [])))


def plot_rounds(rounds: list[dict[str, Any]], baseline: float | None, path: Path) -> Path | None:
    """Validation accuracy per round as a PNG (``None`` without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    xs = [r["round"] for r in rounds]
    ys = [r["val_accuracy"] for r in rounds]
    if baseline is not None:
        xs, ys = [0, *xs], [baseline, *ys]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [100 * y for y in ys], marker="o")
    ax.set_xlabel("round (0: real data only)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_xticks(xs)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report_of(state: LoopState) -> dict[str, Any]:
    """The final report: baseline, rounds, totals and why the loop stopped."""
    rounds = state.get("rounds", [])
    kept = state.get("kept", [])
    base = state.get("baseline", {})
    return {
        "stop_reason": state.get("stop_reason"),
        "rounds_run": len(rounds),
        "baseline_accuracy": base.get("accuracy"),
        "final_accuracy": rounds[-1]["val_accuracy"] if rounds else base.get("accuracy"),
        "best_accuracy": state.get("best_accuracy"),
        "kept": len(kept),
        "rejected": len(state.get("rejected", [])),
        "kept_per_class": rounds[-1]["kept_per_class"] if rounds else {},
        "tokens": state.get("tokens", 0),
        "seconds": round(state.get("seconds", 0.0), 1),
        "rounds": rounds,
    }


LOOP_FILES = (
    "checkpoints.sqlite",
    "manifest.json",
    "rounds.json",
    "records.jsonl",
    "rejects.jsonl",
    "report.json",
    "accuracy.png",
)
"""What a loop writes in its folder (``--overwrite`` removes these and nothing else)."""


def check_loop_out(out: Path, settings: dict[str, Any], *, overwrite: bool = False) -> None:
    """Refuse ``out`` when it holds a loop with other settings (and not ``overwrite``).

    Reads only: call it before any model loads.

    Raises:
        RunConflict: naming the fix.
    """
    manifest_path = out / "manifest.json"
    try:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    from mixaug.paths import is_mixaug_folder

    ours = is_mixaug_folder(out) or (isinstance(old, dict) and "fingerprint" in old)
    if out.is_dir() and any(out.iterdir()) and not ours:
        msg = (
            f"{out} is not empty and was not written by mixaug loop; the loop writes (and "
            "resumes) in a folder of its own, and --overwrite replaces only mixaug's own "
            "files: choose an empty or new folder."
        )
        raise RunConflict(msg)
    if overwrite or not manifest_path.is_file():
        return
    if not isinstance(old, dict) or old.get("fingerprint") != fingerprint(settings):
        msg = (
            f"{out} holds a loop with other settings or data; run that command again to "
            "resume it, or pass --overwrite to start this one."
        )
        raise RunConflict(msg)


def _prepare_out(out: Path, settings: dict[str, Any], overwrite: bool) -> None:
    """Check ``out``, clear the loop's own files on ``overwrite``, write a new run's manifest."""
    check_loop_out(out, settings, overwrite=overwrite)
    if overwrite and out.exists():
        for name in LOOP_FILES:
            target = out / name
            if target.is_dir():
                msg = (
                    f"{target} is a folder, but the loop writes a file there; mixaug does not "
                    "delete folders it did not write: move it away."
                )
                raise RunConflict(msg)
            if target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    from mixaug.paths import mark_folder

    mark_folder(out, "loop")
    manifest_path = out / "manifest.json"
    if not manifest_path.exists():
        fp = fingerprint(settings)
        write_text_atomic(
            manifest_path, json.dumps({"fingerprint": fp, **settings}, indent=2) + "\n"
        )


def _run_graph(ctx: LoopContext, out: Path, saver: Any) -> Any:
    """Run the checkpointed graph from where it stopped (nothing, if it is complete)."""
    graph = build_loop_graph(ctx).compile(checkpointer=saver)
    run_cfg: RunnableConfig = {
        "configurable": {"thread_id": THREAD_ID},
        "recursion_limit": 8 * (ctx.cfg.loop.max_rounds + 2),
    }
    snapshot = graph.get_state(run_cfg)
    if snapshot.values and not snapshot.next:
        ctx.log(f"{out} is already complete ({snapshot.values.get('stop_reason')}); nothing to do.")
        return snapshot.values
    if snapshot.values:
        done = snapshot.values.get("round", 0)
        ctx.log(f"resuming {out}: {done} rounds done, next: {', '.join(snapshot.next)}")
        return graph.invoke(None, run_cfg)
    return graph.invoke(initial_state(), run_cfg)


def run_loop(
    ctx: LoopContext,
    out: str | Path,
    *,
    settings: dict[str, Any],
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the loop into ``out``; returns :func:`report_of` the final state.

    Raises:
        RunConflict: ``out`` holds a loop with other settings (and not ``overwrite``).
    """
    from langgraph.checkpoint.sqlite import SqliteSaver

    out = Path(out)
    _prepare_out(out, settings, overwrite)
    user_hook = ctx.on_round

    def on_round(report: dict[str, Any], state: LoopState) -> None:
        write_round_files(out, state)
        if user_hook is not None:
            user_hook(report, state)

    ctx.on_round = on_round
    conn = sqlite3.connect(str(out / "checkpoints.sqlite"), check_same_thread=False)
    try:
        result = _run_graph(ctx, out, SqliteSaver(conn))
    finally:
        conn.close()
    final: LoopState = result
    write_round_files(out, final)
    report = report_of(final)
    write_text_atomic(out / "report.json", json.dumps(report, indent=2) + "\n")
    plot_rounds(final.get("rounds", []), report["baseline_accuracy"], out / "accuracy.png")
    return report
