"""Specification of evolution strategies (`compiler_opt/es/`): the estimator and update, the flat numpy policy,
checkpoints, and a few real ES steps that checkpoint, resume, export and evaluate."""

import dataclasses
import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bench.testkit import trajectory_records
from compiler_opt.distributed import local
from compiler_opt.es import blackbox_optimizer, checkpoints, es_trainer_lib, flat_policy, rollouts
from compiler_opt.rl import corpus, env, evaluate_policy_lib, generate_vocab_lib, policies, protocol, saved_policy
from compiler_opt.rl.inlining import features as features_lib
from tests import export_policy_fixtures

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small real modules with a few inlining decisions each, and one without any.
_MODULES = ("zstd/compress/hist", "zstd/common/pool", "fasttext/utils", "brotli/common/constants")
_NO_DECISIONS = "brotli/common/constants"


def _layout(hidden_units=(3,), features=("callee_users", "cost_estimate")) -> flat_policy.PolicyLayout:
    quantiles = tuple(np.array([0, 1, 2, 5, 10], np.float32) for _ in features)
    normalization = features_lib.Normalization(tuple(features), quantiles, features_lib.FeatureConfig())
    widths = (normalization.output_width, *hidden_units, 2)
    rng = np.random.default_rng(0)
    params = saved_policy.FastPolicyParams(
        normalization=normalization,
        kernels=tuple(rng.normal(size=(a, b)).astype(np.float32) for a, b in zip(widths, widths[1:], strict=False)),
        biases=tuple(rng.normal(size=b).astype(np.float32) for b in widths[1:]),
        activation="relu",
    )
    return flat_policy.PolicyLayout.of(params)


# --- The estimator and the update ---


def test_centered_ranks_span_minus_half_to_half_and_ties_share_their_mean_rank():
    np.testing.assert_allclose(blackbox_optimizer.centered_ranks([3.0, -1.0, 10.0]), [0.0, -0.5, 0.5])
    np.testing.assert_allclose(blackbox_optimizer.centered_ranks([1.0, 2.0, 1.0, 5.0]), [-1 / 3, 1 / 6, -1 / 3, 0.5])
    np.testing.assert_array_equal(blackbox_optimizer.centered_ranks([0.2, 0.2, 0.2]), [0.0, 0.0, 0.0])


def test_z_scores_are_zero_when_all_rewards_are_equal():
    np.testing.assert_array_equal(blackbox_optimizer.z_scores([0.5, 0.5]), [0.0, 0.0])
    np.testing.assert_allclose(blackbox_optimizer.z_scores([1.0, 3.0]), [-1.0, 1.0])


@pytest.mark.parametrize("method", blackbox_optimizer.REWARD_NORMALIZATIONS)
def test_antithetic_estimate_points_along_the_gradient_of_a_linear_reward(method):
    rng = np.random.default_rng(0)
    w = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    directions = blackbox_optimizer.antithetic_directions(rng, 500, w.size)
    sigma = 0.1
    theta = np.ones(w.size)
    rewards = np.concatenate([(theta + sigma * directions) @ w, (theta - sigma * directions) @ w])
    g = blackbox_optimizer.gradient(directions, rewards, sigma, method)
    assert g @ w / (np.linalg.norm(g) * np.linalg.norm(w)) > 0.95


def test_equal_rewards_give_no_gradient_and_no_adam_step():
    directions = np.ones((2, 3))
    g = blackbox_optimizer.gradient(directions, np.zeros(4), 0.1, "centered_ranks")
    np.testing.assert_array_equal(g, np.zeros(3))
    theta, _ = blackbox_optimizer.ascend(np.ones(3), g, blackbox_optimizer.OptimizerState.initial(3), "adam", 0.1)
    np.testing.assert_array_equal(theta, np.ones(3))


