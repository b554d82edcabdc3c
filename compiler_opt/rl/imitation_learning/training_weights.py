"""Per-size-bucket training weights of BC-MAX, from the collection's `profiles.jsonl`.

Modules are grouped into size buckets by `profiles.size_bucket` (the one definition of the partitions): a module's
bucket is the `label` of its profile line and of every step of its trajectory record.

Rule (exponentiated gradient with averaging, as in the BC-MAX paper's implementation, arXiv 2403.19462): start from
log-weights theta = 0 and the uniform distribution P over buckets. For each evaluated policy pi in turn (t = 1, 2, ...):
  regret(m)  = max(size_pi(m) - best_size(m), 0) for each module m where pi has a size,
  L[b]       = sum of regret(m) over modules m in bucket b, divided by max_b |L[b]| (all 0 if there is no regret),
  theta     <- theta - step_size * L,   p_t = softmax(theta),   P <- (t * P + p_t) / (t + 1).
The sample weight of an example in bucket b is w[b] = min(P) / P[b] (in (0, 1]): buckets where the learned policies
lose most to the best trajectory get the largest weight. With no evaluated policy, or mode "uniform", w = 1.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import gin
import numpy as np
from absl import logging

from compiler_opt.rl import splits
from compiler_opt.rl.imitation_learning import profiles

# Learned policies appear in the profiles under their spec string `saved:PATH` (compiler_opt/rl/policies.py);
# explorations around a policy are named `<policy>+explore<k>` (exploration.py) and are not the policy itself.
LEARNED_POLICY_PREFIX = "saved:"
_EXPLORATION_SUFFIX = re.compile(r"\+(explore|replay)\d+$")


def learned_policies(module_profiles: Sequence[profiles.ModuleProfile]) -> list[str]:
    """Names of learned policies (`saved:...`, not explorations) in the profiles, in natural order (numbers
    compared as numbers, so `.../iteration_2/...` comes before `.../iteration_10/...`): learning order."""
    names = {
        name
        for p in module_profiles
        for name in p.results
        if name.startswith(LEARNED_POLICY_PREFIX) and not _EXPLORATION_SUFFIX.search(name)
    }
    return sorted(names, key=_natural_key)


def _natural_key(name: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


@gin.configurable(module="training_weights")
@dataclasses.dataclass(frozen=True)
class WeightingConfig:
    """mode: "exponentiated_gradient" or "uniform". step_size: the exponentiated-gradient step, applied to
    per-bucket losses normalized to [0, 1]. Bucket partitions are `profiles.size_bucket`'s (set once, in gin)."""

    mode: str = "exponentiated_gradient"
    step_size: float = 1.0

    def __post_init__(self):
        if self.mode not in ("exponentiated_gradient", "uniform"):
            raise ValueError(f"weighting mode {self.mode!r}: use 'exponentiated_gradient' or 'uniform'")


@dataclasses.dataclass(frozen=True)
class BucketWeights:
    """Sample weight per size bucket (`weights[label]`), with the distribution P over buckets, the policies whose
    regret produced it, and their regret per bucket (bytes, one tuple per policy)."""

    weights: tuple[float, ...]
    probabilities: tuple[float, ...]
    policies: tuple[str, ...] = ()
    bucket_regrets: tuple[tuple[float, ...], ...] = ()

    @classmethod
    def uniform(cls, num_buckets: int) -> BucketWeights:
        return cls((1.0,) * num_buckets, (1.0 / num_buckets,) * num_buckets)


def compute_bucket_weights(
    module_profiles: Sequence[profiles.ModuleProfile],
    config: WeightingConfig,
    num_buckets: int,
    policies: Sequence[str] | None = None,
) -> BucketWeights:
    """Bucket weights by the module docstring's rule, over buckets 0..num_buckets-1 (the profiles' `label`s).

    policies: evaluated policies in order (default: every learned policy in the profiles). Modules without a best
    size, or where the policy has no size, are skipped for that policy. Raises ValueError on a label out of range.
    """
    if config.mode == "uniform":
        return BucketWeights.uniform(num_buckets)
    policies = learned_policies(module_profiles) if policies is None else list(policies)
    theta = np.zeros(num_buckets)
    mixture = np.full(num_buckets, 1.0 / num_buckets)
    regrets_per_round = []
    for t, policy in enumerate(policies, 1):
        losses = np.zeros(num_buckets)
        used = 0
        for profile in module_profiles:
            result = profile.results.get(policy)
            if result is None or result.size is None or profile.best_size is None:
                continue
            if not 0 <= profile.label < num_buckets:
                raise ValueError(
                    f"module {profile.module} has size bucket {profile.label}, but there are {num_buckets} buckets: "
                    "collect and train with the same `profiles.size_bucket.partitions`"
                )
            used += 1
            losses[profile.label] += max(result.size - profile.best_size, 0)
        logging.info(
            "policy %s: %d of %d modules, regret per bucket (bytes) %s", policy, used, len(module_profiles), losses
        )
        regrets_per_round.append(tuple(float(x) for x in losses))
        scale = np.max(np.abs(losses))
        if scale > 0:
            losses = losses / scale
        theta = theta - config.step_size * losses
        p_t = np.exp(theta - theta.max())
        p_t /= p_t.sum()
        mixture = (t * mixture + p_t) / (t + 1)
    return BucketWeights(
        weights=tuple(float(w) for w in mixture.min() / mixture),
        probabilities=tuple(float(p) for p in mixture),
        policies=tuple(policies),
        bucket_regrets=tuple(regrets_per_round),
    )


def codebase_balance_weights(module_profiles: Sequence[profiles.ModuleProfile], power: float) -> dict[str, float]:
    """A factor per module that evens out the codebases' share of the training decisions.

    A codebase's decisions D_c are the decisions (horizon) of its modules' recorded trajectories (`ModuleProfile`'s
    `recorded`, or `best` in older profiles); the codebase of `a/b/c` is `a` (splits.codebase_of). Every module of
    codebase c gets w_c = s * max(D_c, D / (10 C))**-power (D: all decisions, C: codebases), s chosen so that the mean
    factor over all decisions is 1 (the loss keeps its scale). power 0: every factor is 1; power 1: every codebase
    weighs the same in total, except that one with less than a tenth of an equal share weighs in proportion to its
    decisions. Modules without a recorded trajectory get no factor (they have no record).
    """
    if power < 0:
        raise ValueError(f"codebase balance power must be >= 0, got {power}")
    horizons = {}
    for p in module_profiles:
        name = p.recorded or p.best
        if p.record is not None and name is not None and name in p.results:
            horizons[p.module] = p.results[name].horizon
    by_codebase: dict[str, int] = {}
    for module, horizon in horizons.items():
        codebase = splits.codebase_of(module)
        by_codebase[codebase] = by_codebase.get(codebase, 0) + horizon
    total = sum(by_codebase.values())
    # A codebase with almost no decisions counts as a tenth of an equal share, so a handful of decisions cannot carry
    # a huge factor.
    floor = total / (10.0 * len(by_codebase)) if by_codebase else 0.0
    raw = {c: max(float(d), floor) ** -power if d > 0 else 0.0 for c, d in by_codebase.items()}
    scale = total / sum(by_codebase[c] * raw[c] for c in by_codebase) if total else 1.0
    return {module: raw[splits.codebase_of(module)] * scale for module in horizons}
