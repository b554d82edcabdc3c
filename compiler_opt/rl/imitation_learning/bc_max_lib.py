"""The BC-MAX loop (Marinov, Agarwal, Trofin, arXiv 2403.19462, Algorithm 1) on a real corpus.

Iteration t = 1..T:
  1. collect: on the train split, run every baseline and every learned policy so far (saved:iteration_k), explore
     around each module's best trajectory (guided by the latest learned policy, or by LLVM's own cost margin in the
     first iteration), keep each module's smallest trajectory;
  2. vocab: quantile buckets from the first iteration's trajectories (kept fixed afterwards unless configured);
  3. train: weighted behaviour cloning on the best trajectories; export iteration_t/model/saved_policy;
  4. evaluate the new policy against stock -Oz on the held-out and the train split.
Stop early when the held-out ratio has not improved for `patience` iterations.

Every step is resumable: rerunning the same command continues after the last finished step; compiles are cached
under root_dir/compile_cache, so baselines are compiled once for all iterations.

Layout of root_dir:
  vocab/                                   quantile .buckets files
  iteration_<t>/trajectories/              collection output (records/, profiles.jsonl, summary.json)
  iteration_<t>/held_out_baselines/        baselines on the held-out split (for the held-out oracle)
  iteration_<t>/model/saved_policy/        the learned policy (MLGO layout), model/collect_policy/
  iteration_<t>/eval_{held_out,train}.csv  per-module sizes; .summary.json: totals
  iteration_<t>/iteration.json             IterationResult, written last (marks the iteration done)
  report.md, *.png, results.json           the report (see report.py)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Sequence

import gin
from absl import logging

from compiler_opt.rl import atomic_file, evaluate_policy_lib, generate_vocab_lib, policies
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection
from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib

ITERATION_FILE = "iteration.json"


@dataclasses.dataclass(frozen=True)
class IterationResult:
    """Figures of one iteration. Ratios are total text size over the stock -Oz total (< 1 is smaller)."""

    iteration: int
    policy: str
    baselines: tuple[str, ...]
    train_ratio: float | None
    held_out_ratio: float | None
    train_oracle_ratio: float | None
    held_out_oracle_ratio: float | None
    held_out_geomean: float | None
    held_out_smaller: int
    held_out_larger: int
    wins: dict[str, int]
    train_modules: int
    held_out_modules: int
    seconds: float

    @classmethod
    def read(cls, path: str) -> IterationResult:
        with open(path) as f:
            obj = json.load(f)
        obj["baselines"] = tuple(obj["baselines"])
        return cls(**obj)


def iteration_dir(root_dir: str, t: int) -> str:
    return os.path.join(root_dir, f"iteration_{t}")


@gin.configurable(module="bc_max", denylist=["train_modules", "held_out_modules", "root_dir", "executor"])
def run(
    train_modules: Sequence,
    held_out_modules: Sequence,
    root_dir: str,
    executor,
    baselines: Sequence[str] = ("heuristic", "heuristic:threshold=50", "heuristic:threshold=500"),
    iterations: int = 3,
    max_exploration_steps: int = 2,
    first_exploration_policy: str = "heuristic_margin",
    patience: int = 1,
    regenerate_vocab: bool = False,
    evaluate_train: bool = True,
    progress: bool = True,
) -> list[IterationResult]:
    """Runs (or resumes) the loop; returns the finished iterations' results.

    baselines: initial policy specs. iterations: at most this many. max_exploration_steps: flips per explored
    trajectory. first_exploration_policy: explorer before any policy is learned. patience: iterations without a
    held-out improvement before stopping. regenerate_vocab: recompute the buckets every iteration.
    """
    os.makedirs(root_dir, exist_ok=True)
    cache_dir = os.path.join(root_dir, "compile_cache")
    results: list[IterationResult] = []
    learned: list[str] = []
    for t in range(1, iterations + 1):
        it_dir = iteration_dir(root_dir, t)
        done_path = os.path.join(it_dir, ITERATION_FILE)
        model_dir = os.path.join(it_dir, "model")
        if os.path.exists(done_path):
            result = IterationResult.read(done_path)
            logging.info("iteration %d already done: held-out ratio %s", t, result.held_out_ratio)
        else:
            start = time.monotonic()
            current = (*baselines, *learned)
            explorer = learned[-1] if learned else first_exploration_policy
            logging.info("iteration %d: baselines %s, exploration guided by %s", t, current, explorer)
            traj_dir = os.path.join(it_dir, "trajectories")
            summary = collection.collect(
                train_modules,
                policies.parse_all(current),
                traj_dir,
                executor,
                exploration_policy=explorer,
                max_exploration_steps=max_exploration_steps,
                cache_dir=cache_dir,
                progress=progress,
            )
            held_summary = collection.collect(
                held_out_modules,
                policies.parse_all(current),
                os.path.join(it_dir, "held_out_baselines"),
                executor,
                exploration_policy="none",
                max_exploration_steps=0,
                cache_dir=cache_dir,
                progress=progress,
            )
            records = os.path.join(traj_dir, collection.RECORDS_DIR, "*.tfrecord")
            vocab_dir = os.path.join(root_dir, "vocab") if not regenerate_vocab else os.path.join(it_dir, "vocab")
            if not os.path.exists(os.path.join(vocab_dir, ".complete")):
                _build_vocab(records, vocab_dir)
            training = weighted_bc_trainer_lib.train(
                [records],
                vocab_dir,
                model_dir,
                profiles_path=os.path.join(traj_dir, collection.PROFILES_FILE),
            )
            policy = "saved:" + training.saved_policy_dir
            held = _evaluate(
                held_out_modules, policy, executor, cache_dir, os.path.join(it_dir, "eval_held_out"), progress
            )
            train = (
                _evaluate(train_modules, policy, executor, cache_dir, os.path.join(it_dir, "eval_train"), progress)
                if evaluate_train
                else None
            )
            result = IterationResult(
                iteration=t,
                policy=policy,
                baselines=tuple(current),
                train_ratio=train.total_ratio if train else None,
                held_out_ratio=held.total_ratio,
                train_oracle_ratio=summary["oracle_ratio"],
                held_out_oracle_ratio=held_summary["oracle_ratio"],
                held_out_geomean=held.geomean_ratio,
                held_out_smaller=held.smaller,
                held_out_larger=held.larger,
                wins=summary["wins"],
                train_modules=len(train_modules),
                held_out_modules=len(held_out_modules),
                seconds=round(time.monotonic() - start, 1),
            )
            atomic_file.write_text(done_path, json.dumps(dataclasses.asdict(result), indent=2, sort_keys=True))
            logging.info("iteration %d: held-out %.4f, train %s", t, result.held_out_ratio, result.train_ratio)
        results.append(result)
        learned.append(result.policy)
        if _should_stop(results, patience):
            logging.info("held-out size has not improved for %d iteration(s): stopping", patience)
            break
    return results


def _should_stop(results: Sequence[IterationResult], patience: int) -> bool:
    ratios = [r.held_out_ratio for r in results if r.held_out_ratio is not None]
    if len(ratios) <= patience:
        return False
    best_before = min(ratios[:-patience])
    return min(ratios[-patience:]) >= best_before


def _build_vocab(records: str, vocab_dir: str) -> None:
    tmp = vocab_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    generate_vocab_lib.generate_vocab([records], tmp)
    atomic_file.write_text(os.path.join(tmp, ".complete"), "")
    shutil.rmtree(vocab_dir, ignore_errors=True)
    os.replace(tmp, vocab_dir)


def _evaluate(modules, policy_spec, executor, cache_dir, prefix, progress) -> evaluate_policy_lib.EvaluationSummary:
    summary_path = prefix + ".summary.json"
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            obj = json.load(f)
        obj["failed_modules"] = tuple(obj["failed_modules"])
        return evaluate_policy_lib.EvaluationSummary(**obj)
    evaluations, summary = evaluate_policy_lib.evaluate(
        modules, policies.parse(policy_spec), executor, cache_dir=cache_dir, progress=progress
    )
    evaluate_policy_lib.write(prefix, evaluations, summary)
    return summary
