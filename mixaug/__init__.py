"""mixaug: make small labelled text data sets bigger with language models (GPT3Mix).

Example:
    >>> from mixaug import TransformersLLM, build_mix_chain, get_spec
    >>> chain = build_mix_chain(TransformersLLM(), get_spec("sst2"))  # doctest: +SKIP
    >>> chain.invoke({"anchors": [{"text": "a gem", "label": "positive"},
    ...                           {"text": "a mess", "label": "negative"}]}).soft_label
    {'positive': 0.74, 'negative': 0.26}
"""

import os as _os

# Nothing in mixaug may reach a model hub: fail fast instead of hanging on one.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from mixaug.augmentation import (  # noqa: E402
    AugmentOptions,
    AugmentResult,
    GenerationAborted,
    augment,
    build_llm,
)
from mixaug.chains import (  # noqa: E402
    GenerationStep,
    MixChatPromptTemplate,
    MixPromptTemplate,
    SoftLabelParser,
    build_mix_chain,
    generate_with_logprobs,
    parse_continuation,
)
from mixaug.chains.critic import build_critic_chain  # noqa: E402
from mixaug.chains.families import (  # noqa: E402
    FAMILIES,
    PromptFamily,
    build_family_chain,
    register_family,
)
from mixaug.config import (  # noqa: E402
    AnchorConfig,
    AugmentConfig,
    FilterConfig,
    LabelMixConfig,
    LabelsConfig,
    LLMConfig,
    LoopConfig,
    PromptConfig,
    load_config,
)
from mixaug.data import check_labels, load_examples, load_records  # noqa: E402
from mixaug.errors import (  # noqa: E402
    ConfigError,
    DataError,
    MixaugError,
    ModelError,
    ParseFailure,
    SpecError,
)
from mixaug.executors import BatchExecutor, RayExecutor  # noqa: E402
from mixaug.filtering import FilterSummary, RecordFilter, build_record_filter  # noqa: E402
from mixaug.labelmix import (  # noqa: E402
    Labeller,
    RecordLabeller,
    choose_labeller,
    fill_quotas,
    fit_record_labeller,
)
from mixaug.lmscores import LMScores, score_texts  # noqa: E402
from mixaug.models import ChatTransformers, LlamaCppLLM, TransformersLLM  # noqa: E402
from mixaug.recipe import (  # noqa: E402
    GuardReport,
    RecipeConfig,
    RecipeResult,
    guard_records,
    run_recipe,
)
from mixaug.records import (  # noqa: E402
    CriticScores,
    Example,
    LabelledItem,
    RunSummary,
    SyntheticRecord,
)
from mixaug.selectors import (  # noqa: E402
    STRATEGIES,
    AnchorIndex,
    AnchorSelector,
    BalancedAnchorSelector,
    DiverseSelector,
    MixedClassSelector,
    RandomAnchorSelector,
    SameClassSelector,
    SimilarSelector,
    TargetedAnchorSelector,
    default_embeddings,
    make_selector,
)
from mixaug.softlabels import LabelScorer, tokens_from_logprobs  # noqa: E402
from mixaug.specs import (  # noqa: E402
    BUILTIN_SPECS,
    PromptTexts,
    TaskSpec,
    get_spec,
    load_spec_yaml,
)
from mixaug.teacher import Teacher  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "GuardReport",
    "LMScores",
    "LabelMixConfig",
    "Labeller",
    "LabelsConfig",
    "RecipeConfig",
    "RecipeResult",
    "RecordLabeller",
    "TargetedAnchorSelector",
    "Teacher",
    "choose_labeller",
    "fill_quotas",
    "fit_record_labeller",
    "guard_records",
    "run_recipe",
    "score_texts",
    "LoopConfig",
    "FAMILIES",
    "PromptFamily",
    "register_family",
    "PromptConfig",
    "PromptTexts",
    "build_family_chain",
    "CriticScores",
    "FilterConfig",
    "FilterSummary",
    "RecordFilter",
    "build_critic_chain",
    "build_record_filter",
    "load_records",
    "BUILTIN_SPECS",
    "STRATEGIES",
    "AnchorConfig",
    "AnchorIndex",
    "AnchorSelector",
    "BalancedAnchorSelector",
    "DiverseSelector",
    "MixedClassSelector",
    "SameClassSelector",
    "SimilarSelector",
    "default_embeddings",
    "make_selector",
    "AugmentConfig",
    "AugmentOptions",
    "AugmentResult",
    "BatchExecutor",
    "ChatTransformers",
    "ConfigError",
    "DataError",
    "Example",
    "GenerationAborted",
    "GenerationStep",
    "LLMConfig",
    "LabelScorer",
    "LabelledItem",
    "LlamaCppLLM",
    "MixChatPromptTemplate",
    "MixPromptTemplate",
    "MixaugError",
    "ModelError",
    "ParseFailure",
    "RandomAnchorSelector",
    "RayExecutor",
    "RunSummary",
    "SoftLabelParser",
    "SpecError",
    "SyntheticRecord",
    "TaskSpec",
    "TransformersLLM",
    "__version__",
    "augment",
    "build_llm",
    "build_mix_chain",
    "check_labels",
    "generate_with_logprobs",
    "get_spec",
    "load_config",
    "load_examples",
    "load_spec_yaml",
    "parse_continuation",
    "tokens_from_logprobs",
]