def test_adam_ascent_matches_keras_adam_descent_on_the_negated_gradient():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    grads = rng.normal(size=(5, 4))
    variable = tf.Variable(np.zeros(4))
    keras_adam = tf.keras.optimizers.Adam(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    theta, state = np.zeros(4), blackbox_optimizer.OptimizerState.initial(4)
    for g in grads:
        keras_adam.apply_gradients([(tf.constant(-g), variable)])
        theta, state = blackbox_optimizer.ascend(theta, g, state, "adam", 0.01)
    np.testing.assert_allclose(theta, variable.numpy(), rtol=1e-5, atol=1e-9)
    assert state.steps == 5


def test_es_climbs_a_smooth_objective():
    rng = np.random.default_rng(0)
    optimum = rng.normal(size=20)
    theta, state = np.zeros(20), blackbox_optimizer.OptimizerState.initial(20)
    for _ in range(300):
        directions = blackbox_optimizer.antithetic_directions(rng, 8, 20)
        candidates = np.concatenate([theta + 0.1 * directions, theta - 0.1 * directions])
        rewards = -np.sum((candidates - optimum) ** 2, axis=1)
        g = blackbox_optimizer.gradient(directions, rewards, 0.1, "centered_ranks")
        theta, state = blackbox_optimizer.ascend(theta, g, state, "adam", 0.05)
    assert np.linalg.norm(theta - optimum) < 0.25 * np.linalg.norm(optimum)


def test_a_perturbations_reward_is_the_mean_relative_size_saving_and_failures_count_as_failure_reward():
    results = [
        rollouts.RolloutResult(perturbation=0, slot=0, status=env.OK, text_size=90, horizon=3, seconds=0.1),
        rollouts.RolloutResult(perturbation=0, slot=1, status=env.OK, text_size=220, horizon=3, seconds=0.1),
        rollouts.RolloutResult(perturbation=1, slot=0, status=env.OK, text_size=100, horizon=3, seconds=0.1),
        rollouts.RolloutResult(perturbation=1, slot=1, status=env.TIMEOUT, text_size=None, horizon=0, seconds=9.0),
    ]
    rewards = es_trainer_lib.perturbation_rewards(results, [100, 200], 2, failure_reward=-1.0)
    np.testing.assert_allclose(rewards, [(0.1 - 0.1) / 2, (0.0 - 1.0) / 2])


# --- The flat policy ---


def test_flattening_round_trips_every_layer():
    layout = _layout(hidden_units=(3, 4))
    theta = np.arange(layout.size, dtype=np.float64)
    params = layout.unflatten(theta)
    assert [k.shape for k in params.kernels] == [(6, 3), (3, 4), (4, 2)]
    assert [b.shape for b in params.biases] == [(3,), (4,), (2,)]
    np.testing.assert_array_equal(layout.flatten(params), theta)
    assert params.kernels[0][0, 1] == 1.0 and params.biases[0][0] == 18.0
    with pytest.raises(ValueError, match="expected"):
        layout.unflatten(theta[:-1])


def test_flat_policy_pickles_and_its_cache_id_names_its_parameters():
    layout = _layout()
    theta = np.linspace(-1, 1, layout.size)
    policy = flat_policy.FlatPolicy(layout, theta)
    copy = pickle.loads(pickle.dumps(policy))
    assert copy.cache_id == policy.cache_id == flat_policy.FlatPolicy(layout, theta.copy()).cache_id
    nudged = theta.copy()
    nudged[3] += 1e-3
    assert flat_policy.FlatPolicy(layout, nudged).cache_id != policy.cache_id
    other_layout = _layout(features=("callee_users", "callsite_height"))
    assert flat_policy.FlatPolicy(other_layout, theta).cache_id != policy.cache_id


def test_flat_policy_decides_as_the_numpy_sidecar_path_from_the_compilers_feature_vector():
    layout = _layout()
    theta = np.random.default_rng(3).normal(size=layout.size)
    policy = flat_policy.FlatPolicy(layout, theta)
    names = ("cost_estimate", "inlining_default", "callee_users")
    header = protocol.Header(
        features=tuple(protocol.TensorSpec(n, "<i8", (1,)) for n in names), advice=protocol.TensorSpec("a", "<i8", (1,))
    )
    decide = policy.new_episode(header)
    reference = saved_policy.SavedPolicy.from_params("ref", policy.params())
    rows = np.random.default_rng(4).integers(0, 12, size=(50, 3))
    for i, row in enumerate(rows):
        obs = protocol.Observation(header, i, row.astype("<i8").tobytes())
        expected = reference.action({"cost_estimate": row[:1], "callee_users": row[2:]})
        assert decide(obs) == expected


def test_a_policy_reading_features_the_compiler_does_not_send_is_a_feature_mismatch():
    policy = flat_policy.FlatPolicy(_layout(), np.zeros(_layout().size))
    header = protocol.Header(
        features=(protocol.TensorSpec("callee_users", "<i8", (1,)),), advice=protocol.TensorSpec("a", "<i8", (1,))
    )
    with pytest.raises(env.FeatureMismatchError, match="cost_estimate"):
        policy.new_episode(header)


# --- Checkpoints ---


def _stats(step):
    return checkpoints.StepStats(step, 0.1, 0.2, 0.0, 1.0, 0.5, 8, 0, 1.5, ("a", "b"))


def test_checkpoints_round_trip_and_keep_the_newest(tmp_path):
    directory = str(tmp_path / "ckpt")
    for step in (1, 2, 3):
        state = blackbox_optimizer.OptimizerState(step, np.full(4, step * 0.5), np.full(4, step * 0.25))
        history = tuple(_stats(s) for s in range(1, step + 1))
        checkpoints.Checkpoint(step, np.arange(4.0) * step, state, history).save(directory, max_to_keep=2)
    assert checkpoints.list_steps(directory) == [2, 3]
    latest = checkpoints.Checkpoint.latest(directory)
    assert latest.step == 3 and latest.history == tuple(_stats(s) for s in (1, 2, 3))
    np.testing.assert_array_equal(latest.theta, np.arange(4.0) * 3)
    assert latest.optimizer.steps == 3 and latest.optimizer.m[0] == 1.5 and latest.optimizer.v[0] == 0.75


def test_a_damaged_checkpoint_is_reported_with_its_path(tmp_path):
    path = tmp_path / "ckpt-00000001.npz"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="ckpt-00000001.npz is not a readable ES checkpoint"):
        checkpoints.Checkpoint.latest(str(tmp_path))


