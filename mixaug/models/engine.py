"""A local transformers engine: batched sampling with logprobs recorded step by step.

The engine backs :class:`~mixaug.models.TransformersLLM` and
:class:`~mixaug.models.ChatTransformers`. It loads a model lazily, batches prompts
with left padding into one ``generate()`` call, and records, at each step, the
sampled token's log-probability and the top-k alternatives, never the full
vocabulary distribution of every step (Gemma's vocabulary has 262k entries).

Example:
    >>> engine = LocalEngine.get("gemma3-270m")  # doctest: +SKIP
    >>> engine.generate(["Movie review:"], SamplingParams(max_new_tokens=20))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from mixaug.models.registry import resolve_model_dir

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass
class SamplingParams:
    """How to sample (OpenAI semantics for every field)."""

    max_new_tokens: int = 100
    temperature: float = 1.0
    top_p: float = 1.0
    frequency_penalty: float = 0.0
    stop: list[str] = field(default_factory=list)
    """Stop strings; the text ends before the first one (it is not included)."""
    stop_after: list[str] = field(default_factory=list)
    """Regular expressions; the text ends right after the first match (included)."""
    top_logprobs: int = 20
    seed: int | None = None


@dataclass
class TokenLogprob:
    """One generated token, its log-probability, and the top alternatives."""

    token: str
    logprob: float
    top: list[tuple[str, float]]


@dataclass
class Completion:
    """The result of generating from one prompt."""

    text: str
    tokens: list[TokenLogprob]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    """``"stop"`` (stop string or end of sequence) or ``"length"``."""


class _Recorder:
    """Logits processor that records top-k logprobs of the raw distribution.

    Placed before temperature/top-p (transformers merges user processors before
    the warpers), so the logprobs are the model's own, like OpenAI's.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.top_ids: list[torch.Tensor] = []  # each (B, k)
        self.top_lps: list[torch.Tensor] = []  # each (B, k)
        self.chosen_lps: list[torch.Tensor] = []  # each (B,)
        self._prev: torch.Tensor | None = None  # (B, V) log-softmax of last step
        self._start: int | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        if self._start is None:
            self._start = input_ids.shape[1]
        elif self._prev is not None:
            # The token sampled at the previous step is now the last input id.
            self.chosen_lps.append(self._prev.gather(1, input_ids[:, -1:]).squeeze(1))
        lp = torch.log_softmax(scores.float(), dim=-1)
        if self.k > 0:
            vals, idx = lp.topk(self.k, dim=-1)
            self.top_ids.append(idx)
            self.top_lps.append(vals)
        self._prev = lp
        return scores

    def finish(self, sequences: torch.Tensor) -> None:
        if self._prev is not None and len(self.chosen_lps) < sequences.shape[1] - (
            self._start or 0
        ):
            self.chosen_lps.append(self._prev.gather(1, sequences[:, -1:]).squeeze(1))
        self._prev = None


class _FrequencyPenalty:
    """OpenAI's frequency penalty: logit -= penalty * count in the generated part."""

    def __init__(self, penalty: float, prompt_len: int) -> None:
        self.penalty = penalty
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        gen = input_ids[:, self.prompt_len :]
        if gen.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores)
        counts.scatter_add_(1, gen, torch.ones_like(gen, dtype=scores.dtype))
        return scores - self.penalty * counts


