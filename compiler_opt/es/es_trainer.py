r"""Trains the inlining-for-size policy with evolution strategies (ES), from a warm start or from scratch.

Usage (warm start from a BC policy, e.g. one cloned from the heuristic):
  python -m compiler_opt.es.es_trainer --data_path=build/default_corpus --root_dir=/tmp/es \
    --warm_start=/tmp/bc/saved_policy --num_steps=50 --gin_files=gin_configs/es.gin
From scratch, give the vocab (quantile `.buckets` files) instead: --vocab_dir=/tmp/bcmax/vocab. To resume, rerun
the same command (the initial policy is stored in --root_dir; --warm_start and --vocab_dir may then be left out).

Input: an MLGO corpus (trains on --split, the train part of the split by codebase by default); an exported policy
(MLGO `saved_policy` with its `fast_policy.npz`) or a vocab dir. Output under --root_dir: checkpoints/ (every step;
rerunning the same command resumes), train/ (TensorBoard), saved_policy/ and collect_policy/ (MLGO layout: use as
`saved:ROOT_DIR` in collection, evaluation and BC-MAX baselines), es_summary.json (printed at the end).
"""

import dataclasses
import json

from absl import app, flags

from compiler_opt import console, gin_setup
from compiler_opt.distributed import executors
from compiler_opt.es import es_trainer_lib
from compiler_opt.rl import module_selection

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus directory.", required=True)
_ROOT_DIR = flags.DEFINE_string("root_dir", None, "Output directory (resumable).", required=True)
_WARM_START = flags.DEFINE_string("warm_start", None, "Exported policy to start from (saved_policy dir or parent).")
_VOCAB_DIR = flags.DEFINE_string("vocab_dir", None, "Vocab to start from scratch with (when no --warm_start).")
_NUM_STEPS = flags.DEFINE_integer("num_steps", None, "ES steps in total (default: gin's es.ESConfig.num_steps).")
_SPLIT = flags.DEFINE_enum(
    "split", "train", module_selection.SPLITS, "Part of the corpus split (gin: splits.SplitPolicy) to train on."
)
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "Train on a fixed sample of this many modules.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show progress bars.")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value, log=False)
    # Bad input stops the run before it writes anything.
    modules = module_selection.select(_DATA_PATH.value, _SPLIT.value, _MAX_MODULES.value)
    console.log_to_file(_ROOT_DIR.value, "es_trainer")
    gin_setup.log_config()
    config = es_trainer_lib.ESConfig()
    if _NUM_STEPS.value is not None:
        config = dataclasses.replace(config, num_steps=_NUM_STEPS.value)
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        result = es_trainer_lib.train(
            modules,
            _ROOT_DIR.value,
            executor,
            warm_start=_WARM_START.value,
            vocab_dir=_VOCAB_DIR.value,
            config=config,
            progress=_PROGRESS.value,
        )
    summary = dataclasses.asdict(result)
    summary.pop("history")
    print(json.dumps(summary, indent=2))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
