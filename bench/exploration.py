r"""Does exploration pay? The oracle with and without exploration, at equal exploration compiles.

Usage:
  nice -n 10 .venv/bin/python bench/exploration.py [--data_path=CORPUS] [--split=train] [--max_modules=N]
      [--num_workers=2] [--cache_dir=DIR] [--explorer=heuristic_margin|saved:PATH] [--steps=2] [--regions=4]
      [--gin_files=gin_configs/splits_v2.gin]

--gin_files: gin files read before the split is made (e.g. corpus v2's split, gin_configs/splits_v2.gin).

On the split's modules, with BC-MAX's default baselines (gin_configs/bc_max.gin: -Oz and thresholds 25, 100, 225):
  baselines  the per-module best baseline (no exploration);
  chain      + `--steps` flips chained around each module's best baseline (exploration.explore, today's collector);
  budgeted   + the same total number of exploration compiles as `chain` spent, shared out by
               budgeted_exploration.allocate (decisions and spread between baselines) and spent over `--regions`
               trajectory regions with hill climbing;
  uniform    + the same total again, budgeted_exploration.explore with an equal share per module with decisions
               (separates the allocation's effect from the regions').
Prints JSON: per setting, oracle total (bytes), oracle / -Oz, exploration compiles, bytes saved per exploration
compile, modules improved by exploration; and the allocation's budget per module-size bucket.
"""

import json
import os
import tempfile
import time

from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import module_selection, policies
from compiler_opt.rl.imitation_learning import budgeted_exploration as be
from compiler_opt.rl.imitation_learning import exploration
from compiler_opt.rl.inlining import task as task_lib

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus (default: the default corpus, built if needed).")
_SPLIT = flags.DEFINE_string("split", "train", "Which modules: all or a part of the split (module_selection.SPLITS).")
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "Use a fixed sample of this many modules.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Compile cache (default: a temporary directory).")
_EXPLORER = flags.DEFINE_string("explorer", "heuristic_margin", "Exploring policy: heuristic_margin or saved:PATH.")
_STEPS = flags.DEFINE_integer("steps", 2, "Chained flips per module of the `chain` setting (bc_max.gin: 2).")
_REGIONS = flags.DEFINE_integer("regions", 4, "Trajectory regions of the budgeted explorer.")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin files (the split policy), e.g. splits_v2.gin.")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()

BASELINES = ("heuristic", "heuristic:threshold=25", "heuristic:threshold=100", "heuristic:threshold=225")


def _run(executor, modules, make_job):
    return {o.module: o for _, o in executor.map_unordered(be.explore_module, [make_job(m) for m in modules])}


def _setting(outcomes, oz) -> dict:
    base_total = explored_total = compiles = improved = 0
    for name, o in outcomes.items():
        if name not in oz:
            continue
        base = min(s for s in o.baseline_sizes.values() if s is not None)
        best = min(base, o.explored_size) if o.explored_size is not None else base
        base_total += base
        explored_total += best
        compiles += o.compiles
        improved += best < base
    oz_total = sum(oz.values())
    return {
        "oracle_total": explored_total,
        "oracle_ratio": round(explored_total / oz_total, 6),
        "exploration_compiles": compiles,
        "bytes_saved_by_exploration": base_total - explored_total,
        "bytes_saved_per_exploration_compile": round((base_total - explored_total) / compiles, 3) if compiles else None,
        "modules_improved": improved,
    }


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, [])
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    modules = module_selection.select(data_path, split=_SPLIT.value, max_modules=_MAX_MODULES.value)
    baselines = tuple(policies.parse_all(BASELINES))
    explorer = exploration.parse_explorer(_EXPLORER.value)
    task = task_lib.InliningForSizeTask()
    start = time.monotonic()
    with (
        executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor,
        tempfile.TemporaryDirectory() as tmp,
    ):
        cache_dir = _CACHE_DIR.value or os.path.join(tmp, "cache")

        def job(strategy, budget=None):
            return lambda m: be.ExploreJob(
                m, baselines, explorer, strategy, budget(m) if budget else None, _REGIONS.value, cache_dir, 600.0, task
            )

        base = _run(executor, modules, job("none"))
        oz = {n: o.baseline_sizes["heuristic"] for n, o in base.items() if o.baseline_sizes["heuristic"] is not None}
        chain = _run(executor, modules, job("chain", lambda m: _STEPS.value))
        total = sum(o.compiles for o in chain.values())
        config = be.BudgetConfig(regions=_REGIONS.value, max_per_module=max(16, 4 * _STEPS.value))
        stats = [o.stats for o in base.values()]
        allocated = be.allocate(stats, total, config)
        budgeted = _run(executor, modules, job("budgeted", lambda m: allocated[m.name]))
        explorable = [s for s in stats if s.decisions > 0]
        even = {s.module: total // len(explorable) + (i < total % len(explorable)) for i, s in enumerate(explorable)}
        uniform = _run(executor, modules, job("budgeted", lambda m: min(even.get(m.name, 0), base[m.name].decisions)))
    buckets = {}
    for s in stats:
        key = "<100" if s.decisions < 100 else "100-999" if s.decisions < 1000 else ">=1000"
        b = buckets.setdefault(key, {"modules": 0, "budget": 0, "oz_bytes": 0})
        b["modules"] += 1
        b["budget"] += allocated[s.module]
        b["oz_bytes"] += oz.get(s.module, 0)
    accepted = sum(r.accepted for o in budgeted.values() for r in o.records)
    print(
        json.dumps(
            {
                "benchmark": "exploration",
                "data_path": data_path,
                "split": _SPLIT.value,
                "modules": len(oz),
                "modules_with_decisions": len(explorable),
                "baselines": list(BASELINES),
                "explorer": _EXPLORER.value,
                "oz_total": sum(oz.values()),
                "settings": {
                    "baselines": _setting(base, oz),
                    f"chain_{_STEPS.value}_steps": _setting(chain, oz),
                    f"budgeted_{_REGIONS.value}_regions": _setting(budgeted, oz),
                    f"uniform_{_REGIONS.value}_regions": _setting(uniform, oz),
                },
                "budgeted_accepted_flips": accepted,
                "allocation_by_decisions": buckets,
                "wall_seconds": round(time.monotonic() - start, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    app.run(main)
