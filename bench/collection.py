r"""Throughput of BC-MAX trajectory collection on the default corpus, against the physical floor.

Usage:
  .venv/bin/python bench/collection.py [--data_path=CORPUS] [--max_modules=N] [--num_workers=2]
      [--executor=local|ray] [--ray_address=auto | --ray_loopback_nodes=N]

Collects with 4 baselines (-Oz heuristic and thresholds 25, 100, 225), 2 explorations around each module's best
trajectory and the stock -Oz reference compile, no compile cache. Then compiles every module once more with stock
clang-22 on the same executor and counts the floor: the sum of stock compile seconds of the same compiles (per module:
its stock time x its compiles), divided by the workers. Prints JSON: modules/s, compiles/s, wall time, floor, ratio
wall/floor, and the oracle (total size of the per-module best of baselines and explorations / the stock -Oz total).

With --executor=ray, the same collection first runs on the local executor with --num_workers workers (give the
Ray cluster as many CPUs), and the JSON adds the local throughput and ray_vs_local = Ray modules/s / local
modules/s (goal >= 0.9 on one machine: Ray's overhead must be small). --ray_loopback_nodes=N starts a throwaway
N-node cluster on this machine (loopback addresses 127.0.0.2...) sharing --num_workers CPUs, instead of joining
--ray_address.
"""

import contextlib
import json
import os
import tempfile
import time

from absl import app, flags

from compiler_opt.distributed import executors, local, ray_executor
from compiler_opt.distributed.ray_cluster import LoopbackCluster
from compiler_opt.rl import env, module_selection, policies
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib, profiles

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus (default: the default corpus, built if needed).")
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "Use a fixed sample of this many modules.")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()
_RAY_LOOPBACK_NODES = flags.DEFINE_integer(
    "ray_loopback_nodes", 0, "With --executor=ray: start a throwaway cluster of this many nodes on loopback (0: join)."
)

BASELINES = ("heuristic", "heuristic:threshold=25", "heuristic:threshold=100", "heuristic:threshold=225")
EXPLORATIONS = 2


def stock_compile(module):
    return module.name, env.compile_plain(module)


def collect(modules, executor, out):
    """Returns the run summary and its wall seconds."""
    start = time.monotonic()
    summary = generate_bc_trajectories_lib.collect(
        modules,
        policies.parse_all(BASELINES),
        out,
        executor,
        max_exploration_steps=EXPLORATIONS,
        progress=False,
    )
    return summary, time.monotonic() - start


def main(argv):
    del argv
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    modules = module_selection.select(data_path, max_modules=_MAX_MODULES.value)
    num_workers = _NUM_WORKERS.value or os.cpu_count()
    nodes = _RAY_LOOPBACK_NODES.value
    local_wall = None
    if _EXECUTOR.value == "ray":  # Before our loopback cluster starts: its idle processes must not slow the local run.
        with local.LocalExecutor(num_workers) as local_executor, tempfile.TemporaryDirectory() as out:
            _, local_wall = collect(modules, local_executor, out)
    with contextlib.ExitStack() as stack:
        if _EXECUTOR.value == "ray" and nodes > 0:
            cluster = stack.enter_context(LoopbackCluster(nodes=nodes, cpus_per_node=max(1, num_workers // nodes)))
            executor = ray_executor.RayExecutor(cluster.address, node_ip_address=cluster.head_ip)
        else:
            executor = executors.make(_EXECUTOR.value, num_workers, _RAY_ADDRESS.value)
        stack.enter_context(executor)
        out = stack.enter_context(tempfile.TemporaryDirectory())
        summary, wall = collect(modules, executor, out)
        module_profiles = profiles.read_jsonl(os.path.join(out, generate_bc_trajectories_lib.PROFILES_FILE))
        by_name = {m.name: m for m in modules}
        stock = dict(r for _, r in executor.map_unordered(stock_compile, [by_name[p.module] for p in module_profiles]))
    compiles = {p.module: len(p.results) + 1 for p in module_profiles}  # + the stock compile
    floor_sum = sum(stock[name].compile_seconds * n for name, n in compiles.items() if stock[name].ok)
    total_compiles = sum(compiles.values())
    comparison = {}
    if local_wall is not None:
        comparison = {
            "local_workers": num_workers,
            "local_wall_seconds": round(local_wall, 2),
            "local_modules_per_second": round(len(modules) / local_wall, 3),
            "ray_vs_local": round(local_wall / wall, 3),
            "goal_ray_vs_local": 0.9,
        }
    print(
        json.dumps(
            {
                "benchmark": "collection",
                "executor": _EXECUTOR.value,
                "workers": executor.num_workers,
                "modules": len(modules),
                "baselines": list(BASELINES),
                "max_exploration_steps": EXPLORATIONS,
                "compiles": total_compiles,
                "wall_seconds": round(wall, 2),
                "modules_per_second": round(len(modules) / wall, 3),
                "compiles_per_second": round(total_compiles / wall, 3),
                "stock_compile_seconds_same_compiles": round(floor_sum, 2),
                "floor_wall_seconds": round(floor_sum / executor.num_workers, 2),
                "ratio_to_floor": round(wall / (floor_sum / executor.num_workers), 3),
                "oz_total": summary["oz_total"],
                "oracle_total": summary["oracle_total"],
                "oracle_ratio": summary["oracle_ratio"],
                "wins": summary["wins"],
                "failed_modules": summary["failed_modules"],
                **comparison,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    app.run(main)
