"""Specification of budgeted exploration: how a corpus-wide compile budget is shared out, and that exploring one
module never spends more compiles than its budget, split over trajectory regions as documented."""

import dataclasses

import gin
import numpy as np
import pytest

from compiler_opt.rl import env, policies
from compiler_opt.rl.imitation_learning import budgeted_exploration as be

CONFIG = be.BudgetConfig(compiles_per_module=2.0, max_per_module=5, regions=3, spread_floor=0.01)


def test_allocation_spends_the_whole_budget_within_caps_and_skips_modules_without_decisions():
    stats = [
        be.ModuleStats("big_spread", decisions=300, sizes=(1000, 1200)),
        be.ModuleStats("no_spread", decisions=300, sizes=(1000, 1000)),
        be.ModuleStats("two_decisions", decisions=2, sizes=(500, 700)),
        be.ModuleStats("no_decisions", decisions=0, sizes=(100, 100)),
        be.ModuleStats("all_failed", decisions=0, sizes=()),
    ]
    budget = be.allocate(stats, total=8, config=CONFIG)
    assert sum(budget.values()) == 8
    assert budget["no_decisions"] == 0 and budget["all_failed"] == 0
    assert budget["two_decisions"] <= 2 and budget["big_spread"] <= 5
    # The same number of decisions with baselines that disagree gets more than with baselines that agree.
    assert budget["big_spread"] > budget["no_spread"]


def test_allocation_never_exceeds_what_modules_can_use():
    stats = [be.ModuleStats("a", decisions=3, sizes=(10, 20)), be.ModuleStats("b", decisions=100, sizes=(10, 11))]
    assert be.allocate(stats, total=1000, config=CONFIG) == {"a": 3, "b": 5}
    assert be.allocate(stats, total=0, config=CONFIG) == {"a": 0, "b": 0}


@pytest.mark.parametrize(
    "budget, regions, decisions, quotas",
    [(7, 3, 30, [3, 2, 2]), (2, 4, 30, [1, 1]), (6, 4, 3, [2, 2, 2]), (0, 4, 30, []), (5, 4, 0, [])],
)
def test_budget_is_split_evenly_over_at_most_budget_and_decisions_regions(budget, regions, decisions, quotas):
    assert be.region_quotas(budget, regions, decisions) == quotas


@dataclasses.dataclass(frozen=True)
class FeatureExplorer:
    """p(inline) read from a feature `p` (per mille) of the trajectory."""

    def prob_inline(self, features):
        return features["p"][:, 0] / 1000.0


class ToyModule:
    """A synthetic module of `horizon` decisions (the base policy never inlines). Its size drops by `gain[i]` bytes
    when decision i is 1 (negative gains make it grow). Counts the compiles it is asked for."""

    def __init__(self, horizon, gains, probs):
        self.horizon, self.gains, self.probs = horizon, np.asarray(gains), np.asarray(probs)
        self.compiles = 0

    def result(self, actions):
        actions = np.asarray(actions, np.int8)
        return env.CompileResult(
            module="toy",
            policy="x",
            status=env.OK,
            text_size=int(10_000 - np.sum(self.gains * actions)),
            text_section_size=0,
            actions=actions,
            features={"p": self.probs.reshape(-1, 1)},
            seconds=0.0,
        )

    def compile(self, policy: policies.ReplayPolicy):
        self.compiles += 1
        actions = np.zeros(self.horizon, np.int8)
        actions[: len(policy.actions)] = policy.actions
        return self.result(actions)


def _explore(toy, budget, regions):
    base = policies.parse("heuristic")
    return be.explore(base, toy.result(np.zeros(toy.horizon)), FeatureExplorer(), toy.compile, budget, regions)


