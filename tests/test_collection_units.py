"""Specification of BC-MAX selection, exploration and bookkeeping (no compiler involved)."""

import dataclasses

import numpy as np
import pytest

from compiler_opt.rl import env
from compiler_opt.rl.imitation_learning import exploration, generate_bc_trajectories_lib, profiles
from tests.gin_test_base import GinTestCase


def _outcome(size, status="ok"):
    return profiles.PolicyOutcome(size=size, text_section_size=size, horizon=3, seconds=0.1, status=status)


def _result(actions, size=100, status=env.OK, policy="base"):
    t = len(actions)
    return env.CompileResult(
        module="m",
        policy=policy,
        status=status,
        text_size=size,
        text_section_size=size,
        actions=np.asarray(actions, np.int8),
        features={
            "threshold": np.full((t, 1), 45),
            "cost_estimate": np.arange(t).reshape(t, 1) * 10,
            "inlining_default": np.asarray(actions).reshape(t, 1),
        },
        seconds=0.0,
    )


def test_best_is_the_smallest_size_and_ties_go_to_the_earliest():
    outcomes = {"heuristic": _outcome(10), "t50": _outcome(8), "t500": _outcome(8), "x": _outcome(5, "failed")}
    assert profiles.select_best(outcomes) == "t50"


def test_no_best_when_everything_failed():
    assert profiles.select_best({"a": _outcome(None, "failed"), "b": _outcome(None, "timeout")}) is None


def test_a_winner_is_cloned_only_when_it_beats_the_heuristic_by_the_minimum_gain():
    outcomes = {"heuristic": _outcome(1000), "t25": _outcome(985), "t100": _outcome(995)}
    best = profiles.select_best(outcomes)
    assert best == "t25"
    assert profiles.select_recorded(outcomes, best, "heuristic", 0.01) == "t25"  # 1.5% smaller: kept
    assert profiles.select_recorded(outcomes, best, "heuristic", 0.02) == "heuristic"  # 1.5% < 2%: the heuristic's
    assert profiles.select_recorded(outcomes, best, "heuristic", 0.0) == "t25"


def test_without_a_heuristic_outcome_the_winner_is_cloned():
    outcomes = {"heuristic": _outcome(None, "failed"), "t25": _outcome(999)}
    assert profiles.select_recorded(outcomes, "t25", "heuristic", 0.5) == "t25"
    assert profiles.select_recorded({"t25": _outcome(999)}, "t25", "heuristic", 0.5) == "t25"
    assert profiles.select_recorded({}, None, "heuristic", 0.5) is None


@pytest.mark.parametrize("gain", [-0.1, 1.0, 2.0])
def test_a_minimum_gain_outside_zero_to_one_is_refused(gain):
    with pytest.raises(ValueError, match="label_min_gain"):
        profiles.select_recorded({}, None, "heuristic", gain)


def test_least_confident_step_is_the_probability_closest_to_one_half():
    assert exploration.least_confident_step(np.array([0.9, 0.45, 0.6, 0.1]), start=0) == 1
    assert exploration.least_confident_step(np.array([0.9, 0.45, 0.6, 0.1]), start=2) == 2
    assert exploration.least_confident_step(np.array([0.9]), start=1) is None


def test_explore_on_features_restricts_the_candidate_steps():
    features = {"is_callee_avail_external": np.array([[0], [1], [0]])}
    step = exploration.least_confident_step(
        np.array([0.5, 0.9, 0.5]), 0, features, explore_on_features={"is_callee_avail_external": 1}
    )
    assert step == 1


def test_heuristic_margin_is_least_confident_where_cost_meets_threshold():
    probs = exploration.HeuristicMarginExplorer().prob_inline(_result([1, 1, 1, 1, 0, 0]).features)
    assert exploration.least_confident_step(probs, 0) in (4, 5)
    assert (probs[:4] > 0.5).all() and (probs[4:] < 0.5).all()


class ExploreTest(GinTestCase):
    def test_each_exploration_flips_one_later_step_and_continues_with_the_base_policy(self):
        calls = []

        def compile_fn(policy):
            calls.append(policy)
            return _result(list(policy.actions) + [1] * 2, size=90 - len(calls))

        base = dataclasses.make_dataclass("P", [("name", str), ("extra_args", tuple)])("heuristic", ())
        found = exploration.explore(
            base, _result([1, 1, 0]), exploration.HeuristicMarginExplorer(), compile_fn, max_exploration_steps=2
        )
        assert [name for name, _ in found] == ["heuristic+explore1", "heuristic+explore2"]
        first, second = calls
        assert first.then is base and len(second.actions) > len(first.actions)
        assert first.actions[-1] != _result([1, 1, 0]).actions[len(first.actions) - 1]

    def test_exploring_the_last_decision_works_and_a_failed_exploration_stops_quietly(self):
        def compile_fn(policy):
            return _result(list(policy.actions), size=None, status=env.FAILED)

        class AtEnd:
            def prob_inline(self, features):
                return np.array([1.0, 1.0, 0.5])

        base = dataclasses.make_dataclass("P", [("name", str), ("extra_args", tuple)])("b", ())
        found = exploration.explore(base, _result([1, 1, 1]), AtEnd(), compile_fn, max_exploration_steps=3)
        assert len(found) == 1 and found[0][1].status == env.FAILED


class SizeBucketTest(GinTestCase):
    def test_buckets_are_defined_by_the_partitions(self):
        assert [profiles.size_bucket(s, partitions=(10, 100)) for s in (0, 9, 10, 99, 100, 10**9)] == [0, 0, 1, 1, 2, 2]

    def test_number_of_buckets_follows_the_gin_partitions(self):
        import gin

        gin.bind_parameter("profiles.size_bucket.partitions", (5,))
        assert profiles.num_buckets() == 2


def test_module_keys_are_file_safe_and_distinct():
    keys = {generate_bc_trajectories_lib.module_key(n) for n in ("a/b.c", "a_b.c", "a/b/../c", "x" * 300)}
    assert len(keys) == 4
    assert all("/" not in k and len(k) < 100 for k in keys)


def test_profiles_round_trip_through_json(tmp_path):
    profile = profiles.ModuleProfile(
        module="m", results={"heuristic": _outcome(10)}, best="heuristic", best_size=10, oz_size=10, label=1
    )
    path = str(tmp_path / "p.jsonl")
    profiles.write_jsonl(path, [profile])
    assert profiles.read_jsonl(path) == [profile]


def test_missing_profiles_file_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="generate_bc_trajectories"):
        profiles.read_jsonl(str(tmp_path / "none.jsonl"))


def test_a_damaged_profiles_file_names_the_line_and_the_fix(tmp_path):
    path = tmp_path / "profiles.jsonl"
    path.write_text('{"module": "m"\n')
    with pytest.raises(ValueError, match=r"profiles.jsonl:1 is not a module profile.*rerun generate_bc_trajectories"):
        profiles.read_jsonl(str(path))
