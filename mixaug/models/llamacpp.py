"""An in-process llama.cpp engine: batched decoding of a GGUF as shipped, with top-k logprobs.

The engine runs llama.cpp's quantised kernels (Q4_K_M for the default Gemma) through
llama-cpp-python's low-level API, with no server and no full-vocabulary logits at prompt
positions: a batch's prompts are decoded together, one llama.cpp sequence each (the
tokens every prompt shares are decoded once and shared through the KV cache), then every
step decodes one token for each row still writing. Sampling, top-k logprobs, frequency
penalty and stop handling are the transformers engine's (same code, same semantics, one
seeded torch generator per call), so a :class:`~mixaug.models.engine.Completion` from
either engine is the same kind of record.

Needs ``llama-cpp-python`` (``pip install "mixaug[llamacpp]"``; it builds llama.cpp from
source). Only GGUF files (or embedded model names) load here.

Example:
    >>> engine = LlamaCppEngine.get("gemma3-270m")  # doctest: +SKIP
    >>> engine.generate(["Movie review:"], SamplingParams(max_new_tokens=20))  # doctest: +SKIP
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import importlib.util
import os
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixaug.errors import ModelError
from mixaug.models.engine import (
    Completion,
    SamplingParams,
    build_completion,
    penalise,
    sample_next,
)
from mixaug.models.registry import EMBEDDED_MODELS, gguf_path

if TYPE_CHECKING:
    import torch

MAX_SEQUENCES = 256
"""llama.cpp's limit on sequences in one context; bigger calls run in parts."""
INSTALL = 'pip install "mixaug[llamacpp]"'


def llamacpp_available() -> bool:
    """Whether llama-cpp-python is installed (the engine's only extra dependency)."""
    return importlib.util.find_spec("llama_cpp") is not None


def gguf_file(model_ref: str) -> Path | None:
    """The GGUF file behind ``model_ref`` (embedded name or ``.gguf`` path), else ``None``."""
    if model_ref in EMBEDDED_MODELS:
        return gguf_path(model_ref)
    path = Path(model_ref).expanduser()
    if path.suffix == ".gguf":
        return path
    return None


class _Tokenizer:
    """The little of a Hugging Face tokenizer that label scoring asks of an engine.

    Control tokens decode to nothing, as with ``skip_special_tokens``.
    """

    def __init__(self, engine: LlamaCppEngine) -> None:
        self._engine = engine

    @property
    def unk_token_id(self) -> int:
        return 0

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._engine.tokenize(text, add_special=add_special_tokens)

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return b"".join(self._engine._bytes(t) for t in ids).decode("utf-8", errors="replace")


class _Row:
    """One prompt's generation so far."""

    __slots__ = ("decoder", "eos", "ids", "lps", "pieces", "text", "tops")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.lps: list[float] = []
        self.tops: list[list[tuple[int, float]]] = []
        self.pieces: list[str] = []
        self.text = ""
        self.eos = False
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")


