"""Specification of the vocab generator (`compiler_opt/tools/generate_vocab*.py`): MLGO `.buckets` files."""

import os
import subprocess
import sys
import tempfile

import gin
import numpy as np

from bench.testkit import trajectory_records
from compiler_opt.rl import generate_vocab_lib
from compiler_opt.rl.imitation_learning import trajectory_dataset
from compiler_opt.rl.inlining import features as features_lib
from tests.gin_test_base import GinTestCase

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read_lines(path):
    with open(path) as f:
        return [float(line) for line in f]


class GenerateVocabTest(GinTestCase):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name

    def _records(self, values_per_module):
        examples = []
        for i, values in enumerate(values_per_module):
            values = np.asarray(values, dtype=np.int64)
            steps = {"cost_estimate": values, "callee_users": values * 2, "inlining_default": values % 2}
            examples.append(trajectory_records.sequence_example(f"m{i}", steps, values % 2, reward=100.0, label=0))
        return trajectory_records.write_records(os.path.join(self.dir, "data", "t.tfrecord"), examples)

    def test_one_buckets_file_per_feature_without_action_label_or_reward(self):
        path = self._records([[1, 2, 3], [4, 5]])
        generate_vocab_lib.generate_vocab([path], os.path.join(self.dir, "vocab"))
        self.assertEqual(
            sorted(os.listdir(os.path.join(self.dir, "vocab"))),
            ["callee_users.buckets", "cost_estimate.buckets", "inlining_default.buckets"],
        )

    def test_files_hold_num_buckets_nondecreasing_quantiles_spanning_the_data(self):
        path = self._records([np.arange(0, 500), np.arange(500, 1000)])
        generate_vocab_lib.generate_vocab([path], self.dir, generate_vocab_lib.VocabConfig(num_buckets=1000))
        q = _read_lines(os.path.join(self.dir, "cost_estimate.buckets"))
        self.assertEqual(len(q), 1000)
        self.assertTrue(np.all(np.diff(q) >= 0))
        self.assertEqual((q[0], q[-1]), (0.0, 999.0))
        # Quantile 500/999 of 0..999 falls exactly on the value 500.
        self.assertAlmostEqual(q[500], 500.0)

    def test_num_buckets_comes_from_gin(self):
        path = self._records([[1, 2, 3]])
        gin.parse_config("generate_vocab.VocabConfig.num_buckets = 7")
        generate_vocab_lib.generate_vocab([path], self.dir)
        self.assertEqual(len(_read_lines(os.path.join(self.dir, "callee_users.buckets"))), 7)

    def test_sample_is_capped_at_max_decisions(self):
        path = self._records([np.arange(100)] * 20)
        result = generate_vocab_lib.generate_vocab(
            [path], self.dir, generate_vocab_lib.VocabConfig(num_buckets=10, max_decisions=250)
        )
        self.assertEqual(result.decisions_sampled, 250)

    def test_output_reads_back_as_the_trainers_vocab(self):
        path = self._records([[3, 1, 2]])
        generate_vocab_lib.generate_vocab([path], self.dir, generate_vocab_lib.VocabConfig(num_buckets=3))
        vocab = features_lib.read_vocab(self.dir, ["cost_estimate"])
        np.testing.assert_array_equal(vocab["cost_estimate"], np.array([1, 2, 3], np.float32))

    def test_missing_input_is_a_clear_error(self):
        with self.assertRaisesRegex(trajectory_dataset.TrajectoryError, "no trajectory file matches"):
            generate_vocab_lib.generate_vocab([os.path.join(self.dir, "nothing-*.tfrecord")], self.dir)

    def test_records_without_decisions_are_a_clear_error(self):
        path = self._records([[]])
        with self.assertRaisesRegex(trajectory_dataset.TrajectoryError, "no record with a decision"):
            generate_vocab_lib.generate_vocab([path], self.dir)

    def test_binary_smoke(self):
        self._records([[1, 2, 3], [4, 5, 6]])
        out = os.path.join(self.dir, "vocab")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "compiler_opt.tools.generate_vocab",
                f"--input={os.path.join(self.dir, 'data', '*.tfrecord')}",
                f"--output_dir={out}",
                "--gin_bindings=generate_vocab.VocabConfig.num_buckets=4",
            ],
            cwd=_REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        self.assertIn("wrote 3 .buckets files", proc.stdout)
        # 4 buckets of the 6 values 1..6: quantiles at 0, 1/3, 2/3, 1 with linear interpolation, i.e. at positions
        # 0, 5/3, 10/3, 5 of the sorted values (by hand: 1, 2 + 2/3, 4 + 1/3, 6); callee_users is twice each value.
        np.testing.assert_allclose(_read_lines(os.path.join(out, "cost_estimate.buckets")), (1, 8 / 3, 13 / 3, 6))
        np.testing.assert_allclose(_read_lines(os.path.join(out, "callee_users.buckets")), (2, 16 / 3, 26 / 3, 12))
