"""MLGO's profile files (`*_max.json`, `*_pol.json`): read, written, and turned into training weights."""

import json
import os
import tempfile

import gin
import numpy as np
import tensorflow as tf

from compiler_opt.rl.imitation_learning import profiles, training_weights
from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib
from tests.gin_test_base import GinTestCase
from tests.interop import mlgo_facts


def _record_labels():
    labels = {}
    for raw in tf.data.TFRecordDataset(mlgo_facts.RECORDS):
        lists = tf.train.SequenceExample.FromString(raw.numpy()).feature_lists.feature_list
        module = lists["module_name"].feature[0].bytes_list.value[0].decode()
        labels[module] = {f.int64_list.value[0] for f in lists["label"].feature}
    return labels


class MlgoProfilesTest(GinTestCase):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_reads_mlgos_files(self):
        entries = profiles.read_mlgo(mlgo_facts.PROFILE_MAX)
        self.assertEqual([(e.module_name, e.horizon) for e in entries], list(mlgo_facts.RECORD_HORIZONS))
        self.assertEqual({e.module_name: e.loss for e in entries}["lz4/lz4hc"], 41466.0)

    def test_size_buckets_of_mlgos_profiles_are_the_labels_mlgo_wrote_into_its_records(self):
        gin.bind_parameter("profiles.size_bucket.partitions", mlgo_facts.PARTITIONS)
        module_profiles, policies = profiles.from_mlgo([(mlgo_facts.PROFILE_POL, mlgo_facts.PROFILE_MAX)])
        self.assertEqual(policies, (profiles.MLGO_POLICY_PREFIX + mlgo_facts.PROFILE_POL,))
        self.assertEqual({p.module: {p.label} for p in module_profiles}, _record_labels())

    def test_written_files_read_back_in_mlgos_shape(self):
        outcome = profiles.PolicyOutcome(size=900, text_section_size=900, horizon=4, seconds=0.1, status="ok")
        worse = profiles.PolicyOutcome(size=1000, text_section_size=1000, horizon=5, seconds=0.1, status="ok")
        none = profiles.PolicyOutcome(size=50, text_section_size=50, horizon=0, seconds=0.1, status="ok")
        written = [
            profiles.ModuleProfile("b", {"heuristic": worse, "saved:/p": outcome}, "saved:/p", 900, 1000, 0),
            profiles.ModuleProfile("a", {"heuristic": outcome, "saved:/p": worse}, "heuristic", 900, 900, 0),
            profiles.ModuleProfile("no_calls", {"heuristic": none, "saved:/p": none}, "heuristic", 50, 50, 0),
        ]
        max_path, pol_path = profiles.write_mlgo(self.tmp.name, written, "saved:/p")
        self.assertEqual(os.path.basename(max_path), "profile_max.json")
        self.assertEqual(os.path.basename(pol_path), "profile_pol.json")
        with open(max_path) as f:
            self.assertEqual(
                json.load(f),
                [{"module_name": "a", "loss": 900.0, "horizon": 4}, {"module_name": "b", "loss": 900.0, "horizon": 4}],
            )
        self.assertEqual([(e.module_name, e.loss, e.horizon) for e in profiles.read_mlgo(pol_path)],
                         [("a", 1000.0, 5), ("b", 900.0, 4)])  # fmt: skip

    def test_trainer_weights_the_bucket_where_the_policy_lost_most(self):
        gin.bind_parameter("profiles.size_bucket.partitions", (1000,))
        pol = [
            {"module_name": "small", "loss": 300.0, "horizon": 2},
            {"module_name": "big", "loss": 5000.0, "horizon": 9},
        ]
        best = [
            {"module_name": "small", "loss": 300.0, "horizon": 2},
            {"module_name": "big", "loss": 4000.0, "horizon": 9},
        ]
        paths = []
        for name, data in (("run_pol.json", pol), ("run_max.json", best)):
            paths.append(os.path.join(self.tmp.name, name))
            with open(paths[-1], "w") as f:
                json.dump(data, f)
        weights = trainer_lib.load_bucket_weights(paths, training_weights.WeightingConfig(), None)
        self.assertEqual(weights.policies, (profiles.MLGO_POLICY_PREFIX + paths[0],))
        self.assertEqual(weights.bucket_regrets, ((0.0, 1000.0),))
        self.assertEqual(weights.weights[1], 1.0)
        self.assertLess(weights.weights[0], 1.0)
        self.assertTrue(np.isclose(sum(weights.probabilities), 1.0))

    def test_profile_files_given_unpaired_are_refused(self):
        with self.assertRaisesRegex(ValueError, "in pairs"):
            profiles.read_for_weights([mlgo_facts.PROFILE_POL])
