"""The critic chain: an LLM judge and a zero-shot relabel for synthetic records.

Three checks run in parallel (a ``RunnableParallel``), each a prompt and one
scoring pass over a few answer words, so any provider that can score words (the
local models, OpenAI-compatible completion servers) or that returns first-token
logprobs (chat models) can judge:

- ``fluency``: P(yes) that the text is a fluent, natural ``<text type>``;
- ``consistency``: P(yes) that its label (the soft-label argmax) fits the text;
- ``relabel``: the model's zero-shot label distribution for the text (the mix
  prompt's header with no anchors).

Small base models judge better with examples, so the judge prompts can carry
``shots`` pairs made from real labelled examples: a real text answers "yes" and
the same text with its words shuffled answers "no" (fluency); a real text with its
own label answers "yes" and with another label "no" (consistency).

Example:
    >>> critic = build_critic_chain(llm, get_spec("sst2"), examples=seed)  # doctest: +SKIP
    >>> critic.invoke({"text": "a warm, funny film", "label": "positive"})  # doctest: +SKIP
    CriticScores(fluency=0.91, consistency=0.84, relabel={'positive': 0.8, ...}, ...)
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.messages import HumanMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableParallel,
    RunnableSerializable,
)
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import override

from mixaug.chains.prompts import clean_text, render_mix_prompt
from mixaug.records import CriticScores, Example
from mixaug.softlabels import LabelScorer, normalise, rescore_word_probs, tokens_from_logprobs
from mixaug.specs import TaskSpec

CHECKS = ("fluency", "consistency", "relabel")

FLUENCY_QUESTION = (
    "Answer yes if the text is a fluent, natural {text_type} that a person could have "
    "written, and no if it is garbled, unfinished or not a {text_type}."
)
CONSISTENCY_QUESTION = (
    "Answer yes if the {label_type} of the {text_type} is the one named, and no if it is not."
)


def shuffled_words(text: str, rng: random.Random) -> str:
    """``text`` with its words shuffled: the critic's example of a non-fluent text."""
    words = text.split()
    if len(words) < 3:
        return " ".join(reversed(words)) + " the the"
    for _ in range(5):
        rng.shuffle(words)
        out = " ".join(words)
        if out != text:
            return out
    return out


def _texts(record: Any) -> tuple[str, str]:
    if isinstance(record, Mapping):
        return clean_text(str(record["text"])), str(record["label"])
    return clean_text(record.text), str(record.label)


class JudgePrompts(BaseModel):
    """The critic's prompts, rendered by concatenation (texts are never templates)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: TaskSpec
    shots: list[Example] = Field(default_factory=list)
    """Real labelled examples the few-shot pairs are made from."""
    seed: int = 0
    fluency_question: str = FLUENCY_QUESTION
    consistency_question: str = CONSISTENCY_QUESTION

    def _fmt(self, question: str) -> str:
        s = self.spec
        return question.format(text_type=s.text_type.lower(), label_type=s.label_type.lower())

    def fluency(self, text: str) -> str:
        """Prompt whose next word is yes or no: is ``text`` fluent?"""
        s = self.spec
        rng = random.Random(self.seed)
        lines = [self._fmt(self.fluency_question), ""]
        tag = f"Fluent {s.text_type.lower()}:"
        pairs = []
        for ex in self.shots:
            t = clean_text(ex.text)
            pairs += [(t, "yes"), (shuffled_words(t, rng), "no")]
        rng.shuffle(pairs)
        for t, answer in pairs:
            lines += [f"Text: {t}", f"{tag} {answer}", ""]
        lines += [f"Text: {text}", tag]
        return "\n".join(lines)

    def consistency(self, text: str, label: str) -> str:
        """Prompt whose next word is yes or no: does ``label`` fit ``text``?"""
        s = self.spec
        rng = random.Random(self.seed + 1)
        lines = [self._fmt(self.consistency_question), ""]
        pairs = []
        for ex in self.shots:
            others = [lab for lab in s.label_names if lab != ex.label]
            if not others or ex.label not in s.mapping:
                continue
            t = clean_text(ex.text)
            pairs += [(t, ex.label, "yes"), (t, rng.choice(others), "no")]
        rng.shuffle(pairs)
        name = s.label_marker[1:-1]  # "Sentiment"
        for t, lab, answer in pairs:
            lines += [f"{s.text_prefix} {t}", f"{name} {s.word_for(lab)}? {answer}", ""]
        lines += [f"{s.text_prefix} {text}", f"{name} {s.word_for(label)}?"]
        return "\n".join(lines)

    def relabel(self, text: str) -> str:
        """The mix prompt with no anchors, ending at the label marker."""
        return f"{render_mix_prompt(self.spec, [])} {text} {self.spec.label_marker}"


class WordDistribution(RunnableSerializable[PromptValue, dict[str, float] | None]):
    """The distribution a model gives a few answer words after a prompt.

    With a :class:`~mixaug.softlabels.LabelScorer` (local models, completion
    servers) the words are scored exactly (case variants summed). Otherwise the
    model generates a token with logprobs and the words are read from the first
    token's alternatives (chat models: ``"Yes"``, ``" yes"``... all count).
    Returns ``None`` when no answer word has any probability.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    words: list[str]
    llm: BaseLanguageModel | None = Field(default=None, exclude=True)
    scorer: Any = Field(default=None, exclude=True)
    top_logprobs: int = 20

    @override
    def invoke(
        self, input: PromptValue, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, float] | None:
        return self._call_with_config(self._dist, input, config)

    def _dist(self, prompt: PromptValue) -> dict[str, float] | None:
        if isinstance(self.scorer, LabelScorer):
            probs = rescore_word_probs(self.scorer, prompt.to_string(), self.words)
        else:
            probs = self._from_generation(prompt)
        try:
            dist, _ = normalise(probs)
        except ValueError:
            return None
        return dist

    def _from_generation(self, prompt: PromptValue) -> dict[str, float]:
        if self.llm is None:
            msg = "WordDistribution needs a scorer or an llm"
            raise ValueError(msg)
        if isinstance(self.llm, BaseChatModel):
            call: dict[str, Any] = {"logprobs": True, "top_logprobs": self.top_logprobs}
        else:
            call = {"logprobs": self.top_logprobs}
        result = self.llm.generate_prompt([prompt], max_tokens=2, **call)
        gen = result.generations[0][0]
        message = getattr(gen, "message", None)
        meta = (message.response_metadata if message is not None else gen.generation_info) or {}
        tokens = tokens_from_logprobs(meta.get("logprobs")) or []
        first = next((t for t in tokens if t.token.strip()), None)
        probs = dict.fromkeys(self.words, 0.0)
        if first is None:
            return probs
        import math

        alts = dict(first.top) or {first.token: first.logprob}
        for tok, lp in alts.items():
            key = tok.strip().lower()
            for w in self.words:
                if key == w.lower():
                    probs[w] += math.exp(lp)
        return probs


