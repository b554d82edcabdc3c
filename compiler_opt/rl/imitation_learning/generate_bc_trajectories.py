r"""Collects BC-MAX trajectories: every baseline (+ exploration) on every module; keeps each module's smallest.

Usage:
  python -m compiler_opt.rl.imitation_learning.generate_bc_trajectories \
    --data_path=build/default_corpus --output_dir=/tmp/bc \
    --baselines=heuristic --baselines=heuristic:threshold=50 --baselines=heuristic:threshold=500 \
    --gin_files=gin_configs/generate_bc_trajectories.gin --num_workers=2

Input: an MLGO corpus (corpus_description.json, NAME.bc, NAME.cmd).
Output (under --output_dir): records/*.tfrecord (one tf.train.SequenceExample per module), profiles.jsonl (per module,
per policy: size, horizon, seconds, status; the best), summary.json. Rerunning the same command resumes.
"""

import json

from absl import app, flags, logging

from compiler_opt import console, gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import module_selection, policies
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus directory.", required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where records and profiles go.", required=True)
_BASELINES = flags.DEFINE_multi_string(
    "baselines",
    ["heuristic", "heuristic:threshold=50", "heuristic:threshold=500"],
    "Baseline policy specs (heuristic, heuristic:threshold=N, saved:PATH, always, never).",
)
_SPLIT = flags.DEFINE_enum(
    "split", "all", module_selection.SPLITS, "Part of the corpus split (gin: splits.SplitPolicy) to collect."
)
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "Collect at most this many modules (a fixed sample).")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()
_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Compile cache directory (reused across runs).")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, e.g. 'collect.timeout_s=60'.")


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value, log=False)
    # Bad input (a corpus that is not one, an unknown baseline) stops the run before it writes anything.
    modules = module_selection.select(_DATA_PATH.value, _SPLIT.value, _MAX_MODULES.value)
    baselines = policies.parse_all(_BASELINES.value)
    console.log_to_file(_OUTPUT_DIR.value, "generate_bc_trajectories")
    gin_setup.log_config()
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        summary = generate_bc_trajectories_lib.collect(
            modules, baselines, _OUTPUT_DIR.value, executor, cache_dir=_CACHE_DIR.value
        )
    logging.info("summary: %s", json.dumps(summary, sort_keys=True))
    print(json.dumps(summary, indent=2, sort_keys=True))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
