r"""Weighted behaviour cloning as the first BC-MAX iteration runs it on the default corpus: wall time and decisions/s.

Usage:
  .venv/bin/python bench/training.py [--root_dir=DIR] [--data_path=CORPUS] [--num_workers=2]
      [--gin_files=gin_configs/bc_max.gin] [--gin_bindings=...]

Data: the trajectories of BC-MAX iteration 1 on the train split of the corpus (default: the default corpus),
collected as `bc_max_lib.run` collects them (gin `bc_max.run.baselines`, `first_exploration_policy`,
`max_exploration_steps`; compile cache ROOT/compile_cache) into ROOT/iteration_1/trajectories, the layout of a bc_max
root: a --root_dir of an earlier `bc_max` or bench run reuses its collection (collection is resumable).
Config: the gin files (default gin_configs/bc_max.gin: weighted_bc.TrainerConfig.num_steps = 3000, batch 256).
Measured, each from a fresh directory under ROOT/bench_training: vocab generation (generate_vocab_lib), then
`weighted_bc_trainer_lib.train` called as bc_max_lib calls it (records, vocab, profiles.jsonl for the size-bucket
weights): network, input pipeline, every optimizer step up to num_steps, export of saved_policy and collect_policy.

Prints JSON: records and the decisions in them, steps and batch size, train_seconds (wall time of the whole `train`
call) and train_cpu_seconds (CPU time of this process over it, all threads: robust to other jobs sharing the cores),
decisions_per_second (steps x batch size / train_seconds), vocab_seconds, and `saved_policy` (the trained policy:
bench/plugin.py --policy takes it).
"""

import inspect
import json
import os
import shutil
import tempfile
import time

import gin
import numpy as np
import tensorflow as tf
from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import generate_vocab_lib, module_selection, policies
from compiler_opt.rl.imitation_learning import bc_max_lib
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection
from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus (default: the default corpus, built if needed).")
_ROOT_DIR = flags.DEFINE_string("root_dir", None, "A bc_max root to reuse or create (default: a new temporary dir).")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", ["gin_configs/bc_max.gin"], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()


def bc_max_setting(name: str):
    """The value `bc_max_lib.run` gets for `name`: its gin binding, else the function's default."""
    try:
        return gin.query_parameter(f"bc_max.run.{name}")
    except ValueError:
        return inspect.signature(bc_max_lib.run).parameters[name].default


def decisions_in(files) -> int:
    count = 0
    for path in files:
        for raw in tf.data.TFRecordDataset(path):
            example = tf.train.SequenceExample.FromString(raw.numpy())
            count += len(example.feature_lists.feature_list["action"].feature)
    return count


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    train_modules = module_selection.select(data_path, "train")
    root_dir = os.path.abspath(_ROOT_DIR.value or tempfile.mkdtemp(prefix="bcmax_training_"))
    traj_dir = os.path.join(bc_max_lib.iteration_dir(root_dir, 1), "trajectories")
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        summary = collection.collect(
            train_modules,
            policies.parse_all(bc_max_setting("baselines")),
            traj_dir,
            executor,
            exploration_policy=bc_max_setting("first_exploration_policy"),
            max_exploration_steps=bc_max_setting("max_exploration_steps"),
            cache_dir=os.path.join(root_dir, "compile_cache"),
            progress=False,
        )
    records = os.path.join(traj_dir, collection.RECORDS_DIR, "*.tfrecord")
    files = sorted(tf.io.gfile.glob(records))

    bench_dir = os.path.join(root_dir, "bench_training")
    shutil.rmtree(bench_dir, ignore_errors=True)
    start = time.monotonic()
    vocab = generate_vocab_lib.generate_vocab([records], os.path.join(bench_dir, "vocab"))
    vocab_seconds = time.monotonic() - start

    config = trainer_lib.TrainerConfig()
    start, cpu_start = time.monotonic(), time.process_time()
    trained = trainer_lib.train(
        [records],
        os.path.join(bench_dir, "vocab"),
        os.path.join(bench_dir, "model"),
        profiles_path=os.path.join(traj_dir, collection.PROFILES_FILE),
    )
    train_seconds = time.monotonic() - start
    train_cpu_seconds = time.process_time() - cpu_start

    print(
        json.dumps(
            {
                "benchmark": "training",
                "corpus": data_path,
                "train_modules": len(train_modules),
                "records": len(files),
                "decisions_in_records": decisions_in(files),
                "collection_failed_modules": summary["failed_modules"],
                "vocab_seconds": round(vocab_seconds, 2),
                "vocab_decisions_sampled": vocab.decisions_sampled,
                "features": len(trained.feature_names),
                "steps": trained.steps,
                "batch_size": config.batch_size,
                "hidden_units": list(config.hidden_units),
                "train_seconds": round(train_seconds, 2),
                "train_cpu_seconds": round(train_cpu_seconds, 2),
                "decisions_per_second": round(trained.steps * config.batch_size / train_seconds),
                "final_metrics": {k: round(float(np.float64(v)), 4) for k, v in trained.metrics.items()},
                "saved_policy": trained.saved_policy_dir,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    app.run(main)