class LlamaCppEngine:
    """A GGUF model run by llama.cpp in this process.

    Instances are shared per model reference and thread count (``LlamaCppEngine.get``)
    and load on first use; ``generate``, ``score`` and ``score_next`` are thread-safe.
    """

    _instances: dict[str, LlamaCppEngine] = {}
    _instances_lock = threading.Lock()

    def __init__(self, model_ref: str, *, threads: int | None = None) -> None:
        self.model_ref = model_ref
        self.threads = threads
        self._lock = threading.RLock()
        self._lib: Any = None
        self._model: Any = None
        self._vocab: Any = None
        self._n_vocab = 0
        self._n_embd = 0
        self._n_ctx_train = 0
        self._ctx: tuple[Any, int, int] | None = None
        """The context, its sequences and cells per sequence."""
        self._piece: dict[int, bytes] = {}
        self.logprob_seconds = 0.0
        """Time spent recording logprobs while generating (normaliser and top-k)."""

    @classmethod
    def get(cls, model_ref: str, threads: int | None = None) -> LlamaCppEngine:
        """The shared engine for ``model_ref`` (not loaded until first use)."""
        key = f"{model_ref}|{threads}"
        with cls._instances_lock:
            if key not in cls._instances:
                cls._instances[key] = cls(model_ref, threads=threads)
            return cls._instances[key]

    # -- loading -------------------------------------------------------------
    def load(self) -> None:
        """Load the GGUF now (otherwise done on first call).

        Raises:
            ModelError: llama-cpp-python missing, a reference that is not a GGUF, or a
                file llama.cpp cannot load.
        """
        with self._lock:
            if self._model is not None:
                return
            if not llamacpp_available():
                msg = f"engine 'llamacpp' needs llama-cpp-python; run: {INSTALL}"
                raise ModelError(msg)
            path = gguf_file(self.model_ref)
            if path is None:
                msg = (
                    f"engine 'llamacpp' loads GGUF files only; {self.model_ref!r} is not one "
                    "(use engine 'transformers' for a Hugging Face folder)."
                )
                raise ModelError(msg)
            if not path.is_file():
                msg = f"GGUF file {str(path)!r} does not exist."
                raise ModelError(msg)
            import llama_cpp

            _quiet(llama_cpp)
            llama_cpp.llama_backend_init()
            model = llama_cpp.llama_model_load_from_file(
                str(path).encode(), llama_cpp.llama_model_default_params()
            )
            if not model:
                msg = f"llama.cpp could not load {str(path)!r} (not a model it supports?)."
                raise ModelError(msg)
            self._lib, self._model = llama_cpp, model
            self._vocab = llama_cpp.llama_model_get_vocab(model)
            self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
            self._n_embd = int(llama_cpp.llama_model_n_embd(model))
            self._n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(model))

    def close(self) -> None:
        """Free llama.cpp's context and weights (they load again on next use)."""
        with self._lock:
            lib = self._lib
            if lib is None:
                return
            if self._ctx is not None:
                lib.llama_free(self._ctx[0])
                self._ctx = None
            if self._model is not None:
                lib.llama_model_free(self._model)
                self._model = None

    def __del__(self) -> None:
        # At interpreter exit llama_cpp's functions may be gone already: nothing to free.
        with contextlib.suppress(Exception):
            self.close()

    def _context(self, n_seq: int, per_seq: int) -> Any:
        """A context for ``n_seq`` sequences of up to ``per_seq`` tokens (reused, or grown)."""
        lib = self._lib
        have = self._ctx
        if have is not None and have[1] >= n_seq and have[2] >= per_seq:
            lib.llama_memory_clear(lib.llama_get_memory(have[0]), True)
            return have[0]
        if have is not None:
            lib.llama_free(have[0])
            self._ctx = None
            n_seq, per_seq = max(n_seq, have[1]), max(per_seq, have[2])
        cells = 256
        while cells < per_seq:
            cells *= 2
        params = lib.llama_context_default_params()
        params.n_seq_max = n_seq
        params.n_ctx = n_seq * cells
        params.n_batch = n_seq * cells  # a whole batch of prompts in one decode call
        params.n_ubatch = 512
        params.kv_unified = True  # shared prompt tokens live once, in cells of many seqs
        # Flash attention splits its sums by thread: outputs would depend on the thread
        # count (so on the machine a Ray worker lands on). Off, they do not (tested).
        params.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        threads = self.threads or os.cpu_count() or 1
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        ctx = lib.llama_init_from_model(self._model, params)
        if not ctx:
            msg = f"llama.cpp could not make a context of {n_seq} x {cells} tokens."
            raise ModelError(msg)
        self._ctx = (ctx, n_seq, cells)
        return ctx

    # -- tokens --------------------------------------------------------------
    @property
    def tokenizer(self) -> _Tokenizer:
        """An ``encode``-only stand-in for a Hugging Face tokenizer."""
        return _Tokenizer(self)

    @property
    def has_chat_template(self) -> bool:
        """Always ``False``: this engine serves completion prompts."""
        return False

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        """Token ids of ``text`` (with the model's BOS when ``add_special``)."""
        self.load()
        lib, raw = self._lib, text.encode()
        size = len(raw) + 8
        buf = (lib.llama_token * size)()
        n = lib.llama_tokenize(self._vocab, raw, len(raw), buf, size, add_special, False)
        if n < 0:  # buffer too small: -n is the size needed
            size = -n
            buf = (lib.llama_token * size)()
            n = lib.llama_tokenize(self._vocab, raw, len(raw), buf, size, add_special, False)
        return list(buf[:n])

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text`` (no special tokens)."""
        return len(self.tokenize(text, add_special=False))

    def _bytes(self, token: int) -> bytes:
        """The bytes ``token`` writes (empty for control tokens)."""
        b = self._piece.get(token)
        if b is None:
            buf = ctypes.create_string_buffer(64)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = self._lib.llama_token_to_piece(self._vocab, token, buf, -n, 0, False)
            b = buf.raw[:n]
            self._piece[token] = b
        return b

    def _tok_str(self, token: int) -> str:
        return self._bytes(token).decode("utf-8", errors="replace")

    # -- decoding ------------------------------------------------------------
    def _decode(self, ctx: Any, items: list[tuple[int, int, int, bool]]) -> None:
        """One llama.cpp decode of ``(token, position, sequence, wants_output)`` items."""
        lib = self._lib
        batch = lib.llama_batch_init(len(items), 0, 1)
        try:
            for i, (tok, pos, seq, out) in enumerate(items):
                batch.token[i] = tok
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = out
            batch.n_tokens = len(items)
            rc = lib.llama_decode(ctx, batch)
        finally:
            lib.llama_batch_free(batch)
        if rc != 0:
            msg = f"llama.cpp could not decode a batch of {len(items)} tokens (code {rc})."
            raise ModelError(msg)

    def _outputs(self, ctx: Any, n: int) -> torch.Tensor:
        """The last decode's ``n`` rows of logits, copied into a float32 tensor."""
        import numpy as np
        import torch

        ptr = self._lib.llama_get_logits(ctx)
        return torch.from_numpy(np.ctypeslib.as_array(ptr, shape=(n, self._n_vocab)).copy())

    def _prefill(self, ctx: Any, ids: list[list[int]]) -> list[int]:
        """Decode prompts, one sequence each, the tokens they all share only once.

        Every sequence's last token asks for output, in sequence order; returns their
        indices in the last decode call (for ``llama_get_*_ith``).
        """
        lib = self._lib
        shared = 0
        if len(ids) > 1:
            shortest = min(len(s) for s in ids)
            first = ids[0]
            while shared < shortest - 1 and all(s[shared] == first[shared] for s in ids):
                shared += 1
        if shared:
            self._decode(ctx, [(t, p, 0, False) for p, t in enumerate(first[:shared])])
            mem = lib.llama_get_memory(ctx)
            for s in range(1, len(ids)):
                lib.llama_memory_seq_cp(mem, 0, s, -1, -1)
        items = [
            (t, p, s, p == len(seq) - 1)
            for s, seq in enumerate(ids)
            for p, t in enumerate(seq)
            if p >= shared
        ]
        self._decode(ctx, items)
        return [i for i, item in enumerate(items) if item[3]]

    def generate(self, prompts: list[str], params: SamplingParams) -> list[Completion]:
        """Sample one continuation per prompt, the prompts decoded as one batch.

        A row leaves the batch (and the KV cache) as soon as it ends: end of
        sequence, a stop string, a stop pattern or ``max_new_tokens``.
        """
        if not prompts:
            return []
        import torch

        with self._lock:
            self.load()
            gen = None if params.seed is None else torch.Generator().manual_seed(params.seed)
            out: list[Completion] = []
            for start in range(0, len(prompts), MAX_SEQUENCES):
                part = prompts[start : start + MAX_SEQUENCES]
                out += self._generate(part, params, gen)
            return out

    def _generate(
        self, prompts: list[str], params: SamplingParams, gen: torch.Generator | None
    ) -> list[Completion]:
        import time

        import torch

        lib = self._lib
        ids = [self.tokenize(p) for p in prompts]
        longest = max(len(s) for s in ids)
        if longest + params.max_new_tokens > self._n_ctx_train:
            msg = (
                f"A prompt of {longest} tokens plus {params.max_new_tokens} new ones exceeds "
                f"the model's context of {self._n_ctx_train} tokens."
            )
            raise ModelError(msg)
        ctx = self._context(len(ids), longest + params.max_new_tokens + 1)
        mem = lib.llama_get_memory(ctx)
        rows = [_Row() for _ in ids]
        active = list(range(len(ids)))
        pos = [len(s) for s in ids]
        stops = [s for s in params.stop if s]
        longest_stop = max((len(s) for s in stops), default=0)
        patterns = [re.compile(p) for p in params.stop_after]
        greedy, k = params.temperature <= 0, params.top_logprobs
        try:
            self._prefill(ctx, ids)
            for step in range(params.max_new_tokens):
                logits = self._outputs(ctx, len(active))
                t0 = time.perf_counter()
                lse = torch.logsumexp(logits, dim=-1, keepdim=True)
                if k > 0:  # the model's own logprobs, before penalty and temperature
                    vals, top_idx = logits.topk(k, dim=-1)
                    top_ids, top_lps = top_idx.tolist(), (vals - lse).tolist()
                self.logprob_seconds += time.perf_counter() - t0
                penalty = params.frequency_penalty if step else 0.0
                if penalty:
                    penalise(logits, [rows[i].ids for i in active], penalty)
                nxt = sample_next(logits, params, greedy, gen)
                chosen = (logits.gather(1, nxt[:, None]) - lse).squeeze(1).tolist()
                still: list[int] = []
                for j, i in enumerate(active):
                    row, t = rows[i], int(nxt[j])
                    if penalty:  # record the model's own logprob
                        chosen[j] += penalty * row.ids.count(t)
                    row.ids.append(t)
                    row.lps.append(chosen[j])
                    row.tops.append(list(zip(top_ids[j], top_lps[j], strict=True)) if k else [])
                    if lib.llama_vocab_is_eog(self._vocab, t):
                        row.eos = True
                        row.pieces.append("")
                    else:
                        piece = row.decoder.decode(self._bytes(t))
                        row.pieces.append(piece)
                        row.text += piece
                        if not _stop_hit(row.text, piece, stops, longest_stop, patterns):
                            still.append(i)
                            continue
                    lib.llama_memory_seq_rm(mem, i, -1, -1)
                active = still
                if not active or step == params.max_new_tokens - 1:
                    break
                self._decode(ctx, [(rows[i].ids[-1], pos[i], i, True) for i in active])
                for i in active:
                    pos[i] += 1
        finally:
            lib.llama_memory_clear(mem, True)
        return [self._completion(row, len(s), params) for row, s in zip(rows, ids, strict=True)]

    def _completion(self, row: _Row, prompt_tokens: int, params: SamplingParams) -> Completion:
        n = len(row.ids) - row.eos  # the end-of-sequence token is not part of the text
        pieces = row.pieces[:n]
        tail = row.decoder.decode(b"", final=True)
        if tail and pieces:  # an unfinished UTF-8 character at the very end
            pieces[-1] += tail
        return build_completion(
            pieces,
            row.lps,
            [[(self._tok_str(t), v) for t, v in top] for top in row.tops[:n]],
            [piece == "" and not self._bytes(t) for piece, t in zip(pieces, row.ids, strict=False)],
            ended=row.eos,
            prompt_tokens=prompt_tokens,
            params=params,
        )

    # -- scoring -------------------------------------------------------------
    def score(self, prefix: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation after ``prefix``.

        Each continuation is tokenised on its own and appended to the prefix's tokens
        (as the transformers engine does); the prefix is decoded once.
        """
        if not continuations:
            return []
        import torch

        with self._lock:
            self.load()
            lib = self._lib
            pre = self.tokenize(prefix)
            conts = [self.tokenize(c, add_special=False) for c in continuations]
            multi = [i for i, c in enumerate(conts) if len(c) > 1]
            longest = max(len(c) for c in conts)
            out = [0.0] * len(conts)
            group = MAX_SEQUENCES - 1
            ctx = self._context(1 + min(len(multi), group), len(pre) + longest + 1)
            mem = lib.llama_get_memory(ctx)
            try:
                self._decode(ctx, [(t, p, 0, p == len(pre) - 1) for p, t in enumerate(pre)])
                first = torch.log_softmax(self._outputs(ctx, 1)[0], dim=-1)
                for i, c in enumerate(conts):
                    out[i] = float(first[c[0]]) if c else 0.0
                for g in range(0, len(multi), group):
                    part = multi[g : g + group]
                    items = []
                    for s, i in enumerate(part, start=1):
                        lib.llama_memory_seq_cp(mem, 0, s, -1, -1)
                        items += [(t, len(pre) + j, s, True) for j, t in enumerate(conts[i][:-1])]
                    self._decode(ctx, items)
                    lps = torch.log_softmax(self._outputs(ctx, len(items)), dim=-1)
                    r = 0
                    for s, i in enumerate(part, start=1):
                        for t in conts[i][1:]:
                            out[i] += float(lps[r, t])
                            r += 1
                        lib.llama_memory_seq_rm(mem, s, -1, -1)
            finally:
                lib.llama_memory_clear(mem, True)
            return out

    def score_next(
        self, prefixes: list[str], continuations: list[str], *, batch_size: int = 16
    ) -> tuple[list[list[float]], list[list[float]]]:
        """Next-token scores with hidden states: the transformers engine's, on the same weights.

        llama.cpp hands out hidden states only with every position's output computed
        (its 262k-word head at each prompt token: measured 2.3x slower than the
        transformers engine's batched pass over 64 prompts), so label scoring with
        states, which hidden-state calibration needs, runs on
        :meth:`~mixaug.models.LocalEngine.score_next` over the same GGUF. The states and
        the scores then come from one model, as calibration assumes.
        """
        from mixaug.models.engine import LocalEngine

        engine = LocalEngine.get(self.model_ref)
        return engine.score_next(prefixes, continuations, batch_size=batch_size)


_LOG_CALLBACK: Any = None
_GGML_LOG_ERROR = 4


def _quiet(lib: Any) -> None:
    """Let only llama.cpp's errors through to stderr (its load log would drown ours)."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return

    def log(level: int, text: bytes, _user: Any) -> None:
        if level == _GGML_LOG_ERROR:
            sys.stderr.write(text.decode("utf-8", errors="replace"))

    _LOG_CALLBACK = lib.llama_log_callback(log)  # kept: llama.cpp holds a raw pointer
    lib.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


def _stop_hit(
    text: str, piece: str, stops: list[str], longest: int, patterns: list[re.Pattern[str]]
) -> bool:
    """Whether the text written so far holds a stop string or matches a stop pattern."""
    if stops:
        tail = text[-(len(piece) + longest) :]
        if any(s in tail for s in stops):
            return True
    return bool(patterns) and ")" in piece and any(p.search(text) for p in patterns)
