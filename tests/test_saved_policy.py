"""Specification of per-decision policy evaluation (`compiler_opt/rl/saved_policy.py`): the numpy fast path gives
the SavedModel's decisions and probabilities, and bad policies fail at load time with clear errors."""

import dataclasses
import math
import os
import shutil
import tempfile

import numpy as np
import pytest

from bench.testkit import trajectory_records
from compiler_opt.rl import generate_vocab_lib, policy_saver, saved_policy
from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib
from compiler_opt.rl.inlining import features as features_lib
from tests.gin_test_base import GinTestCase

_POLICY_FEATURES = tuple(sorted(set(trajectory_records.CLANG22_FEATURES) - {"inlining_default"}))


def _build_network(root, samples, hidden_units):
    """A network over `samples`' features (but inlining_default) with random weights and a vocab from `samples`."""
    vocab_dir = os.path.join(root, "vocab")
    os.makedirs(vocab_dir, exist_ok=True)
    names = tuple(sorted(set(samples) - {"inlining_default"}))
    for name in names:
        features_lib.write_buckets(
            features_lib.buckets_path(vocab_dir, name), generate_vocab_lib.quantiles(samples[name], 1000)
        )
    config = trainer_lib.TrainerConfig(hidden_units=hidden_units, seed=1)
    return trainer_lib.build_network(names, vocab_dir, features_lib.FeatureConfig(), config)


def _export_random_policy(root, samples, scale=3.0, hidden_units=(32, 32), poison=False):
    """Exports a policy with random weights (scaled for decisive logits) and a vocab from `samples`."""
    names = tuple(sorted(set(samples) - {"inlining_default"}))
    network = _build_network(root, samples, hidden_units)
    for variable in network.trainable_variables:
        variable.assign(variable * scale + (0.1 if "bias" in variable.name else 0.0))
    # Center the logits on the samples so that about half of the decisions inline.
    logits = network.logits({n: samples[n] for n in names}).numpy()
    last_bias = network.trainable_variables[-1]
    last_bias.assign(last_bias.numpy() - np.array([0.0, np.median(logits[:, 1] - logits[:, 0])], np.float32))
    if poison:
        last_bias.assign(np.full(last_bias.shape, np.nan, np.float32))
    saved_dir, _ = policy_saver.export_policies(network, os.path.join(root, "model"))
    return saved_dir


def _export_constant_policy(root, samples, logit_difference):
    """Exports a policy over `samples`' features whose weights are all 0 but the output bias (0, logit_difference)."""
    network = _build_network(root, samples, hidden_units=(4,))
    for variable in network.trainable_variables:
        variable.assign(np.zeros(variable.shape, np.float32))
    network.trainable_variables[-1].assign(np.array([0.0, logit_difference], np.float32))
    saved_dir, _ = policy_saver.export_policies(network, os.path.join(root, "model"))
    return saved_dir


def _rows(features, names):
    return features_lib.stack_features(features, names)


