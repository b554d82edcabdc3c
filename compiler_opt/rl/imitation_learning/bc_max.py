r"""Runs the BC-MAX loop: collect best trajectories over many baselines, train by weighted cloning, repeat.

Usage:
  python -m compiler_opt.rl.imitation_learning.bc_max --data_path=build/default_corpus --root_dir=/tmp/bcmax \
    --iterations=3 --max_exploration_steps=2 \
    --baselines=heuristic --baselines=heuristic:threshold=50 --baselines=heuristic:threshold=500 \
    --gin_files=gin_configs/bc_max.gin

Input: an MLGO corpus. Output under --root_dir: iteration_<t>/ (trajectories, model/saved_policy in MLGO layout,
per-module evaluation CSVs), report.md with PNG plots, results.json. The last lines printed are the results table.
Rerunning the same command resumes after the last finished step.
"""

import os

from absl import app, flags, logging

from compiler_opt import gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import module_selection
from compiler_opt.rl.imitation_learning import bc_max_lib, report

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus directory.", required=True)
_ROOT_DIR = flags.DEFINE_string("root_dir", None, "Output directory (resumable).", required=True)
_BASELINES = flags.DEFINE_multi_string(
    "baselines", None, "Initial baseline policy specs (default: gin's bc_max.run.baselines)."
)
_ITERATIONS = flags.DEFINE_integer("iterations", None, "BC-MAX iterations (default: gin's bc_max.run.iterations).")
_MAX_EXPLORATION_STEPS = flags.DEFINE_integer("max_exploration_steps", None, "Flips per explored trajectory.")
_HELD_OUT_FRACTION = flags.DEFINE_float("held_out_fraction", 0.2, "Fraction of modules held out (by name hash).")
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "Use a fixed sample of this many modules of the corpus.")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    modules = module_selection.select(_DATA_PATH.value, max_modules=_MAX_MODULES.value)
    held_out_names = {m.name for m in module_selection.select(_DATA_PATH.value, "held_out", _HELD_OUT_FRACTION.value)}
    train = [m for m in modules if m.name not in held_out_names]
    held_out = [m for m in modules if m.name in held_out_names]
    logging.info("%d train and %d held-out modules", len(train), len(held_out))
    overrides = {
        k: v
        for k, v in (
            ("baselines", _BASELINES.value),
            ("iterations", _ITERATIONS.value),
            ("max_exploration_steps", _MAX_EXPLORATION_STEPS.value),
        )
        if v is not None
    }
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        results = bc_max_lib.run(train, held_out, _ROOT_DIR.value, executor, **overrides)
    path = report.write(_ROOT_DIR.value, results)
    print()
    print(f"BC-MAX on {len(train)} train / {len(held_out)} held-out modules (total text size / stock -Oz):")
    print(report.table(results))
    print(f"Report: {os.path.abspath(path)}")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
