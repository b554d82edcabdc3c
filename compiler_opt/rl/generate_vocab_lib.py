"""Per-feature quantiles ("vocab") of trajectory records, in MLGO's `.buckets` format.

For every numeric feature list of the records except `action` (or MLGO's `inlining_decision`), `label` and `reward`,
writes `<output_dir>/<feature>.buckets`: `num_buckets` floats, one per line, the quantiles at evenly spaced
probabilities 0, 1/(n-1), ..., 1 of a sample of the feature's values (numpy's linear interpolation). The sample is
the decisions of whole records, read from the shards in a seeded random order until `max_decisions` are collected,
so the tool runs in seconds on large data.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence

import gin
import numpy as np
import tensorflow as tf
from absl import logging

from compiler_opt.rl import atomic_file
from compiler_opt.rl.imitation_learning import trajectory_dataset
from compiler_opt.rl.inlining import features as features_lib

# Int64 feature lists of a trajectory record that are not features (a decision and a bucket index).
NOT_FEATURES = ("action", "label")


@gin.configurable(module="generate_vocab")
@dataclasses.dataclass(frozen=True)
class VocabConfig:
    """num_buckets: quantiles per feature (MLGO: 1000). max_decisions: size of the sample (decisions).
    seed: order in which shards are read."""

    num_buckets: int = 1000
    max_decisions: int = 200_000
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class VocabResult:
    output_dir: str
    features: tuple[str, ...]
    decisions_sampled: int
    seconds: float


def sample_decisions(
    files: Sequence[str],
    names: Sequence[str],
    max_decisions: int,
    seed: int,
    layout: trajectory_dataset.RecordLayout | None = None,
) -> dict[str, np.ndarray]:
    """Values {name: [N]} of up to about max_decisions decisions (whole records, shards in seeded order)."""
    dataset = trajectory_dataset.decisions(files, names, seed=seed, cycle_length=16, layout=layout)
    chunks: dict[str, list[np.ndarray]] = {n: [] for n in names}
    total = 0
    for batch in dataset.as_numpy_iterator():
        for n in names:
            chunks[n].append(batch[n])
        total += len(batch[names[0]])
        if total >= max_decisions:
            break
    return {n: np.concatenate(c)[:max_decisions] if c else np.zeros(0, np.int64) for n, c in chunks.items()}


def quantiles(values: np.ndarray, num_buckets: int) -> np.ndarray:
    return np.quantile(values.astype(np.float64), np.linspace(0.0, 1.0, num_buckets))


def generate_vocab(trajectories: Sequence[str], output_dir: str, config: VocabConfig | None = None) -> VocabResult:
    """Writes one `.buckets` file per feature of `trajectories` (files or globs) into output_dir."""
    start = time.monotonic()
    config = config or VocabConfig()
    if config.num_buckets < 1 or config.max_decisions < 1:
        raise ValueError(f"num_buckets and max_decisions must be positive: {config}")
    files = trajectory_dataset.list_trajectory_files(trajectories)
    layout = trajectory_dataset.record_layout(files)
    names = tuple(n for n in trajectory_dataset.record_feature_names(files) if n not in NOT_FEATURES)
    try:
        sample = sample_decisions(files, names, config.max_decisions, config.seed, layout)
    except tf.errors.DataLossError as e:
        raise trajectory_dataset.unreadable_files_error(files, e) from None
    n = len(sample[names[0]])
    if n == 0:
        raise trajectory_dataset.TrajectoryError(f"no decisions in {len(files)} trajectory files")
    os.makedirs(output_dir, exist_ok=True)
    atomic_file.remove_stale_temporaries(output_dir)
    for name in names:
        features_lib.write_buckets(
            features_lib.buckets_path(output_dir, name), quantiles(sample[name], config.num_buckets)
        )
    seconds = time.monotonic() - start
    logging.info("Wrote %d vocab files from %d decisions to %s in %.1f s", len(names), n, output_dir, seconds)
    return VocabResult(output_dir=output_dir, features=names, decisions_sampled=n, seconds=seconds)
