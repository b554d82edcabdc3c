"""Exploration under a compile budget, spent where it is most likely to pay.

BC-MAX (Marinov, Agarwal, Trofin, arXiv 2403.19462) explores around the best baseline trajectory by flipping the
decision its exploring policy is least sure of. `exploration.explore` spends the same number of flips on every
module and chains them from the start of the trajectory. Here a corpus-wide budget of exploration compiles is
shared out instead:

1. Allocation (`allocate`): module m gets a share of the total budget proportional to its score
   log2(1 + decisions_m) * (spread_m + spread_floor), where decisions_m is the best baseline's number of decisions
   and spread_m = (largest - smallest) / smallest text size over its baselines (modules where the baselines
   disagree have more to gain). A module gets at most min(max_per_module, decisions_m) compiles; shares are whole
   compiles by largest remainder, and what a capped module cannot use goes to the others. Modules with no decision
   get nothing.
2. Exploration of one module (`explore`): its trajectory is cut into `regions` contiguous regions of equal numbers of
   decisions; the budget b is split over R = min(regions, b, decisions) regions as evenly as possible (region i gets
   b // R, plus one for i < b % R) and spent round-robin, one compile per region per round. Each compile flips,
   in its region of the current best trajectory, the not-yet-tried decision with the smallest confidence |2p - 1|
   of the exploring policy (a learned policy's probabilities, or LLVM's cost margin before any is learned),
   replays the prefix and lets the base policy continue. A smaller result becomes the current best trajectory
   (hill climbing); a larger one is remembered as tried. The budget is never exceeded: a region with nothing left
   to try hands its remaining compiles to the next region that has.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import gin
import numpy as np

from compiler_opt.rl import compile_cache, env, policies
from compiler_opt.rl.imitation_learning import exploration


@gin.configurable(module="budgeted_exploration")
@dataclasses.dataclass(frozen=True)
class BudgetConfig:
    """compiles_per_module: mean exploration compiles per module with decisions (the corpus-wide budget is this times
    their number). max_per_module: cap for one module. regions: contiguous parts of a trajectory explored apart.
    spread_floor: added to the relative spread, so modules whose baselines agree can still get a share."""

    compiles_per_module: float = 2.0
    max_per_module: int = 16
    regions: int = 4
    spread_floor: float = 0.01


@dataclasses.dataclass(frozen=True)
class ModuleStats:
    """What allocation knows of a module: the best baseline's decisions and its baselines' text sizes (bytes)."""

    module: str
    decisions: int
    sizes: tuple[int, ...]

    @property
    def spread(self) -> float:
        if len(self.sizes) < 2 or min(self.sizes) <= 0:
            return 0.0
        return (max(self.sizes) - min(self.sizes)) / min(self.sizes)


def score(stats: ModuleStats, config: BudgetConfig) -> float:
    if stats.decisions <= 0 or not stats.sizes:
        return 0.0
    return math.log2(1 + stats.decisions) * (stats.spread + config.spread_floor)


def allocate(stats: Sequence[ModuleStats], total: int, config: BudgetConfig) -> dict[str, int]:
    """Whole compiles per module, summing to min(total, sum of the caps), each within its cap (see module doc)."""
    caps = {s.module: min(config.max_per_module, max(s.decisions, 0)) if s.sizes else 0 for s in stats}
    weights = {s.module: score(s, config) for s in stats}
    budget = {s.module: 0 for s in stats}
    left = min(int(total), sum(caps.values()))
    while left > 0:
        open_ = [m for m in budget if budget[m] < caps[m] and weights[m] > 0]
        if not open_:
            break
        weight_sum = sum(weights[m] for m in open_)
        ideal = {m: left * weights[m] / weight_sum for m in open_}
        given = {m: min(int(ideal[m]), caps[m] - budget[m]) for m in open_}
        rest = left - sum(given.values())
        # Largest remainders first (ties: module name), one compile each, within caps.
        for m in sorted(open_, key=lambda m: (-(ideal[m] - int(ideal[m])), m)):
            if rest <= 0:
                break
            if budget[m] + given[m] < caps[m]:
                given[m] += 1
                rest -= 1
        if sum(given.values()) == 0:
            break
        for m, g in given.items():
            budget[m] += g
        left -= sum(given.values())
    return budget


def region_quotas(budget: int, regions: int, decisions: int) -> list[int]:
    """Compiles per region: the budget over R = min(regions, budget, decisions) regions, the first ones get the
    remainder (e.g. 7 over 3 regions: [3, 2, 2])."""
    r = min(regions, budget, decisions)
    if r <= 0:
        return []
    return [budget // r + (1 if i < budget % r else 0) for i in range(r)]


def region_bounds(region: int, regions: int, decisions: int) -> tuple[int, int]:
    """[start, end) decision indices of `region` out of `regions` equal parts of a trajectory of `decisions`."""
    return region * decisions // regions, (region + 1) * decisions // regions


@dataclasses.dataclass(frozen=True)
class ExplorationRecord:
    """One exploration compile: its name, the region it explored, the flipped step, and whether it was accepted
    (smaller than the best trajectory so far)."""

    name: str
    region: int
    step: int
    size: int | None
    accepted: bool


def explore(
    base_policy,
    base_result: env.CompileResult,
    explorer,
    compile_fn: Callable[[object], env.CompileResult],
    budget: int,
    regions: int,
) -> tuple[list[tuple[str, env.CompileResult]], list[ExplorationRecord]]:
    """Spends at most `budget` compiles around `base_result` (see module doc); returns the [(name, result)] of every
    exploration compile, named `<base>+explore<k>` (k = 1, 2, ...), and what each did."""
    results: list[tuple[str, env.CompileResult]] = []
    records: list[ExplorationRecord] = []
    if budget <= 0 or not base_result.ok or base_result.horizon == 0:
        return results, records
    quotas = region_quotas(budget, regions, base_result.horizon)
    best = base_result
    probs = np.asarray(explorer.prob_inline(best.features), dtype=np.float64)
    tried: set[int] = set()  # steps already flipped on the current best trajectory
    spent = 0
    while spent < budget and any(quotas):
        progressed = False
        for i in range(len(quotas)):
            if quotas[i] == 0 or spent >= budget:
                continue
            start, end = region_bounds(i, len(quotas), best.horizon)
            step = _least_confident(probs, start, end, tried)
            if step is None:
                # Nothing left to try here: hand this region's compiles to the next region that can use them.
                nxt = next((j for j in range(len(quotas)) if j != i and _untried(j, len(quotas), best, tried)), None)
                if nxt is not None:
                    quotas[nxt] += quotas[i]
                    progressed = True
                quotas[i] = 0
                continue
            prefix = tuple(int(a) for a in best.actions[:step]) + (1 - int(best.actions[step]),)
            name = f"{base_policy.name}+explore{spent + 1}"
            result = compile_fn(policies.ReplayPolicy(prefix, then=base_policy, label=name))
            spent += 1
            quotas[i] -= 1
            progressed = True
            results.append((name, result))
            accepted = result.ok and result.horizon > 0 and result.text_size < best.text_size
            records.append(ExplorationRecord(name, i, step, result.text_size if result.ok else None, accepted))
            if accepted:
                best, tried = result, set()
                probs = np.asarray(explorer.prob_inline(best.features), dtype=np.float64)
            else:
                tried.add(step)
        if not progressed:
            break
    return results, records


def _least_confident(probs: np.ndarray, start: int, end: int, excluded: set[int]) -> int | None:
    candidates = [s for s in range(start, min(end, len(probs))) if s not in excluded]
    if not candidates:
        return None
    confidence = np.abs(2.0 * probs[candidates] - 1.0)
    return int(candidates[int(np.argmin(confidence))])


def _untried(region: int, regions: int, best: env.CompileResult, tried: set[int]) -> bool:
    start, end = region_bounds(region, regions, best.horizon)
    return any(s not in tried for s in range(start, end))


def module_stats(module: str, baseline_results: Mapping[str, env.CompileResult]) -> ModuleStats:
    """ModuleStats from a module's baseline compiles (failed ones are left out)."""
    ok = [r for r in baseline_results.values() if r.ok]
    if not ok:
        return ModuleStats(module, 0, ())
    best = min(ok, key=lambda r: r.text_size)
    return ModuleStats(module, best.horizon, tuple(r.text_size for r in ok))


