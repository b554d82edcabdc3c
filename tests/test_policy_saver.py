"""Specification of the export module (`compiler_opt/rl/policy_saver.py`): what a saved policy directory holds and
that each of its forms (SavedModel signature, the graph tensor named by output_spec.json, model.tflite, the numpy
sidecar) makes the same decisions."""

import json
import logging as std_logging
import os
import tempfile

import numpy as np
import tensorflow as tf
from absl import logging as absl_logging

from compiler_opt.rl import policy_saver, saved_policy
from compiler_opt.rl.imitation_learning import policy_network
from compiler_opt.rl.inlining import features as features_lib
from tests.gin_test_base import GinTestCase

_FEATURES = ("callee_basic_block_count", "cost_estimate", "threshold")


def _random_inputs(rng, n):
    """n random feature vectors, with the `inlining_default` every exported policy accepts (and ignores)."""
    names = (*_FEATURES, "inlining_default")
    return [{name: int(v) for name, v in zip(names, rng.integers(-50, 300, len(names)), strict=True)} for _ in range(n)]


class _Records(std_logging.Handler):
    def __init__(self):
        super().__init__(level=std_logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


class ExportedPolicyTest(GinTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._tmp = tempfile.TemporaryDirectory()
        rng = np.random.default_rng(3)
        quantiles = tuple(np.sort(rng.integers(-20, 250, 40)).astype(np.float32) for _ in _FEATURES)
        normalization = features_lib.Normalization(
            _FEATURES, quantiles, features_lib.FeatureConfig(dropped_features=())
        )
        network = policy_network.InliningPolicyNetwork(normalization, hidden_units=(16,), seed=4)
        network.create_variables()
        # Scaled weights give decisive logits, so float32 evaluations in different runtimes cannot tie-break apart.
        for v in network.trainable_variables:
            v.assign(v * 4.0)
        cls.warnings = _Records()
        absl_logging.get_absl_logger().addHandler(cls.warnings)
        try:
            cls.saved, cls.collect = policy_saver.export_policies(network, os.path.join(cls._tmp.name, "model"))
        finally:
            absl_logging.get_absl_logger().removeHandler(cls.warnings)
        cls.inputs = _random_inputs(np.random.default_rng(9), 40)
        action = tf.saved_model.load(cls.saved).signatures["action"]
        fixed = {"step_type": [1], "reward": [0.0], "discount": [1.0]}
        cls.want = [
            int(action(**{k: tf.constant(v) for k, v in fixed.items()}, **{k: tf.constant([v], tf.int64)
                                                                              for k, v in x.items()})
                ["inlining_decision"].numpy()[0])
            for x in cls.inputs
        ]  # fmt: skip

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()
        super().tearDownClass()

    def test_exporting_logs_no_warning(self):
        # A warning reaches the console of every binary that trains: the greedy policy's missing distribution is
        # intended, so PolicySaver's warning about it is dropped while it builds and while it saves.
        self.assertEqual(self.warnings.messages, [])

    def test_both_policies_hold_every_part(self):
        for directory in (self.saved, self.collect):
            for name in ("saved_model.pb", "output_spec.json", "model.tflite", "fast_policy.npz"):
                self.assertTrue(os.path.isfile(os.path.join(directory, name)), (directory, name))
        self.assertEqual(set(self.want), {0, 1}, "the probe inputs should exercise both decisions")

    def test_output_spec_names_the_graph_tensor_that_holds_the_decision(self):
        with open(os.path.join(self.saved, "output_spec.json")) as f:
            (entry,) = json.load(f)
        self.assertEqual(entry["logging_name"], "inlining_decision")
        self.assertEqual((entry["tensor_spec"]["type"], entry["tensor_spec"]["shape"]), ("int64_t", [1]))
        fetch = f"{entry['tensor_spec']['name']}:{entry['tensor_spec']['port']}"
        # Feed and fetch by graph tensor names, as LLVM's model runners do.
        with tf.Graph().as_default(), tf.compat.v1.Session() as session:
            meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], self.saved)
            feeds_by_name = {k: v.name for k, v in meta.signature_def["action"].inputs.items()}
            got = []
            for x in self.inputs:
                feed = {
                    feeds_by_name["step_type"]: [1],
                    feeds_by_name["reward"]: [0.0],
                    feeds_by_name["discount"]: [1.0],
                }
                feed.update({feeds_by_name[k]: [v] for k, v in x.items()})
                got.append(int(session.run(fetch, feed_dict=feed)[0]))
        self.assertEqual(got, self.want)

    def test_tflite_action_runner_takes_the_signature_inputs_and_decides_alike(self):
        interpreter = tf.lite.Interpreter(model_path=os.path.join(self.saved, "model.tflite"))
        runner = interpreter.get_signature_runner("action")
        self.assertEqual(
            set(interpreter.get_signature_list()["action"]["inputs"]),
            {*_FEATURES, "inlining_default", "step_type", "reward", "discount"},
        )
        got = []
        for x in self.inputs:
            out = runner(
                step_type=np.array([1], np.int32),
                reward=np.array([0.0], np.float32),
                discount=np.array([1.0], np.float32),
                **{k: np.array([v], np.int64) for k, v in x.items()},
            )
            got.append(int(out["inlining_decision"][0]))
        self.assertEqual(got, self.want)

    def test_numpy_sidecar_decides_alike(self):
        policy = saved_policy.SavedPolicy.load(self.saved)
        self.assertTrue(policy.uses_fast_path)
        got = [policy.action({k: np.array([v], np.int64) for k, v in x.items()}) for x in self.inputs]
        self.assertEqual(got, self.want)

    def test_export_leaves_no_temporaries_beside_the_two_directories(self):
        root = os.path.dirname(self.saved)
        self.assertEqual(sorted(os.listdir(root)), ["collect_policy", "saved_policy"])
