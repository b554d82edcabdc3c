"""Specification of weighted behaviour cloning (`compiler_opt/rl/imitation_learning/weighted_bc_trainer*.py`), its
input pipeline, size-bucket weights, feature normalization and MLGO policy export, on small hand-built records."""

import json
import math
import os
import subprocess
import sys
import tempfile

import gin
import numpy as np
import pytest
import tensorflow as tf

from bench.testkit import trajectory_records
from compiler_opt.rl import generate_vocab_lib, saved_policy
from compiler_opt.rl.imitation_learning import profiles, training_weights, trajectory_dataset
from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib
from compiler_opt.rl.inlining import features as features_lib
from tests.gin_test_base import GinTestCase

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_POLICY_FEATURES = ("callee_users", "callsite_height", "cost_estimate", "threshold")


def _small_config(**overrides):
    settings = dict(batch_size=128, num_steps=300, summary_interval=100, checkpoint_interval=100, hidden_units=(32, 32))
    settings.update(overrides)
    return trainer_lib.TrainerConfig(**settings)


def _profile(module, sizes, label):
    results = {
        name: profiles.PolicyOutcome(size=size, text_section_size=size, horizon=1, seconds=0.1, status="ok")
        for name, size in sizes.items()
    }
    best = min((s, n) for n, s in sizes.items() if s is not None)
    return profiles.ModuleProfile(
        module=module, results=results, best=best[1], best_size=best[0], oz_size=sizes.get("heuristic"), label=label
    )


