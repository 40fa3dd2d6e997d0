import mixaug
import mixaug.baselines
import mixaug.bench
import mixaug.chains
import mixaug.loop
import mixaug.models
import mixaug.selectors
import mixaug.training


def test_public_api_is_pinned() -> None:
    expected = {
        "LoopConfig",
        "FAMILIES",
        "AugmentOptions",
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
        "BalancedAnchorSelector",
        "DiverseSelector",
        "MixedClassSelector",
        "SameClassSelector",
        "SimilarSelector",
        "default_embeddings",
        "make_selector",
        "AnchorSelector",
        "AugmentConfig",
        "AugmentResult",
        "ChatTransformers",
        "ConfigError",
        "DataError",
        "Example",
        "GenerationAborted",
        "GenerationStep",
        "LLMConfig",
        "LabelScorer",
        "LabelledItem",
        "MixChatPromptTemplate",
        "MixPromptTemplate",
        "MixaugError",
        "ModelError",
        "ParseFailure",
        "RandomAnchorSelector",
        "RunSummary",
        "SoftLabelParser",
        "SpecError",
        "SyntheticRecord",
        "TaskSpec",
        "TransformersLLM",
        "LlamaCppLLM",
        "BatchExecutor",
        "RayExecutor",
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
        # The effect recipe: quotas, calibration, teacher, guard.
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
    }
    assert set(mixaug.__all__) == expected
    subpackages = (mixaug.chains, mixaug.models, mixaug.selectors, mixaug.training)
    for mod in (mixaug, *subpackages, mixaug.baselines, mixaug.bench, mixaug.loop):
        for name in mod.__all__:
            assert hasattr(mod, name), f"{mod.__name__}.{name}"


def test_import_does_not_load_torch() -> None:
    import subprocess
    import sys

    code = "import sys, mixaug; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