# --- Real ES steps ---


@pytest.fixture(scope="module")
def small_modules(default_corpus):
    return list(corpus.Corpus.load(default_corpus).select(_MODULES))


@pytest.fixture(scope="module")
def executor():
    with local.LocalExecutor(2) as pool:
        yield pool


@pytest.fixture(scope="module")
def warm_start(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("rule_policy"))
    export_policy_fixtures.write_rule_policy(root)
    return root


# Large perturbations of the small rule policy, so that perturbed policies decide differently.
_CONFIG = es_trainer_lib.ESConfig(
    num_steps=2, perturbation_pairs=2, modules_per_step=2, sigma=1.0, learning_rate=0.05, max_checkpoints=2
)


@pytest.mark.integration
def test_es_steps_checkpoint_resume_as_if_uninterrupted_and_export_a_policy_that_evaluates(
    small_modules, executor, warm_start, tmp_path
):
    resumed_dir, straight_dir = str(tmp_path / "resumed"), str(tmp_path / "straight")
    first = es_trainer_lib.train(
        small_modules, resumed_dir, executor, warm_start=warm_start, config=_CONFIG, progress=False
    )
    assert first.steps == 2 and checkpoints.list_steps(os.path.join(resumed_dir, "checkpoints")) == [1, 2]
    assert first.left_out_modules == (_NO_DECISIONS,) and first.failures == 0
    assert all(s.compiles == 2 * 2 * 2 for s in first.history)

    config3 = dataclasses.replace(_CONFIG, num_steps=3)
    resumed = es_trainer_lib.train(small_modules, resumed_dir, executor, config=config3, progress=False)
    assert resumed.history[:2] == first.history and resumed.steps == 3
    straight = es_trainer_lib.train(
        small_modules, straight_dir, executor, warm_start=warm_start, config=config3, progress=False
    )
    assert [s.mean_reward for s in straight.history] == [s.mean_reward for s in resumed.history]
    theta = checkpoints.Checkpoint.latest(os.path.join(resumed_dir, "checkpoints")).theta
    np.testing.assert_array_equal(theta, checkpoints.Checkpoint.latest(os.path.join(straight_dir, "checkpoints")).theta)
    initial = es_trainer_lib.warm_start_params(warm_start)
    layout = flat_policy.PolicyLayout.of(initial)
    assert np.linalg.norm(theta - layout.flatten(initial)) > 0, "ES never moved: every perturbation tied"

    exported = saved_policy.FastPolicyParams.load(os.path.join(resumed.saved_policy_dir, "fast_policy.npz"))
    np.testing.assert_array_equal(layout.flatten(exported), layout.flatten(layout.unflatten(theta)))
    evaluations, summary = evaluate_policy_lib.evaluate(
        small_modules, policies.parse("saved:" + resumed_dir), executor, progress=False
    )
    assert summary.evaluated == len(small_modules) and summary.failures == 0
    flat = flat_policy.FlatPolicy(layout, theta)
    for e in evaluations:
        module = next(m for m in small_modules if m.name == e.module)
        assert e.policy_size == env.compile_module(module, flat).text_size, e.module


