"""MLGO's trajectory records (tests/testdata/mlgo/records) read by this project's reader and vocab generator, in
both of MLGO's decision namings, and with float feature lists."""

import os
import tempfile

import numpy as np
import tensorflow as tf

from compiler_opt.rl import generate_vocab_lib
from compiler_opt.rl.imitation_learning import trajectory_dataset
from compiler_opt.rl.inlining import features as features_lib
from tests.gin_test_base import GinTestCase
from tests.interop import mlgo_facts


def _mlgo_examples():
    return [tf.train.SequenceExample.FromString(r.numpy()) for r in tf.data.TFRecordDataset(mlgo_facts.RECORDS)]


def _write(path, examples):
    with tf.io.TFRecordWriter(path) as w:
        for e in examples:
            w.write(e.SerializeToString())
    return path


def _all_decisions(path, names):
    batches = list(trajectory_dataset.decisions([path], names, seed=None).as_numpy_iterator())
    return {n: np.concatenate([b[n] for b in batches]) for n in names}


class MlgoRecordsTest(GinTestCase):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_reader_finds_the_39_features_the_decision_and_the_label(self):
        names = trajectory_dataset.record_feature_names([mlgo_facts.RECORDS])
        self.assertEqual(set(names), {*mlgo_facts.FEATURES, "action", "label"})
        self.assertEqual(trajectory_dataset.record_layout([mlgo_facts.RECORDS]).action_key, "action")

    def test_every_decision_is_read_in_record_order(self):
        got = _all_decisions(mlgo_facts.RECORDS, ("action", "inlining_default"))
        self.assertEqual(len(got["action"]), sum(h for _, h in mlgo_facts.RECORD_HORIZONS))
        # MLGO played its default policy: each decision is clang's own.
        np.testing.assert_array_equal(got["action"], got["inlining_default"])

    def test_records_keyed_inlining_decision_read_the_same_decisions(self):
        renamed = []
        for example in _mlgo_examples():
            lists = example.feature_lists.feature_list
            lists["inlining_decision"].CopyFrom(lists["action"])
            del lists["action"]
            renamed.append(example)
        path = _write(os.path.join(self.tmp.name, "logged.tfrecord"), renamed)
        self.assertEqual(trajectory_dataset.record_layout([path]).action_key, "inlining_decision")
        self.assertIn("action", trajectory_dataset.record_feature_names([path]))
        np.testing.assert_array_equal(
            _all_decisions(path, ("action",))["action"], _all_decisions(mlgo_facts.RECORDS, ("action",))["action"]
        )

    def test_a_float_feature_list_is_read_as_float(self):
        examples = _mlgo_examples()
        for example in examples:
            fl = example.feature_lists.feature_list["cost_estimate"]
            values = [f.int64_list.value[0] for f in fl.feature]
            del fl.feature[:]
            for v in values:
                fl.feature.add().float_list.value.append(v + 0.5)
        path = _write(os.path.join(self.tmp.name, "float.tfrecord"), examples)
        self.assertEqual(trajectory_dataset.record_layout([path]).float_lists, ("cost_estimate",))
        got = _all_decisions(path, ("cost_estimate",))["cost_estimate"]
        want = _all_decisions(mlgo_facts.RECORDS, ("cost_estimate",))["cost_estimate"]
        self.assertEqual(got.dtype, np.float32)
        np.testing.assert_array_equal(got, want.astype(np.float32) + 0.5)
        batch = next(
            iter(trajectory_dataset.training_examples([path], ("cost_estimate",), (1.0,), batch_size=8,
                                                      shuffle_buffer_size=1, repeat=False))
        )  # fmt: skip
        self.assertEqual(batch[0]["cost_estimate"].dtype, tf.float32)

    def test_vocab_with_mlgos_bucket_count_reproduces_mlgos_vocab_files(self):
        out = os.path.join(self.tmp.name, "vocab")
        config = generate_vocab_lib.VocabConfig(num_buckets=mlgo_facts.VOCAB_BUCKETS)
        result = generate_vocab_lib.generate_vocab([mlgo_facts.RECORDS], out, config)
        self.assertEqual(set(result.features), set(mlgo_facts.FEATURES))
        for name in result.features:
            ours = features_lib.read_buckets(features_lib.buckets_path(out, name))
            mlgo = features_lib.read_buckets(features_lib.buckets_path(mlgo_facts.VOCAB, name))
            np.testing.assert_array_equal(ours, mlgo, err_msg=name)
