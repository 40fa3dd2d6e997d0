"""Soft-label calibration on real SST-2 texts: ECE and accuracy before and after.

    python benchmarks/calibration.py [--data DIR] [--fit 100] [--eval 200]

Scores real texts "as if generated" with the embedded model (two random train anchors,
then ``prompt + text + " (Sentiment:"``), fits the temperature on ``--fit`` train
examples (the labelled seed), and evaluates on ``--eval`` dev texts. Prints one JSON
object: ECE and soft-label-argmax accuracy raw, after contextual calibration (÷ the
"N/A" distribution under the same anchors) and after contextual + temperature.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from mixaug import TransformersLLM, get_spec, load_examples
from mixaug.chains import SoftLabelCalibrator


def main() -> None:
    parser = argparse.ArgumentParser()
    default = os.environ.get(
        "MIXAUG_DATA", str(Path(__file__).parents[1] / ".." / "shared" / "datasets")
    )
    parser.add_argument("--data", default=default)
    parser.add_argument("--fit", type=int, default=100)
    parser.add_argument("--eval", type=int, default=200)
    args = parser.parse_args()

    spec = get_spec("sst2")
    train = load_examples(Path(args.data) / "sst2" / "train.jsonl")
    dev = load_examples(Path(args.data) / "sst2" / "dev.jsonl")
    rng = random.Random(0)
    seed_examples = rng.sample(train, args.fit)
    eval_examples = rng.sample(dev, args.eval)
    llm = TransformersLLM()
    cal = SoftLabelCalibrator(spec=spec, method="both", seed=1)
    t = time.perf_counter()
    fit_report = cal.fit(llm, seed_examples, train)
    scored = cal.score_examples(llm, eval_examples, train)
    eval_report = cal.evaluate(scored)
    print(
        json.dumps(
            {
                "fit_on_train": fit_report.model_dump(),
                "eval_on_dev": eval_report.model_dump(),
                "dev_label_balance": {
                    lab: sum(e.label == lab for e in eval_examples) for lab in spec.label_names
                },
                "seconds": round(time.perf_counter() - t, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
