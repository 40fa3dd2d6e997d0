"""A local transformers engine: batched sampling with logprobs recorded step by step.

The engine backs :class:`~mixaug.models.TransformersLLM` and
:class:`~mixaug.models.ChatTransformers`. It loads a model lazily, runs a batch of
left-padded prompts through its own KV-cached decoding loop (a row leaves the batch
as soon as it ends), and records, at each step, the
sampled token's log-probability and the top-k alternatives, never the full
vocabulary distribution of every step (Gemma's vocabulary has 262k entries).

Example:
    >>> engine = LocalEngine.get("gemma3-270m")  # doctest: +SKIP
    >>> engine.generate(["Movie review:"], SamplingParams(max_new_tokens=20))  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
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


class _Row:
    """One prompt's generation so far: token ids, chosen logprobs, top-k alternatives."""

    __slots__ = ("eos", "ids", "lps", "top_ids", "top_lps")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.lps: list[float] = []
        self.top_ids: list[list[int]] = []
        self.top_lps: list[list[float]] = []
        self.eos = False
        """Whether the row ended with end-of-sequence (the token is not part of the text)."""


class _Batch:
    """The decoding state of one :meth:`LocalEngine.generate` call."""

    def __init__(self, engine: LocalEngine, mask: Any, params: SamplingParams, n: int) -> None:
        import torch

        eos = engine.tokenizer.eos_token_id
        self.params = params
        self.mask = mask
        self.positions = (mask.cumsum(-1) - 1).clamp(min=0)
        self.last_pos = self.positions[:, -1]
        self.patterns = [re.compile(p) for p in params.stop_after]
        self.stops = [s for s in params.stop if s]
        self.eos_ids = torch.tensor(eos if isinstance(eos, list) else [eos])
        self.greedy = params.temperature <= 0
        self.k = params.top_logprobs
        # Leading candidates per row, recomputed exactly by the fast output layer.
        self.keep_candidates = min(max(64, 2 * self.k), engine._head_w.shape[0])
        self.gen = None if params.seed is None else torch.Generator().manual_seed(params.seed)
        self.rows = [_Row() for _ in range(n)]
        self.active = list(range(n))
        self.nxt: Any = None

    def keep(self, still: list[int], cache: Any) -> Any:
        """Drop the rows that finished (from the KV cache too); returns their next tokens."""
        import torch

        nxt = self.nxt
        if len(still) < len(self.active):
            sel = torch.tensor(still)
            cache.batch_select_indices(sel)
            self.mask, self.last_pos, nxt = self.mask[sel], self.last_pos[sel], nxt[sel]
            self.active = [self.active[j] for j in still]
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self.active), 1)], dim=1)
        self.last_pos = self.last_pos + 1
        return nxt


def _stop_hit(
    tokenizer: PreTrainedTokenizerBase,
    ids: list[int],
    stops: list[str],
    patterns: list[re.Pattern[str]],
) -> bool:
    """Whether the generated ``ids`` hold a stop string or match a stop pattern."""
    if not stops and not patterns:
        return False
    # Only the tail can hold a new stop string: decode a short window.
    tail = str(tokenizer.decode(ids[-8:], skip_special_tokens=True))
    if any(s in tail for s in stops):
        return True
    if patterns and ")" in tail:
        # Patterns may span many tokens: check the whole generated part.
        text = str(tokenizer.decode(ids, skip_special_tokens=True))
        return any(p.search(text) for p in patterns)
    return False


def sample_next(
    scores: torch.Tensor,
    params: SamplingParams,
    greedy: bool,
    gen: torch.Generator | None,
) -> torch.Tensor:
    """Next token per row of ``(B, V)`` logits: argmax, or a draw from ``gen``.

    A draw follows OpenAI's semantics: ``temperature``, then ``top_p``.
    """
    import torch

    if greedy:
        return scores.argmax(dim=-1)
    if params.temperature != 1.0:
        scores = scores / params.temperature
    if params.top_p < 1.0:
        sorted_scores, order = scores.sort(dim=-1, descending=True)
        probs = torch.softmax(sorted_scores, dim=-1)
        # Drop a token once the mass before it already reaches top_p (keep >= 1).
        drop = probs.cumsum(dim=-1) - probs >= params.top_p
        sorted_scores[drop] = -math.inf
        scores = torch.full_like(scores, -math.inf).scatter_(1, order, sorted_scores)
    # Inverse-CDF draw: one cumulative sum and a binary search per row, about 30x
    # cheaper than torch.multinomial over Gemma's 262k-word vocabulary.
    cdf = torch.softmax(scores, dim=-1).cumsum_(dim=-1)
    u = torch.rand(cdf.shape[0], 1, generator=gen) * cdf[:, -1:]
    picked = torch.searchsorted(cdf, u, right=True).squeeze(1)
    return picked.clamp_(max=cdf.shape[1] - 1)


