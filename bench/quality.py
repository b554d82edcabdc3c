r"""Quality of BC-MAX on the default corpus: total text size vs stock -Oz per iteration, train and held-out.

Usage:
  .venv/bin/python bench/quality.py [--root_dir=/tmp/bcmax_quality] [--iterations=3] [--num_workers=2]
      [--gin_files=gin_configs/bc_max.gin] [--gin_bindings=...]

Runs the loop of `bc_max` with the settings of gin_configs/bc_max.gin (resumable: an existing --root_dir is
continued), then prints JSON: for each iteration the train and held-out ratios (policy total / -Oz total), the
oracle ratios (per-module best of the baselines and, on train, of the explorations around them; over the
same stock -Oz total), and the best held-out ratio against the goal (<= 0.97).
"""

import json
import os
import tempfile

from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import module_selection
from compiler_opt.rl.imitation_learning import bc_max_lib

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus (default: the default corpus, built if needed).")
_ROOT_DIR = flags.DEFINE_string("root_dir", None, "Where the loop writes (default: a new temporary directory).")
_ITERATIONS = flags.DEFINE_integer("iterations", 3, "BC-MAX iterations.")
_HELD_OUT_FRACTION = flags.DEFINE_float("held_out_fraction", 0.2, "Fraction of modules held out (by name hash).")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", ["gin_configs/bc_max.gin"], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    train = module_selection.select(data_path, "train", _HELD_OUT_FRACTION.value)
    held_out = module_selection.select(data_path, "held_out", _HELD_OUT_FRACTION.value)
    root_dir = _ROOT_DIR.value or tempfile.mkdtemp(prefix="bcmax_quality_")
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        results = bc_max_lib.run(train, held_out, root_dir, executor, iterations=_ITERATIONS.value, progress=False)
    best = min((r.held_out_ratio for r in results if r.held_out_ratio is not None), default=None)
    print(
        json.dumps(
            {
                "benchmark": "quality",
                "root_dir": os.path.abspath(root_dir),
                "train_modules": len(train),
                "held_out_modules": len(held_out),
                "iterations": [
                    {
                        "iteration": r.iteration,
                        "train_ratio": r.train_ratio,
                        "held_out_ratio": r.held_out_ratio,
                        "train_oracle_ratio": r.train_oracle_ratio,
                        "held_out_oracle_ratio": r.held_out_oracle_ratio,
                        "held_out_geomean": r.held_out_geomean,
                        "held_out_smaller": r.held_out_smaller,
                        "held_out_larger": r.held_out_larger,
                        "seconds": r.seconds,
                    }
                    for r in results
                ],
                "best_held_out_ratio": best,
                "goal_held_out_ratio": 0.97,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    app.run(main)