def _assert_paths_agree(test, fast, slow, features):
    fast_actions = fast.action_batch(features)
    slow_actions = slow.action_batch(features)
    comparison = saved_policy.compare_decisions(fast_actions, slow_actions, fast.margin_batch(features))
    test.assertTrue(comparison.agree, comparison)
    test.assertLess(comparison.near_ties, comparison.decisions // 100 + 1)
    np.testing.assert_allclose(fast.prob_inline_batch(features), slow.prob_inline_batch(features), atol=1e-5)
    test.assertGreater(fast_actions.mean(), 0.05)
    test.assertLess(fast_actions.mean(), 0.95)


class SavedPolicyTest(GinTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._tmp = tempfile.TemporaryDirectory()
        cls.root = cls._tmp.name
        cls.samples = trajectory_records.clang_like_features(np.random.default_rng(0), 5000)
        cls.saved_dir = _export_random_policy(cls.root, cls.samples)
        cls.fast = saved_policy.SavedPolicy.load(cls.saved_dir)
        cls.slow = saved_policy.SavedPolicy.load(cls.saved_dir, allow_fast_path=False)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()
        super().tearDownClass()

    def _copy(self, name):
        target = os.path.join(self.root, name, "saved_policy")
        shutil.copytree(self.saved_dir, target)
        return target

    def test_exported_policy_has_the_fast_path(self):
        self.assertTrue(self.fast.uses_fast_path)
        self.assertFalse(self.slow.uses_fast_path)
        self.assertEqual(self.fast.feature_names, _POLICY_FEATURES)
        # The SavedModel path feeds every input of the `action` signature, which also accepts (and ignores)
        # `inlining_default`, as MLGO's policies do.
        self.assertEqual(self.slow.feature_names, tuple(sorted((*_POLICY_FEATURES, "inlining_default"))))

    def test_fast_and_saved_model_paths_agree_on_many_feature_vectors(self):
        rng = np.random.default_rng(1)
        features = trajectory_records.clang_like_features(rng, 300)
        # Values equal to quantiles, where a rank changes: the most sensitive inputs of the normalization.
        edges = {n: self.samples[n][rng.integers(0, 5000, 100)] for n in features}
        features = {n: np.concatenate([features[n], edges[n]]) for n in features}
        _assert_paths_agree(self, self.fast, self.slow, features)

    def test_decisions_ignore_extra_features_such_as_inlining_default(self):
        features = trajectory_records.clang_like_features(np.random.default_rng(2), 50)
        flipped = dict(features, inlining_default=1 - features["inlining_default"])
        np.testing.assert_array_equal(self.fast.action_batch(features), self.fast.action_batch(flipped))

    def test_one_decision_at_a_time_decides_as_the_saved_model(self):
        features = trajectory_records.clang_like_features(np.random.default_rng(3), 20)
        steps = [{n: v[t : t + 1] for n, v in features.items()} for t in range(20)]
        comparison = saved_policy.compare_decisions(
            [self.fast.action(step) for step in steps],
            [self.slow.action(step) for step in steps],
            self.fast.margin_batch(features),
        )
        self.assertTrue(comparison.agree, comparison)
        np.testing.assert_allclose(
            [self.fast.prob_inline(step) for step in steps], [self.slow.prob_inline(step) for step in steps], atol=1e-5
        )

    def test_trajectory_shaped_features_are_accepted(self):
        features = trajectory_records.clang_like_features(np.random.default_rng(4), 30)
        as_columns = {n: v.reshape(-1, 1) for n, v in features.items()}
        np.testing.assert_array_equal(self.fast.prob_inline_batch(as_columns), self.fast.prob_inline_batch(features))

    def test_a_module_without_decisions_gives_empty_results(self):
        empty = {n: np.zeros((0, 1), np.int64) for n in trajectory_records.CLANG22_FEATURES}
        self.assertEqual(self.fast.action_batch(empty).shape, (0,))
        self.assertEqual(self.fast.prob_inline_batch(empty).shape, (0,))

    def test_the_interactive_mode_decider_decides_as_the_saved_model(self):
        features = trajectory_records.clang_like_features(np.random.default_rng(5), 50)
        order = trajectory_records.CLANG22_FEATURES
        decide = self.fast.vector_decider(order)
        rows = _rows(features, order)
        comparison = saved_policy.compare_decisions(
            [decide(row) for row in rows], self.slow.action_batch(features), self.fast.margin_batch(features)
        )
        self.assertTrue(comparison.agree, comparison)

    def test_near_ties_are_the_only_allowed_disagreement(self):
        margins = np.array([5.0, -3.0, 1e-5, -2e-5, 0.5])
        agreeing = saved_policy.compare_decisions([1, 0, 1, 0, 1], [1, 0, 0, 1, 1], margins)
        self.assertEqual((agreeing.differing, agreeing.differing_outside_ties, agreeing.near_ties), (2, 0, 2))
        self.assertTrue(agreeing.agree)
        disagreeing = saved_policy.compare_decisions([1, 0, 1, 0, 1], [1, 0, 1, 0, 0], margins)
        self.assertFalse(disagreeing.agree)
        with self.assertRaisesRegex(ValueError, "differ in length"):
            saved_policy.compare_decisions([1, 0], [1], [0.0, 0.0])

    def test_a_policy_with_known_logits_gives_their_probability_and_decision_on_both_paths(self):
        # Every weight 0 and output biases (0, b): logit difference b everywhere, p(inline) = 1 / (1 + exp(-b)).
        # b = ln 3: p = 1 / (1 + 1/3) = 0.75, inline; b = -ln 3: p = 0.25, do not inline.
        features = trajectory_records.clang_like_features(np.random.default_rng(6), 40)
        for b, prob, action in ((math.log(3.0), 0.75, 1), (-math.log(3.0), 0.25, 0)):
            with tempfile.TemporaryDirectory() as root:
                path = _export_constant_policy(root, self.samples, b)
                for allow_fast_path in (True, False):
                    policy = saved_policy.SavedPolicy.load(path, allow_fast_path=allow_fast_path)
                    self.assertEqual(policy.uses_fast_path, allow_fast_path)
                    np.testing.assert_allclose(policy.prob_inline_batch(features), prob, atol=1e-6)
                    np.testing.assert_array_equal(policy.action_batch(features), action)

    def test_without_sidecar_the_saved_model_itself_is_used(self):
        path = self._copy("no_sidecar")
        os.remove(os.path.join(path, saved_policy.FAST_POLICY_FILENAME))
        policy = saved_policy.SavedPolicy.load(path)
        self.assertFalse(policy.uses_fast_path)
        features = trajectory_records.clang_like_features(np.random.default_rng(7), 10)
        np.testing.assert_array_equal(policy.action_batch(features), self.fast.action_batch(features))

    def test_sidecar_of_another_saved_model_is_not_trusted(self):
        path = self._copy("stale")
        sidecar = os.path.join(path, saved_policy.FAST_POLICY_FILENAME)
        params = saved_policy.FastPolicyParams.load(sidecar)
        dataclasses.replace(params, saved_model_sha256="0" * 64).save(sidecar)
        self.assertFalse(saved_policy.SavedPolicy.load(path).uses_fast_path)

    def test_loading_from_the_policy_root_finds_saved_policy(self):
        policy = saved_policy.SavedPolicy.load(os.path.dirname(self.saved_dir))
        self.assertEqual(policy.path, self.saved_dir)

    def test_features_the_compiler_does_not_send_are_named_at_load(self):
        sent = set(trajectory_records.CLANG22_FEATURES) - {"cost_estimate", "switch_default_dest_penalty"}
        for allow_fast_path in (True, False):
            with self.assertRaisesRegex(
                saved_policy.PolicyFeatureError, r"\['cost_estimate', 'switch_default_dest_penalty'\]"
            ):
                saved_policy.SavedPolicy.load(self.saved_dir, available_features=sent, allow_fast_path=allow_fast_path)

    def test_a_directory_without_a_saved_model_is_a_clear_error(self):
        with self.assertRaisesRegex(saved_policy.PolicyLoadError, "no saved_model.pb"):
            saved_policy.SavedPolicy.load(os.path.join(self.root, "vocab"))

    def test_nan_outputs_fail_at_load_on_both_paths(self):
        with tempfile.TemporaryDirectory() as root:
            samples = {n: self.samples[n] for n in ("cost_estimate", "threshold")}
            path = _export_random_policy(root, samples, hidden_units=(4,), poison=True)
            for allow_fast_path in (True, False):
                with self.assertRaisesRegex(saved_policy.PolicyLoadError, "outputs NaN"):
                    saved_policy.SavedPolicy.load(path, allow_fast_path=allow_fast_path)


@pytest.mark.integration
def test_fast_and_saved_model_paths_agree_on_real_feature_vectors(default_corpus, tmp_path):
    from compiler_opt.rl import corpus, env, policies

    modules = sorted(corpus.Corpus.load(default_corpus), key=lambda m: m.size_bytes)
    columns: dict[str, list[np.ndarray]] = {}
    for module in modules[len(modules) // 3 :: 8][:6]:
        result = env.compile_module(module, policies.parse("heuristic"))
        assert result.ok, result.error
        for name, values in result.features.items():
            columns.setdefault(name, []).append(values.reshape(-1))
    features = {name: np.concatenate(parts) for name, parts in columns.items()}
    assert len(features["cost_estimate"]) >= 300
    saved_dir = _export_random_policy(str(tmp_path), features, scale=1.0)
    fast = saved_policy.SavedPolicy.load(saved_dir, available_features=features)
    slow = saved_policy.SavedPolicy.load(saved_dir, available_features=features, allow_fast_path=False)
    assert fast.uses_fast_path and not slow.uses_fast_path
    sample = {name: values[:1000] for name, values in features.items()}
    comparison = saved_policy.compare_decisions(
        fast.action_batch(sample), slow.action_batch(sample), fast.margin_batch(sample)
    )
    assert comparison.agree, comparison
    np.testing.assert_allclose(fast.prob_inline_batch(sample), slow.prob_inline_batch(sample), atol=1e-5)
