"""Evaluates an inlining policy against stock -Oz on a corpus.

For every module: the stock compile with the module's own command (the -Oz reference, no ML flags) and the compile
under the policy. Outputs, for an output prefix P:
  P.csv           module, oz_size, policy_size, delta (policy - oz, bytes), ratio (policy / oz), status
  P.summary.json  EvaluationSummary: total size ratio policy/-Oz, geometric mean of per-module ratios,
                  modules smaller/equal/larger, failures (modules where either compile failed are left out of totals)
  P.by_codebase.json  {codebase: EvaluationSummary} over each codebase's modules (codebase: first component of the
                  module name, see compiler_opt/rl/splits.py)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence

import gin

from compiler_opt.rl import atomic_file, compile_cache, env, splits
from compiler_opt.rl.inlining import task as task_lib


@dataclasses.dataclass(frozen=True)
class EvalJob:
    module: object
    policy: object
    task: task_lib.InliningForSizeTask
    timeout_s: float
    cache_dir: str | None


@dataclasses.dataclass(frozen=True)
class ModuleEvaluation:
    """One module's sizes in bytes (None when that compile failed)."""

    module: str
    oz_size: int | None
    policy_size: int | None
    horizon: int
    status: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.oz_size is not None and self.policy_size is not None


@dataclasses.dataclass(frozen=True)
class EvaluationSummary:
    policy: str
    modules: int
    evaluated: int
    failures: int
    oz_total: int
    policy_total: int
    total_ratio: float | None
    geomean_ratio: float | None
    smaller: int
    equal: int
    larger: int
    failed_modules: tuple[str, ...]


def evaluate_module(job: EvalJob) -> ModuleEvaluation:
    """Runs in a worker; never raises for a failed compile, only for what fails every module (FeatureMismatchError,
    task_lib.ToolError)."""
    try:
        stock = _compile_cached(job, _STOCK)
        result = _compile_cached(job, job.policy)
    except (env.FeatureMismatchError, task_lib.ToolError):
        raise
    except Exception as e:  # noqa: BLE001 - one module's failure must not end the run.
        return ModuleEvaluation(job.module.name, None, None, 0, env.FAILED, repr(e))
    errors = [r.error for r in (stock, result) if not r.ok]
    status = env.OK if not errors else (result.status if not result.ok else stock.status)
    return ModuleEvaluation(
        module=job.module.name,
        oz_size=stock.text_size,
        policy_size=result.text_size,
        horizon=result.horizon,
        status=status,
        error=env.clip_error("\n".join(errors)),
    )


_STOCK = compile_cache.STOCK


def _compile_cached(job: EvalJob, policy) -> env.CompileResult:
    cache = compile_cache.CompileCache(job.cache_dir) if job.cache_dir else None
    return compile_cache.compile_cached(cache, job.module, policy, job.task, job.timeout_s)[0]


def summarize(policy_name: str, evaluations: Sequence[ModuleEvaluation]) -> EvaluationSummary:
    ok = [e for e in evaluations if e.ok]
    oz_total = sum(e.oz_size for e in ok)
    policy_total = sum(e.policy_size for e in ok)
    ratios = [e.policy_size / e.oz_size for e in ok if e.oz_size > 0]
    return EvaluationSummary(
        policy=policy_name,
        modules=len(evaluations),
        evaluated=len(ok),
        failures=len(evaluations) - len(ok),
        oz_total=oz_total,
        policy_total=policy_total,
        total_ratio=policy_total / oz_total if oz_total else None,
        geomean_ratio=math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None,
        smaller=sum(e.policy_size < e.oz_size for e in ok),
        equal=sum(e.policy_size == e.oz_size for e in ok),
        larger=sum(e.policy_size > e.oz_size for e in ok),
        failed_modules=tuple(sorted(e.module for e in evaluations if not e.ok)),
    )


def summarize_by_codebase(policy_name: str, evaluations: Sequence[ModuleEvaluation]) -> dict[str, EvaluationSummary]:
    """An EvaluationSummary per codebase (the first component of the module names), sorted by codebase."""
    groups: dict[str, list[ModuleEvaluation]] = {}
    for e in evaluations:
        groups.setdefault(splits.codebase_of(e.module), []).append(e)
    return {c: summarize(policy_name, groups[c]) for c in sorted(groups)}


@gin.configurable(module="evaluate_policy", denylist=["modules", "policy", "executor"])
def evaluate(
    modules: Sequence,
    policy,
    executor,
    timeout_s: float = 600.0,
    cache_dir: str | None = None,
    progress: bool = True,
) -> tuple[list[ModuleEvaluation], EvaluationSummary]:
    """Evaluates `policy` on `modules` (largest first, in parallel); results sorted by module name."""
    task = task_lib.InliningForSizeTask()
    jobs = [
        EvalJob(module=m, policy=policy, task=task, timeout_s=timeout_s, cache_dir=cache_dir)
        for m in sorted(modules, key=lambda m: -getattr(m, "size_bytes", 0))
    ]
    evaluations = executor.map_all(evaluate_module, jobs, progress)
    evaluations.sort(key=lambda e: e.module)
    return evaluations, summarize(policy.name, evaluations)


def ratio_of(evaluations: Sequence[ModuleEvaluation], modules: Sequence) -> dict:
    """{"ratio": total size over stock -Oz's, "smaller", "larger": modules} of the evaluations of `modules` (objects
    with `.name`), as the benches report a set of modules."""
    names = {m.name for m in modules}
    summary = summarize("", [e for e in evaluations if e.module in names])
    return {"ratio": summary.total_ratio, "smaller": summary.smaller, "larger": summary.larger}


def read_csv(path: str) -> dict[str, ModuleEvaluation]:
    """Module name -> ModuleEvaluation from a `P.csv` that `write` wrote (sizes None where a compile failed; the
    file keeps no horizon or error, so those are 0 and "")."""

    def size(text: str) -> int | None:
        return int(text) if text not in ("", "None") else None

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"module", "oz_size", "policy_size", "status"} <= set(rows[0]):
        raise ValueError(f"{path} is not an evaluation CSV (columns {sorted(rows[0])}); rerun evaluate_policy")
    result = {}
    for line, r in enumerate(rows, 2):
        try:
            result[r["module"]] = ModuleEvaluation(
                module=r["module"],
                oz_size=size(r["oz_size"]),
                policy_size=size(r["policy_size"]),
                horizon=0,
                status=r["status"],
            )
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}:{line}: not a row of sizes ({e}); rerun evaluate_policy") from None
    return result


def write(prefix: str, evaluations: Sequence[ModuleEvaluation], summary: EvaluationSummary) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["module", "oz_size", "policy_size", "delta", "ratio", "status"])
    for e in evaluations:
        delta = e.policy_size - e.oz_size if e.ok else ""
        ratio = f"{e.policy_size / e.oz_size:.6f}" if e.ok and e.oz_size else ""
        writer.writerow([e.module, e.oz_size, e.policy_size, delta, ratio, e.status])
    atomic_file.write_text(prefix + ".csv", buf.getvalue())
    atomic_file.write_text(prefix + ".summary.json", json.dumps(dataclasses.asdict(summary), indent=2) + "\n")
    by_codebase = {c: dataclasses.asdict(s) for c, s in summarize_by_codebase(summary.policy, evaluations).items()}
    atomic_file.write_text(prefix + ".by_codebase.json", json.dumps(by_codebase, indent=2) + "\n")
