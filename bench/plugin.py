r"""The exported pass plugin on a corpus: the model shipped decides as the model measured, and what it costs.

Usage:
  .venv/bin/python bench/plugin.py --export_dir=runs/x/export      # an export_model output (of its manifest's policy)
  .venv/bin/python bench/plugin.py --policy=runs/x/saved_policy    # exports it first, into a temporary directory
  options: [--data_path=CORPUS] [--max_modules=N] [--nobreakdown] [--noequality] [--num_workers=2]

Equality (compiler_opt.tools.shipped_model_lib): every module compiled three times, in interactive mode answered by
the policy's numpy path (fast_policy.npz, as collection and evaluation play it) and by its TF SavedModel, and with
the plugin; prints `equality`: modules_identical / modules_total (all three objects byte-identical), the decisions
compared (numpy vs SavedModel at every state of the SavedModel compile), how many differ, how many of those lie
outside the near ties (|logit margin| >= saved_policy.TIE_MARGIN; must be 0) and the near ties, and the modules
whose plugin or SavedModel object differs. The SavedModel answers each decision with a TensorFlow call, so this
part takes minutes on a whole corpus; it runs on --num_workers processes.

Timing: every module of the corpus (default: the default corpus) compiled from its `.cmd`, one compile at a time, once
stock and once with `-fpass-plugin=libbcmax_inliner.so`, alternating the order per module. Times are the compiler's
CPU time (user + system of the child process, robust to other load on the machine) and wall time. With --breakdown
(default) every module is compiled once more each way with `-ftime-report`, and the LLVM passes and analyses whose
summed time grows most with the plugin are listed. The model runs inside InlinerPass, next to the ML advisor's own
per-call-site cost analyses; LoopAnalysis and FunctionPropertiesAnalysis are what the advisor recomputes after each
inlining. The policy's decisions differ from the heuristic's, so later passes also see other code: read the inliner's
rows first.

Prints JSON: `equality` (above), modules, stock/plugin CPU and wall seconds, ratio_cpu (the goal is <= 1.05) and
ratio_wall, per-module CPU ratio quantiles and the worst modules, total text size both ways (bytes), the plugin's size
(bytes) and exported symbols, and `breakdown` (top timers by added seconds).
"""

import json
import os
import re
import resource
import subprocess
import tempfile
import time

import numpy as np
from absl import app, flags

from compiler_opt.distributed import executors
from compiler_opt.rl import module_selection
from compiler_opt.rl.inlining import task as task_lib
from compiler_opt.tools import export_model_lib, shipped_model_lib

_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "Output of compiler_opt.tools.export_model.")
_POLICY = flags.DEFINE_string("policy", None, "saved_policy to export first (when --export_dir is not given).")
_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus (default: the default corpus, built if needed).")
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "Use a fixed sample of this many modules.")
_BREAKDOWN = flags.DEFINE_bool("breakdown", True, "Also compile with -ftime-report and list the timers that grow.")
_EQUALITY = flags.DEFINE_bool("equality", True, "Check that numpy path, SavedModel and plugin agree on every module.")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()
_TOP = 12
_GOAL_RATIO = 1.05
_TIMER_LINE = re.compile(r"^((?:\s*[\d.]+ \(\s*[\d.]+%\)){3,4})\s+(\S.*)$")
_TIMER_VALUE = re.compile(r"([\d.]+) \(\s*[\d.]+%\)")


def _compile(module, obj_path: str, extra_args=()) -> tuple[float, float, str]:
    """Runs one compile; returns (CPU seconds of the compiler, wall seconds, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(
        module.command("clang-22", obj_path, tuple(extra_args)), capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{module.name}: clang failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, proc.stderr


def parse_time_report(text: str) -> dict[tuple[str, str], float]:
    """User+system seconds per (report title, timer name) in clang's -ftime-report output (totals excluded)."""
    timers: dict[tuple[str, str], float] = {}
    title, lines = "", text.splitlines()
    for i, line in enumerate(lines):
        # A report's title sits between two ===---=== rules.
        if line.startswith("===-") and i + 2 < len(lines) and lines[i + 2].startswith("===-"):
            title = lines[i + 1].strip()
        match = _TIMER_LINE.match(line)
        if match is None or match.group(2).strip() == "Total":
            continue
        values = [float(v) for v in _TIMER_VALUE.findall(match.group(1))]
        # Columns: user, [system,] user+system, wall: the one before wall is the CPU total.
        key = (title, match.group(2).strip())
        timers[key] = timers.get(key, 0.0) + values[-2]
    return timers


def _export(tmp: str) -> str:
    if _EXPORT_DIR.value:
        return _EXPORT_DIR.value
    if not _POLICY.value:
        raise app.UsageError("give --export_dir (an export_model output) or --policy (a saved_policy to export)")
    out = os.path.join(tmp, "export")
    export_model_lib.export_policy(_POLICY.value, out, bazel_package=False)
    return out


