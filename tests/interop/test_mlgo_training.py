"""This project's trainer on MLGO's records, profiles and vocab (tests/testdata/mlgo), and the policy it exports read
as MLGO reads a policy."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import gin
import tensorflow as tf

from compiler_opt.rl import policy_saver, saved_policy
from compiler_opt.rl.imitation_learning import profiles
from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib
from compiler_opt.rl.inlining import features as features_lib
from tests.gin_test_base import GinTestCase
from tests.interop import mlgo_facts

# Loads a SavedModel as the fixture README says MLGO's tools load a policy: tensorflow_probability imported, then a
# plain tf.saved_model.load (no tf_agents, no project code).
_LOAD_LIKE_MLGO = """
import json, sys
import tensorflow_probability
import tensorflow as tf
action = tf.saved_model.load(sys.argv[1]).signatures["action"]
print(json.dumps({
    "inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in action.structured_input_signature[1].items()},
    "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in action.structured_outputs.items()},
    "loaded": sorted(m for m in ("tf_agents", "compiler_opt") if m in sys.modules),
}))
"""


def _signature(action):
    return {
        "inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in action.structured_input_signature[1].items()},
        "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in action.structured_outputs.items()},
    }


def _config(**overrides):
    settings = dict(
        batch_size=64, num_steps=300, summary_interval=100, checkpoint_interval=300, hidden_units=(32, 32),
        shuffle_buffer_size=1024,
    )  # fmt: skip
    settings.update(overrides)
    return trainer_lib.TrainerConfig(**settings)


class TrainOnMlgoDataTest(GinTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._tmp = tempfile.TemporaryDirectory()
        gin.clear_config()
        gin.bind_parameter("profiles.size_bucket.partitions", mlgo_facts.PARTITIONS)
        try:
            cls.result = trainer_lib.train(
                [mlgo_facts.RECORDS],
                mlgo_facts.VOCAB,
                os.path.join(cls._tmp.name, "model"),
                profiles_path=[mlgo_facts.PROFILE_POL, mlgo_facts.PROFILE_MAX],
                config=_config(),
            )
        finally:
            gin.clear_config()

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()
        super().tearDownClass()

    def test_exported_policy_loads_as_mlgo_loads_it_with_mlgos_action_signature(self):
        proc = subprocess.run(
            [sys.executable, "-c", _LOAD_LIKE_MLGO, self.result.saved_policy_dir],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        ours = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertEqual(ours.pop("loaded"), [])
        saved_policy.register_distribution_types()
        mlgo = _signature(tf.saved_model.load(mlgo_facts.SAVED_POLICY).signatures["action"])
        want = {name: [dtype, shape] for name, (dtype, shape) in mlgo_facts.action_signature_inputs().items()}
        self.assertEqual(mlgo["inputs"], want, "the fixture README's facts describe MLGO's saved_policy")
        self.assertEqual(ours, mlgo)
        self.assertEqual(ours["outputs"], {"inlining_decision": ["int64", [1]]})

    def test_exported_tflite_model_has_mlgos_action_runner_inputs(self):
        interpreter = tf.lite.Interpreter(
            model_path=os.path.join(self.result.saved_policy_dir, policy_saver.TFLITE_FILENAME)
        )
        signature = interpreter.get_signature_list()["action"]
        self.assertEqual(set(signature["inputs"]), set(mlgo_facts.action_signature_inputs()))
        self.assertEqual(signature["outputs"], ["inlining_decision"])

    def test_policy_repeats_the_decisions_recorded_by_mlgo(self):
        self.assertGreaterEqual(trainer_lib.greedy_agreement(self.result.saved_policy_dir, [mlgo_facts.RECORDS]), 0.9)

    def test_weights_come_from_mlgos_profiles_over_mlgos_buckets(self):
        weights = self.result.bucket_weights
        self.assertEqual(weights.policies, (profiles.MLGO_POLICY_PREFIX + mlgo_facts.PROFILE_POL,))
        self.assertEqual(len(weights.weights), len(mlgo_facts.PARTITIONS) + 1)
        # MLGO's `_pol` and `_max` are the same trajectories here: no regret anywhere.
        self.assertEqual(weights.bucket_regrets, ((0.0,) * (len(mlgo_facts.PARTITIONS) + 1),))

    def test_policy_reads_every_feature_but_inlining_default(self):
        self.assertEqual(set(self.result.feature_names), set(mlgo_facts.FEATURES) - {"inlining_default"})


class MissingVocabFileTest(GinTestCase):
    """A vocab dir lacking a feature's `.buckets` file, as MLGO's shipped vocabularies lack
    `switch_default_dest_penalty`."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.vocab = os.path.join(self.tmp.name, "vocab")
        shutil.copytree(mlgo_facts.VOCAB, self.vocab)
        self.missing = features_lib.buckets_path(self.vocab, "switch_default_dest_penalty")
        os.unlink(self.missing)

    def test_by_default_training_stops_naming_the_file_and_the_fixes(self):
        with self.assertRaises(features_lib.VocabError) as error:
            trainer_lib.train([mlgo_facts.RECORDS], self.vocab, os.path.join(self.tmp.name, "m"), config=_config())
        message = str(error.exception)
        self.assertIn("switch_default_dest_penalty", message)
        self.assertIn(self.vocab, message)
        self.assertIn("generate_vocab", message)
        self.assertIn("missing_vocab = 'drop'", message)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "m", "saved_policy")))

    def test_with_drop_training_logs_the_feature_and_trains_without_it(self):
        config = features_lib.FeatureConfig(missing_vocab="drop")
        with self.assertLogs("absl", level="WARNING") as logs:
            result = trainer_lib.train(
                [mlgo_facts.RECORDS],
                self.vocab,
                os.path.join(self.tmp.name, "m"),
                config=_config(num_steps=5, summary_interval=5, checkpoint_interval=5),
                feature_config=config,
            )
        self.assertTrue(any("switch_default_dest_penalty" in line and "drop" in line for line in logs.output))
        self.assertEqual(
            set(result.feature_names), set(mlgo_facts.FEATURES) - {"inlining_default", "switch_default_dest_penalty"}
        )
