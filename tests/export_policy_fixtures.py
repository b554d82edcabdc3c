"""Saved policies for the export and plugin tests, written by the trainer's own exporter (MLGO layout).

`write_rule_policy` writes a greedy policy with hand-set weights: inline iff the callee has at most two basic blocks.
Its decisions are mixed on real code and far from ties (the logits differ by >= 0.5), so a compiled copy of the model
must take exactly the same decisions as the numpy or TensorFlow evaluation.
QUANTILE_BOUNDARIES: its Bucketize boundaries before and after the export merges repeated quantiles, per feature.
"""

from __future__ import annotations

import json
import os

import numpy as np

_HEADER = os.path.join(os.path.dirname(__file__), "testdata", "clang22_interactive_header.json")
RULE_FEATURE = "callee_basic_block_count"
# Rank r of callee_basic_block_count v among these quantiles: #{q <= v} / 8, so v <= 2 gives r <= 0.5 and v >= 3
# gives r >= 0.75; inlining iff 10 r < 5.5 leaves a margin of >= 0.5 between the logits. The quantiles repeat, as
# quantiles of integer features do, so the export merges them (38 * 8 boundaries become 38 * 5).
_RULE_QUANTILES = np.array([1, 1, 2, 2, 3, 3, 5, 8], dtype=np.float32)
_RULE_SCALE, _RULE_THRESHOLD = 10.0, 5.5
QUANTILE_BOUNDARIES = (8, 5)


def clang22_release_features() -> tuple[str, ...]:
    """clang-22's inliner features without `inlining_default` (sorted), from the recorded header if present."""
    if os.path.isfile(_HEADER):
        with open(_HEADER) as f:
            names = [feature["name"] for feature in json.load(f)["features"]]
    else:
        from compiler_opt.tools import export_model_lib

        names = [spec.name for spec in export_model_lib.clang_release_features("clang-22")]
    return tuple(sorted(set(names) - {"inlining_default"}))


def write_rule_policy(root_dir: str, feature_names: tuple[str, ...] | None = None) -> str:
    """Writes root_dir/saved_policy (and collect_policy) reading `feature_names`; returns the saved_policy dir.

    The decision reads only RULE_FEATURE, but every feature is an input of the graph (multiplied by zero weights).
    """
    import tensorflow as tf

    from compiler_opt.rl import policy_saver
    from compiler_opt.rl.imitation_learning import policy_network
    from compiler_opt.rl.inlining import features as features_lib

    names = tuple(sorted(feature_names or clang22_release_features()))
    config = features_lib.FeatureConfig(dropped_features=())
    quantiles = tuple(_RULE_QUANTILES for _ in names)
    normalization = features_lib.Normalization(names, quantiles, config)
    tf.keras.utils.set_random_seed(0)
    network = policy_network.InliningPolicyNetwork(normalization, hidden_units=(4,), activation="relu")
    network.create_variables()
    width = normalization.output_width
    hidden_kernel = np.zeros((width, 4), np.float32)
    if RULE_FEATURE in names:
        hidden_kernel[names.index(RULE_FEATURE) * config.columns_per_feature, 0] = 1.0
    logits_kernel = np.zeros((4, 2), np.float32)
    logits_kernel[0, 0] = _RULE_SCALE
    weights = [hidden_kernel, np.zeros(4, np.float32), logits_kernel, np.array([0.0, _RULE_THRESHOLD], np.float32)]
    variables = network.trainable_variables
    assert [tuple(v.shape) for v in variables] == [w.shape for w in weights], variables
    for variable, value in zip(variables, weights, strict=True):
        variable.assign(value)
    saved_dir, _ = policy_saver.export_policies(network, root_dir)
    return saved_dir
