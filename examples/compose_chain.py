"""Compose the GPT3Mix chain by hand: prompt | model with logprobs | soft-label parser.

    python examples/compose_chain.py [--data FILE] [--model gemma3-270m] [--n 4]

Each piece is an ordinary LangChain Runnable, so any of them can be swapped: another
prompt template, another model (any chat or completion model that returns logprobs),
or another parser.
"""

import argparse
import json
import os
import random
from pathlib import Path

from mixaug import MixPromptTemplate, SoftLabelParser, TransformersLLM, get_spec, load_examples
from mixaug.chains import generate_with_logprobs

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data", default=os.environ.get("MIXAUG_DATA_FILE", HERE / "data" / "movie_reviews.jsonl")
    )
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--n", type=int, default=4)
    args = parser.parse_args()

    spec = get_spec("sst2")
    examples = load_examples(args.data)
    llm = TransformersLLM(
        model=args.model, temperature=1.0, top_p=1.0, frequency_penalty=0.02, seed=0
    )

    chain = (
        MixPromptTemplate(spec=spec)  # {"anchors": [...]} -> the paper's prompt
        | generate_with_logprobs(llm, top_logprobs=20, stop=["\n"])  # keeps the logprobs
        | SoftLabelParser(spec=spec, scorer=llm)  # text + soft label from the logprobs
    )

    rng = random.Random(0)
    inputs = [{"anchors": [e.model_dump() for e in rng.sample(examples, 2)]} for _ in range(args.n)]
    for out in chain.batch(inputs, return_exceptions=True):  # one batched forward loop
        if isinstance(out, Exception):
            print(json.dumps({"dropped": getattr(out, "reason", type(out).__name__)}))
        else:
            print(
                json.dumps(
                    {
                        "text": out.text,
                        "soft_label": out.soft_label,
                        "generated_label": out.generated_label,
                        "source": out.soft_label_source,
                    }
                )
            )


if __name__ == "__main__":
    main()
