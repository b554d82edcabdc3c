"""The trajectory record: one `tf.train.SequenceExample` per module (the format MLGO's trainers read).

feature_lists (T steps, one value per step in each list):
               one int64 list per clang feature, under clang's name; action (int64: the decision played);
               reward (float: module text size in bytes, same every step); label (int64: the module's size bucket,
               same every step); module_name (bytes, same every step). This is what MLGO's imitation-learning
               trainer parses: every list as a `FixedLenSequenceFeature` of shape [] (features, action and label
               int64, module_name string).
context:       module_name (bytes), policy_name (bytes: the baseline or exploration that produced it). MLGO writes
               no context and ignores it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from compiler_opt.rl import env

# Feature lists of a record that are not compiler features.
NON_FEATURE_LISTS = ("action", "reward", "label", "module_name")


def to_sequence_example(result: env.CompileResult, label: int) -> tf.train.SequenceExample:
    """Builds the record for a successful compile with at least one decision."""
    if not result.ok or result.horizon == 0:
        raise ValueError(f"{result.module}: only successful compiles with decisions become records")
    example = tf.train.SequenceExample()
    context = example.context.feature
    context["module_name"].bytes_list.value.append(result.module.encode())
    context["policy_name"].bytes_list.value.append(result.policy.encode())
    lists = example.feature_lists.feature_list
    for name, values in result.features.items():
        feature_list = lists[name]
        for row in np.asarray(values).reshape(result.horizon, -1).tolist():
            feature_list.feature.add().int64_list.value.extend(row)
    for name, value_list, values in (
        ("action", "int64_list", result.actions.tolist()),
        ("reward", "float_list", [float(result.text_size)] * result.horizon),
        ("label", "int64_list", [int(label)] * result.horizon),
        ("module_name", "bytes_list", [result.module.encode()] * result.horizon),
    ):
        feature_list = lists[name]
        for v in values:
            getattr(feature_list.feature.add(), value_list).value.append(v)
    return example


def parsing_spec(feature_names):
    """(context_spec, sequence_spec) for `tf.io.parse_sequence_example` of these records."""
    context = {
        "module_name": tf.io.FixedLenFeature([], tf.string),
        "policy_name": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    sequence = {name: tf.io.FixedLenSequenceFeature([1], tf.int64) for name in feature_names}
    sequence["action"] = tf.io.FixedLenSequenceFeature([1], tf.int64)
    sequence["reward"] = tf.io.FixedLenSequenceFeature([1], tf.float32)
    sequence["label"] = tf.io.FixedLenSequenceFeature([1], tf.int64)
    sequence["module_name"] = tf.io.FixedLenSequenceFeature([1], tf.string)
    return context, sequence
