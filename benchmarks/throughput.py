"""Soft-labelled examples per second, side by side, on the same model and prompts.

    python benchmarks/throughput.py [--data DIR] [--n 32] [--json]
        [--variants naive,embedded,embedded_transformers,server1,server8,llama-server]
        [--llama-server PATH] [--np 1,4,8,16] [--threads 2]

Variants (each in its own process, so peak memory is its own):

- ``naive``: one ``invoke`` per example through langchain-huggingface's
  ``HuggingFacePipeline`` on the embedded Gemma (converted HF folder), then a second
  forward pass over ``prompt + text + " (Sentiment:"`` for the soft label (the pipeline
  gives no logprobs);
- ``embedded``: mixaug's ``augment`` on the local provider at its defaults (batched,
  logprobs captured while generating, the soft label read inline; ``engine: auto``, which
  is llama.cpp in process where llama-cpp-python is installed: the row's ``engine`` says);
  ``embedded_llamacpp`` / ``embedded_transformers`` / ``embedded_bf16``: the same with the
  engine set (transformers with float32 / bfloat16 layers);
- ``server1`` / ``server8``: llama-cpp-python's OpenAI-compatible server on the same GGUF
  through mixaug's ``openai`` provider at concurrency 1 and 8;
- ``llama-server``: llama.cpp's own C++ server (``--llama-server PATH``, ``llama-server``
  on ``PATH``, or the build of ``scripts/build-llama-server``) on the same GGUF as shipped
  (Q4_K_M kernels), ``-t THREADS``, parallel slots
  with continuous batching (``-np N -cb``), top-k probabilities per generated token
  (``n_probs``, no ``logits_all``), reached through the ``openai`` provider's completion
  endpoint at concurrency N. Each ``--np`` is its own variant (``llama-server-np4``, ...);
  ``llama-server`` is the best of them. The server's own peak memory is added to the
  client's (``server_rss_mb`` alone).

Every variant makes ``n`` parsed, soft-labelled SST-2 records from mix prompts over random
train anchors (seed 0). The embedded path's soft-label time is the parser's reading of the
captured top-k (the capture itself runs inside generation). Prints one JSON object: a
list ``variants`` of ``{"name", "examples_per_second", "soft_label_share", "parse_rate",
"peak_rss_mb", "seconds", "soft_label_seconds", "attempts", ...}``, and ``ratios`` of each
to ``naive`` and of ``embedded`` to the best server (``--json``: on one line).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _examples(data: Path) -> list[Any]:
    from mixaug import load_examples

    return load_examples(data / "train.jsonl")


def run_naive(data: Path, n: int) -> dict[str, Any]:
    import torch
    from langchain_huggingface import HuggingFacePipeline

    from mixaug import get_spec
    from mixaug.chains.parser import parse_continuation
    from mixaug.chains.prompts import render_mix_prompt
    from mixaug.errors import ParseFailure
    from mixaug.models.registry import resolve_model_dir

    spec = get_spec("sst2")
    pool = _examples(data)
    rng = random.Random(0)
    t0 = time.perf_counter()
    llm = HuggingFacePipeline.from_model_id(
        model_id=str(resolve_model_dir("gemma3-270m")),
        task="text-generation",
        pipeline_kwargs={
            "max_new_tokens": 100,
            "do_sample": True,
            "temperature": 1.0,
            "top_p": 1.0,
            "return_full_text": False,
        },
    )
    model, tok = llm.pipeline.model, llm.pipeline.tokenizer
    words = [" " + w for w in spec.words]
    word_ids = [tok(w, add_special_tokens=False)["input_ids"][0] for w in words]
    load_seconds = time.perf_counter() - t0
    made, attempts, soft_seconds = 0, 0, 0.0
    t0 = time.perf_counter()
    while made < n and attempts < 4 * n:
        anchors = [a.model_dump() for a in rng.sample(pool, 2)]
        prompt = render_mix_prompt(spec, anchors)
        attempts += 1
        text = llm.invoke(prompt).split("\n")[0]
        try:
            parsed = parse_continuation(text, spec)
        except ParseFailure:
            continue
        s0 = time.perf_counter()
        prefix = f"{prompt} {parsed.text} {spec.label_marker}"
        with torch.inference_mode():
            ids = tok(prefix, return_tensors="pt")
            logits = model(**ids).logits[0, -1].float()
            probs = torch.softmax(logits, -1)[word_ids]
            _ = (probs / probs.sum()).tolist()
        soft_seconds += time.perf_counter() - s0
        made += 1
    seconds = time.perf_counter() - t0
    return _row(made, attempts, seconds, soft_seconds, load_seconds)


def _augment(cfg: Any, data: Path, n: int) -> dict[str, Any]:
    import mixaug.chains.families.chain as fam
    from mixaug import augment, get_spec
    from mixaug.providers import build_llm, build_scorer

    spent = [0.0]
    original = fam.read_soft_label

    def timed(*a: Any, **k: Any) -> Any:
        s0 = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            spent[0] += time.perf_counter() - s0

    fam.read_soft_label = timed  # type: ignore[assignment]
    t0 = time.perf_counter()
    llm = build_llm(cfg, seed=0)
    scorer = build_scorer(cfg, llm)
    if hasattr(llm, "engine"):
        llm.engine.load()  # the weights load before the clock starts
    load_seconds = time.perf_counter() - t0
    res = augment(
        _examples(data),
        get_spec("sst2"),
        llm,
        n=n,
        seed=0,
        batch_size=cfg.batch_size,
        scorer=scorer,
        concurrency=cfg.concurrency if cfg.provider != "local" else None,
    )
    # Soft labels on the embedded path: recording logprobs while generating (the
    # engine's own timer) plus reading them back; on a server only the reading.
    recorded = float(getattr(getattr(llm, "engine", None), "logprob_seconds", 0.0))
    row = _row(len(res.records), res.attempts, res.seconds, spent[0] + recorded, load_seconds)
    row["completion_tokens"] = res.completion_tokens
    row["batch_size"] = cfg.batch_size
    return row


def run_embedded(data: Path, n: int, batch_size: int, **llm: Any) -> dict[str, Any]:
    from mixaug import LLMConfig
    from mixaug.providers.local import Local

    cfg = LLMConfig(batch_size=batch_size, **llm)
    return _augment(cfg, data, n) | {"engine": Local.engine(cfg)}


def _openai_config(url: str, concurrency: int) -> Any:
    """The embedded Gemma served at ``url``, through the ``openai`` provider."""
    from mixaug import LLMConfig

    return LLMConfig(
        provider="openai",
        model="gemma3-270m",
        base_url=url,
        concurrency=concurrency,
        batch_size=max(16, concurrency),
    )


def run_server(data: Path, n: int, concurrency: int) -> dict[str, Any]:
    from provider_agreement import start_server

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp) / "server.log", threads=os.cpu_count() or 1)
        try:
            return _augment(_openai_config(url, concurrency), data, n)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def llama_server_binary() -> str | None:
    """``llama-server`` on PATH, or the build of ``scripts/build-llama-server``."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    built = cache / "mixaug" / "llama-server" / "0.3.36" / "llama-server"
    return shutil.which("llama-server") or (str(built) if built.is_file() else None)