@pytest.mark.parametrize("horizon", [1, 2, 5, 12, 40])
@pytest.mark.parametrize("budget", [0, 1, 3, 7, 20])
@pytest.mark.parametrize("regions", [1, 3, 4])
def test_exploring_never_compiles_more_than_the_budget(horizon, budget, regions):
    rng = np.random.default_rng(horizon * 100 + budget)
    toy = ToyModule(horizon, rng.integers(-50, 50, horizon), rng.integers(0, 1000, horizon))
    results, records = _explore(toy, budget, regions)
    assert toy.compiles == len(results) == len(records) <= budget
    # Only when every decision (of every accepted trajectory) was tried may it stop short of the budget.
    if toy.compiles < budget:
        assert toy.compiles >= min(horizon, budget)
    assert [name for name, _ in results] == [f"heuristic+explore{k}" for k in range(1, len(results) + 1)]


def test_without_improvements_the_budget_goes_to_regions_as_split_and_flips_stay_in_their_region():
    horizon = 30
    toy = ToyModule(horizon, gains=-np.ones(horizon), probs=np.full(horizon, 900))
    _, records = _explore(toy, budget=7, regions=3)
    assert [sum(r.region == i for r in records) for i in range(3)] == [3, 2, 2]
    for r in records:
        assert 10 * r.region <= r.step < 10 * (r.region + 1)
    assert not any(r.accepted for r in records)


def test_the_least_confident_decision_of_a_region_is_flipped_first():
    probs = np.full(20, 990)
    probs[[3, 14]] = [480, 530]  # near 0.5: least confident
    toy = ToyModule(20, gains=-np.ones(20), probs=probs)
    _, records = _explore(toy, budget=2, regions=2)
    assert [(r.region, r.step) for r in records] == [(0, 3), (1, 14)]


def test_a_smaller_result_becomes_the_trajectory_later_flips_build_on():
    gains = np.zeros(8)
    gains[[1, 6]] = [100, 40]
    probs = np.full(8, 950)
    probs[[1, 6]] = 500
    toy = ToyModule(8, gains, probs)
    results, records = _explore(toy, budget=2, regions=2)
    assert [r.accepted for r in records] == [True, True]
    assert results[-1][1].text_size == 10_000 - 140  # both flips kept
    assert list(results[-1][1].actions[:7]) == [0, 1, 0, 0, 0, 0, 1]


def test_a_region_with_nothing_left_hands_its_compiles_to_another_region():
    # Region 0 holds decisions 0-1, region 1 decisions 2-4; 5 compiles split [3, 2]: region 0 can only use 2.
    toy = ToyModule(5, gains=-np.ones(5), probs=np.full(5, 900))
    _, records = _explore(toy, budget=5, regions=2)
    assert toy.compiles == 5
    assert sorted(r.step for r in records) == [0, 1, 2, 3, 4]
    assert [sum(r.region == i for r in records) for i in range(2)] == [2, 3]


@pytest.mark.integration
def test_budgeted_collection_spends_the_corpus_budget_on_real_modules(default_corpus, tmp_path):
    from compiler_opt.distributed import local
    from compiler_opt.rl import corpus
    from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection
    from compiler_opt.rl.imitation_learning import profiles

    modules = sorted(corpus.Corpus.load(default_corpus), key=lambda m: m.size_bytes)
    modules = modules[len(modules) // 3 : len(modules) // 3 + 3]
    gin.bind_parameter("budgeted_exploration.BudgetConfig.compiles_per_module", 3.0)
    gin.bind_parameter("budgeted_exploration.BudgetConfig.regions", 2)
    try:
        with local.LocalExecutor(2) as executor:
            collection.collect(
                modules,
                policies.parse_all(["heuristic", "heuristic:threshold=100"]),
                str(tmp_path / "out"),
                executor,
                cache_dir=str(tmp_path / "cache"),
                budgeted=True,
                progress=False,
            )
    finally:
        gin.clear_config()
    rows = profiles.read_jsonl(str(tmp_path / "out" / collection.PROFILES_FILE))
    with_decisions = sum(max(o.horizon for o in p.results.values()) > 0 for p in rows)
    explorations = [name for p in rows for name in p.results if "+explore" in name]
    # 3 compiles per module with decisions, shared out: all spent unless a module has fewer decisions to flip.
    assert 0 < len(explorations) <= 3 * with_decisions
    assert all(name.split("+explore")[0] in ("heuristic", "heuristic:threshold=100") for name in explorations)
