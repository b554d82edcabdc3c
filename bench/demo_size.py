r"""How many modules per codebase the demo samples: its policy judged on the whole validation part of corpus v2.

Usage:
  nice -n 10 .venv/bin/python bench/demo_size.py --data_path=CORPUS_V2 [--root_dir=/tmp/bcmax_demo_size] \
      [--per_codebase=5 --per_codebase=10 --per_codebase=15] [--gin_files=gin_configs/demo.gin] \
      [--gin_files=gin_configs/splits_v2.gin] [--num_workers=2]

For each N in --per_codebase: the demo's corpus with N modules of each codebase of corpus v2 (what `make demo` builds
with DEMO_PER_CODEBASE=N: `corpus_v2_lib.Selection`, sample seed 0; TUs come from the shared cache), the BC-MAX loop
on it with the gin files (`make demo`'s by default) into ROOT_DIR/per_codebase_N (resumable), and the policy of the
iteration it chose on its own validation modules evaluated on every module of the validation part of --data_path (the
whole corpus v2 split by the same gin files). The demo's modules of each part are modules of the same part of the
whole corpus (the split is a function of the module names), so that validation part holds no module any of these
policies trained on. Only validation is read: the result may choose N.

Prints JSON: per N the demo's module counts per part, the loop's wall seconds in this call (a finished loop is only
read again), its per-iteration total ratios over -Oz on its own parts, the chosen iteration, and the chosen policy's
total ratio over -Oz (with modules smaller/larger) on the whole validation part.
"""

import json
import os
import tempfile
import time

import gin
from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import corpus_v2_lib, evaluate_policy_lib, module_selection, policies
from compiler_opt.rl import splits as splits_lib
from compiler_opt.rl.imitation_learning import bc_max_lib

_DATA_PATH = flags.DEFINE_string("data_path", None, "The whole corpus v2 (`make corpus_v2`).", required=True)
_ROOT_DIR = flags.DEFINE_string("root_dir", None, "Where the loops write (default: a new temporary directory).")
_PER_CODEBASE = flags.DEFINE_multi_integer("per_codebase", [5, 10, 15], "Modules per codebase of each demo corpus.")
_GIN_FILES = flags.DEFINE_multi_string(
    "gin_files", ["gin_configs/demo.gin", "gin_configs/splits_v2.gin"], "The loop's gin files (make demo's)."
)
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()


def _part(result: bc_max_lib.IterationResult) -> dict:
    return {p: result.ratio(p) for p in splits_lib.PARTS}


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    validation = list(module_selection.load_splits(_DATA_PATH.value).validation)
    root_dir = os.path.abspath(_ROOT_DIR.value or tempfile.mkdtemp(prefix="bcmax_demo_size_"))
    out = {
        "benchmark": "demo_size",
        "data_path": os.path.abspath(_DATA_PATH.value),
        "root_dir": root_dir,
        "gin_files": _GIN_FILES.value,
        "validation_modules": len(validation),
        "per_codebase": {},
    }
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        for n in _PER_CODEBASE.value:
            gin.clear_config()
            gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value, log=False)
            demo_dir, _ = corpus_v2_lib.build_corpus_v2(selection=corpus_v2_lib.Selection(max_modules=n))
            demo = module_selection.load_splits(demo_dir)
            run_dir = os.path.join(root_dir, f"per_codebase_{n}")
            start = time.monotonic()
            results = bc_max_lib.run(demo, run_dir, executor, progress=False)
            seconds = time.monotonic() - start
            chosen = bc_max_lib.best_iteration(results)
            evaluations, summary = evaluate_policy_lib.evaluate(
                validation,
                policies.parse(chosen.policy),
                executor,
                cache_dir=os.path.join(run_dir, "compile_cache"),
                progress=False,
            )
            out["per_codebase"][str(n)] = {
                "modules": {p: len(demo.part(p)) for p in splits_lib.PARTS},
                "loop_seconds": round(seconds, 1),
                "iterations": [{"iteration": r.iteration, **_part(r)} for r in results],
                "chosen_iteration": chosen.iteration,
                "whole_validation": {
                    "ratio": summary.total_ratio,
                    "smaller": summary.smaller,
                    "larger": summary.larger,
                    "evaluated": summary.evaluated,
                },
            }
            print(json.dumps({n: out["per_codebase"][str(n)]}), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
