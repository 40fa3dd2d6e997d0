"""Local transformers vs llama.cpp's server on the same weights: soft labels and throughput.

    python benchmarks/provider_agreement.py [--data DIR] [--texts 50] [--n 16]

Starts llama-cpp-python's server on 127.0.0.1 over the embedded Gemma GGUF, then prints
one JSON object:
- ``agreement``: for the same texts and prompts (SST-2 dev, two random train anchors),
  p(positive) from the local model's scoring pass and from the server's completions
  endpoint (top-20 logprobs); mean/max absolute difference and argmax agreement;
- ``throughput``: records/second of ``augment`` with the local provider and with the
  openai provider at concurrency 1 and 8, and each one's ratio to the local path.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mixaug import LLMConfig, augment, get_spec, load_examples
from mixaug.chains.prompts import render_mix_prompt
from mixaug.models.registry import gguf_path
from mixaug.providers import build_llm, build_scorer
from mixaug.softlabels import normalise, rescore_word_probs


def start_server(log: Path, threads: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf_path("gemma3-270m")),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            str(threads),
            "--n_threads_batch",
            str(threads),
            "--interrupt_requests",
            "False",
            "--logits_all",
            "True",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(360):
        try:
            urllib.request.urlopen(url + "/models", timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    msg = f"server did not start; see {log}"
    raise SystemExit(msg)


def main() -> None:
    parser = argparse.ArgumentParser()
    default = os.environ.get(
        "MIXAUG_DATA", str(Path(__file__).parents[1] / ".." / "shared" / "datasets")
    )
    parser.add_argument("--data", default=default)
    parser.add_argument("--texts", type=int, default=50)
    parser.add_argument("--n", type=int, default=16)
    args = parser.parse_args()

    spec = get_spec("sst2")
    train = load_examples(Path(args.data) / "sst2" / "train.jsonl")
    dev = load_examples(Path(args.data) / "sst2" / "dev.jsonl")
    rng = random.Random(0)
    texts = rng.sample(dev, args.texts)
    prefixes = [
        f"{render_mix_prompt(spec, rng.sample(train, 2))} {e.text} {spec.label_marker}"
        for e in texts
    ]
    proc, url = start_server(Path(tempfile.gettempdir()) / "mixaug-llama-bench.log")
    try:
        local_cfg = LLMConfig()
        local = build_llm(local_cfg)
        remote_cfg = LLMConfig(provider="openai", model="gemma3-270m", base_url=url)
        remote_scorer = build_scorer(remote_cfg, build_llm(remote_cfg))
        assert remote_scorer is not None
        diffs, agree, masses = [], 0, []
        for prefix in prefixes:
            p_local, m_local = normalise(rescore_word_probs(local, prefix, spec.words))  # type: ignore[arg-type]
            p_remote, m_remote = normalise(rescore_word_probs(remote_scorer, prefix, spec.words))
            diffs.append(abs(p_local["positive"] - p_remote["positive"]))
            agree += (p_local["positive"] > 0.5) == (p_remote["positive"] > 0.5)
            masses.append((m_local, m_remote))
        result: dict[str, object] = {
            "agreement": {
                "texts": len(prefixes),
                "mean_abs_diff_p_positive": round(statistics.mean(diffs), 4),
                "max_abs_diff_p_positive": round(max(diffs), 4),
                "argmax_agreement": round(agree / len(prefixes), 4),
                "mean_label_mass_local": round(statistics.mean(m for m, _ in masses), 4),
                "mean_label_mass_server": round(statistics.mean(m for _, m in masses), 4),
            }
        }
        throughput: dict[str, dict[str, float]] = {}
        runs = [("local", local_cfg, None)] + [
            (f"llama.cpp concurrency {c}", remote_cfg.model_copy(update={"concurrency": c}), c)
            for c in (1, 8)
        ]
        for name, cfg, conc in runs:
            llm = build_llm(cfg, seed=0)
            t = time.perf_counter()
            res = augment(
                train,
                spec,
                llm,
                n=args.n,
                seed=0,
                batch_size=16,
                scorer=build_scorer(cfg, llm),
                concurrency=conc,
            )
            secs = time.perf_counter() - t
            throughput[name] = {
                "records": len(res.records),
                "seconds": round(secs, 2),
                "records_per_second": round(len(res.records) / secs, 4),
                "completion_tokens_per_second": round(res.completion_tokens / secs, 2),
            }
        base = throughput["local"]["records_per_second"]
        for v in throughput.values():
            v["ratio_to_local"] = round(v["records_per_second"] / base, 3)
        result["throughput"] = throughput
        print(json.dumps(result, indent=2))
    finally:
        proc.kill()


if __name__ == "__main__":
    main()