class TrainedPolicyTest(GinTestCase):
    """One training run on heuristic-played modules, shared by the tests that inspect its outputs."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        gin.clear_config()
        cls._tmp = tempfile.TemporaryDirectory()
        cls.dir = cls._tmp.name
        cls.files = trajectory_records.write_heuristic_shards(os.path.join(cls.dir, "data"), modules_per_shard=10)
        cls.vocab = os.path.join(cls.dir, "vocab")
        generate_vocab_lib.generate_vocab(cls.files, cls.vocab)
        cls.result = trainer_lib.train(cls.files, cls.vocab, os.path.join(cls.dir, "model"), config=_small_config())

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()
        super().tearDownClass()

    def test_exported_policy_repeats_the_heuristic_on_its_training_data(self):
        self.assertGreaterEqual(trainer_lib.greedy_agreement(self.result.saved_policy_dir, self.files), 0.9)

    def test_saved_policy_signature_is_mlgos(self):
        for policy_dir in (self.result.saved_policy_dir, self.result.collect_policy_dir):
            action = tf.saved_model.load(policy_dir).signatures["action"]
            inputs = action.structured_input_signature[1]
            expected = {"step_type": tf.int32, "reward": tf.float32, "discount": tf.float32}
            # `inlining_default` is accepted but not read, as by MLGO's policies.
            expected.update({name: tf.int64 for name in (*_POLICY_FEATURES, "inlining_default")})
            self.assertEqual({name: spec.dtype for name, spec in inputs.items()}, expected)
            self.assertTrue(all(spec.shape == [1] for spec in inputs.values()))
            self.assertEqual(list(action.structured_outputs), ["inlining_decision"])
            self.assertEqual(action.structured_outputs["inlining_decision"].dtype, tf.int64)
            self.assertEqual(action.structured_outputs["inlining_decision"].shape, [1])

    def test_output_spec_json_names_inlining_decision_as_int64(self):
        for policy_dir in (self.result.saved_policy_dir, self.result.collect_policy_dir):
            with open(os.path.join(policy_dir, "output_spec.json")) as f:
                spec = json.load(f)
            self.assertEqual(len(spec), 1)
            self.assertEqual(spec[0]["logging_name"], "inlining_decision")
            self.assertEqual(spec[0]["tensor_spec"]["type"], "int64_t")
            self.assertEqual(spec[0]["tensor_spec"]["shape"], [1])

    def test_greedy_policy_takes_raw_int64_features(self):
        action = tf.saved_model.load(self.result.saved_policy_dir).signatures["action"]
        feeds = {name: tf.constant([5], tf.int64) for name in (*_POLICY_FEATURES, "inlining_default")}
        step = {"step_type": tf.constant([0]), "reward": tf.constant([0.0]), "discount": tf.constant([1.0])}
        decisions = {}
        for cost in (-25, 1000):
            feeds["cost_estimate"] = tf.constant([cost], tf.int64)
            decisions[cost] = int(action(**step, **feeds)["inlining_decision"].numpy()[0])
        self.assertEqual(decisions, {-25: 1, 1000: 0})

    def test_normalization_inside_the_saved_model_equals_the_trainers(self):
        vocab = features_lib.read_vocab(self.vocab, _POLICY_FEATURES)
        normalization = features_lib.Normalization.from_vocab(vocab, _POLICY_FEATURES, features_lib.FeatureConfig())
        rng = np.random.default_rng(5)
        raw = {name: rng.integers(-100, 5000, size=64) for name in _POLICY_FEATURES}
        raw["cost_estimate"][:10] = vocab["cost_estimate"][::100].astype(np.int64)  # on the quantiles themselves
        expected = normalization.keras_layer()({k: tf.constant(v) for k, v in raw.items()}).numpy()
        for policy_dir in (self.result.saved_policy_dir, self.result.collect_policy_dir):
            loaded = tf.saved_model.load(policy_dir)
            inside = loaded.normalize_observation({k: tf.constant(v) for k, v in raw.items()}).numpy()
            np.testing.assert_array_equal(inside, expected)

    def test_policy_does_not_read_inlining_default_by_default(self):
        self.assertNotIn("inlining_default", self.result.feature_names)
        self.assertEqual(self.result.feature_names, _POLICY_FEATURES)

    def test_tensorboard_summaries_hold_loss_accuracy_weighted_accuracy_and_auc(self):
        tags = set()
        train_dir = os.path.join(self.result.root_dir, "train")
        for name in os.listdir(train_dir):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(train_dir, name)):
                tags.update(v.tag for v in event.summary.value)
        self.assertLessEqual({"loss", "accuracy", "weighted_accuracy", "auc"}, tags)

    def test_training_summary_json_records_steps_and_features(self):
        with open(os.path.join(self.result.root_dir, "training_summary.json")) as f:
            summary = json.load(f)
        self.assertEqual(summary["steps"], 300)
        self.assertEqual(tuple(summary["feature_names"]), _POLICY_FEATURES)
        self.assertGreater(summary["metrics"]["accuracy"], 0.9)


class TrainingRunTest(GinTestCase):
    def setUp(self):
        super().setUp()
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.dir = self._tmp.name

    def _data(self, **kwargs):
        files = trajectory_records.write_heuristic_shards(os.path.join(self.dir, "data"), **kwargs)
        vocab = os.path.join(self.dir, "vocab")
        generate_vocab_lib.generate_vocab(files, vocab, generate_vocab_lib.VocabConfig(num_buckets=100))
        return files, vocab

    def test_rerun_resumes_from_the_latest_checkpoint(self):
        files, vocab = self._data(shards=1, modules_per_shard=4)
        root = os.path.join(self.dir, "model")
        first = trainer_lib.train(files, vocab, root, config=_small_config(num_steps=20, checkpoint_interval=10))
        kernels = saved_policy.FastPolicyParams.load(os.path.join(first.saved_policy_dir, "fast_policy.npz")).kernels
        again = trainer_lib.train(files, vocab, root, config=_small_config(num_steps=20))
        self.assertEqual(again.steps, 20)
        kernels_again = saved_policy.FastPolicyParams.load(
            os.path.join(again.saved_policy_dir, "fast_policy.npz")
        ).kernels
        for k, k_again in zip(kernels, kernels_again, strict=True):
            np.testing.assert_array_equal(k, k_again)
        more = trainer_lib.train(files, vocab, root, config=_small_config(num_steps=30))
        self.assertEqual(more.steps, 30)
        reader = tf.train.load_checkpoint(os.path.join(root, "checkpoints"))
        self.assertEqual(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"), 30)
        self.assertEqual(reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"), 30)

    def test_two_runs_with_the_same_seed_export_the_same_weights(self):
        # Many small records parsed two at a time: a pipeline that lets parallel maps reorder them trains on another
        # sequence of batches in each run, with or without the in-memory cache.
        files, vocab = self._data(shards=8, modules_per_shard=16)
        for cache in (True, False):
            config = _small_config(num_steps=200, records_per_parse=2, cache_decisions=cache, hidden_units=(16,))
            kernels = [
                saved_policy.FastPolicyParams.load(
                    os.path.join(
                        trainer_lib.train(
                            files, vocab, os.path.join(self.dir, f"{cache}{run}"), config=config
                        ).saved_policy_dir,
                        "fast_policy.npz",
                    )
                ).kernels
                for run in range(2)
            ]
            for first, second in zip(*kernels, strict=True):
                np.testing.assert_array_equal(first, second, err_msg=f"cache_decisions={cache}")

    def test_a_run_first_removes_what_a_killed_run_was_writing(self):
        files, vocab = self._data(shards=1, modules_per_shard=2)
        root = os.path.join(self.dir, "model")
        dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)
        planted_dirs = [
            f".tmp-{dead}-0a1b2c3d-saved_policy",  # an export being staged
            ".collect_policy.tmp-x1y2z3",  # the same, by an older version
            os.path.join("checkpoints", "ckpt-5_temp"),  # TF saving a checkpoint
        ]
        for name in planted_dirs:
            os.makedirs(os.path.join(root, name))
            with open(os.path.join(root, name, "part"), "w") as f:
                f.write("half")
        with open(os.path.join(root, f"training_summary.json.tmp-{dead}"), "w") as f:
            f.write("{")

        trainer_lib.train(files, vocab, root, config=_small_config(num_steps=5, checkpoint_interval=5))

        everything = [os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files]
        self.assertEqual([p for p in everything if "tmp" in os.path.basename(p) or p.endswith("_temp")], [])
        self.assertTrue(os.path.isfile(os.path.join(root, "training_summary.json")))
        saved_policy.SavedPolicy.load(os.path.join(root, "saved_policy"))

    def test_weight_averaging_exports_the_checkpointed_average_and_resumes_it(self):
        files, vocab = self._data(shards=1, modules_per_shard=4)
        plain = trainer_lib.train(
            files, vocab, os.path.join(self.dir, "plain"), config=_small_config(num_steps=40, checkpoint_interval=20)
        )
        root = os.path.join(self.dir, "averaged")
        config = _small_config(num_steps=40, checkpoint_interval=20, weight_averaging=0.9)
        averaged = trainer_lib.train(files, vocab, root, config=config)

        def kernels(result):
            return saved_policy.FastPolicyParams.load(os.path.join(result.saved_policy_dir, "fast_policy.npz")).kernels

        reader = tf.train.load_checkpoint(os.path.join(root, "checkpoints"))
        checkpointed = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if "averaged" in k}
        self.assertEqual(len(checkpointed), 2 * len(kernels(averaged)))  # a kernel and a bias per Dense layer
        for kernel in kernels(averaged):
            self.assertTrue(any(np.array_equal(kernel, v) for v in checkpointed.values()))
        # Same seed, same batches: only the averaging differs.
        for k_plain, k_averaged in zip(kernels(plain), kernels(averaged), strict=True):
            self.assertFalse(np.allclose(k_plain, k_averaged))
        again = trainer_lib.train(files, vocab, root, config=config)
        for k, k_again in zip(kernels(averaged), kernels(again), strict=True):
            np.testing.assert_array_equal(k, k_again)

    def test_weight_averaging_decay_outside_0_1_is_a_clear_error(self):
        files, vocab = self._data(shards=1, modules_per_shard=2)
        with self.assertRaisesRegex(ValueError, "weight_averaging must be in"):
            trainer_lib.train(files, vocab, os.path.join(self.dir, "m"), config=_small_config(weight_averaging=1.0))

    def test_decision_bias_moves_the_exported_policy_toward_inlining_and_keeps_the_trained_checkpoint(self):
        files, vocab = self._data(shards=1, modules_per_shard=4)
        rng = np.random.default_rng(1)
        steps, _ = trajectory_records.heuristic_module(rng, 300)
        inline_rate = {}
        for bias in (-30.0, 0.0, 30.0):
            root = os.path.join(self.dir, f"bias{bias}")
            result = trainer_lib.train(files, vocab, root, config=_small_config(num_steps=60, decision_bias=bias))
            inline_rate[bias] = saved_policy.SavedPolicy.load(result.saved_policy_dir).action_batch(steps).mean()
            if bias:
                # A rerun exports from the checkpoint again: the bias is added once, not twice.
                def output_bias(r):
                    npz = os.path.join(r.saved_policy_dir, "fast_policy.npz")
                    return saved_policy.FastPolicyParams.load(npz).biases[-1]

                first = output_bias(result)
                again = trainer_lib.train(files, vocab, root, config=_small_config(num_steps=60, decision_bias=bias))
                np.testing.assert_array_equal(output_bias(again), first)
        self.assertEqual(inline_rate[-30.0], 0.0)
        self.assertEqual(inline_rate[30.0], 1.0)
        self.assertTrue(0.0 < inline_rate[0.0] < 1.0, inline_rate)

    def test_an_ensemble_policy_decides_by_the_mean_of_its_members_margins(self):
        files, vocab = self._data(shards=1, modules_per_shard=4)
        steps, _ = trajectory_records.heuristic_module(np.random.default_rng(2), 300)
        ensemble = trainer_lib.train(
            files,
            vocab,
            os.path.join(self.dir, "ensemble"),
            config=_small_config(num_steps=40, seed=5, ensemble_size=3),
        )
        members = [
            trainer_lib.train(
                files, vocab, os.path.join(self.dir, f"seed{seed}"), config=_small_config(num_steps=40, seed=seed)
            )
            for seed in (5, 6, 7)
        ]
        margins = [saved_policy.SavedPolicy.load(m.saved_policy_dir).margin_batch(steps) for m in members]
        ensemble_policy = saved_policy.SavedPolicy.load(ensemble.saved_policy_dir)
        np.testing.assert_allclose(ensemble_policy.margin_batch(steps), np.mean(margins, axis=0), atol=1e-4)
        # The members disagree somewhere, so the mean is not any one of them.
        self.assertGreater(np.max(np.abs(margins[0] - margins[1])), 1e-2)
        # Its SavedModel, not only the numpy path, is the ensemble.
        saved_model = saved_policy.SavedPolicy.load(ensemble.saved_policy_dir, allow_fast_path=False)
        first = {k: v[:20] for k, v in steps.items()}
        clear = np.abs(ensemble_policy.margin_batch(first)) > saved_policy.TIE_MARGIN
        np.testing.assert_array_equal(
            saved_model.action_batch(first)[clear], ensemble_policy.action_batch(first)[clear]
        )
        # Members 1 and 2 keep their own checkpoints beside member 0's.
        for i in (1, 2):
            self.assertTrue(os.path.isdir(os.path.join(self.dir, "ensemble", f"ensemble_member_{i}", "checkpoints")))

    def test_checkpoint_of_another_network_is_a_clear_error(self):
        files, vocab = self._data(shards=1, modules_per_shard=2)
        root = os.path.join(self.dir, "model")
        trainer_lib.train(files, vocab, root, config=_small_config(num_steps=5))
        with self.assertRaisesRegex(ValueError, "does not fit this network.*new root_dir"):
            trainer_lib.train(files, vocab, root, config=_small_config(num_steps=10, hidden_units=(8,)))

    def test_bucket_weights_decide_between_conflicting_labels(self):
        rng = np.random.default_rng(0)
        examples = []
        for label, decision in ((0, 0), (1, 1)):
            for m in range(4):
                steps, _ = trajectory_records.heuristic_module(rng, 50)
                actions = np.full(50, decision)
                examples.append(trajectory_records.sequence_example(f"m{label}{m}", steps, actions, 1000.0, label))
        files = [trajectory_records.write_records(os.path.join(self.dir, "data", "t.tfrecord"), examples)]
        vocab = os.path.join(self.dir, "vocab")
        generate_vocab_lib.generate_vocab(files, vocab, generate_vocab_lib.VocabConfig(num_buckets=50))
        learned = "saved:/policies/iteration_0"
        profiles_path = os.path.join(self.dir, "profiles.jsonl")
        profiles.write_jsonl(
            profiles_path,
            [
                _profile("small", {"heuristic": 100, learned: 100}, label=0),
                _profile("large", {"heuristic": 100_000, learned: 130_000}, label=1),
            ],
        )
        gin.parse_config(
            ["profiles.size_bucket.partitions = (1000,)", "training_weights.WeightingConfig.step_size = 10.0"]
        )
        result = trainer_lib.train(
            files,
            vocab,
            os.path.join(self.dir, "model"),
            profiles_path=profiles_path,
            config=_small_config(num_steps=150),
        )
        self.assertEqual(result.bucket_weights.weights[1], 1.0)
        self.assertLess(result.bucket_weights.weights[0], 0.5)
        policy = saved_policy.SavedPolicy.load(result.saved_policy_dir)
        steps, _ = trajectory_records.heuristic_module(rng, 200)
        self.assertGreater(policy.action_batch(steps).mean(), 0.9)

    def test_dropped_features_come_from_gin(self):
        files, vocab = self._data(shards=1, modules_per_shard=2)
        gin.parse_config("features.FeatureConfig.dropped_features = ('callsite_height',)")
        result = trainer_lib.train(files, vocab, os.path.join(self.dir, "model"), config=_small_config(num_steps=5))
        self.assertEqual(result.feature_names, ("callee_users", "cost_estimate", "inlining_default", "threshold"))
        inputs = tf.saved_model.load(result.saved_policy_dir).signatures["action"].structured_input_signature[1]
        self.assertIn("inlining_default", inputs)
        self.assertNotIn("callsite_height", inputs)

    def test_missing_vocab_file_is_a_clear_error(self):
        files, vocab = self._data(shards=1, modules_per_shard=2)
        os.remove(os.path.join(vocab, "threshold.buckets"))
        with self.assertRaisesRegex(features_lib.VocabError, r"no \.buckets file for \['threshold'\].*generate_vocab"):
            trainer_lib.train(files, vocab, os.path.join(self.dir, "model"), config=_small_config(num_steps=5))

    def test_binary_smoke(self):
        files, vocab = self._data(shards=1, modules_per_shard=2)
        root = os.path.join(self.dir, "model")
        # A gin file includes others by a name relative to its own directory, whatever the working directory.
        with open(os.path.join(self.dir, "steps.gin"), "w") as f:
            f.write("weighted_bc.TrainerConfig.num_steps = 5\n")
        with open(os.path.join(self.dir, "run.gin"), "w") as f:
            f.write("include 'steps.gin'\n")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "compiler_opt.rl.imitation_learning.weighted_bc_trainer",
                f"--trajectories={os.path.join(self.dir, 'data', '*.tfrecord')}",
                f"--vocab_dir={vocab}",
                f"--root_dir={root}",
                f"--gin_files={os.path.join(_REPO, 'gin_configs', 'weighted_bc_trainer.gin')}",
                f"--gin_files={os.path.join(self.dir, 'run.gin')}",
            ],
            cwd=_REPO,
            capture_output=True,
            text=True,
            timeout=180,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        for name in ("saved_model.pb", "output_spec.json", "fast_policy.npz"):
            self.assertTrue(os.path.isfile(os.path.join(root, "saved_policy", name)), name)
            self.assertTrue(os.path.isfile(os.path.join(root, "collect_policy", name)), name)
        with open(os.path.join(root, "training_summary.json")) as f:
            summary = json.load(f)
        self.assertEqual((summary["steps"], summary["trajectory_files"]), (5, len(files)))
        loaded = saved_policy.SavedPolicy.load(os.path.join(root, "saved_policy"))
        self.assertEqual(loaded.feature_names, _POLICY_FEATURES)


class InputPipelineTest(GinTestCase):
    def setUp(self):
        super().setUp()
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.dir = self._tmp.name

    def _write(self, modules):
        examples = [
            trajectory_records.sequence_example(
                f"m{i}", {"cost_estimate": np.asarray(c)}, np.asarray(c) % 2, 10.0, label
            )
            for i, (c, label) in enumerate(modules)
        ]
        return [trajectory_records.write_records(os.path.join(self.dir, "t.tfrecord"), examples)]

    def test_every_decision_of_every_record_becomes_one_example_with_its_buckets_weight(self):
        files = self._write([([1, 2, 3], 0), ([], 0), ([4, 5], 1)])
        dataset = trajectory_dataset.training_examples(
            files, ["cost_estimate"], [0.5, 1.0], batch_size=100, shuffle_buffer_size=1, repeat=False
        )
        (features, action, weight), *rest = list(dataset)
        self.assertEqual(rest, [])
        np.testing.assert_array_equal(features["cost_estimate"], [1, 2, 3, 4, 5])
        np.testing.assert_array_equal(action, [1, 0, 1, 0, 1])
        np.testing.assert_array_equal(weight, [0.5, 0.5, 0.5, 1.0, 1.0])

    def test_module_weights_multiply_each_decisions_bucket_weight(self):
        files = self._write([([1, 2, 3], 0), ([4, 5], 1)])
        dataset = trajectory_dataset.training_examples(
            files,
            ["cost_estimate"],
            [0.5, 1.0],
            batch_size=100,
            shuffle_buffer_size=1,
            repeat=False,
            module_weights={"m0": 4.0, "m1": 0.25},
        )
        (features, _, weight), *rest = list(dataset)
        self.assertEqual(rest, [])
        np.testing.assert_array_equal(features["cost_estimate"], [1, 2, 3, 4, 5])
        np.testing.assert_array_equal(weight, [2.0, 2.0, 2.0, 0.25, 0.25])

    def test_a_record_of_a_module_without_a_weight_fails_with_a_clear_error(self):
        files = self._write([([1, 2], 0), ([3], 0)])
        dataset = trajectory_dataset.training_examples(
            files,
            ["cost_estimate"],
            [1.0],
            batch_size=8,
            shuffle_buffer_size=1,
            repeat=False,
            module_weights={"m0": 1.0},
        )
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "no weight in module_weights"):
            list(dataset)

    def test_training_batches_are_full_and_repeat(self):
        files = self._write([([1, 2, 3], 0)])
        dataset = trajectory_dataset.training_examples(
            files, ["cost_estimate"], [1.0], batch_size=4, shuffle_buffer_size=10
        )
        batches = list(dataset.take(3))
        self.assertEqual([int(b[1].shape[0]) for b in batches], [4, 4, 4])

    def test_record_missing_a_feature_list_fails_with_a_clear_error(self):
        steps = {"cost_estimate": np.array([1, 2]), "threshold": np.array([5, 5])}
        broken = {"cost_estimate": np.array([1, 2])}
        examples = [
            trajectory_records.sequence_example("ok", steps, np.array([0, 1]), 10.0),
            trajectory_records.sequence_example("broken", broken, np.array([0, 1]), 10.0),
        ]
        files = [trajectory_records.write_records(os.path.join(self.dir, "t.tfrecord"), examples)]
        dataset = trajectory_dataset.training_examples(
            files, ["cost_estimate", "threshold"], [1.0], batch_size=8, shuffle_buffer_size=1, repeat=False
        )
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "lacks feature list `threshold`"):
            list(dataset)

    def test_label_outside_the_weighted_buckets_fails_with_a_clear_error(self):
        files = self._write([([1, 2], 3)])
        dataset = trajectory_dataset.training_examples(
            files, ["cost_estimate"], [0.5, 1.0], batch_size=2, shuffle_buffer_size=1, repeat=False
        )
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "profiles.size_bucket.partitions"):
            list(dataset)


class NormalizationTest(GinTestCase):
    def _normalization(self, **config):
        rng = np.random.default_rng(2)
        vocab = {
            "a": np.sort(np.round(rng.lognormal(2, 2, 1000))).astype(np.float32),
            "b": np.array([-5.0, 0.0, 0.0, 0.0, 7.5, 1e9], np.float32),
            "c": np.zeros(1000, np.float32),
        }
        return features_lib.Normalization.from_vocab(vocab, ["c", "a", "b"], features_lib.FeatureConfig(**config))

    def test_numpy_and_keras_normalizations_are_bit_identical(self):
        rng = np.random.default_rng(3)
        for config in ({}, {"with_sqrt": False}, {"with_z_score_normalization": True}):
            normalization = self._normalization(**config)
            values = np.concatenate(
                [
                    rng.integers(-1000, 10**6, size=(500, 3)),
                    np.stack([q[rng.integers(0, q.size, 200)] for q in normalization.quantiles], 1).astype(np.int64),
                    np.array([[0, 0, 0], [-1, -1, -1], [2**40, 2**40, 2**40], [-(2**40)] * 3]),
                ]
            )
            keras = normalization.keras_layer()(
                {n: tf.constant(values[:, i]) for i, n in enumerate(normalization.feature_names)}
            ).numpy()
            np.testing.assert_array_equal(normalization.numpy_fn()(values), keras)

    def test_rank_is_the_fraction_of_quantiles_at_or_below_the_value(self):
        normalization = self._normalization()
        self.assertEqual(normalization.feature_names, ("a", "b", "c"))
        out = normalization.numpy_fn()(np.array([[0, 0, 0], [0, 8, -1]]))
        b_columns = out[:, 3:6]
        np.testing.assert_allclose(b_columns[0], [4 / 6, (4 / 6) ** 2, math.sqrt(4 / 6)], rtol=1e-6)
        np.testing.assert_allclose(b_columns[1], [5 / 6, (5 / 6) ** 2, math.sqrt(5 / 6)], rtol=1e-6)
        np.testing.assert_array_equal(out[:, 6], [1.0, 0.0])

    def test_z_score_column_uses_the_quantiles_mean_and_std(self):
        normalization = self._normalization(with_sqrt=False, with_z_score_normalization=True)
        q = normalization.quantiles[1]
        out = normalization.numpy_fn()(np.array([[0, 100, 0]]))
        self.assertAlmostEqual(out[0, 5], (100 - q.astype(np.float64).mean()) / q.astype(np.float64).std(), places=5)

    def test_options_come_from_gin(self):
        gin.parse_config("features.FeatureConfig.with_z_score_normalization = True")
        self.assertEqual(features_lib.FeatureConfig().columns_per_feature, 4)


class TrainingWeightsTest(GinTestCase):
    learned = "saved:/p/iteration_0/saved_policy"

    def test_without_learned_policies_weights_are_uniform(self):
        module_profiles = [_profile("m", {"heuristic": 10, "heuristic:threshold=25": 12}, 0)]
        weights = training_weights.compute_bucket_weights(module_profiles, training_weights.WeightingConfig(), 3)
        self.assertEqual(weights.weights, (1.0, 1.0, 1.0))

    def test_one_round_of_exponentiated_gradient(self):
        module_profiles = [
            _profile("a", {"heuristic": 100, self.learned: 100}, 0),
            _profile("b", {"heuristic": 500, self.learned: 540}, 1),
            _profile("c", {"heuristic": 900, self.learned: 910}, 1),
        ]
        weights = training_weights.compute_bucket_weights(module_profiles, training_weights.WeightingConfig(), 3)
        # Bucket 1's regret is 50 bytes, the largest (normalized to 1); buckets 0 and 2 have none. By hand:
        # theta = (0, -1, 0); p = (1, 1/e, 1) / (2 + 1/e) = (0.422319, 0.155362, 0.422319);
        # P = (1/3 + p) / 2 = (0.377826, 0.244348, 0.377826); w = min(P) / P = (0.646721, 1, 0.646721).
        np.testing.assert_allclose(weights.probabilities, (0.377826, 0.244348, 0.377826), atol=2e-6)
        np.testing.assert_allclose(weights.weights, (0.646721, 1.0, 0.646721), atol=2e-6)
        self.assertEqual(weights.weights[1], 1.0)
        self.assertEqual(weights.bucket_regrets, ((0.0, 50.0, 0.0),))

    def test_each_learned_policy_is_one_round_in_order(self):
        second = "saved:/p/iteration_1/saved_policy"
        module_profiles = [
            _profile("a", {"heuristic": 100, self.learned: 150, second: 100}, 0),
            _profile("b", {"heuristic": 500, self.learned: 500, second: 520}, 1),
        ]
        weights = training_weights.compute_bucket_weights(module_profiles, training_weights.WeightingConfig(), 2)
        self.assertEqual(weights.policies, (self.learned, second))
        # By hand: round 1 (regret 50, 0): theta = (-1, 0), p1 = (1/e, 1) / (1 + 1/e) = (0.268941, 0.731059),
        # P = (1/2 + p1) / 2 = (0.384471, 0.615529); round 2 (regret 0, 20): theta = (-1, -1), p2 = (1/2, 1/2),
        # P = (2 P + p2) / 3 = (0.422980, 0.577020).
        np.testing.assert_allclose(weights.probabilities, (0.422980, 0.577020), atol=2e-6)
        self.assertEqual(weights.bucket_regrets, ((50.0, 0.0), (0.0, 20.0)))

    def test_learned_policies_are_taken_in_iteration_order_without_explorations(self):
        names = [f"saved:/root/iteration_{i}/model/saved_policy" for i in (10, 2, 1)]
        explorations = {f"{names[0]}+explore1": 90, "heuristic+explore2": 95}
        module_profiles = [_profile("a", {"heuristic": 100, **{n: 100 for n in names}, **explorations}, 0)]
        self.assertEqual(training_weights.learned_policies(module_profiles), names[::-1])

    def test_modules_missing_or_failed_for_a_policy_are_skipped(self):
        module_profiles = [
            _profile("a", {"heuristic": 100}, 0),
            _profile("b", {"heuristic": 500, self.learned: None}, 1),
            _profile("c", {"heuristic": 900, self.learned: 1000}, 1),
        ]
        weights = training_weights.compute_bucket_weights(module_profiles, training_weights.WeightingConfig(), 2)
        self.assertEqual(weights.bucket_regrets, ((0.0, 100.0),))

    def test_uniform_mode_ignores_regret(self):
        module_profiles = [_profile("b", {"heuristic": 500, self.learned: 900}, 1)]
        config = training_weights.WeightingConfig(mode="uniform")
        self.assertEqual(training_weights.compute_bucket_weights(module_profiles, config, 2).weights, (1.0, 1.0))

    def test_codebase_balance_gives_codebases_equal_shares_and_keeps_the_mean_weight(self):
        def recorded(module, horizon):
            outcome = profiles.PolicyOutcome(size=10, text_section_size=10, horizon=horizon, seconds=0.1, status="ok")
            return profiles.ModuleProfile(
                module=module,
                results={"heuristic": outcome},
                best="heuristic",
                best_size=10,
                oz_size=10,
                label=0,
                record=f"records/{module}.tfrecord",
            )

        # Codebase a: 100 decisions in two modules; b: 10; c: 1, below a tenth of an equal share (111 / 30 = 3.7).
        module_profiles = [recorded("a/x", 60), recorded("a/y", 40), recorded("b/x", 10), recorded("c/x", 1)]
        self.assertEqual(
            training_weights.codebase_balance_weights(module_profiles, 0.0), {m.module: 1.0 for m in module_profiles}
        )
        w = training_weights.codebase_balance_weights(module_profiles, 1.0)
        self.assertEqual(w["a/x"], w["a/y"])
        self.assertAlmostEqual(100 * w["a/x"], 10 * w["b/x"])  # equal shares
        self.assertAlmostEqual((100 * w["a/x"] + 10 * w["b/x"] + 1 * w["c/x"]) / 111, 1.0)  # mean factor 1
        # By hand: scale 111 / (1 + 1 + 1 / 3.7) = 48.893; c's factor is 48.893 / 3.7.
        self.assertAlmostEqual(w["b/x"], 4.8893, places=3)
        self.assertAlmostEqual(w["c/x"], 13.214, places=2)
        with self.assertRaisesRegex(ValueError, "power must be >= 0"):
            training_weights.codebase_balance_weights(module_profiles, -1.0)

    def test_codebase_balance_without_a_profiles_jsonl_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "codebase_balance.*profiles.jsonl"):
            trainer_lib.load_module_weights(None, 0.5)
        self.assertIsNone(trainer_lib.load_module_weights(None, 0.0))

    def test_label_out_of_range_names_the_module_and_the_fix(self):
        module_profiles = [_profile("big", {"heuristic": 500, self.learned: 900}, 7)]
        with self.assertRaisesRegex(ValueError, r"big.*profiles.size_bucket.partitions"):
            training_weights.compute_bucket_weights(module_profiles, training_weights.WeightingConfig(), 2)


@pytest.mark.integration
def test_policy_trained_on_real_trajectories_clones_the_heuristic_and_compiles_real_modules(default_corpus, tmp_path):
    from compiler_opt.distributed import local
    from compiler_opt.rl import corpus, env, policies
    from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection

    modules = sorted(corpus.Corpus.load(default_corpus), key=lambda m: m.size_bytes)
    modules = modules[len(modules) // 4 : len(modules) // 4 + 8]
    out = str(tmp_path / "collected")
    with local.LocalExecutor(2) as executor:
        collection.collect(
            modules, policies.parse_all(["heuristic"]), out, executor, max_exploration_steps=0, progress=False
        )
    records = os.path.join(out, collection.RECORDS_DIR, "*.tfrecord")
    vocab = str(tmp_path / "vocab")
    generate_vocab_lib.generate_vocab([records], vocab)
    result = trainer_lib.train(
        [records],
        vocab,
        str(tmp_path / "model"),
        profiles_path=os.path.join(out, collection.PROFILES_FILE),
        config=_small_config(num_steps=400, hidden_units=(64, 64)),
    )
    files = trajectory_dataset.list_trajectory_files([records])
    agreement = trainer_lib.greedy_agreement(result.saved_policy_dir, files)
    assert agreement >= 0.9, agreement

    learned = policies.parse("saved:" + result.saved_policy_dir)
    for module in modules[:4]:
        played = env.compile_module(module, learned)
        assert played.ok, played.error
        policy = saved_policy.SavedPolicy.load(result.saved_policy_dir)
        np.testing.assert_array_equal(played.actions, policy.action_batch(played.features))
