"""Specification of heuristic baseline families on real clang-22: options other than the threshold change the cost
features clang reports, so collection records the winner's decisions with the features of the stock compiler."""

import numpy as np
import pytest

from compiler_opt.rl import corpus, env, policies
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection
from compiler_opt.rl.inlining import task as task_lib


@pytest.fixture(scope="module")
def xxhash(default_corpus):
    """lz4's xxhash.c: 165 decisions at -Oz, small and fast to compile."""
    return corpus.Corpus.load(default_corpus).select(["lz4/xxhash"]).modules[0]


def _winner(module, spec):
    job = collection.ModuleJob(
        module=module,
        baselines=(policies.parse(spec),),
        explorer=None,
        explore_from="best",
        max_exploration_steps=0,
        cache_dir=None,
        timeout_s=600.0,
        task=task_lib.InliningForSizeTask(),
    )
    return collection.collect_module(job).best


@pytest.mark.integration
def test_a_call_penalty_baseline_is_recorded_with_the_stock_compilers_features(xxhash):
    spec = "heuristic:inline-call-penalty=100"
    raw = env.compile_module(xxhash, policies.parse(spec))
    best = _winner(xxhash, spec)
    stock = env.compile_module(
        xxhash, policies.ReplayPolicy(tuple(int(a) for a in raw.actions), then=policies.parse("heuristic"))
    )
    assert best.policy == spec and best.text_size == raw.text_size
    assert np.array_equal(best.actions, raw.actions)
    # The option changes what clang reports as the call's cost; the record holds what the stock compiler reports.
    assert not np.array_equal(raw.features["cost_estimate"], stock.features["cost_estimate"])
    for name, values in stock.features.items():
        assert np.array_equal(best.features[name], values), name


@pytest.mark.integration
def test_a_threshold_baseline_keeps_its_own_trajectory(xxhash):
    raw = env.compile_module(xxhash, policies.parse("heuristic:threshold=25"))
    best = _winner(xxhash, "heuristic:threshold=25")
    assert np.array_equal(best.actions, raw.actions)
    for name, values in raw.features.items():
        assert np.array_equal(best.features[name], values), name
