r"""Runs the BC-MAX loop: collect best trajectories over many baselines, train by weighted cloning, repeat.

Usage:
  python -m compiler_opt.rl.imitation_learning.bc_max --data_path=build/default_corpus --root_dir=/tmp/bcmax \
    --iterations=3 --max_exploration_steps=2 \
    --baselines=heuristic --baselines=heuristic:threshold=50 --baselines=heuristic:threshold=500 \
    --gin_files=gin_configs/bc_max.gin
  # Corpus v2, with the large modules it leaves out added to validation (make full-run-v2):
  python -m compiler_opt.rl.imitation_learning.bc_max --data_path=build/corpus_v2 \
    --large_data_path=build/corpus_v2_large --root_dir=full_output_v2 \
    --gin_files=gin_configs/bc_max_full.gin --gin_files=gin_configs/splits_v2.gin

Input: an MLGO corpus, split by codebase (gin: splits.SplitPolicy; see compiler_opt/rl/splits.py); optionally a
corpus of the large modules it leaves out (--large_data_path), whose modules the split puts in validation join
validation, so that early stopping and the choice of the iteration weigh them, and, with gin's
`module_selection.load_splits.large_train_modules` (gin_configs/large_train.gin), some of those it puts in train join
train (module_selection.load_splits).
Output under --root_dir: iteration_<t>/ (trajectories, model/saved_policy in MLGO layout, per-module evaluation CSVs
per part), report.md with PNG plots, results.json. The last lines printed are the results table (train, validation,
test on unseen codebases, test on unseen files) and the chosen iteration's test figures by codebase.
Rerunning the same command resumes after the last finished step. The console shows one line per step, progress
bars, warnings and the table; the full log is root_dir/logs/bc_max.INFO.
"""

import os

from absl import app, flags, logging

from compiler_opt import console, gin_setup
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
_MAX_MODULES = flags.DEFINE_integer(
    "max_modules", None, "Use a fixed sample of this many modules, spread over the split's parts and codebases."
)
_LARGE_DATA_PATH = flags.DEFINE_string(
    "large_data_path",
    None,
    "Corpus of large modules --data_path leaves out; its validation modules join validation (train ones: gin).",
)
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value, log=False)
    # Bad input (a corpus that is not one, a bad split) stops the run before it writes anything.
    module_splits = module_selection.load_splits(_DATA_PATH.value, _MAX_MODULES.value, _LARGE_DATA_PATH.value)
    log_file = console.log_to_file(_ROOT_DIR.value, "bc_max")
    gin_setup.log_config()
    logging.info("split by codebase:\n%s", module_splits.describe())
    logging.info("full log: %s", log_file, extra=console.STEP)
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
        results = bc_max_lib.run(module_splits, _ROOT_DIR.value, executor, **overrides)
    path = report.write(_ROOT_DIR.value, results, module_splits)
    print()
    print(report.summary_text(results, module_splits))
    print(f"Report: {os.path.abspath(path)}")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
