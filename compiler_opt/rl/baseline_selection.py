"""Choosing BC-MAX's baseline set: measure candidate baselines per module, then pick K greedily.

BC-MAX's oracle is the per-module minimum text size over its baselines (and explorations); every baseline costs one
compile per module. Given every candidate's per-module sizes on the train split, `greedy_select` starts from the
required baselines (stock -Oz: `heuristic`, the reference every ratio is taken against) and repeatedly adds the
candidate with the most bytes saved on the oracle per extra compile, until K baselines are chosen or nothing saves
a byte. The oracle after each addition is reported, so the curve "oracle vs K" shows where more baselines stop paying.

Records (frozen dataclasses, JSON via dataclasses.asdict):
  Measurement     one (module, policy) compile: text size in bytes (None if the compile failed), decisions, a digest
                  of the decisions played (equal digests = equal decisions).
  SelectionStep   the baseline set after k additions, its oracle total (bytes), oracle/-Oz ratio, compiles spent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence

import gin
import numpy as np

from compiler_opt.rl import atomic_file, compile_cache, env, policies
from compiler_opt.rl.inlining import task as task_lib

OZ = "heuristic"
MEASUREMENTS_FILE = "measurements.jsonl"
SELECTION_FILE = "selection.json"
GIN_FILE = "baselines.gin"


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One compile of `module` under `policy` (a spec name). size: llvm-size text bytes, None unless ok."""

    module: str
    policy: str
    size: int | None
    horizon: int
    actions_sha256: str
    status: str
    error: str = ""


@dataclasses.dataclass(frozen=True)
class MeasureJob:
    module: object
    policy: object
    task: task_lib.InliningForSizeTask
    timeout_s: float
    cache_dir: str | None


def actions_digest(actions) -> str:
    return hashlib.sha256(np.asarray(actions, dtype=np.int8).tobytes()).hexdigest()[:16]


def measure_one(job: MeasureJob) -> Measurement:
    """Runs in a worker. A failed compile becomes a Measurement with size None; only a missing tool or a compiler
    without the policy's features raises (they fail every module)."""
    try:
        cache = compile_cache.CompileCache(job.cache_dir) if job.cache_dir else None
        result, _ = compile_cache.compile_cached(cache, job.module, job.policy, job.task, job.timeout_s)
    except (env.FeatureMismatchError, task_lib.ToolError):
        raise
    except Exception as e:  # noqa: BLE001 - one module's failure must not end the run.
        return Measurement(job.module.name, job.policy.name, None, 0, "", env.FAILED, env.clip_error(repr(e)))
    return Measurement(
        module=job.module.name,
        policy=job.policy.name,
        size=result.text_size if result.ok else None,
        horizon=result.horizon,
        actions_sha256=actions_digest(result.actions) if result.ok else "",
        status=result.status,
        error=env.clip_error(result.error),
    )


def measure(
    modules: Sequence,
    specs: Sequence[str],
    executor,
    *,
    cache_dir: str | None = None,
    timeout_s: float = 600.0,
) -> list[Measurement]:
    """Compiles every module under every policy spec (largest modules first); results sorted by (module, policy).

    The `heuristic` (-Oz) spec is always measured: it is the reference of every ratio.
    """
    parsed = policies.parse_all(specs if OZ in specs else [OZ, *specs])
    task = task_lib.InliningForSizeTask()
    jobs = [
        MeasureJob(module=m, policy=p, task=task, timeout_s=timeout_s, cache_dir=cache_dir)
        for m in sorted(modules, key=lambda m: -getattr(m, "size_bytes", 0))
        for p in parsed
    ]
    results = [r for _, r in executor.map_unordered(measure_one, jobs)]
    return sorted(results, key=lambda r: (r.module, r.policy))


def size_table(measurements: Iterable[Measurement]) -> dict[str, dict[str, int | None]]:
    """{module: {policy: size or None}}."""
    table: dict[str, dict[str, int | None]] = {}
    for m in measurements:
        table.setdefault(m.module, {})[m.policy] = m.size
    return table


@dataclasses.dataclass(frozen=True)
class SelectionStep:
    """The baseline set after adding `added` (k = len(baselines)); sizes in bytes over the modules where -Oz
    compiled. bytes_saved: what `added` took off the oracle; compiles: one per module per baseline."""

    k: int
    added: str
    baselines: tuple[str, ...]
    oracle_total: int
    oz_total: int
    oracle_ratio: float
    bytes_saved: int
    compiles: int
    bytes_saved_per_compile: float
    modules_won: int


def _oracle(table: Mapping[str, Mapping[str, int | None]], chosen: Sequence[str], modules: Sequence[str]) -> list:
    """Per module, the smallest size among `chosen` (-Oz's size when none of them compiled)."""
    best = []
    for name in modules:
        sizes = [table[name].get(p) for p in chosen]
        ok = [s for s in sizes if s is not None]
        best.append(min(ok) if ok else table[name][OZ])
    return best


