"""Specification of gin_configs/mlgo_recipe.gin: MLGO's BC-MAX recipe (38 features as [x, x^2, sqrt(x)],
4 x Dense(100, relu), 2 logits, Adam, batch 32, ~4,300 steps, -Oz/25/100/225 baselines, 2-step exploration from a
first learned policy) expressed in this project's configurables."""

import os
import tempfile

import gin
import numpy as np

from compiler_opt import gin_setup
from compiler_opt.rl.imitation_learning import bc_max_lib, weighted_bc_trainer_lib  # noqa: F401 - registers bc_max.run
from compiler_opt.rl.inlining import features as features_lib
from compiler_opt.rl.inlining import task as task_lib
from tests import gin_test_base

_RECIPE = os.path.join(os.path.dirname(__file__), "..", "gin_configs", "mlgo_recipe.gin")


class MlgoRecipeTest(gin_test_base.GinTestCase):
    def setUp(self):
        super().setUp()
        gin_setup.parse([_RECIPE], [])

    def test_the_network_reads_38_features_as_three_columns_through_four_layers_of_100(self):
        config = weighted_bc_trainer_lib.TrainerConfig()
        feature_config = features_lib.FeatureConfig()
        names = features_lib.policy_feature_names(task_lib.CLANG22_FEATURES, feature_config)
        with tempfile.TemporaryDirectory() as vocab_dir:
            for name in names:
                features_lib.write_buckets(features_lib.buckets_path(vocab_dir, name), np.arange(10.0))
            network = weighted_bc_trainer_lib.build_network(names, vocab_dir, feature_config, config)
        assert len(names) == 38 and "inlining_default" not in names
        shapes = [kernel.shape for kernel, _ in network.dense_weights()]
        assert shapes == [(114, 100), (100, 100), (100, 100), (100, 100), (100, 2)]
        assert network.activation == "relu"
        # x = bucketize(value) / quantiles: 4 is >= 5 of the 10 quantiles 0..9, so x = 0.5 -> [0.5, 0.25, sqrt(0.5)].
        row = network.normalized({n: np.array([4], np.int64) if n == names[0] else np.array([0]) for n in names})
        assert np.allclose(row.numpy()[0, :3], [0.5, 0.25, np.sqrt(0.5)])

    def test_training_is_adam_with_batch_32_for_4300_steps(self):
        config = weighted_bc_trainer_lib.TrainerConfig()
        assert (config.batch_size, config.num_steps, config.learning_rate) == (32, 4300, 0.001)

    def test_the_loop_explores_two_steps_only_once_a_first_policy_is_learned(self):
        assert gin.query_parameter("bc_max.run.baselines") == (
            "heuristic",
            "heuristic:threshold=25",
            "heuristic:threshold=100",
            "heuristic:threshold=225",
        )
        assert gin.query_parameter("bc_max.run.first_exploration_policy") == "none"
        assert gin.query_parameter("bc_max.run.max_exploration_steps") == 2
        assert gin.query_parameter("bc_max.run.iterations") == 2
