r"""Evaluates an inlining policy against stock clang-22 -Oz on any MLGO-format corpus.

Usage:
  python -m compiler_opt.tools.evaluate_policy --data_path=build/default_corpus \
    --policy=saved:/tmp/bcmax/iteration_1/saved_policy --output=/tmp/eval/iter1 --split=test_unseen_codebases

Input: an MLGO corpus; a policy spec (heuristic, heuristic:threshold=N, saved:PATH, always, never).
--split picks a part of the corpus split by codebase (gin: splits.SplitPolicy, as in bc_max): train, validation,
test_unseen_codebases, test_unseen_files, test (both test parts) or all.
Output: OUTPUT.csv (module, oz_size, policy_size, delta, ratio, status; sizes in bytes of llvm-size text),
OUTPUT.summary.json (total size ratio policy/-Oz, geometric mean of per-module ratios, smaller/equal/larger counts,
failures) and OUTPUT.by_codebase.json (the same per codebase). Printed: the summary, with "by_codebase": {codebase:
{total_ratio, smaller, larger, modules}}.
"""

import dataclasses
import json

from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import evaluate_policy_lib, module_selection, policies

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus directory.", required=True)
_POLICY = flags.DEFINE_string("policy", None, "Policy spec to evaluate.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Output prefix: OUTPUT.csv and OUTPUT.summary.json.", required=True)
_SPLIT = flags.DEFINE_enum(
    "split", "all", module_selection.SPLITS, "Part of the corpus split (gin: splits.SplitPolicy) to evaluate."
)
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "Evaluate at most this many modules (a fixed sample).")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()
_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Compile cache directory (reused across runs).")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    modules = module_selection.select(_DATA_PATH.value, _SPLIT.value, _MAX_MODULES.value)
    policy = policies.parse(_POLICY.value)
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        evaluations, summary = evaluate_policy_lib.evaluate(modules, policy, executor, cache_dir=_CACHE_DIR.value)
    evaluate_policy_lib.write(_OUTPUT.value, evaluations, summary)
    by_codebase = evaluate_policy_lib.summarize_by_codebase(summary.policy, evaluations)
    printed = dataclasses.asdict(summary)
    printed["by_codebase"] = {
        c: {"total_ratio": s.total_ratio, "smaller": s.smaller, "larger": s.larger, "modules": s.modules}
        for c, s in by_codebase.items()
    }
    print(json.dumps(printed, indent=2))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
