r"""The policy on the large modules that corpus v2 leaves out: the slow TUs of codebases held out from training.

Usage:
  nice -n 10 .venv/bin/python bench/large_modules.py [--codebases=xgboost,lightgbm,capstone] \
      [--policy=saved:models/inliner_size] [--baselines=heuristic:threshold=25 ...] [--max_compile_seconds=120] \
      [--root_dir=/tmp/bcmax_large_modules] [--num_workers=2]

Corpus v2 leaves out every TU whose stock -Oz compile took more than 3 s of CPU (the pinned list
compiler_opt/rl/corpus_v2_slow.json), and those are mostly the largest, template-heavy C++ modules, which decide a
program's total size. This bench builds the codebases of --codebases again without that list (every TU kept unless
its compile takes more than --max_compile_seconds of CPU; a separate entry of the corpus v2 cache, so a rerun
compiles nothing), keeps the modules the pinned list left out, and plays on each: stock clang-22 -Oz, the policy
(a spec of compiler_opt/rl/policies.py; the shipped model by default) and every baseline alone. Compiles are
cached under --root_dir (resumable). The default codebases are the unseen test codebases of gin_configs/splits_v2.gin
that have slow TUs (libuv has none): no policy trained on them, and nothing is chosen by this figure.

Prints JSON: the modules (count and stock -Oz text bytes per codebase), and per codebase and over all of them each
player's total text size over stock -Oz's (a failed compile counts at its -Oz size) with its modules smaller/larger
than -Oz, the per-module best of the baselines and -Oz (`oracle_of_baselines`), and the compiles that failed.
"""

import json
import os
import tempfile

from absl import app, flags

from compiler_opt.distributed import executors
from compiler_opt.rl import corpus, corpus_v2_lib, corpus_v2_recipes, evaluate_policy_lib, policies, splits

_CODEBASES = flags.DEFINE_list("codebases", ["xgboost", "lightgbm", "capstone"], "Codebases whose slow TUs to play.")
_POLICY = flags.DEFINE_string("policy", "saved:models/inliner_size", "The policy spec (compiler_opt/rl/policies.py).")
_BASELINES = flags.DEFINE_multi_string(
    "baselines",
    ["heuristic:threshold=10", "heuristic:threshold=25", "heuristic:threshold=40", "heuristic:threshold=100"],
    "Baselines played alone beside the policy.",
)
_MAX_COMPILE_SECONDS = flags.DEFINE_float("max_compile_seconds", 120.0, "CPU seconds over which a TU is left out.")
_ROOT_DIR = flags.DEFINE_string("root_dir", None, "Compile cache (default: a new temporary directory).")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()


def slow_module_names(codebases) -> set[str]:
    """Module names of the TUs the pinned slow list leaves out of `codebases`."""
    pinned = corpus_v2_lib.read_slow_list(corpus_v2_lib.SLOW_LIST_FILE)
    recipes = {c.name: c for c in corpus_v2_recipes.CODEBASES}
    names = set()
    for name in codebases:
        if name not in recipes:
            raise app.UsageError(f"--codebases: {name!r} is not a codebase of corpus v2 ({sorted(recipes)})")
        paths = pinned.codebases.get(name, ())
        names |= set(corpus_v2_lib.module_names(recipes[name], paths).values())
    return names


def _totals(evaluations, oz_sizes) -> dict:
    """Total over stock -Oz (a failed compile counts at -Oz's size), modules smaller/larger, failures."""
    total = sum(oz_sizes.values())
    size = smaller = larger = failed = 0
    for name, oz in oz_sizes.items():
        e = evaluations.get(name)
        ok = e is not None and e.ok
        failed += not ok
        s = e.policy_size if ok else oz
        size += s
        smaller += s < oz
        larger += s > oz
    return {"ratio": size / total if total else None, "smaller": smaller, "larger": larger, "failed": failed}


def main(argv):
    del argv
    wanted = slow_module_names(_CODEBASES.value)
    corpus_dir, stats = corpus_v2_lib.build_corpus_v2(
        selection=corpus_v2_lib.Selection(codebases=tuple(_CODEBASES.value)),
        slow_list=None,
        max_compile_seconds=_MAX_COMPILE_SECONDS.value,
    )
    modules = [m for m in corpus.Corpus.load(corpus_dir).modules if m.name in wanted]
    root_dir = os.path.abspath(_ROOT_DIR.value or tempfile.mkdtemp(prefix="bcmax_large_modules_"))
    cache_dir = os.path.join(root_dir, "compile_cache")
    players = {"policy": policies.parse(_POLICY.value), **{b: policies.parse(b) for b in _BASELINES.value}}
    evaluations = {}
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        for key, policy in players.items():
            results, _ = evaluate_policy_lib.evaluate(modules, policy, executor, cache_dir=cache_dir)
            evaluations[key] = {e.module: e for e in results}
    # Stock -Oz sizes: every evaluation compiles stock clang-22 on the module (cached once).
    oz = {}
    for per_module in evaluations.values():
        for name, e in per_module.items():
            if e.oz_size is not None:
                oz[name] = e.oz_size
    groups = {"all": sorted(oz)}
    for name in sorted(oz):
        groups.setdefault(splits.codebase_of(name), []).append(name)
    out = {
        "benchmark": "large_modules",
        "corpus_dir": corpus_dir,
        "build": {"compiled": stats.compiled, "wall_seconds": stats.wall_seconds},
        "policy": players["policy"].name,
        "slow_tus_left_out_of_corpus_v2": len(wanted),
        "built": len(modules),
        "groups": {},
    }
    for group, names in groups.items():
        group_oz = {n: oz[n] for n in names}
        entry = {
            "modules": len(names),
            "oz_text_bytes": sum(group_oz.values()),
            "largest_module_bytes": max(group_oz.values()),
            "players": {key: _totals(evaluations[key], group_oz) for key in players},
        }
        best = 0
        for n, size in group_oz.items():
            sizes = [size] + [
                evaluations[b][n].policy_size for b in _BASELINES.value if n in evaluations[b] and evaluations[b][n].ok
            ]
            best += min(sizes)
        entry["oracle_of_baselines"] = best / sum(group_oz.values()) if group_oz else None
        out["groups"][group] = entry
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