def _equality(modules, export_dir: str, plugin: str) -> dict:
    """The shipped-model check of every module (shipped_model_lib), as JSON."""
    with open(os.path.join(export_dir, export_model_lib.MANIFEST_FILENAME)) as f:
        policy = _POLICY.value or export_model_lib.ExportManifest.from_json(f.read()).policy
    start = time.monotonic()
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        checks, summary = shipped_model_lib.check(modules, policy, plugin, executor)
    return {
        "policy": policy,
        "modules_total": summary.modules_total,
        "modules_identical": summary.modules_identical,
        "modules_failed": list(summary.modules_failed),
        "decisions": summary.decisions,
        "inlined": summary.inlined,
        "differing_decisions": summary.differing_decisions,
        "differing_outside_ties": summary.differing_outside_ties,
        "near_ties": summary.near_ties,
        "tie_margin": summary.tie_margin,
        "plugin_objects_differ": list(summary.plugin_objects_differ),
        "saved_model_objects_differ": list(summary.saved_model_objects_differ),
        "agree": summary.agree,
        "failures": {c.module: c.error for c in checks if c.error},
        "seconds": round(time.monotonic() - start, 1),
    }


def main(argv):
    del argv
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    modules = module_selection.select(data_path, max_modules=_MAX_MODULES.value)
    task = task_lib.InliningForSizeTask()
    with tempfile.TemporaryDirectory(prefix="bcmax-bench-plugin-") as tmp:
        export_dir = _export(tmp)
        plugin = os.path.join(export_dir, export_model_lib.PLUGIN_FILENAME)
        equality = _equality(modules, export_dir, plugin) if _EQUALITY.value else None
        with_plugin = (f"-fpass-plugin={plugin}",)
        obj = os.path.join(tmp, "module.o")
        totals = {"stock_cpu": 0.0, "plugin_cpu": 0.0, "stock_wall": 0.0, "plugin_wall": 0.0}
        text = {"stock": 0, "plugin": 0}
        ratios = {}
        for i, module in enumerate(modules):
            cpu = {}
            for kind in ("stock", "plugin") if i % 2 == 0 else ("plugin", "stock"):
                cpu[kind], wall, _ = _compile(module, obj, with_plugin if kind == "plugin" else ())
                totals[kind + "_cpu"] += cpu[kind]
                totals[kind + "_wall"] += wall
                text[kind] += task.score(obj).text_size
            ratios[module.name] = cpu["plugin"] / max(cpu["stock"], 1e-9)
        breakdown = []
        if _BREAKDOWN.value:
            timers = {"stock": {}, "plugin": {}}
            for module in modules:
                for kind in ("stock", "plugin"):
                    extra = ("-ftime-report", *(with_plugin if kind == "plugin" else ()))
                    for key, seconds in parse_time_report(_compile(module, obj, extra)[2]).items():
                        timers[kind][key] = timers[kind].get(key, 0.0) + seconds
            # "Clang time report" only sums the other reports (front end, optimizer, codegen).
            keys = {k for k in set(timers["stock"]) | set(timers["plugin"]) if k[0] != "Clang time report"}
            deltas = {k: timers["plugin"].get(k, 0.0) - timers["stock"].get(k, 0.0) for k in keys}
            for key in sorted(keys, key=lambda k: -deltas[k])[:_TOP]:
                breakdown.append(
                    {
                        "report": key[0],
                        "timer": key[1],
                        "stock_s": round(timers["stock"].get(key, 0.0), 3),
                        "plugin_s": round(timers["plugin"].get(key, 0.0), 3),
                        "delta_s": round(deltas[key], 3),
                    }
                )
        values = np.array(list(ratios.values()))
        worst = sorted(ratios, key=ratios.get, reverse=True)[:5]
        print(
            json.dumps(
                {
                    "benchmark": "plugin",
                    "corpus": data_path,
                    "export_dir": export_dir,
                    "modules": len(modules),
                    "equality": equality,
                    "stock_cpu_seconds": round(totals["stock_cpu"], 3),
                    "plugin_cpu_seconds": round(totals["plugin_cpu"], 3),
                    "ratio_cpu": round(totals["plugin_cpu"] / totals["stock_cpu"], 4),
                    "stock_wall_seconds": round(totals["stock_wall"], 3),
                    "plugin_wall_seconds": round(totals["plugin_wall"], 3),
                    "ratio_wall": round(totals["plugin_wall"] / totals["stock_wall"], 4),
                    "goal_ratio": _GOAL_RATIO,
                    "meets_goal": totals["plugin_cpu"] / totals["stock_cpu"] <= _GOAL_RATIO,
                    "per_module_ratio_cpu": {
                        "median": round(float(np.median(values)), 4),
                        "p90": round(float(np.quantile(values, 0.9)), 4),
                        "max": round(float(values.max()), 4),
                    },
                    "worst_modules": {name: round(ratios[name], 3) for name in worst},
                    "text_size_bytes": text,
                    "plugin_bytes": os.path.getsize(plugin),
                    "exported_symbols": list(export_model_lib.exported_symbols(plugin, "llvm-readelf-22")),
                    "breakdown": breakdown,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    app.run(main)
