"""BC-MAX trajectory collection: every baseline (and exploration) on every module, keep the smallest.

For each module (BC-MAX, Marinov, Agarwal, Trofin, arXiv 2403.19462, Algorithm 1): compile it under every baseline
policy, optionally explore around the best (or every) baseline trajectory, and keep the trajectory of smallest text
size (ties: the earliest baseline, then explorations in order). Each module is also compiled once with stock clang-22
(its own command, no host): the -Oz reference that the oracle ratio, like every size ratio, divides by. The oracle is
the per-module best of the baselines and explorations. Workers only compile; the driver commits each module
atomically, so a killed run resumes where it stopped with no module lost or written twice.

Output directory layout:
  records/<module-key>.tfrecord   one SequenceExample (see trajectories.py) for each module with >= 1 decision
  profiles/<module-key>.json      the module's ModuleProfile; its presence marks the module as done
  profiles.jsonl                  all profiles, sorted by module (rewritten at the end of every run)
  profile_max.json, profile_pol.json
                                  the same in MLGO's format (profiles.write_mlgo): each module's best trajectory, and
                                  the last baseline's (MLGO's `_pol`: the policy being evaluated, listed last)
  summary.json                    counts, oracle and stock -Oz totals, wall time
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Sequence

import gin
from absl import logging

from compiler_opt.rl import atomic_file, compile_cache, env, policies
from compiler_opt.rl.imitation_learning import budgeted_exploration, exploration, profiles
from compiler_opt.rl.inlining import task as task_lib

RECORDS_DIR = "records"
PROFILES_DIR = "profiles"
PROFILES_FILE = "profiles.jsonl"
SUMMARY_FILE = "summary.json"
# The reference of `label_min_gain`: the compiler's own heuristic played as a baseline.
_HEURISTIC = policies.HeuristicPolicy().name


@dataclasses.dataclass(frozen=True)
class ModuleJob:
    """Everything a worker needs to collect one module (picklable)."""

    module: object
    baselines: tuple
    explorer: object | None
    explore_from: str
    max_exploration_steps: int
    cache_dir: str | None
    timeout_s: float
    task: task_lib.InliningForSizeTask
    # Budgeted exploration (budgeted_exploration.py): this module's exploration compiles, and trajectory regions.
    exploration_budget: int | None = None
    exploration_regions: int = 1
    # Also replay winners of -inline-threshold baselines under stock flags (see _stock_features).
    stock_default: bool = False
    # Record the heuristic's trajectory unless the best beats it by this fraction (profiles.select_recorded).
    label_min_gain: float = 0.0


@dataclasses.dataclass(frozen=True)
class ModuleOutcome:
    """A worker's answer: outcomes of every compile, the smallest one's name (None if all failed), the trajectory to
    record (`best`: the smallest, or the heuristic's, see profiles.select_recorded) and its policy, and the stock
    compile (None if the module failed before it ran)."""

    module: str
    outcomes: dict[str, profiles.PolicyOutcome]
    best: env.CompileResult | None
    best_name: str | None
    error: str = ""
    stock: profiles.PolicyOutcome | None = None
    recorded_name: str | None = None


def module_key(name: str) -> str:
    """A file-name-safe, collision-free key for a module name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[-80:]
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def _outcome(result: env.CompileResult, cached: bool) -> profiles.PolicyOutcome:
    return profiles.PolicyOutcome(
        size=result.text_size,
        text_section_size=result.text_section_size,
        horizon=result.horizon,
        seconds=round(result.seconds, 4),
        status=result.status,
        error=env.clip_error(result.error),
        cached=cached,
    )


def collect_module(job: ModuleJob) -> ModuleOutcome:
    """Runs in a worker. Raises only for what fails every module (policy and compiler disagree on features, a missing
    tool); anything else becomes the module's error."""
    try:
        return _collect_module(job)
    except (env.FeatureMismatchError, task_lib.ToolError):
        raise
    except Exception as e:  # noqa: BLE001 - one module's failure must not end the run.
        logging.exception("collecting %s failed", job.module.name)
        return ModuleOutcome(module=job.module.name, outcomes={}, best=None, best_name=None, error=repr(e))


def _collect_module(job: ModuleJob) -> ModuleOutcome:
    cache = compile_cache.CompileCache(job.cache_dir) if job.cache_dir else None
    results: dict[str, env.CompileResult] = {}
    outcomes: dict[str, profiles.PolicyOutcome] = {}
    flags_of: dict[str, tuple[str, ...]] = {}

    def compile_fn(policy) -> env.CompileResult:
        result, cached = compile_cache.compile_cached(cache, job.module, policy, job.task, job.timeout_s)
        result = dataclasses.replace(result, module=job.module.name, policy=policy.name)
        results[policy.name] = result
        flags_of[policy.name] = tuple(policy.extra_args)
        outcomes[policy.name] = _outcome(result, cached)
        return result

    for baseline in job.baselines:
        compile_fn(baseline)
    budget = job.exploration_budget if job.exploration_budget is not None else job.max_exploration_steps
    if job.explorer is not None and budget > 0:
        if job.explore_from == "all":
            roots = [b for b in job.baselines if results[b.name].ok]
        else:
            best = profiles.select_best({b.name: outcomes[b.name] for b in job.baselines})
            roots = [b for b in job.baselines if b.name == best]
        for base in roots:
            if job.exploration_budget is not None:
                explored, _ = budgeted_exploration.explore(
                    base, results[base.name], job.explorer, compile_fn, budget, job.exploration_regions
                )
            else:
                explored = exploration.explore(base, results[base.name], job.explorer, compile_fn, budget)
            for name, result in explored:
                results[name] = result
    stock, stock_cached = compile_cache.compile_cached(cache, job.module, compile_cache.STOCK, job.task, job.timeout_s)
    best_name = profiles.select_best(outcomes)
    recorded_name = profiles.select_recorded(outcomes, best_name, _HEURISTIC, job.label_min_gain)
    best = results[recorded_name] if recorded_name else None
    if best is not None:
        best = dataclasses.replace(
            _stock_features(best, flags_of[recorded_name], cache, job, job.stock_default), policy=recorded_name
        )
    return ModuleOutcome(
        module=job.module.name,
        outcomes=outcomes,
        best=best,
        best_name=best_name,
        stock=_outcome(stock, stock_cached),
        recorded_name=recorded_name,
    )


def _stock_features(
    best: env.CompileResult, flags: tuple[str, ...], cache, job: ModuleJob, stock_default: bool = False
) -> env.CompileResult:
    """`best` with the features the stock compiler computes along the same decisions.

    A baseline compiled with inliner options other than -inline-threshold (e.g. `heuristic:inline-call-penalty=N`)
    changes the cost features clang reports (call_penalty, callsite_cost, cost_estimate, ...), which a deployed
    policy never sees. Its decisions are replayed once under the stock heuristic; when that reproduces the
    trajectory (same decisions count and size), the record gets the stock features. Otherwise `best` is kept as is.

    -inline-threshold leaves the cost features alone but changes `inlining_default` (the heuristic's decision at that
    threshold); with `stock_default`, such winners are replayed too, so every record's `inlining_default` is stock
    -Oz's decision, the one a deployed policy that reads it is given.
    """
    threshold_only = all(f == "-mllvm" or f.startswith("-inline-threshold=") for f in flags)
    if best.horizon == 0 or not flags or (threshold_only and not stock_default):
        return best
    replay = policies.ReplayPolicy(tuple(int(a) for a in best.actions), then=policies.HeuristicPolicy())
    stock, _ = compile_cache.compile_cached(cache, job.module, replay, job.task, job.timeout_s)
    if not stock.ok or stock.horizon != best.horizon or stock.text_size != best.text_size:
        logging.warning(
            "%s: replaying %s under stock flags did not reproduce it; keeping its features", best.module, flags
        )
        return best
    return dataclasses.replace(best, features=stock.features)


class TrajectoryWriter:
    """The driver's committer. A module is done once its profile file exists (written after its record)."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.records_dir = os.path.join(output_dir, RECORDS_DIR)
        self.profiles_dir = os.path.join(output_dir, PROFILES_DIR)
        os.makedirs(self.records_dir, exist_ok=True)
        os.makedirs(self.profiles_dir, exist_ok=True)
        for d in (self.records_dir, self.profiles_dir, output_dir):
            removed = atomic_file.remove_stale_temporaries(d)
            if removed:
                logging.info("removed %d half-written files from an interrupted run in %s", removed, d)

    def done(self) -> dict[str, profiles.ModuleProfile]:
        result = {}
        for name in os.listdir(self.profiles_dir):
            if name.endswith(".json"):
                path = os.path.join(self.profiles_dir, name)
                with open(path) as f:
                    text = f.read()
                try:
                    profile = profiles.ModuleProfile.from_json(text)
                except (ValueError, TypeError, KeyError) as e:
                    raise ValueError(
                        f"{path} is not a module profile ({e!r}); delete it to collect its module again"
                    ) from None
                result[profile.module] = profile
        return result

    def commit(self, outcome: ModuleOutcome) -> profiles.ModuleProfile:
        from compiler_opt.rl.imitation_learning import trajectories  # TensorFlow only in the driver.

        key = module_key(outcome.module)
        oz_size = outcome.stock.size if outcome.stock is not None and outcome.stock.ok else None
        best_size = outcome.outcomes[outcome.best_name].size if outcome.best_name else None
        label = profiles.size_bucket(oz_size if oz_size is not None else best_size)
        record = None
        if outcome.best is not None and outcome.best.horizon > 0:
            record = f"{RECORDS_DIR}/{key}.tfrecord"
            example = trajectories.to_sequence_example(outcome.best, label)
            atomic_file.write_with(os.path.join(self.output_dir, record), functools.partial(_write_tfrecord, example))
        profile = profiles.ModuleProfile(
            module=outcome.module,
            results=outcome.outcomes,
            best=outcome.best_name,
            best_size=best_size,
            oz_size=oz_size,
            label=label,
            record=record,
            recorded=outcome.recorded_name if record is not None else None,
        )
        atomic_file.write_text(os.path.join(self.profiles_dir, key + ".json"), profile.to_json())
        return profile


def _write_tfrecord(example, path: str) -> None:
    import tensorflow as tf

    with tf.io.TFRecordWriter(path) as w:
        w.write(example.SerializeToString())


@gin.configurable(module="generate_bc_trajectories", denylist=["modules", "baselines", "output_dir", "executor"])
def collect(
    modules: Sequence,
    baselines: Sequence,
    output_dir: str,
    executor,
    exploration_policy: str = "heuristic_margin",
    explore_from: str = "best",
    max_exploration_steps: int = 2,
    cache_dir: str | None = None,
    timeout_s: float = 600.0,
    retry_failed: bool = False,
    progress: bool = True,
    budgeted: bool = False,
    record_stock_default: bool = False,
    label_min_gain: float = 0.0,
) -> dict:
    """Collects every module not yet done in `output_dir`; returns the run summary (also written to summary.json).

    exploration_policy: explorer spec (see exploration.py); explore_from: "best" (around the best baseline) or
    "all" (around every baseline); max_exploration_steps: flips per explored trajectory; timeout_s: per compile.
    budgeted: instead of max_exploration_steps per trajectory, share out budgeted_exploration.BudgetConfig's
    compile budget over the modules (needs cache_dir: the baselines are compiled first to allocate it).
    record_stock_default: every record's `inlining_default` is stock -Oz's decision (winners under other inliner
    options, -inline-threshold included, are replayed once under stock flags); needed to train a policy that reads
    `inlining_default` (features.FeatureConfig.dropped_features without it).
    label_min_gain: record the -Oz heuristic's trajectory (baseline `heuristic`) instead of the smallest one unless
    the smallest is at least this fraction of the heuristic's size smaller (profiles.select_recorded); the oracle
    and `best` in the profiles stay the smallest. 0 records the smallest always.
    """
    profiles.select_recorded({}, None, _HEURISTIC, label_min_gain)  # validates it before any compile
    if explore_from not in ("best", "all"):
        raise ValueError(f"explore_from must be 'best' or 'all', got {explore_from!r}")
    start = time.monotonic()
    if removed := env.remove_stale_tmpdirs():
        logging.info("removed %d compile directories left by killed processes", removed)
    writer = TrajectoryWriter(output_dir)
    done = writer.done()
    if retry_failed:
        done = {k: v for k, v in done.items() if v.best is not None}
    names = [m.name for m in modules]
    duplicates = sorted(n for n, count in collections.Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"modules given more than once: {', '.join(duplicates)}; collect each module once")
    todo = sorted((m for m in modules if m.name not in done), key=lambda m: -getattr(m, "size_bytes", 0))
    logging.info("%d modules, %d already done, %d to collect", len(modules), len(modules) - len(todo), len(todo))
    explorer = exploration.parse_explorer(exploration_policy)
    task = task_lib.InliningForSizeTask()
    budgets, budget_config = {}, budgeted_exploration.BudgetConfig()
    if budgeted and explorer is not None and todo:
        if cache_dir is None or explore_from != "best":
            raise ValueError("budgeted exploration needs a cache_dir and explore_from='best'")
        budgets = budgeted_exploration.module_budgets(
            modules, baselines, executor, budget_config, cache_dir, task, timeout_s
        )
    jobs = [
        ModuleJob(
            module=m,
            baselines=tuple(baselines),
            explorer=explorer,
            explore_from=explore_from,
            max_exploration_steps=max_exploration_steps,
            cache_dir=cache_dir,
            timeout_s=timeout_s,
            task=task,
            exploration_budget=budgets.get(m.name) if budgeted else None,
            exploration_regions=budget_config.regions,
            stock_default=record_stock_default,
            label_min_gain=label_min_gain,
        )
        for m in todo
    ]
    failed = []
    compiles = 0
    bar = None
    if progress:
        import tqdm

        bar = tqdm.tqdm(total=len(jobs), unit="module", smoothing=0.1, dynamic_ncols=True)
    try:
        for _, outcome in executor.map_unordered(collect_module, jobs):
            profile = writer.commit(outcome)
            done[profile.module] = profile
            compiles += sum(not o.cached for o in (*outcome.outcomes.values(), outcome.stock) if o is not None)
            if profile.best is None:
                reason = outcome.error or next((o.error for o in outcome.outcomes.values() if o.error), "")
                failed.append(profile.module)
                logging.warning("every compile of %s failed: %s", profile.module, reason.splitlines()[:3])
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    wanted = {m.name for m in modules}
    selected = [p for name, p in done.items() if name in wanted]
    profiles.write_jsonl(os.path.join(output_dir, PROFILES_FILE), selected)
    profiles.write_mlgo(output_dir, selected, baselines[-1].name if baselines else None)
    summary = summarize(selected)
    summary.update(
        collected_now=len(jobs),
        compiles_now=compiles,
        failed_modules=sorted(p.module for p in selected if p.best is None),
        wall_seconds=round(time.monotonic() - start, 3),
    )
    atomic_file.write_text(os.path.join(output_dir, SUMMARY_FILE), json.dumps(summary, indent=2, sort_keys=True))
    return summary


def summarize(selected: Sequence[profiles.ModuleProfile]) -> dict:
    """Totals over modules where both the stock -Oz size and the best are known. oz_total: stock -Oz; oracle_total:
    the per-module best of the baselines and explorations; oracle_ratio: oracle_total / oz_total."""
    both = [p for p in selected if p.oz_size is not None and p.best_size is not None]
    oz_total = sum(p.oz_size for p in both)
    best_total = sum(p.best_size for p in both)
    wins: dict[str, int] = {}
    for p in selected:
        if p.best is not None:
            wins[p.best] = wins.get(p.best, 0) + 1
    return {
        "modules": len(selected),
        "records": sum(p.record is not None for p in selected),
        "oz_total": oz_total,
        "oracle_total": best_total,
        "oracle_ratio": round(best_total / oz_total, 6) if oz_total else None,
        "wins": dict(sorted(wins.items())),
    }
