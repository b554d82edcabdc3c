r"""Cost of driving clang-22 from Python: stock compiles vs interactive compiles playing the heuristic.

Usage:
  .venv/bin/python bench/compile_overhead.py [--data_path=CORPUS] [--max_modules=N]

Compiles every module of the corpus (default: the default corpus) once with its own command (stock clang-22 -Oz) and
once in interactive mode answering every decision with `inlining_default`, alternating the order per module, one
compile at a time. Prints JSON: total seconds of each (until clang exits, and including the llvm-size scoring),
their ratio (goal <= 1.10), decisions, host overhead per decision, and whether every size matched.
"""

import json
import sys

from absl import app, flags

from compiler_opt.rl import env, module_selection, policies

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus (default: the default corpus, built if needed).")
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "Use a fixed sample of this many modules.")


def main(argv):
    del argv
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    modules = module_selection.select(data_path, max_modules=_MAX_MODULES.value)
    heuristic = policies.parse("heuristic")
    totals = {"stock": 0.0, "interactive": 0.0, "stock_scored": 0.0, "interactive_scored": 0.0}
    decisions, mismatches, failures = 0, [], []
    for i, module in enumerate(modules):
        runs = {}
        order = ("stock", "interactive") if i % 2 == 0 else ("interactive", "stock")
        for kind in order:
            runs[kind] = env.compile_plain(module) if kind == "stock" else env.compile_module(module, heuristic)
        if not all(r.ok for r in runs.values()):
            failures.append(module.name)
            continue
        for kind, r in runs.items():
            totals[kind] += r.compile_seconds
            totals[kind + "_scored"] += r.seconds
        decisions += runs["interactive"].horizon
        if runs["stock"].text_size != runs["interactive"].text_size:
            mismatches.append(module.name)
    overhead = totals["interactive"] - totals["stock"]
    print(
        json.dumps(
            {
                "benchmark": "compile_overhead",
                "corpus": data_path,
                "modules": len(modules),
                "failures": failures,
                "decisions": decisions,
                "stock_seconds": round(totals["stock"], 3),
                "interactive_seconds": round(totals["interactive"], 3),
                "ratio": round(totals["interactive"] / totals["stock"], 4),
                "ratio_with_scoring": round(totals["interactive_scored"] / totals["stock_scored"], 4),
                "overhead_us_per_decision": round(1e6 * overhead / decisions, 2) if decisions else None,
                "sizes_match": not mismatches,
                "size_mismatches": mismatches,
                "goal_ratio": 1.10,
            },
            indent=2,
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    app.run(main)