def start_llama_server(
    binary: str, log: Path, *, slots: int, threads: int
) -> tuple[subprocess.Popen[bytes], str]:
    """llama.cpp's ``llama-server`` on 127.0.0.1 over the embedded Gemma GGUF."""
    from mixaug.models.registry import gguf_path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [binary, "-m", str(gguf_path("gemma3-270m")), "--host", "127.0.0.1",
           "--port", str(port), "-t", str(threads), "-tb", str(threads), "-np", str(slots),
           "-cb", "-c", str(1024 * slots), "--no-webui"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        if proc.poll() is not None:
            break
        try:
            urllib.request.urlopen(url + "/health", timeout=2).read()
            return proc, url + "/v1"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    msg = f"llama-server did not start: {log.read_text(errors='replace')[-2000:]}"
    raise SystemExit(msg)


def _peak_rss_mb(pid: int) -> float:
    """A live process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_llama_server(data: Path, n: int, slots: int, binary: str, threads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_llama_server(binary, Path(tmp) / "server.log", slots=slots,
                                       threads=threads)  # fmt: skip
        try:
            row = _augment(_openai_config(url, slots), data, n)
            server = _peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    row |= {"slots": slots, "threads": threads, "server_rss_mb": round(server, 1)}
    row["peak_rss_mb"] = round(row["peak_rss_mb"] + server, 1)
    return row


def _row(made: int, attempts: int, seconds: float, soft: float, load: float) -> dict[str, Any]:
    return {
        "examples": made,
        "attempts": attempts,
        "parse_rate": round(made / attempts, 4) if attempts else 0.0,
        "seconds": round(seconds, 2),
        "examples_per_second": round(made / seconds, 4) if seconds else 0.0,
        "soft_label_seconds": round(soft, 5),
        "soft_label_share": round(soft / seconds, 4) if seconds else 0.0,
        "load_seconds": round(load, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _version() -> dict[str, str]:
    """Where the measured mixaug comes from (source folder and git commit)."""
    import mixaug

    src = Path(mixaug.__file__).resolve().parent.parent
    rev = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(src), "status", "--porcelain", "--", "mixaug"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {"source": str(src), "commit": rev + ("+changes" if dirty else "")}


def _run_one(args: argparse.Namespace) -> dict[str, Any]:
    data, v = Path(args.data), args.one
    if v == "naive":
        return run_naive(data, args.n)
    if v == "embedded":
        return run_embedded(data, args.n, args.batch_size)
    if v == "embedded_llamacpp":
        return run_embedded(data, args.n, args.batch_size, engine="llamacpp")
    if v == "embedded_transformers":
        return run_embedded(data, args.n, args.batch_size, engine="transformers")
    if v == "embedded_bf16":
        return run_embedded(data, args.n, args.batch_size, engine="transformers", dtype="bfloat16")
    if v.startswith("llama-server-np"):
        slots = int(v.removeprefix("llama-server-np"))
        return run_llama_server(data, args.n, slots, args.llama_server, args.threads)
    return run_server(data, args.n, int(v.removeprefix("server")))


def _expand(variants: str, slots: str) -> list[str]:
    """``llama-server`` stands for one variant per ``--np``."""
    out: list[str] = []
    for v in variants.split(","):
        if v == "llama-server":
            out += [f"llama-server-np{int(x)}" for x in slots.split(",")]
        else:
            out.append(v)
    return out


def _subprocess(args: argparse.Namespace, variant: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--data", args.data, "--n", str(args.n),
           "--batch-size", str(args.batch_size), "--threads", str(args.threads),
           "--llama-server", args.llama_server or "", "--one", variant]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"name": variant, "error": proc.stderr.strip().splitlines()[-1:]}
    return {"name": variant, **json.loads(proc.stdout.strip().splitlines()[-1])}


def _ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    rate = {r["name"]: r.get("examples_per_second", 0.0) for r in rows}
    ratios: dict[str, float] = {}
    if rate.get("naive"):
        ratios |= {
            f"{v}/naive": round(r / rate["naive"], 2) for v, r in rate.items() if r and v != "naive"
        }
    servers = {v: r for v, r in rate.items() if v.startswith(("server", "llama-server")) and r}
    for v in ("embedded", "embedded_llamacpp", "embedded_transformers", "embedded_bf16"):
        if rate.get(v) and servers:
            best = max(servers, key=servers.__getitem__)
            ratios[f"{v}/best_server"] = round(rate[v] / servers[best], 2)
            ratios[f"{v}/llama-server"] = (
                round(rate[v] / rate["llama-server"], 2) if rate.get("llama-server") else 0.0
            )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser()
    default = Path(os.environ.get("MIXAUG_DATA", "../shared/datasets")) / "sst2"
    parser.add_argument("--data", default=str(default))
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument(
        "--variants",
        default="naive,embedded,embedded_transformers,embedded_bf16,server1,server8,llama-server",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="embedded: prompts per batch")
    parser.add_argument("--llama-server", default=llama_server_binary(),
                        help="llama.cpp's llama-server binary")  # fmt: skip
    parser.add_argument("--np", default="1,4,8,16", help="llama-server: parallel slots to try")
    parser.add_argument("--threads", type=int, default=2, help="llama-server: -t")
    parser.add_argument("--json", action="store_true", help="one line of JSON")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_run_one(args)))  # noqa: T201
        return
    variants = _expand(args.variants, args.np)
    if any(v.startswith("llama-server") for v in variants) and not args.llama_server:
        parser.error("no llama-server binary: pass --llama-server PATH")
    rows = [_subprocess(args, v) for v in variants]
    tried = [r for r in rows if r["name"].startswith("llama-server-np") and "error" not in r]
    if tried:
        best = max(tried, key=lambda r: r["examples_per_second"])
        rows.append(best | {"name": "llama-server", "best_of": [r["name"] for r in tried]})
    out = {
        "n": args.n,
        "cpu_count": os.cpu_count(),
        "mixaug": _version(),
        "variants": rows,
        "ratios": _ratios(rows),
    }
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