def penalise(logits: torch.Tensor, histories: list[list[int]], penalty: float) -> None:
    """OpenAI's frequency penalty, applied to ``logits`` in place.

    Row j's logit of a token drops by ``penalty`` times its count in ``histories[j]``.
    """
    import torch

    r_idx = [j for j, ids in enumerate(histories) for _ in ids]
    t_idx = [t for ids in histories for t in ids]
    logits.index_put_(
        (torch.tensor(r_idx, dtype=torch.long), torch.tensor(t_idx, dtype=torch.long)),
        torch.tensor(-penalty, dtype=logits.dtype),
        accumulate=True,
    )


def stop_cut(text: str, params: SamplingParams) -> int:
    """Where ``text`` ends under ``params``' stops (``-1``: nowhere).

    Before the first stop string; right after the first match of a stop pattern.
    """
    cuts = [text.find(s) for s in params.stop if s and s in text]
    for pattern in params.stop_after:
        m = re.search(pattern, text)
        if m:
            cuts.append(m.end())
    return min(cuts, default=-1)


def build_completion(
    pieces: list[str],
    logprobs: list[float],
    tops: list[list[tuple[str, float]]],
    silent: list[bool],
    *,
    ended: bool,
    prompt_tokens: int,
    params: SamplingParams,
) -> Completion:
    """A :class:`Completion` from a row's token strings, as both local engines record it.

    ``pieces`` are the generated tokens' strings (their concatenation is the text;
    an end-of-sequence token is not among them), ``silent`` marks control tokens that
    write nothing (left out of ``tokens``); the text ends at ``params``' stops.
    """
    text = "".join(pieces)
    finish = "stop" if ended else "length"
    cut = stop_cut(text, params)
    if cut >= 0:
        text, finish = text[:cut], "stop"
    tokens: list[TokenLogprob] = []
    pos = 0
    for i, piece in enumerate(pieces):
        if cut >= 0 and pos >= cut:
            break
        if silent[i]:
            continue
        tokens.append(TokenLogprob(token=piece, logprob=logprobs[i], top=tops[i]))
        pos += len(piece)
    return Completion(
        text=text,
        tokens=tokens,
        prompt_tokens=prompt_tokens,
        completion_tokens=len(tokens),
        finish_reason=finish,
    )


DTYPES = ("float32", "bfloat16")