@dataclasses.dataclass(frozen=True)
class ExploreJob:
    """One module's exploration in a worker: compile `baselines` (through the cache), then explore around the best
    one, either `strategy="chain"` (exploration.explore, `budget` flips chained from the start) or `"budgeted"`
    (this module's `explore` with `budget` compiles over `regions`). budget=None: baselines only."""

    module: object
    baselines: tuple
    explorer: object | None
    strategy: str
    budget: int | None
    regions: int
    cache_dir: str | None
    timeout_s: float
    task: object


@dataclasses.dataclass(frozen=True)
class ExploreOutcome:
    """Sizes in bytes (None: failed). baseline_sizes: per baseline name. best_baseline: the explored one.
    explored_size: the smallest exploration result (None without any); compiles: exploration compiles spent."""

    module: str
    baseline_sizes: dict[str, int | None]
    best_baseline: str | None
    decisions: int
    explored_size: int | None
    compiles: int
    records: tuple[ExplorationRecord, ...] = ()

    @property
    def stats(self) -> ModuleStats:
        ok = tuple(s for s in self.baseline_sizes.values() if s is not None)
        return ModuleStats(self.module, self.decisions if ok else 0, ok)


def explore_module(job: ExploreJob) -> ExploreOutcome:
    """Runs in a worker (see ExploreJob)."""
    cache = compile_cache.CompileCache(job.cache_dir) if job.cache_dir else None

    def compile_fn(policy):
        return compile_cache.compile_cached(cache, job.module, policy, job.task, job.timeout_s)[0]

    base_results = {b.name: compile_fn(b) for b in job.baselines}
    sizes = {name: r.text_size if r.ok else None for name, r in base_results.items()}
    ok = [b for b in job.baselines if base_results[b.name].ok]
    if not ok:
        return ExploreOutcome(job.module.name, sizes, None, 0, None, 0)
    best = min(ok, key=lambda b: base_results[b.name].text_size)  # ties: the earliest baseline
    best_result = base_results[best.name]
    records: list[ExplorationRecord] = []
    if not job.budget or job.explorer is None:
        explored = []
    elif job.strategy == "chain":
        explored = exploration.explore(best, best_result, job.explorer, compile_fn, max_exploration_steps=job.budget)
    elif job.strategy == "budgeted":
        explored, records = explore(best, best_result, job.explorer, compile_fn, job.budget, job.regions)
    else:
        raise ValueError(f"unknown exploration strategy {job.strategy!r}: use chain or budgeted")
    explored_sizes = [r.text_size for _, r in explored if r.ok]
    return ExploreOutcome(
        module=job.module.name,
        baseline_sizes=sizes,
        best_baseline=best.name,
        decisions=best_result.horizon,
        explored_size=min(explored_sizes) if explored_sizes else None,
        compiles=len(explored),
        records=tuple(records),
    )


def module_budgets(
    modules: Sequence, baselines: Sequence, executor, config: BudgetConfig, cache_dir: str, task, timeout_s: float
) -> dict[str, int]:
    """Exploration compiles per module name: compiles every module's baselines (through the cache at cache_dir,
    where collection finds them again), then shares config.compiles_per_module x (modules with decisions) out by
    `allocate`. The allocation depends only on the modules and their baselines' compiles, so a resumed collection
    gives every module the budget of an uninterrupted one."""
    jobs = [
        ExploreJob(m, tuple(baselines), None, "none", None, config.regions, cache_dir, timeout_s, task) for m in modules
    ]
    stats = [o.stats for _, o in executor.map_unordered(explore_module, jobs)]
    total = round(config.compiles_per_module * sum(s.decisions > 0 for s in stats))
    return allocate(stats, total, config)
