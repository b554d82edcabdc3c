r"""Throughput of weighted behaviour cloning on 2 cores: the tf.data input pipeline and training.

Usage:
  .venv/bin/python bench/training.py [--trajectories='DIR/records/*.tfrecord'] [--threads=2] [--train_steps=2000]

Without --trajectories, writes synthetic records shaped like the collector's (one file per module, every clang-22
feature, ~300 decisions per module). Measures, after a warm-up: decisions/s delivered by the input pipeline alone
(parse, flatten, shuffle, batch; no cache), then as the trainer configures it (quantile normalization in the pipeline,
decisions cached after the first pass); decisions/s of training (pipeline + optimizer step, the trainer's real loop);
and decisions/s of the optimizer step alone on a fixed batch. Also times vocab generation and policy export.
Prints JSON.
"""

import json
import os
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from compiler_opt.rl import generate_vocab_lib
from compiler_opt.rl.imitation_learning import trajectory_dataset
from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib
from compiler_opt.rl.inlining import features as features_lib
from compiler_opt.rl.inlining import task as task_lib

_TRAJECTORIES = flags.DEFINE_list("trajectories", None, "Real trajectory records (default: synthetic ones).")
_MODULES = flags.DEFINE_integer("modules", 200, "Synthetic modules (one record file each).")
_STEPS_PER_MODULE = flags.DEFINE_integer("steps_per_module", 300, "Mean decisions per synthetic module.")
_THREADS = flags.DEFINE_integer("threads", 2, "TensorFlow intra- and inter-op threads (the cores to use).")
_PIPELINE_BATCHES = flags.DEFINE_integer("pipeline_batches", 400, "Batches timed for the input pipeline.")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 2000, "Optimizer steps timed for training.")


def write_synthetic(directory: str, modules: int, mean_steps: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    paths = []
    for m in range(modules):
        steps = max(1, int(rng.exponential(mean_steps)))
        example = tf.train.SequenceExample()
        example.context.feature["module_name"].bytes_list.value.append(f"m{m}".encode())
        lists = example.feature_lists.feature_list
        for name in task_lib.CLANG22_FEATURES:
            values = np.round(rng.lognormal(1.5, 2.0, steps)).astype(np.int64)
            for v in values.tolist():
                lists[name].feature.add().int64_list.value.append(v)
        for name, value in (("action", None), ("label", int(rng.integers(0, 5)))):
            for _ in range(steps):
                v = int(rng.integers(0, 2)) if value is None else value
                lists[name].feature.add().int64_list.value.append(v)
        for _ in range(steps):
            lists["reward"].feature.add().float_list.value.append(1000.0)
        path = os.path.join(directory, f"m{m:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            writer.write(example.SerializeToString())
        paths.append(path)
    return paths


def main(argv):
    del argv
    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
    config = trainer_lib.TrainerConfig()
    with tempfile.TemporaryDirectory() as tmp:
        if _TRAJECTORIES.value:
            files = trajectory_dataset.list_trajectory_files(_TRAJECTORIES.value)
        else:
            files = write_synthetic(os.path.join(tmp, "records"), _MODULES.value, _STEPS_PER_MODULE.value)
        start = time.monotonic()
        vocab = generate_vocab_lib.generate_vocab(files, os.path.join(tmp, "vocab"))
        vocab_seconds = time.monotonic() - start
        names = features_lib.policy_feature_names(trajectory_dataset.record_feature_names(files), config_features())
        weights = (0.5, 1.0, 1.0, 1.0, 1.0)

        network = trainer_lib.build_network(names, os.path.join(tmp, "vocab"), config_features(), config)

        def dataset(normalize=network.normalized, cache=config.cache_decisions):
            return trajectory_dataset.training_examples(
                files,
                names,
                weights,
                batch_size=config.batch_size,
                shuffle_buffer_size=config.shuffle_buffer_size,
                records_per_parse=config.records_per_parse,
                cache=cache,
                normalize=normalize,
            )

        iterator = iter(dataset(normalize=None, cache=False))
        for _ in range(20):
            next(iterator)
        start = time.monotonic()
        for _ in range(_PIPELINE_BATCHES.value):
            next(iterator)
        raw_pipeline_rate = _PIPELINE_BATCHES.value * config.batch_size / (time.monotonic() - start)

        iterator = iter(dataset())
        start = time.monotonic()
        for _ in range(20):
            next(iterator)
        first_batches_seconds = time.monotonic() - start
        start = time.monotonic()
        for _ in range(_PIPELINE_BATCHES.value):
            next(iterator)
        pipeline_rate = _PIPELINE_BATCHES.value * config.batch_size / (time.monotonic() - start)

        trainer = trainer_lib.WeightedBCTrainer(network, config, os.path.join(tmp, "model"))
        batch = next(iterator)
        trainer._train_step(*batch)  # traces the step
        start = time.monotonic()
        for _ in range(_TRAIN_STEPS.value):
            trainer._train_step(*batch)
        step_only_rate = _TRAIN_STEPS.value * config.batch_size / (time.monotonic() - start)

        warm = int(trainer.step.numpy()) + 50
        trainer.train(dataset(), warm)
        start = time.monotonic()
        trainer.train(dataset(), warm + _TRAIN_STEPS.value)
        training_rate = _TRAIN_STEPS.value * config.batch_size / (time.monotonic() - start)

        start = time.monotonic()
        trainer_lib.export_policies(network, os.path.join(tmp, "export"), trainer.step)
        export_seconds = time.monotonic() - start

    print(
        json.dumps(
            {
                "data": "real" if _TRAJECTORIES.value else "synthetic",
                "record_files": len(files),
                "features": len(names),
                "threads": _THREADS.value,
                "batch_size": config.batch_size,
                "hidden_units": list(config.hidden_units),
                "vocab_seconds": round(vocab_seconds, 2),
                "vocab_decisions_sampled": vocab.decisions_sampled,
                "pipeline_first_20_batches_seconds": round(first_batches_seconds, 2),
                "pipeline_examples_per_second": round(raw_pipeline_rate),
                "pipeline_as_trainer_examples_per_second": round(pipeline_rate),
                "training_examples_per_second": round(training_rate),
                "train_step_only_examples_per_second": round(step_only_rate),
                "default_num_steps_minutes_estimate": round(
                    config.num_steps * config.batch_size / training_rate / 60, 2
                ),
                "export_seconds": round(export_seconds, 2),
            },
            indent=2,
        )
    )


def config_features():
    return features_lib.FeatureConfig()


if __name__ == "__main__":
    app.run(main)
