"""Small hand-built trajectory records (docs/CONTRACTS.md format) for the vocab, trainer, saved-policy and fault
tests and for bench/faults.py."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from compiler_opt.rl.inlining import task as task_lib

# A few of clang's feature names; enough for a learnable decision.
FEATURES = ("callee_users", "callsite_height", "cost_estimate", "inlining_default", "threshold")

CLANG22_FEATURES = task_lib.CLANG22_FEATURES


def clang_like_features(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n synthetic call sites over every clang-22 feature: mostly small counts, heavy tails, some flags and
    constants, a few negative values (int64 [n] each)."""
    features = {}
    for i, name in enumerate(CLANG22_FEATURES):
        kind = i % 4
        if kind == 0:
            values = rng.geometric(0.2, size=n) - 1
        elif kind == 1:
            values = np.round(rng.lognormal(3.0, 2.0, size=n))
        elif kind == 2:
            values = rng.integers(0, 2, size=n)
        else:
            values = np.round(rng.normal(0, 50, size=n))
        features[name] = values.astype(np.int64)
    features["switch_default_dest_penalty"] = np.zeros(n, np.int64)
    return features


def sequence_example(
    module: str, steps: dict[str, np.ndarray], actions: np.ndarray, reward: float, label: int = 0
) -> tf.train.SequenceExample:
    """One module's record: every entry of `steps` (int64 [T]) as a feature list, plus action, reward, label and
    module_name lists (as trajectories.to_sequence_example writes them)."""
    example = tf.train.SequenceExample()
    example.context.feature["module_name"].bytes_list.value.append(module.encode())
    example.context.feature["policy_name"].bytes_list.value.append(b"heuristic")
    lists = example.feature_lists.feature_list
    for name, values in steps.items():
        for v in np.asarray(values).tolist():
            lists[name].feature.add().int64_list.value.append(int(v))
    for a in np.asarray(actions).tolist():
        lists["action"].feature.add().int64_list.value.append(int(a))
        lists["reward"].feature.add().float_list.value.append(float(reward))
        lists["label"].feature.add().int64_list.value.append(int(label))
        lists["module_name"].feature.add().bytes_list.value.append(module.encode())
    return example


def heuristic_module(rng: np.random.Generator, steps: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features of `steps` call sites with heavy-tailed values, and the decision of an -Oz-like heuristic:
    inline when cost_estimate < threshold. The decision is also the `inlining_default` feature."""
    threshold = rng.choice([5, 5, 5, 25, 225], size=steps)
    cost = np.round(rng.lognormal(3.0, 1.5, size=steps) - 30).astype(np.int64)
    decision = (cost < threshold).astype(np.int64)
    features = {
        "callee_users": rng.geometric(0.3, size=steps).astype(np.int64),
        "callsite_height": rng.integers(0, 20, size=steps),
        "cost_estimate": cost,
        "inlining_default": decision,
        "threshold": threshold.astype(np.int64),
    }
    return features, decision


def write_records(path: str, examples) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    return path


def write_heuristic_shards(
    directory: str, *, shards: int = 2, modules_per_shard: int = 10, steps: int = 60, seed: int = 0, labels=(0,)
) -> list[str]:
    """TFRecord shards of heuristic-played modules; module i gets label labels[i % len(labels)]."""
    rng = np.random.default_rng(seed)
    paths = []
    for s in range(shards):
        examples = []
        for m in range(modules_per_shard):
            i = s * modules_per_shard + m
            features, actions = heuristic_module(rng, steps)
            label = labels[i % len(labels)]
            examples.append(sequence_example(f"module{i}", features, actions, reward=1000.0 * (label + 1), label=label))
        paths.append(write_records(os.path.join(directory, f"trajectories-{s:05d}.tfrecord"), examples))
    return paths
