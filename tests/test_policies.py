"""Specification of policy spec strings and of the built-in policies' decisions."""

import json
import re

import numpy as np
import pytest

from compiler_opt.rl import env, policies, protocol


def _header(names):
    return protocol.parse_header(
        json.dumps(
            {
                "features": [{"name": n, "type": "int64_t", "shape": [1]} for n in names],
                "advice": {"name": "inlining_decision", "type": "int64_t", "shape": [1]},
            }
        ).encode()
    )


def _obs(header, *values):
    return protocol.Observation(header, 0, np.array(values, "<i8").tobytes())


@pytest.mark.parametrize(
    "spec, name, extra_args",
    [
        ("heuristic", "heuristic", ()),
        ("heuristic:threshold=225", "heuristic:threshold=225", ("-mllvm", "-inline-threshold=225")),
        ("heuristic:threshold=-10", "heuristic:threshold=-10", ("-mllvm", "-inline-threshold=-10")),
        ("always", "always", ()),
        ("never", "never", ()),
        ("heuristic:inline-call-penalty=50", "heuristic:inline-call-penalty=50", ("-mllvm", "-inline-call-penalty=50")),
        (
            "heuristic: threshold=100 , inline-instr-cost=3",
            "heuristic:inline-instr-cost=3,threshold=100",
            ("-mllvm", "-inline-instr-cost=3", "-mllvm", "-inline-threshold=100"),
        ),
        ("heuristic:inline-threshold=007", "heuristic:threshold=7", ("-mllvm", "-inline-threshold=7")),
        ("heuristic:inline-cost-full=1", "heuristic:inline-cost-full=true", ("-mllvm", "-inline-cost-full=true")),
    ],
)
def test_spec_strings_name_the_policy_and_its_flags(spec, name, extra_args):
    policy = policies.parse(spec)
    assert (policy.name, policy.extra_args) == (name, extra_args)


@pytest.mark.parametrize("spec", ["heuristic:threshold=abc", "heuristic:foo=1", "random", "saved:/no/such/dir"])
def test_bad_spec_strings_are_rejected_with_the_accepted_forms(spec):
    with pytest.raises(policies.PolicySpecError):
        policies.parse(spec)


@pytest.mark.parametrize(
    "spec, named",
    [
        ("heuristic:inline-treshold=50", "'inline-treshold' is not an LLVM inliner option"),
        ("heuristic:threshold=25,inline-call-penalty=x", "option 'inline-call-penalty' takes an integer, got 'x'"),
        ("heuristic:inline-cost-full=maybe", "option 'inline-cost-full' takes true or false"),
        ("heuristic:threshold=25,inline-threshold=50", "option 'inline-threshold' given twice"),
        ("heuristic:threshold", "'threshold' is not OPTION=VALUE"),
    ],
)
def test_bad_heuristic_options_are_named_in_the_error(spec, named):
    with pytest.raises(policies.PolicySpecError, match=re.escape(named)):
        policies.parse(spec)


def test_the_same_heuristic_settings_written_two_ways_are_one_policy():
    with pytest.raises(policies.PolicySpecError, match="duplicate"):
        policies.parse_all(
            ["heuristic:threshold=25,inline-call-penalty=10", "heuristic:inline-call-penalty=10,threshold=25"]
        )


def test_duplicate_policies_are_rejected():
    with pytest.raises(policies.PolicySpecError, match="duplicate"):
        policies.parse_all(["heuristic", "heuristic"])


def test_heuristic_plays_inlining_default():
    header = _header(["a", "inlining_default"])
    decide = policies.parse("heuristic").new_episode(header)
    assert decide(_obs(header, 9, 1)) == 1 and decide(_obs(header, 9, 0)) == 0


def test_heuristic_without_inlining_default_says_which_clang_to_use():
    with pytest.raises(env.FeatureMismatchError, match="inlining_default.*clang-22"):
        policies.parse("heuristic").new_episode(_header(["a", "b"]))


def test_replay_plays_the_prefix_then_the_base_policy():
    header = _header(["inlining_default"])
    replay = policies.ReplayPolicy((0, 1), then=policies.parse("heuristic:threshold=5"))
    decide = replay.new_episode(header)
    assert [decide(_obs(header, 1)) for _ in range(4)] == [0, 1, 1, 1]
    assert replay.extra_args == ("-mllvm", "-inline-threshold=5")