def greedy_select(
    table: Mapping[str, Mapping[str, int | None]],
    candidates: Sequence[str],
    max_baselines: int,
    required: Sequence[str] = (OZ,),
) -> list[SelectionStep]:
    """Greedy forward selection of baselines by bytes saved on the oracle per extra compile.

    table: {module: {policy: size or None}} (every candidate and `required` measured on every module). Modules where
    -Oz failed are left out. Starts with `required` (one step each), then adds at most max_baselines - len(required)
    candidates; stops early when no candidate saves a byte. Ties: the candidate listed first. Returns one step per
    baseline in the final set, in order.
    """
    if OZ not in required:
        raise ValueError(f"required baselines must include {OZ!r} (the -Oz reference), got {list(required)}")
    modules = sorted(name for name, sizes in table.items() if sizes.get(OZ) is not None)
    missing = sorted({p for p in (*required, *candidates) for name in modules if p not in table[name]})
    if missing:
        raise ValueError(f"policies {missing} were not measured on every module; measure them first")
    oz_total = sum(table[name][OZ] for name in modules)
    steps: list[SelectionStep] = []
    chosen: list[str] = []
    current = None

    def add(policy: str) -> None:
        nonlocal current
        before = sum(current) if current is not None else oz_total
        chosen.append(policy)
        after = _oracle(table, chosen, modules)
        won = 0 if current is None else sum(a < b for a, b in zip(after, current, strict=True))
        current = after
        saved = before - sum(after)
        steps.append(
            SelectionStep(
                k=len(chosen),
                added=policy,
                baselines=tuple(chosen),
                oracle_total=sum(after),
                oz_total=oz_total,
                oracle_ratio=round(sum(after) / oz_total, 6) if oz_total else 1.0,
                bytes_saved=saved,
                compiles=len(chosen) * len(modules),
                bytes_saved_per_compile=round(saved / len(modules), 3) if modules else 0.0,
                modules_won=won,
            )
        )

    for policy in dict.fromkeys(required):
        add(policy)
    remaining = [c for c in dict.fromkeys(candidates) if c not in chosen]
    while len(chosen) < max_baselines and remaining:
        total = sum(current)
        gains = [(total - sum(_oracle(table, [*chosen, c], modules))) / len(modules) for c in remaining]
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        add(remaining.pop(best))
    return steps


def gin_text(baselines: Sequence[str], steps: Sequence[SelectionStep], source: str) -> str:
    """A gin file binding `bc_max.run.baselines` to the chosen set, commented with how it was chosen."""
    lines = [
        "# BC-MAX baselines chosen by compiler_opt/tools/select_baselines.py: greedy forward selection by bytes saved",
        "# on the per-module oracle per extra compile (compiler_opt/rl/baseline_selection.py).",
        f"# Measured on: {source}",
        "# Selection order (k: added):",
        *(f"#   {s.k}: {s.added}" for s in steps),
        "bc_max.run.baselines = (",
        *(f"    {b!r}," for b in baselines),
        ")",
    ]
    return "\n".join(lines) + "\n"


@gin.configurable(module="select_baselines", denylist=["modules", "executor", "output_dir", "source", "cache_dir"])
def run(
    modules: Sequence,
    executor,
    output_dir: str,
    source: str = "",
    candidates: Sequence[str] = ("heuristic:threshold=25", "heuristic:threshold=100", "heuristic:threshold=225"),
    max_baselines: int = 4,
    required: Sequence[str] = (OZ,),
    cache_dir: str | None = None,
    timeout_s: float = 600.0,
) -> dict:
    """Measures `required` and `candidates` on `modules`, selects greedily, writes under output_dir:
    measurements.jsonl (one Measurement per line), selection.json (the returned report) and baselines.gin (the
    chosen set as `bc_max.run.baselines`). The report lists every step (oracle as K grows) and, per candidate, the
    modules where its decisions differ from -Oz's and its total size over -Oz's alone.
    """
    candidates = [policies.parse(c).name for c in candidates]
    required = [policies.parse(r).name for r in required]
    measurements = measure(modules, [*required, *candidates], executor, cache_dir=cache_dir, timeout_s=timeout_s)
    os.makedirs(output_dir, exist_ok=True)
    atomic_file.write_text(
        os.path.join(output_dir, MEASUREMENTS_FILE),
        "".join(json.dumps(dataclasses.asdict(m), sort_keys=True) + "\n" for m in measurements),
    )
    table = size_table(measurements)
    steps = greedy_select(table, candidates, max_baselines, required)
    report = {
        "source": source,
        "modules": len(table),
        "failed_compiles": sum(m.size is None for m in measurements),
        "candidates": {c: candidate_summary(measurements, c) for c in candidates},
        "steps": [dataclasses.asdict(s) for s in steps],
        "chosen": list(steps[-1].baselines),
    }
    atomic_file.write_text(os.path.join(output_dir, SELECTION_FILE), json.dumps(report, indent=2) + "\n")
    atomic_file.write_text(os.path.join(output_dir, GIN_FILE), gin_text(steps[-1].baselines, steps, source))
    return report


def candidate_summary(measurements: Sequence[Measurement], policy: str) -> dict:
    """Modules where `policy` decided differently from -Oz, where its size differs, where it is smaller, and its total
    size over -Oz's (modules where both ran)."""
    oz = {m.module: m for m in measurements if m.policy == OZ and m.size is not None}
    mine = [m for m in measurements if m.policy == policy and m.size is not None and m.module in oz]
    oz_total = sum(oz[m.module].size for m in mine)
    return {
        "decisions_changed": sum(m.actions_sha256 != oz[m.module].actions_sha256 for m in mine),
        "size_changed": sum(m.size != oz[m.module].size for m in mine),
        "smaller_than_oz": sum(m.size < oz[m.module].size for m in mine),
        "ratio_vs_oz": round(sum(m.size for m in mine) / oz_total, 6) if oz_total else None,
    }
