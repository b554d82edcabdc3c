r"""Which LLVM inliner options change clang-22's -Oz inlining decisions, measured on real modules.

Usage:
  nice -n 10 .venv/bin/python bench/baseline_flags.py [--data_path=CORPUS] [--split=train] [--max_modules=N]
      [--num_workers=2] [--cache_dir=DIR]

Compiles each module of the split under the stock -Oz heuristic and under `heuristic:OPTION=VALUE` for every entry
of SPECS (each option of policies.HEURISTIC_OPTIONS at a value below and/or above its default), and compares.
Prints JSON: per spec, modules whose decision sequence differs from -Oz's (`decisions_changed`), modules whose size
differs, modules where it is smaller than -Oz, its total text size over -Oz's; and per option whether any of its
values changed a decision (`changes_decisions`).
"""

import json
import time

from absl import app, flags

from compiler_opt.distributed import executors
from compiler_opt.rl import baseline_selection, module_selection, policies

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus (default: the default corpus, built if needed).")
_SPLIT = flags.DEFINE_string("split", "train", "Which modules: all or a part of the split (module_selection.SPLITS).")
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "Use a fixed sample of this many modules.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Compile cache (shared with select_baselines; none by default).")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()

# Each inliner option at values on both sides of its LLVM default (defaults from InlineCost.cpp's cl::opt inits).
SPECS = (
    "heuristic:threshold=25",  # -Oz's own threshold is 5 (InlineConstants::OptMinSizeThreshold)
    "heuristic:threshold=225",
    "heuristic:inlinedefault-threshold=25",  # default 225
    "heuristic:inlinedefault-threshold=1000",
    "heuristic:inlinehint-threshold=0",  # default 325
    "heuristic:inlinehint-threshold=1000",
    "heuristic:inlinecold-threshold=0",  # default 45
    "heuristic:inlinecold-threshold=500",
    "heuristic:inline-cold-callsite-threshold=0",  # default 45
    "heuristic:inline-cold-callsite-threshold=500",
    "heuristic:hot-callsite-threshold=0",  # default 3000
    "heuristic:locally-hot-callsite-threshold=0",  # default 525
    "heuristic:locally-hot-callsite-threshold=5000",
    "heuristic:cold-callsite-rel-freq=50",  # default 2 (percent)
    "heuristic:hot-callsite-rel-freq=1",  # default 60
    "heuristic:inline-instr-cost=2",  # default 5
    "heuristic:inline-instr-cost=10",
    "heuristic:inline-memaccess-cost=5",  # default 0
    "heuristic:inline-call-penalty=0",  # default 25
    "heuristic:inline-call-penalty=100",
    "heuristic:inline-asm-instr-cost=100",  # default 0
    "heuristic:inline-max-stacksize=64",  # default unlimited (bytes)
    "heuristic:recursive-inline-max-stacksize=0",  # default InlineConstants::TotalAllocaSizeRecursiveCaller
    "heuristic:inline-savings-multiplier=1",  # default 8; used by the cost-benefit analysis only
    "heuristic:inline-savings-multiplier=64",
    "heuristic:inline-savings-profitable-multiplier=1",  # default 4
    "heuristic:inline-size-allowance=1000",  # default 100
    "heuristic:inline-enable-cost-benefit-analysis=true",  # default false
    "heuristic:inline-cost-full=true",  # default false
    "heuristic:inline-caller-superset-nobuiltin=false",  # default true
    "heuristic:disable-gep-const-evaluation=true",  # default false
)


def compare(measurements, specs) -> dict:
    per_spec = {}
    options: dict[str, bool] = {}
    for spec in specs:
        name = policies.parse(spec).name
        per_spec[name] = baseline_selection.candidate_summary(measurements, name)
        option = name.split(":", 1)[1].split("=", 1)[0]
        options[option] = options.get(option, False) or per_spec[name]["decisions_changed"] > 0
    oz_ok = [m for m in measurements if m.policy == baseline_selection.OZ and m.size is not None]
    return {"modules": len(oz_ok), "specs": per_spec, "changes_decisions": options}


def main(argv):
    del argv
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    modules = module_selection.select(data_path, split=_SPLIT.value, max_modules=_MAX_MODULES.value)
    start = time.monotonic()
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        measurements = baseline_selection.measure(modules, SPECS, executor, cache_dir=_CACHE_DIR.value)
    result = compare(measurements, SPECS)
    result.update(
        benchmark="baseline_flags",
        data_path=data_path,
        split=_SPLIT.value,
        compiles=len(measurements),
        wall_seconds=round(time.monotonic() - start, 1),
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