def _cache_keyword(model: Any) -> str:
    """The forward argument that takes the KV cache.

    ``cache`` in transformers 5.x (where ``past_key_values`` is deprecated), else
    ``past_key_values``.
    """
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AMX or AVX-512 BF16).

    There the output layer runs in bfloat16 first (its leading candidates are then
    recomputed in float32); elsewhere bfloat16 is emulated and slower.
    ``MIXAUG_NO_BF16=1`` answers ``False``.
    """
    import torch

    if os.environ.get("MIXAUG_NO_BF16"):
        return False
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return torch.backends.mkldnn.is_available() and bool({"amx_bf16", "avx512_bf16"} & flags)


class LocalEngine:
    """A causal LM loaded from a local folder, embedded model name or GGUF file.

    Instances are shared per model reference (``LocalEngine.get``) and load their
    weights on first use; ``generate`` and ``score`` are thread-safe.
    """

    _instances: dict[str, LocalEngine] = {}
    _instances_lock = threading.Lock()

    def __init__(
        self, model_ref: str, *, threads: int | None = None, dtype: str = "float32"
    ) -> None:
        if dtype not in DTYPES:
            msg = f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}"
            raise ValueError(msg)
        self.model_ref = model_ref
        self.threads = threads
        self.dtype = dtype
        """Weight type of the layers: ``float32`` or ``bfloat16`` (faster, not exact)."""
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._lock = threading.RLock()
        self._token_str: dict[int, str] = {}
        self._head_w: torch.Tensor
        self.logprob_seconds = 0.0
        """Time spent recording logprobs while generating (normaliser and top-k)."""
        self._head_lp: torch.Tensor | None = None
        self._head_bias: torch.Tensor | None = None
        self._softcap: float | None = None

    @classmethod
    def get(cls, model_ref: str, dtype: str = "float32") -> LocalEngine:
        """The shared engine for ``model_ref`` in ``dtype`` (not loaded until first use)."""
        key = f"{model_ref}|{dtype}"
        with cls._instances_lock:
            if key not in cls._instances:
                cls._instances[key] = cls(model_ref, dtype=dtype)
            return cls._instances[key]

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
            self._head_setup(model)  # keeps the output layer's float32 weights
            if self.dtype == "bfloat16":
                cast(Any, model).to(torch.bfloat16)
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
    def _head_setup(self, model: PreTrainedModel) -> None:
        """Keep the output layer in float32, and in bfloat16 where this CPU has it natively."""
        import torch

        head = model.get_output_embeddings()
        self._head_w = cast("torch.Tensor", head.weight).detach().float()
        bias = getattr(head, "bias", None)
        self._head_bias = None if bias is None else bias.detach().float()
        self._softcap = getattr(model.config, "final_logit_softcapping", None)
        self._head_lp = None
        if native_bfloat16():
            self._head_lp = self._head_w.to(torch.bfloat16)

    def _project(self, hidden: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Float32 logits of ``hidden``: over the vocabulary, or of the words ``ids``.

        ``hidden`` is ``(..., D)``; with ``ids`` (``(B, M)``, one set per row of a
        ``(B, D)`` hidden) the result is ``(B, M)``. No soft-capping here.
        """
        import torch

        hidden = hidden.float()
        if ids is None:
            logits = hidden @ self._head_w.T
            return logits if self._head_bias is None else logits + self._head_bias
        logits = torch.bmm(self._head_w[ids], hidden.unsqueeze(-1)).squeeze(-1)
        return logits if self._head_bias is None else logits + self._head_bias[ids]

    def _cap(self, logits: torch.Tensor) -> torch.Tensor:
        """The model's final logit soft-capping, where it has one."""
        import torch

        if not self._softcap:
            return logits
        return torch.tanh(logits / self._softcap) * self._softcap

    def _exact_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over the whole vocabulary from the float32 output layer."""
        return self._cap(self._project(hidden))

    def _next_logits(self, hidden: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token logits ``(B, V)`` from last hidden states ``(B, D)``.

        Returns the logits and the ids of ``keep`` leading candidates per row, whose
        logits are exact. On CPUs with native bfloat16 the full vocabulary goes
        through a bfloat16 copy of the output layer (about 4x faster than float32
        for Gemma's 262k-word head at batch 16); the leading candidates are then
        recomputed in float32, so every recorded logprob and every label word's
        probability comes from exact logits. The tail's bfloat16 error only enters
        the normaliser: logprobs move by up to a few 1e-3 (measured 3e-3 on a flat
        next-token distribution), while ratios of candidates' probabilities, hence
        soft labels over label words, are exact.
        """
        import torch

        if self._head_lp is None:
            logits = self._project(hidden)
            cand = logits.topk(keep, dim=-1).indices
        else:
            logits = (hidden.to(torch.bfloat16) @ self._head_lp.T).float()
            if self._head_bias is not None:
                logits += self._head_bias
            cand = logits.topk(keep, dim=-1).indices  # capping is monotonic: same order
            logits.scatter_(1, cand, self._project(hidden, cand))
        return self._cap(logits), cand

    def generate(self, prompts: list[str], params: SamplingParams) -> list[Completion]:
        """Sample one continuation per prompt, in a single left-padded batch.

        A row leaves the batch as soon as it ends (end of sequence, stop string or
        stop pattern): later steps run on the rows still writing, so a batch costs
        the sum of its rows' lengths rather than its longest row times its size.
        """
        if not prompts:
            return []
        import torch

        with self._lock:
            model = self.model
            base = getattr(model, model.base_model_prefix)
            enc = self._encode_batch(prompts)
            batch = _Batch(self, enc["attention_mask"], params, len(prompts))
            with torch.inference_mode():
                out = base(
                    input_ids=enc["input_ids"],
                    attention_mask=batch.mask,
                    position_ids=batch.positions,
                    use_cache=True,
                )
                cache = out.get("cache", out.get("past_key_values"))
                cache_kw = _cache_keyword(base)
                hidden = out.last_hidden_state[:, -1]
                for step in range(params.max_new_tokens):
                    still = self._decode_step(batch, hidden, step)
                    if not still or step == params.max_new_tokens - 1:
                        break
                    nxt = batch.keep(still, cache)
                    out = base(
                        input_ids=nxt[:, None],
                        attention_mask=batch.mask,
                        position_ids=batch.last_pos[:, None],
                        use_cache=True,
                        **{cache_kw: cache},
                    )
                    hidden = out.last_hidden_state[:, -1]
            return [
                self._completion(row, int(enc["attention_mask"][i].sum()), params)
                for i, row in enumerate(batch.rows)
            ]

    def _decode_step(self, batch: _Batch, hidden: Any, step: int) -> list[int]:
        """Choose each active row's next token; returns the positions still writing."""
        import torch

        params, rows, active, k = batch.params, batch.rows, batch.active, batch.k
        logits, cand = self._next_logits(hidden, batch.keep_candidates)
        t0 = time.perf_counter()
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)
        if k > 0:  # the model's own logprobs, before penalty and temperature
            vals, order = logits.gather(1, cand).topk(k, dim=-1)
            top_ids = cand.gather(1, order).tolist()
            top_lps = (vals - lse).tolist()
        self.logprob_seconds += time.perf_counter() - t0
        penalty = params.frequency_penalty if step else 0.0
        if penalty:
            penalise(logits, [rows[i].ids for i in active], penalty)
        nxt = self._sample(logits, params, batch.greedy, batch.gen)
        batch.nxt = nxt
        nxt_list = nxt.tolist()
        chosen = (logits.gather(1, nxt[:, None]) - lse).squeeze(1).tolist()
        if penalty:  # undo the penalty: record the model's own logprob
            for j, i in enumerate(active):
                chosen[j] += penalty * rows[i].ids.count(nxt_list[j])
        is_eos = torch.isin(nxt, batch.eos_ids).tolist()
        still: list[int] = []
        for j, i in enumerate(active):
            row = rows[i]
            row.ids.append(nxt_list[j])
            row.lps.append(chosen[j])
            if k > 0:
                row.top_ids.append(top_ids[j])
                row.top_lps.append(top_lps[j])
            row.eos = is_eos[j]
            if not row.eos and not _stop_hit(self.tokenizer, row.ids, batch.stops, batch.patterns):
                still.append(j)
        return still

    @staticmethod
    def _sample(
        scores: torch.Tensor,
        params: SamplingParams,
        greedy: bool,
        gen: torch.Generator | None,
    ) -> torch.Tensor:
        return sample_next(scores, params, greedy, gen)

    def _completion(self, row: _Row, prompt_tokens: int, params: SamplingParams) -> Completion:
        tok = self.tokenizer
        ids = row.ids[:-1] if row.eos else row.ids
        special = set(tok.all_special_ids)
        # Token strings whose concatenation is exactly the decoded text.
        pieces: list[str] = []
        prev = ""
        for i in range(len(ids)):
            cur = self._decode(ids[: i + 1])
            pieces.append(cur[len(prev) :] if cur.startswith(prev) else self._tok_str(ids[i]))
            prev = cur
        tops = [
            [(self._tok_str(t), v) for t, v in zip(row.top_ids[i], row.top_lps[i], strict=True)]
            if row.top_ids
            else []
            for i in range(len(ids))
        ]
        silent = [ids[i] in special and piece == "" for i, piece in enumerate(pieces)]
        return build_completion(
            pieces, row.lps, tops, silent, ended=row.eos, prompt_tokens=prompt_tokens,
            params=params,
        )  # fmt: skip

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
            base = getattr(model, model.base_model_prefix)
            with torch.inference_mode():
                hidden = base(input_ids=input_ids, attention_mask=mask).last_hidden_state
                logits = self._exact_logits(hidden[:, first:])  # (N, keep, V)
            lps = torch.log_softmax(logits, dim=-1)
            row_of = {i: r for r, i in enumerate(multi)}
            out: list[float] = []
            for i, c in enumerate(conts):
                r = row_of.get(i, 0)
                out.append(sum(float(lps[r, j, t]) for j, t in enumerate(c)))
            return out

    def score_next(
        self, prefixes: list[str], continuations: list[str], *, batch_size: int = 16
    ) -> tuple[list[list[float]], list[list[float]]]:
        """Next-token scores of many prefixes at once, with the hidden state there.

        For each prefix: the log-probability of each *single-token* continuation as
        the next token, and the model's last hidden state at the prefix's last
        position (what hidden-state calibration reads). Prefixes are right-padded
        into batches of ``batch_size``; a continuation of several tokens is scored
        by its first token only, so callers pass single-token label words.
        """
        import torch

        conts = [self.tokenizer.encode(c, add_special_tokens=False)[:1] for c in continuations]
        ids_c = [c[0] if c else self.tokenizer.unk_token_id for c in conts]
        scores: list[list[float]] = []
        states: list[list[float]] = []
        with self._lock:
            tok, model = self.tokenizer, self.model
            base = getattr(model, model.base_model_prefix)
            pad = tok.pad_token_id
            for i in range(0, len(prefixes), batch_size):
                seqs = [
                    tok(p, add_special_tokens=True)["input_ids"]
                    for p in prefixes[i : i + batch_size]
                ]
                width = max(len(s) for s in seqs)
                input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
                mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
                last = torch.tensor([len(s) - 1 for s in seqs])
                with torch.inference_mode():
                    hidden = base(input_ids=input_ids, attention_mask=mask).last_hidden_state
                    h = hidden[torch.arange(len(seqs)), last]  # (B, D)
                    lps = torch.log_softmax(self._exact_logits(h[:, None])[:, 0], dim=-1)
                scores += lps[:, ids_c].tolist()
                states += h.float().tolist()
        return scores, states