class _StopOnStrings:
    """Stopping criterion: per row, stop at a stop string or after a stop pattern."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        stops: list[str],
        patterns: list[re.Pattern[str]],
        prompt_len: int,
    ) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.patterns = patterns
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
        import torch

        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if not self.stops and not self.patterns:
            return done
        for i in range(input_ids.shape[0]):
            # Only the tail can hold a new stop string: decode a short window.
            tail = self.tokenizer.decode(
                input_ids[i, max(self.prompt_len, input_ids.shape[1] - 8) :],
                skip_special_tokens=True,
            )
            hit = any(s in tail for s in self.stops)
            if not hit and self.patterns and ")" in tail:
                # Patterns may span many tokens: check the whole generated part.
                text = str(
                    self.tokenizer.decode(input_ids[i, self.prompt_len :], skip_special_tokens=True)
                )
                hit = any(p.search(text) for p in self.patterns)
            done[i] = hit
        return done


class LocalEngine:
    """A causal LM loaded from a local folder, embedded model name or GGUF file.

    Instances are shared per model reference (``LocalEngine.get``) and load their
    weights on first use; ``generate`` and ``score`` are thread-safe.
    """

    _instances: dict[str, LocalEngine] = {}
    _instances_lock = threading.Lock()

    def __init__(self, model_ref: str, *, threads: int | None = None) -> None:
        self.model_ref = model_ref
        self.threads = threads
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._lock = threading.RLock()
        self._token_str: dict[int, str] = {}

    @classmethod
    def get(cls, model_ref: str) -> LocalEngine:
        """The shared engine for ``model_ref`` (not loaded until first use)."""
        with cls._instances_lock:
            if model_ref not in cls._instances:
                cls._instances[model_ref] = cls(model_ref)
            return cls._instances[model_ref]

    # -- loading -------------------------------------------------------------
    def load(self) -> None:
        """Load tokenizer and weights now (otherwise done on first call)."""
        with self._lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            # Library progress bars and notices would drown mixaug's own output.
            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
            if self.threads:
                torch.set_num_threads(self.threads)
            folder = resolve_model_dir(self.model_ref)
            tok = AutoTokenizer.from_pretrained(str(folder))
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
            model.eval()
            self._tokenizer, self._model = tok, model

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer (loads the model if needed)."""
        self.load()
        assert self._tokenizer is not None
        return self._tokenizer

    @property
    def model(self) -> PreTrainedModel:
        """The torch model (loads it if needed)."""
        self.load()
        assert self._model is not None
        return self._model

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer carries a chat template."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text`` (no special tokens)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _tok_str(self, token_id: int) -> str:
        s = self._token_str.get(token_id)
        if s is None:
            s = self._decode([token_id])
            self._token_str[token_id] = s
        return s

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _encode_batch(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        return dict(self.tokenizer(prompts, return_tensors="pt", padding=True))

    # -- generation ----------------------------------------------------------
    def generate(self, prompts: list[str], params: SamplingParams) -> list[Completion]:
        """Sample one continuation per prompt, in a single left-padded batch."""
        if not prompts:
            return []
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        with self._lock:
            tok, model = self.tokenizer, self.model
            enc = self._encode_batch(prompts)
            prompt_len = enc["input_ids"].shape[1]
            patterns = [re.compile(p) for p in params.stop_after]
            recorder = _Recorder(params.top_logprobs)
            processors: list[Any] = [recorder]
            if params.frequency_penalty:
                processors.append(_FrequencyPenalty(params.frequency_penalty, prompt_len))
            greedy = params.temperature <= 0
            config = GenerationConfig(
                max_new_tokens=params.max_new_tokens,
                do_sample=not greedy,
                temperature=None if greedy else params.temperature,
                top_p=None if greedy else params.top_p,
                top_k=None if greedy else 0,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
                bos_token_id=tok.bos_token_id,
            )
            if params.seed is not None:
                torch.manual_seed(params.seed)
            with torch.inference_mode():
                out = cast(Any, model).generate(
                    **enc,
                    generation_config=config,
                    logits_processor=LogitsProcessorList(processors),
                    stopping_criteria=StoppingCriteriaList(
                        [_StopOnStrings(tok, params.stop, patterns, prompt_len)]
                    ),
                )
            recorder.finish(out)
            return [
                self._completion(row, out[row, prompt_len:], recorder, enc, params)
                for row in range(len(prompts))
            ]

    def _completion(
        self,
        row: int,
        gen_ids: torch.Tensor,
        rec: _Recorder,
        enc: dict[str, torch.Tensor],
        params: SamplingParams,
    ) -> Completion:
        tok = self.tokenizer
        ids = gen_ids.tolist()
        special = set(tok.all_special_ids)
        eos = tok.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        # Cut at end-of-sequence (padding follows it in a batch).
        n = len(ids)
        hit_eos = False
        for i, t in enumerate(ids):
            if t in eos_ids:
                n, hit_eos = i, True
                break
        ids = ids[:n]
        # Token strings whose concatenation is exactly the decoded text.
        pieces: list[str] = []
        prev = ""
        for i in range(len(ids)):
            cur = self._decode(ids[: i + 1])
            pieces.append(cur[len(prev) :] if cur.startswith(prev) else self._tok_str(ids[i]))
            prev = cur
        text = "".join(pieces)
        finish = "stop" if hit_eos else "length"
        # Apply stop strings (the text ends before the first one) and stop patterns
        # (the text ends right after the first match).
        cuts = [text.find(s) for s in params.stop if s and s in text]
        for pattern in params.stop_after:
            m = re.search(pattern, text)
            if m:
                cuts.append(m.end())
        cut = min(cuts, default=-1)
        if cut >= 0:
            text, finish = text[:cut], "stop"
        tokens: list[TokenLogprob] = []
        pos = 0
        for i, piece in enumerate(pieces):
            if cut >= 0 and pos >= cut:
                break
            if ids[i] in special and piece == "":
                pos += len(piece)
                continue
            top: list[tuple[str, float]] = []
            if rec.top_ids:
                top = [
                    (self._tok_str(int(t)), float(v))
                    for t, v in zip(
                        rec.top_ids[i][row].tolist(), rec.top_lps[i][row].tolist(), strict=True
                    )
                ]
            lp = float(rec.chosen_lps[i][row]) if i < len(rec.chosen_lps) else math.nan
            tokens.append(TokenLogprob(token=piece, logprob=lp, top=top))
            pos += len(piece)
        prompt_tokens = int(enc["attention_mask"][row].sum())
        return Completion(
            text=text,
            tokens=tokens,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(tokens),
            finish_reason=finish,
        )

    # -- scoring -------------------------------------------------------------
    def score(self, prefix: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation after ``prefix``, in one forward pass.

        Each continuation is tokenised on its own and appended to the prefix's
        tokens, so a label word keeps the tokens it has after a ``:``.
        """
        if not continuations:
            return []
        import torch

        with self._lock:
            tok, model = self.tokenizer, self.model
            pre = tok(prefix, add_special_tokens=True)["input_ids"]
            conts = [tok.encode(c, add_special_tokens=False) for c in continuations]
            # Every row predicts the prefix's next token at the same position, so
            # single-token continuations need no row of their own: only multi-token
            # ones get a row (at least one row runs, for the prefix).
            multi = [i for i, c in enumerate(conts) if len(c) > 1]
            rows = [conts[i] for i in multi] or [conts[0][:1]]
            seqs = [pre + c for c in rows]
            width = max(len(s) for s in seqs)
            pad = tok.pad_token_id
            # Right padding: the prefix sits at the same positions in every row.
            input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
            # Only the positions that predict continuation tokens matter: keep their
            # logits alone (a full (N, T, 262k) tensor would be most of the cost).
            first = len(pre) - 1
            keep = width - first
            with torch.inference_mode():
                logits = model(
                    input_ids=input_ids, attention_mask=mask, logits_to_keep=keep
                ).logits  # (N, keep, V)
            lps = torch.log_softmax(logits.float(), dim=-1)
            row_of = {i: r for r, i in enumerate(multi)}
            out: list[float] = []
            for i, c in enumerate(conts):
                r = row_of.get(i, 0)
                out.append(sum(float(lps[r, j, t]) for j, t in enumerate(c)))
            return out
