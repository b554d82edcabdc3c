"""Exploration around a trajectory by flipping the decision where an exploring policy is least confident.

BC-MAX (Marinov, Agarwal, Trofin, arXiv 2403.19462), like MLGO's imitation-learning collector, enriches each
baseline's trajectory: given the trajectory played by a base policy and an exploring policy's probability of inlining
at every step, find the step whose two action probabilities are closest (smallest |2p - 1|), recompile replaying the
prefix with that decision flipped and let the base policy continue. Repeat on the new trajectory, searching only
after the last flipped step, up to `max_exploration_steps` times.

Explorers (spec strings): `none`; `heuristic_margin` (LLVM's own cost model as confidence: the margin between
`threshold` and `cost_estimate`, signed by `inlining_default`); `saved:PATH` (a learned policy's probabilities).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import gin
import numpy as np

from compiler_opt.rl import env, policies


@gin.configurable(module="exploration")
@dataclasses.dataclass(frozen=True)
class HeuristicMarginExplorer:
    """p(inline) = sigmoid(sign * |threshold - cost_estimate| / scale), sign = +1 where the heuristic inlines.

    scale: cost units (LLVM InlineCost units) per logit; it only matters for ties, not for the arg-min step.
    """

    scale: float = 50.0
    name: str = "heuristic_margin"

    def prob_inline(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        margin = np.abs(features["threshold"][:, 0].astype(np.float64) - features["cost_estimate"][:, 0])
        sign = np.where(features["inlining_default"][:, 0] > 0, 1.0, -1.0)
        return 1.0 / (1.0 + np.exp(-sign * margin / self.scale))


def parse_explorer(spec: str | None):
    """`none` (or empty) -> None; `heuristic_margin`; `saved:PATH`."""
    if not spec or spec == "none":
        return None
    if spec == "heuristic_margin":
        return HeuristicMarginExplorer()
    if spec.startswith("saved:"):
        return policies.parse(spec)
    raise policies.PolicySpecError(f"unknown exploration policy {spec!r}: use none, heuristic_margin or saved:PATH")


def least_confident_step(
    probs: np.ndarray,
    start: int,
    features: Mapping[str, np.ndarray] | None = None,
    explore_on_features: Mapping[str, int] | None = None,
) -> int | None:
    """The step >= start with the smallest |2p - 1| (earliest on ties), or None if there is none.

    explore_on_features: optional {feature: value}; only steps where every named feature equals its value qualify
    (e.g. {"is_callee_avail_external": 1}).
    """
    candidates = np.arange(len(probs)) >= start
    for name, value in (explore_on_features or {}).items():
        candidates &= features[name][:, 0] == value
    if not candidates.any():
        return None
    confidence = np.where(candidates, np.abs(2.0 * np.asarray(probs, dtype=np.float64) - 1.0), np.inf)
    return int(np.argmin(confidence))


@gin.configurable(module="exploration", denylist=["base_policy", "base_result", "explorer", "compile_fn"])
def explore(
    base_policy,
    base_result: env.CompileResult,
    explorer,
    compile_fn: Callable[[object], env.CompileResult],
    max_exploration_steps: int = 2,
    explore_on_features: Mapping[str, int] | None = None,
) -> list[tuple[str, env.CompileResult]]:
    """Returns [(name, result)] of the exploration compiles, named `<base>+explore<k>`.

    A failed exploration compile is returned (so it is reported) and ends exploration of this trajectory; it never
    affects the base result.
    """
    results = []
    current, start = base_result, 0
    for k in range(1, max_exploration_steps + 1):
        if not current.ok or current.horizon == 0:
            break
        step = least_confident_step(
            explorer.prob_inline(current.features), start, current.features, explore_on_features
        )
        if step is None:
            break
        prefix = tuple(int(a) for a in current.actions[:step]) + (1 - int(current.actions[step]),)
        name = f"{base_policy.name}+explore{k}"
        result = compile_fn(policies.ReplayPolicy(prefix, then=base_policy, label=name))
        results.append((name, result))
        current, start = result, step + 1
    return results
