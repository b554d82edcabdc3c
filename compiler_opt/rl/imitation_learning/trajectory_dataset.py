"""Reading trajectory records (docs/CONTRACTS.md) with tf.data: one TFRecord `tf.train.SequenceExample` per module,
int64 feature lists named by clang's features, `action` (int64), `reward` (float, text size in bytes) and `label`
(int64, the module's size bucket) per step. Training reads the features, `action` and (for weights) `label`.
Records are parsed several at a time with `tf.io.parse_sequence_example` and flattened to one example per decision.

Records written by MLGO read the same way: its imitation-learning records (`action`), and the logs of its RL path
and of LLVM's training logger, whose decision list is named after the policy's output, `inlining_decision`; that
list is read as the decision (under the name `action`). A feature list stored as `float_list` is parsed as
float32 (the network normalizes float32 values either way); `reward` and bytes lists are not features.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from collections.abc import Callable, Mapping, Sequence

import tensorflow as tf

ACTION_KEY = "action"
# The decision's list in MLGO's RL records and LLVM's training logs: the policy's output name.
LOGGED_ACTION_KEY = "inlining_decision"
LABEL_KEY = "label"
MODULE_KEY = "module_name"
REWARD_KEY = "reward"


class TrajectoryError(ValueError):
    """Trajectory shards that are missing, unreadable, or hold no decision."""


def list_trajectory_files(patterns: Sequence[str]) -> list[str]:
    """Expands file names and glob patterns; raises TrajectoryError if a pattern matches nothing."""
    if isinstance(patterns, str):
        patterns = [patterns]
    files = []
    for pattern in patterns:
        matches = sorted(m for m in glob.glob(pattern) if os.path.isfile(m))
        if not matches:
            raise TrajectoryError(f"no trajectory file matches {pattern!r}")
        files.extend(matches)
    return sorted(set(files))


@dataclasses.dataclass(frozen=True)
class RecordLayout:
    """How the records store their decisions: `action_key` names the decision list (`action` or
    `inlining_decision`); `float_lists` are the numeric lists other than `reward` stored as float_list; every other
    numeric list is int64."""

    action_key: str = ACTION_KEY
    float_lists: tuple[str, ...] = ()

    def stored_name(self, name: str) -> str:
        """The list in the record that is read as `name` (`action` may be stored as `inlining_decision`)."""
        return self.action_key if name == ACTION_KEY else name

    def dtype(self, name: str):
        if name == MODULE_KEY:
            return tf.string
        return tf.float32 if self.stored_name(name) in self.float_lists else tf.int64


def _layout_and_names(files: Sequence[str]) -> tuple[RecordLayout, tuple[str, ...]]:
    for path in files:
        try:
            for raw in tf.data.TFRecordDataset(path):
                example = tf.train.SequenceExample.FromString(raw.numpy())
                lists = example.feature_lists.feature_list
                action_key = next((k for k in (ACTION_KEY, LOGGED_ACTION_KEY) if k in lists and lists[k].feature), None)
                if action_key is None:
                    if any(fl.feature for fl in lists.values()):
                        raise TrajectoryError(
                            f"{path}: record has neither an `{ACTION_KEY}` nor an `{LOGGED_ACTION_KEY}` feature list "
                            "(docs/CONTRACTS.md); was it written by generate_bc_trajectories or MLGO?"
                        )
                    continue
                kinds = {name: fl.feature[0].WhichOneof("kind") for name, fl in lists.items() if fl.feature}
                floats = tuple(sorted(n for n, k in kinds.items() if k == "float_list" and n != REWARD_KEY))
                numeric = {n for n, k in kinds.items() if k == "int64_list"} | set(floats)
                names = {ACTION_KEY if n == action_key else n for n in numeric}
                if action_key != ACTION_KEY:
                    names.discard(LOGGED_ACTION_KEY)
                    names.add(ACTION_KEY)
                return RecordLayout(action_key=action_key, float_lists=floats), tuple(sorted(names))
        except tf.errors.OpError as e:
            raise TrajectoryError(f"{path}: unreadable TFRecord file ({e.message})") from None
    raise TrajectoryError(f"no record with a decision in {len(files)} trajectory files, e.g. {files[0]}")


def record_layout(files: Sequence[str]) -> RecordLayout:
    """The layout of the first record with at least one decision."""
    return _layout_and_names(files)[0]


def record_feature_names(files: Sequence[str]) -> tuple[str, ...]:
    """Names of the numeric feature lists (including `action`, whatever its stored name; not `reward`) of the first
    record with at least one decision."""
    return _layout_and_names(files)[1]


def unreadable_files_error(files: Sequence[str], error: tf.errors.OpError) -> TrajectoryError:
    """The TrajectoryError for `error`, a DataLossError met while reading `files`: names every damaged file and the
    fix (reads each file once, only after the pipeline has failed)."""
    damaged = []
    for path in files:
        try:
            for _ in tf.data.TFRecordDataset(path):
                pass
        except tf.errors.OpError as e:
            damaged.append(f"{path} ({e.message.split('}} ')[-1].strip()})")
    where = ", ".join(damaged) or f"one of {len(files)} files ({error.message})"
    return TrajectoryError(
        f"damaged trajectory records in {where}: delete the file (for a collection's records/<key>.tfrecord, also its "
        "profiles/<key>.json) and rerun the collection to write it again, or train without it"
    )


def decision_parser(int64_names: Sequence[str], layout: RecordLayout | None = None):
    """A function mapping serialized records [R] to {name: [N]} over the N decisions of those records (int64, or
    float32 for the layout's float lists). A record without decisions may lack every list; otherwise all lists must
    have one value per decision."""
    layout = layout or RecordLayout()
    names = tuple(int64_names)
    spec = {
        layout.stored_name(name): tf.io.FixedLenSequenceFeature([], layout.dtype(name), allow_missing=True)
        for name in names
    }
    renamed = {layout.stored_name(name): name for name in names}

    def parse(serialized):
        _, stored, stored_lengths = tf.io.parse_sequence_example(serialized, sequence_features=spec)
        steps = {renamed[k]: v for k, v in stored.items()}
        lengths = {renamed[k]: v for k, v in stored_lengths.items()}
        checks = [
            tf.debugging.assert_equal(
                lengths[name],
                lengths[names[0]],
                message=f"a trajectory record lacks feature list `{name}` or has another number of steps in it",
            )
            for name in names[1:]
        ]
        with tf.control_dependencies(checks):
            mask = tf.sequence_mask(lengths[names[0]], tf.shape(steps[names[0]])[1])
        return {key: tf.boolean_mask(value, mask) for key, value in steps.items()}

    return parse


def decisions(
    files: Sequence[str],
    int64_names: Sequence[str],
    *,
    records_per_parse: int = 16,
    repeat: bool = False,
    seed: int = 0,
    cycle_length: int = 4,
    layout: RecordLayout | None = None,
) -> tf.data.Dataset:
    """Batches of decisions {name: [N]} (N varies), read from `files`; shuffled file order and interleaved reading
    when `repeat` (forever) or when seed is not None, file order otherwise. layout: how the records store their
    lists (default: read from the first record with a decision)."""
    dataset = tf.data.Dataset.from_tensor_slices(list(files))
    if repeat or seed is not None:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=max(1, min(cycle_length, len(files))),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    parse = decision_parser(int64_names, layout or record_layout(files))
    return dataset.batch(records_per_parse).map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def training_examples(
    files: Sequence[str],
    feature_names: Sequence[str],
    bucket_weights: Sequence[float],
    *,
    batch_size: int,
    shuffle_buffer_size: int,
    records_per_parse: int = 16,
    seed: int = 0,
    repeat: bool = True,
    cache: bool = False,
    normalize: Callable[[dict[str, tf.Tensor]], tf.Tensor] | None = None,
    layout: RecordLayout | None = None,
    module_weights: Mapping[str, float] | None = None,
) -> tf.data.Dataset:
    """Batches (features {name: int64 [B]}, action int64 [B], weight float32 [B]), weight = bucket_weights[label]
    (times module_weights[module] with `module_weights`: module name -> factor, read from each record's `module_name`
    list; a record of a module not in it fails the pipeline).
    With `normalize`, the features become normalize(features) (the network's normalized input), computed in the
    pipeline's parallel map. When all bucket weights are equal the `label` feature list is not read. With `repeat`:
    shuffled (the same order in every run with the same seed: parallel maps keep their input order), forever, full
    batches only; without: every decision once, in file order. With `repeat` and `cache`,
    records are parsed once and their decisions kept in memory (8 bytes per feature per decision) for later epochs.
    A label outside the weights fails the pipeline. layout: how the records store their lists (default: read from
    the first record); with float feature lists, the features are float32."""
    names = tuple(feature_names)
    layout = layout or record_layout(files)
    as_float = any(layout.dtype(name) == tf.float32 for name in names)
    weights = [float(w) for w in bucket_weights]
    uniform = len(set(weights)) == 1
    table = tf.constant(weights, tf.float32)
    by_module = None
    if module_weights is not None:
        if not module_weights:
            raise TrajectoryError("module_weights is empty: give a weight for every module of the records")
        by_module = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(module_weights), tf.string),
                tf.constant([float(w) for w in module_weights.values()], tf.float32),
            ),
            default_value=-1.0,
        )

    def to_example(steps):
        action = steps[ACTION_KEY]
        if uniform:
            weight = tf.fill(tf.shape(action), weights[0])
        else:
            label = tf.cast(steps[LABEL_KEY], tf.int64)
            message = (
                f"a record's size-bucket label is outside the {len(weights)} buckets being weighted: collect and "
                "train with the same `profiles.size_bucket.partitions`"
            )
            with tf.control_dependencies(
                [
                    tf.debugging.assert_non_negative(label, message=message),
                    tf.debugging.assert_less(label, tf.constant(len(weights), tf.int64), message=message),
                ]
            ):
                weight = tf.gather(table, label)
        if by_module is not None:
            factor = by_module.lookup(steps[MODULE_KEY])
            with tf.control_dependencies(
                [
                    tf.debugging.assert_non_negative(
                        factor,
                        message="a record's module has no weight in module_weights (collect and weight together)",
                    )
                ]
            ):
                weight = weight * factor
        # One [N, F] tensor rather than F vectors: per-decision work in unbatch/shuffle/batch grows with components.
        columns = [tf.cast(steps[name], tf.float32) if as_float else steps[name] for name in names]
        return tf.stack(columns, axis=1), tf.cast(action, tf.int64), weight

    def unpack(rows, action, weight):
        features = {name: rows[:, i] for i, name in enumerate(names)}
        return (features if normalize is None else normalize(features)), action, weight

    lists = (*names, ACTION_KEY) if uniform else (*names, ACTION_KEY, LABEL_KEY)
    if by_module is not None:
        lists = (*lists, MODULE_KEY)
    dataset = decisions(
        files,
        lists,
        records_per_parse=records_per_parse,
        repeat=repeat and not cache,
        seed=seed if repeat else None,
        layout=layout,
    )
    dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if repeat and cache:
        dataset = dataset.cache().repeat()
    dataset = dataset.unbatch()
    if repeat:
        dataset = dataset.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=repeat)
    return dataset.map(unpack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
