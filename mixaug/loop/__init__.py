"""The agentic loop: augmentation in rounds that aims each round at what the last missed."""

from mixaug.loop.graph import LoopContext, LoopNodes, LoopState, build_loop_graph, initial_state
from mixaug.loop.runner import plot_rounds, report_of, run_loop
from mixaug.loop.targeting import PlannedSelector, RoundPlan, Target, find_targets, plan_round

__all__ = [
    "LoopContext",
    "LoopNodes",
    "LoopState",
    "PlannedSelector",
    "RoundPlan",
    "Target",
    "build_loop_graph",
    "find_targets",
    "initial_state",
    "plan_round",
    "plot_rounds",
    "report_of",
    "run_loop",
]
