"""Chat mode: one prompt at a time (what ``BaseChatModel.generate`` does) vs. batched.

    python benchmarks/chat_batching.py [--model smollm2-135m] [--n 16] [--batch 16]

The same ``n`` GPT3Mix prompts go through ``build_mix_chain(ChatTransformers(...))``
twice in one process, greedy: ``sequential`` (``batch_size=1``: one engine call per
prompt, as before chat batching) and ``batched`` (``batch_size=--batch``). Prints one
JSON object with replies per second of each, the ratio, and whether the replies are
the same text (they should be: greedy decoding does not depend on the batch).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=48, dest="max_tokens")
    args = ap.parse_args()

    from mixaug import build_mix_chain, get_spec
    from mixaug.models import ChatTransformers

    spec = get_spec("sst2")
    pool = [
        {"text": "a bright, generous comedy with real warmth .", "label": "positive"},
        {"text": "the cast sparkles and the script is sharp .", "label": "positive"},
        {"text": "a dull film that never finds its story .", "label": "negative"},
        {"text": "noisy, confused and far too long .", "label": "negative"},
    ]
    rng = random.Random(0)
    prompts = [{"anchors": rng.sample(pool, 2)} for _ in range(args.n)]
    report: dict[str, object] = {"model": args.model, "n": args.n, "batch": args.batch}
    texts: dict[str, list[str]] = {}
    ChatTransformers(model=args.model).engine.load()  # load once, outside the timings
    for name, size in (("sequential", 1), ("batched", args.batch)):
        chat = ChatTransformers(
            model=args.model, temperature=0, max_tokens=args.max_tokens, batch_size=size
        )
        chain = build_mix_chain(chat, spec)
        t0 = time.perf_counter()
        out = chain.batch(prompts, return_exceptions=True)
        seconds = time.perf_counter() - t0
        texts[name] = [getattr(o, "text", repr(o)) for o in out]
        report[name] = {
            "seconds": round(seconds, 2),
            "replies_per_second": round(args.n / seconds, 3),
            "parsed": sum(not isinstance(o, Exception) for o in out),
        }
    seq, bat = report["sequential"], report["batched"]
    assert isinstance(seq, dict) and isinstance(bat, dict)
    report["speedup"] = round(bat["replies_per_second"] / seq["replies_per_second"], 2)
    report["same_replies"] = texts["sequential"] == texts["batched"]
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