@pytest.mark.integration
def test_rerunning_a_finished_run_keeps_its_results(small_modules, executor, warm_start, tmp_path):
    root = str(tmp_path / "es")
    config = dataclasses.replace(_CONFIG, num_steps=1)
    first = es_trainer_lib.train(small_modules, root, executor, warm_start=warm_start, config=config, progress=False)
    mtime = os.stat(os.path.join(first.saved_policy_dir, "saved_model.pb")).st_mtime_ns
    again = es_trainer_lib.train(small_modules, root, executor, config=config, progress=False)
    assert again.history == first.history
    assert os.stat(os.path.join(first.saved_policy_dir, "saved_model.pb")).st_mtime_ns == mtime


def test_a_warm_start_without_its_sidecar_is_refused(warm_start, tmp_path):
    copy = str(tmp_path / "bc")
    shutil.copytree(warm_start, copy)
    os.unlink(os.path.join(copy, "saved_policy", saved_policy.FAST_POLICY_FILENAME))
    with pytest.raises(es_trainer_lib.InitialPolicyError, match="fast_policy.npz"):
        es_trainer_lib.warm_start_params(copy)


def test_a_run_refuses_a_root_dir_started_from_another_policy(warm_start, tmp_path):
    params = es_trainer_lib.warm_start_params(warm_start)
    other = dataclasses.replace(params, biases=(*params.biases[:-1], params.biases[-1] + 1.0))
    root = tmp_path / "es"
    root.mkdir()
    other.save(str(root / es_trainer_lib.INITIAL_POLICY_FILE))
    with pytest.raises(es_trainer_lib.InitialPolicyError, match="another policy"):
        es_trainer_lib.train([], str(root), executor=None, warm_start=warm_start, config=_CONFIG, progress=False)


@pytest.mark.integration
def test_cli_trains_from_scratch_over_a_vocab_and_prints_its_summary(default_corpus, tmp_path):
    vocab_dir = tmp_path / "vocab"
    vocab_dir.mkdir()
    samples = trajectory_records.clang_like_features(np.random.default_rng(0), 2000)
    for name, values in samples.items():
        features_lib.write_buckets(
            features_lib.buckets_path(str(vocab_dir), name), generate_vocab_lib.quantiles(values, 100)
        )
    root = tmp_path / "es"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler_opt.es.es_trainer",
            f"--data_path={default_corpus}",
            f"--root_dir={root}",
            f"--vocab_dir={vocab_dir}",
            "--split=all",
            "--max_modules=3",
            "--num_steps=1",
            "--num_workers=2",
            "--progress=false",
            "--gin_files=gin_configs/es.gin",
            "--gin_bindings=es.ESConfig.perturbation_pairs=1",
            "--gin_bindings=es.ESConfig.modules_per_step=2",
            "--gin_bindings=es.ESConfig.hidden_units=(8,)",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=_REPO,
    )
    summary = json.loads(run.stdout[run.stdout.index("{") :])
    assert summary["steps"] == 1 and summary["parameters"] == (38 * 3) * 8 + 8 + 8 * 2 + 2
    assert os.path.isfile(os.path.join(summary["saved_policy_dir"], "saved_model.pb"))
    policies.parse("saved:" + str(root))