def _prompt_value(text: str, chat: bool) -> PromptValue:
    if chat:
        return ChatPromptValue(messages=[HumanMessage(content=text)])
    return StringPromptValue(text=text)


def _yes(dist: dict[str, float] | None) -> float | None:
    return None if dist is None else dist["yes"]


def build_critic_chain(
    llm: BaseLanguageModel[Any] | None,
    spec: TaskSpec,
    *,
    scorer: LabelScorer | None | str = "auto",
    examples: Sequence[Example] = (),
    shots: int = 2,
    checks: Sequence[str] = CHECKS,
    seed: int = 0,
    top_logprobs: int = 20,
) -> Runnable[Any, CriticScores]:
    """The critic: ``{"text", "label"}`` (or a record) in, :class:`CriticScores` out.

    Args:
        llm: the judge; any LangChain chat or completion model.
        spec: the task spec (text type, label type, label words).
        scorer: scores answer words exactly; ``"auto"`` uses ``llm`` when it can.
        examples: real labelled examples the few-shot pairs are drawn from.
        shots: few-shot pairs per judge prompt (0: zero-shot).
        checks: which of ``fluency``, ``consistency``, ``relabel`` to run.
        seed: picks the shot examples and their order.
        top_logprobs: alternatives requested per token (generation path).
    """
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        msg = f"unknown critic checks {unknown}; choose from {list(CHECKS)}"
        raise ValueError(msg)
    if scorer == "auto":
        scorer = llm if isinstance(llm, LabelScorer) else None
    if scorer is None and llm is None:
        msg = "the critic needs a model (llm) or a scorer"
        raise ValueError(msg)
    rng = random.Random(seed)
    pool = list(examples)
    shot_examples = rng.sample(pool, min(shots, len(pool))) if shots else []
    prompts = JudgePrompts(spec=spec, shots=shot_examples, seed=seed)
    chat = isinstance(llm, BaseChatModel) and scorer is None
    branches = _critic_branches(prompts, spec, llm, scorer, checks, chat, top_logprobs)
    return RunnableParallel(branches) | RunnableLambda(_critic_scores)


