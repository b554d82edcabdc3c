r"""Chooses BC-MAX's baselines: measures candidate heuristic settings on the train split and picks K greedily.

Usage:
  python -m compiler_opt.tools.select_baselines --data_path=CORPUS --output_dir=/tmp/select \
    --gin_files=gin_configs/select_baselines.gin [--split=train] [--cache_dir=DIR] [--num_workers=2]

Input: an MLGO corpus; candidate policy specs and K from gin (`select_baselines.run`, see
compiler_opt/rl/baseline_selection.py). Output under --output_dir: measurements.jsonl (one compile per line: module,
policy, text size in bytes, decisions, digest of the decisions), selection.json (the oracle over -Oz as K grows,
bytes saved per extra compile, per-candidate wins) and baselines.gin (`bc_max.run.baselines = (...)`, to include
in a bc_max run). The report is also printed. Choose on the train split only.
"""

import json

from absl import app, flags

from compiler_opt import console, gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import baseline_selection, module_selection

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus directory (default: the default corpus).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where measurements, report and gin file go.", required=True)
_SPLIT = flags.DEFINE_enum("split", "train", module_selection.SPLITS, "Which modules to measure on.")
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "Measure on a fixed sample of this many modules.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Compile cache directory (reused across runs).")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value, log=False)
    # Bad input stops the run before it writes anything.
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    modules = module_selection.select(data_path, split=_SPLIT.value, max_modules=_MAX_MODULES.value)
    console.log_to_file(_OUTPUT_DIR.value, "select_baselines")
    gin_setup.log_config()
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        report = baseline_selection.run(
            modules,
            executor,
            _OUTPUT_DIR.value,
            source=f"{data_path} ({_SPLIT.value} split)",
            cache_dir=_CACHE_DIR.value,
        )
    print(json.dumps(report, indent=2))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
