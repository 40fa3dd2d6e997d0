"""LangChain chains: the prompt families (GPT3Mix and others), generation, parsing, critic."""

from mixaug.chains.calibrate import CalibrationReport, CalibrationStep, SoftLabelCalibrator
from mixaug.chains.critic import (
    JudgeCheck,
    JudgePrompts,
    WordDistribution,
    build_critic_chain,
    check_judge,
)
from mixaug.chains.families import (
    FAMILIES,
    FamilyParser,
    FamilyPromptTemplate,
    ParseContext,
    PromptFamily,
    build_family_chain,
    family_names,
    get_family,
    plan_requests,
    register_family,
    render_family_prompt,
)
from mixaug.chains.families.mix import (
    MixChatPromptTemplate,
    MixPromptTemplate,
    SoftLabelParser,
    build_mix_chain,
)
from mixaug.chains.generation import GenerationStep, generate_with_logprobs
from mixaug.chains.parser import (
    FAILURE_REASONS,
    ParsedContinuation,
    PromptGeneration,
    parse_continuation,
)
from mixaug.chains.prompts import clean_text, prompt_hash, render_mix_prompt

__all__ = [
    "FAMILIES",
    "FamilyParser",
    "FamilyPromptTemplate",
    "ParseContext",
    "PromptFamily",
    "build_family_chain",
    "family_names",
    "get_family",
    "register_family",
    "plan_requests",
    "render_family_prompt",
    "JudgeCheck",
    "JudgePrompts",
    "WordDistribution",
    "build_critic_chain",
    "check_judge",
    "FAILURE_REASONS",
    "CalibrationReport",
    "CalibrationStep",
    "SoftLabelCalibrator",
    "GenerationStep",
    "MixChatPromptTemplate",
    "MixPromptTemplate",
    "ParsedContinuation",
    "PromptGeneration",
    "SoftLabelParser",
    "build_mix_chain",
    "clean_text",
    "generate_with_logprobs",
    "parse_continuation",
    "prompt_hash",
    "render_mix_prompt",
]