def _critic_branches(
    prompts: JudgePrompts,
    spec: TaskSpec,
    llm: BaseLanguageModel[Any] | None,
    scorer: Any,
    checks: Sequence[str],
    chat: bool,
    top_logprobs: int,
) -> dict[str, Runnable[Any, Any]]:
    """One ``prompt | word distribution | reading`` branch per check."""
    yes_no = WordDistribution(
        words=["yes", "no"], llm=llm, scorer=scorer, top_logprobs=top_logprobs
    )
    label_words = WordDistribution(
        words=list(spec.words), llm=llm, scorer=scorer, top_logprobs=top_logprobs
    )
    by_word = {w: lab for lab, w in spec.mapping.items()}

    def fluency_prompt(record: Any) -> PromptValue:
        return _prompt_value(prompts.fluency(_texts(record)[0]), chat)

    def consistency_prompt(record: Any) -> PromptValue:
        text, label = _texts(record)
        return _prompt_value(prompts.consistency(text, label), chat)

    def relabel_prompt(record: Any) -> PromptValue:
        return _prompt_value(prompts.relabel(_texts(record)[0]), chat)

    def to_labels(dist: dict[str, float] | None) -> dict[str, float] | None:
        return None if dist is None else {by_word[w]: p for w, p in dist.items()}

    branches: dict[str, Runnable[Any, Any]] = {}
    if "fluency" in checks:
        branches["fluency"] = RunnableLambda(fluency_prompt) | yes_no | RunnableLambda(_yes)
    if "consistency" in checks:
        branches["consistency"] = RunnableLambda(consistency_prompt) | yes_no | RunnableLambda(_yes)
    if "relabel" in checks:
        branches["relabel"] = (
            RunnableLambda(relabel_prompt) | label_words | RunnableLambda(to_labels)
        )
    return branches


def _critic_scores(parts: dict[str, Any]) -> CriticScores:
    relabel = parts.get("relabel")
    best = None if not relabel else max(relabel, key=lambda k: relabel[k])
    return CriticScores(
        fluency=parts.get("fluency"),
        consistency=parts.get("consistency"),
        relabel=relabel,
        relabel_label=best,
    )


class JudgeCheck(BaseModel):
    """How well the judge separates good from bad on held-out real examples."""

    examples: int
    fluency_auroc: float | None = None
    """P(fluency of a real text > that of its word-shuffled copy)."""
    fluency_threshold: float | None = None
    consistency_auroc: float | None = None
    """P(consistency with the true label > with a wrong label)."""
    consistency_threshold: float | None = None
    relabel_accuracy: float | None = None
    """Zero-shot relabel accuracy on the real examples."""


def auroc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    if not pos or not neg:
        msg = "auroc needs positives and negatives"
        raise ValueError(msg)
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def best_threshold(pos: Sequence[float], neg: Sequence[float]) -> float:
    """The cut (a midpoint) that maximises balanced accuracy of ``score >= cut``."""
    values = sorted(set(pos) | set(neg))
    cuts = [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)] or values
    best, best_acc = cuts[0], -1.0
    for c in cuts:
        acc = (sum(p >= c for p in pos) / len(pos) + sum(n < c for n in neg) / len(neg)) / 2
        if acc > best_acc:
            best, best_acc = c, acc
    return best


def check_judge(
    llm: BaseLanguageModel[Any] | None,
    spec: TaskSpec,
    held_out: Sequence[Example],
    *,
    scorer: LabelScorer | None | str = "auto",
    shots: Sequence[Example] = (),
    checks: Sequence[str] = CHECKS,
    seed: int = 0,
    top_logprobs: int = 20,
) -> JudgeCheck:
    """Measure the critic on real ``held_out`` examples and their corruptions.

    Positives are the real texts with their labels; fluency negatives are the same
    texts with shuffled words, consistency negatives the texts with another label.
    """
    rng = random.Random(seed + 7)
    kw: dict[str, Any] = {
        "scorer": scorer,
        "examples": list(shots),
        "shots": len(shots),
        "seed": seed,
        "top_logprobs": top_logprobs,
    }
    real = [{"text": e.text, "label": e.label} for e in held_out]
    pos = build_critic_chain(llm, spec, checks=checks, **kw).batch(real)
    out = JudgeCheck(examples=len(real))
    if "fluency" in checks:
        garbled = [
            {"text": shuffled_words(clean_text(e.text), rng), "label": e.label} for e in held_out
        ]
        neg = build_critic_chain(llm, spec, checks=["fluency"], **kw).batch(garbled)
        p = [s.fluency for s in pos if s.fluency is not None]
        n = [s.fluency for s in neg if s.fluency is not None]
        if p and n:
            out.fluency_auroc = round(auroc(p, n), 4)
            out.fluency_threshold = round(best_threshold(p, n), 4)
    if "consistency" in checks:
        wrong = []
        for e in held_out:
            others = [lab for lab in spec.label_names if lab != e.label]
            wrong.append({"text": e.text, "label": rng.choice(others)})
        neg = build_critic_chain(llm, spec, checks=["consistency"], **kw).batch(wrong)
        p = [s.consistency for s in pos if s.consistency is not None]
        n = [s.consistency for s in neg if s.consistency is not None]
        if p and n:
            out.consistency_auroc = round(auroc(p, n), 4)
            out.consistency_threshold = round(best_threshold(p, n), 4)
    if "relabel" in checks:
        got = [(s.relabel_label, e.label) for s, e in zip(pos, held_out, strict=True)]
        scored = [(a, b) for a, b in got if a is not None]
        if scored:
            out.relabel_accuracy = round(sum(a == b for a, b in scored) / len(scored), 4)
    return out
