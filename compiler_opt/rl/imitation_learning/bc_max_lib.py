"""The BC-MAX loop (Marinov, Agarwal, Trofin, arXiv 2403.19462, Algorithm 1) on a real corpus.

The corpus comes split by codebase (compiler_opt/rl/splits.py): train, validation, test_unseen_codebases and
test_unseen_files. Iteration t = 1..T:
  1. collect: on the train part, run every baseline and every learned policy so far (saved:iteration_k), explore
     around each module's best trajectory (guided by the latest learned policy, or by LLVM's own cost margin in the
     first iteration), keep each module's smallest trajectory;
  2. baselines (no exploration) on the validation and test modules, for their oracles;
  3. vocab: quantile buckets from the first iteration's trajectories (kept fixed afterwards unless configured);
  4. train: weighted behaviour cloning on the best trajectories; export iteration_t/model/saved_policy (with
     `candidates` > 1: that many trainer seeds, and the one with the lowest validation ratio is kept);
  5. evaluate the new policy against stock -Oz on every part.
Stop early when the validation ratio has not improved for `patience` iterations; the best iteration is the one with
the lowest validation ratio. The test parts are reported and never used for either choice.

Every step is resumable: rerunning the same command continues after the last finished step; compiles are cached
under root_dir/compile_cache, so baselines are compiled once for all iterations.

Layout of root_dir:
  vocab/                                   quantile .buckets files
  iteration_<t>/trajectories/              collection output on train (records/, profiles.jsonl, summary.json)
  iteration_<t>/eval_baselines/            baselines on the validation and test modules (for their oracles)
  iteration_<t>/model/saved_policy/        the learned policy (MLGO layout), model/collect_policy/
  iteration_<t>/candidates/seed_<s>/       with candidates > 1: each seed's model and its eval_validation.csv
  iteration_<t>/eval_<part>.csv            per-module sizes of each part (splits.PARTS); .summary.json: totals
  iteration_<t>/iteration.json             IterationResult, written last (marks the iteration done)
  report.md, *.png, results.json           the report (see report.py)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence

import gin
from absl import logging

from compiler_opt import console
from compiler_opt.rl import atomic_file, evaluate_policy_lib, generate_vocab_lib, policies, splits
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection
from compiler_opt.rl.imitation_learning import profiles as profiles_lib
from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib

ITERATION_FILE = "iteration.json"
EVAL_BASELINES_DIR = "eval_baselines"


@dataclasses.dataclass(frozen=True)
class PartFigures:
    """One set of modules under one iteration's policy. Ratios are totals over the stock -Oz total of the modules
    whose stock and policy compiles both succeeded (< 1 is smaller); None when there is no such module.

    Attributes:
      modules: modules in the set. evaluated: of them, those in the totals.
      ratio: policy total / -Oz total. geomean: geometric mean of the per-module ratios.
      oracle_ratio: per-module best of the iteration's baselines (on train also their explorations) / -Oz total,
        on the same modules (a module whose collection failed counts at its -Oz size).
      smaller, larger: modules where the policy's object is smaller / larger than -Oz's.
    """

    modules: int
    evaluated: int
    ratio: float | None
    oracle_ratio: float | None
    geomean: float | None
    smaller: int
    larger: int


@dataclasses.dataclass(frozen=True)
class CodebaseFigures:
    """The test modules of one codebase: `part` is the test part they are in, `language` "c", "c++" or ""."""

    codebase: str
    part: str
    language: str
    figures: PartFigures


@dataclasses.dataclass(frozen=True)
class IterationResult:
    """Figures of one iteration: `parts` maps each of splits.PARTS to its PartFigures; `test_codebases` has one
    entry per codebase with test modules, sorted by part then codebase; `wins` counts which policy produced each
    train module's best trajectory."""

    iteration: int
    policy: str
    baselines: tuple[str, ...]
    parts: Mapping[str, PartFigures]
    test_codebases: tuple[CodebaseFigures, ...]
    wins: dict[str, int]
    seconds: float
    # Validation split in two (keys VALIDATION_KINDS): its whole codebases, which train never saw, and its file sample
    # of the training codebases (validation_kinds). Empty in iteration files written before it existed.
    validation_kinds: Mapping[str, PartFigures] = dataclasses.field(default_factory=dict)
    # With bc_max.run.candidates > 1: "seed_<s>" -> that candidate's validation ratio (None: nothing evaluated); the
    # policy kept is the lowest. Empty with one candidate.
    candidates: Mapping[str, float | None] = dataclasses.field(default_factory=dict)

    def ratio(self, part: str) -> float | None:
        return self.parts[part].ratio

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, obj: dict) -> IterationResult:
        return cls(
            iteration=obj["iteration"],
            policy=obj["policy"],
            baselines=tuple(obj["baselines"]),
            parts={p: PartFigures(**f) for p, f in obj["parts"].items()},
            test_codebases=tuple(
                CodebaseFigures(**{**c, "figures": PartFigures(**c["figures"])}) for c in obj["test_codebases"]
            ),
            wins=obj["wins"],
            seconds=obj["seconds"],
            validation_kinds={k: PartFigures(**f) for k, f in obj.get("validation_kinds", {}).items()},
            candidates=dict(obj.get("candidates", {})),
        )

    @classmethod
    def read(cls, path: str) -> IterationResult:
        with open(path) as f:
            return cls.from_dict(json.load(f))


# The kinds of validation modules (validation_kinds): of the main corpus, by codebase; and the large modules it leaves
# out, when a run adds them (module_selection.load_splits' large_data_path).
VALIDATION_UNSEEN_CODEBASES = "unseen_codebases"
VALIDATION_UNSEEN_FILES = "unseen_files"
VALIDATION_LARGE_MODULES = "large_modules"
VALIDATION_KINDS = (VALIDATION_UNSEEN_CODEBASES, VALIDATION_UNSEEN_FILES, VALIDATION_LARGE_MODULES)


def iteration_dir(root_dir: str, t: int) -> str:
    return os.path.join(root_dir, f"iteration_{t}")


@gin.configurable(module="bc_max", denylist=["module_splits", "root_dir", "executor"])
def run(
    module_splits: splits.ModuleSplits,
    root_dir: str,
    executor,
    baselines: Sequence[str] = ("heuristic", "heuristic:threshold=50", "heuristic:threshold=500"),
    iterations: int = 3,
    max_exploration_steps: int = 2,
    first_exploration_policy: str = "heuristic_margin",
    patience: int = 1,
    regenerate_vocab: bool = False,
    evaluate_train: bool = True,
    candidates: int = 1,
    progress: bool = True,
) -> list[IterationResult]:
    """Runs (or resumes) the loop on `module_splits`; returns the finished iterations' results.

    baselines: initial policy specs. iterations: at most this many. max_exploration_steps: flips per explored
    trajectory. first_exploration_policy: explorer before any policy is learned. patience: iterations without a
    validation improvement before stopping. regenerate_vocab: recompute the buckets every iteration.
    evaluate_train: also evaluate the policy on the train part (its ratio is None otherwise).
    candidates: policies trained per iteration on the same records, with trainer seeds TrainerConfig.seed + k *
    ensemble_size (k = 0..candidates-1); the one with the lowest validation ratio is the iteration's policy (copied
    to model/), the others' ratios are recorded. 1 trains one policy into model/, as before.
    """
    if not module_splits.train:
        raise ValueError("the train part of the split is empty: check splits.SplitPolicy and --max_modules")
    if candidates < 1 or (candidates > 1 and not module_splits.validation):
        raise ValueError(
            f"bc_max.run.candidates = {candidates}: it must be at least 1, and more than 1 needs a validation part "
            "to choose by (check splits.SplitPolicy and --max_modules)"
        )
    os.makedirs(root_dir, exist_ok=True)
    atomic_file.remove_stale_temporaries(root_dir)  # e.g. a vocab directory being built when a run was killed
    cache_dir = os.path.join(root_dir, "compile_cache")
    held_out = [m for part in splits.PARTS[1:] for m in module_splits.part(part)]
    results: list[IterationResult] = []
    learned: list[str] = []
    for t in range(1, iterations + 1):
        it_dir = iteration_dir(root_dir, t)
        done_path = os.path.join(it_dir, ITERATION_FILE)
        model_dir = os.path.join(it_dir, "model")
        if os.path.exists(done_path):
            result = IterationResult.read(done_path)
            logging.info(
                "iteration %d already done: validation ratio %s", t, result.ratio(splits.VALIDATION), extra=console.STEP
            )
            if not result.validation_kinds:
                result = dataclasses.replace(result, validation_kinds=validation_kinds(module_splits, it_dir))
            validation = result.parts.get(splits.VALIDATION)
            if validation is not None and validation.modules != len(module_splits.validation):
                logging.warning(
                    "%s was evaluated on %d validation modules, not the %d of this run's split (another corpus, "
                    "sample or --large_data_path?): its figures, which choose the iteration, are kept as they are; "
                    "pass another --root_dir (or remove %s) to evaluate on this split",
                    done_path,
                    validation.modules,
                    len(module_splits.validation),
                    root_dir,
                )
            if tuple(result.baselines) != (*baselines, *learned):
                logging.warning(
                    "%s was run with the baselines %s, not those of this config (%s): its figures are kept as they "
                    "are; pass another --root_dir (or remove %s) to run with this config's baselines",
                    done_path,
                    ", ".join(result.baselines),
                    ", ".join((*baselines, *learned)),
                    root_dir,
                )
        else:
            atomic_file.remove_stale_temporaries(it_dir)
            start = time.monotonic()
            current = (*baselines, *learned)
            explorer = learned[-1] if learned else first_exploration_policy
            logging.info(
                "iteration %d: collecting with baselines %s, exploration guided by %s",
                t,
                ", ".join(current),
                explorer,
                extra=console.STEP,
            )
            traj_dir = os.path.join(it_dir, "trajectories")
            summary = collection.collect(
                module_splits.train,
                policies.parse_all(current),
                traj_dir,
                executor,
                exploration_policy=explorer,
                max_exploration_steps=max_exploration_steps,
                cache_dir=cache_dir,
                progress=progress,
            )
            baselines_dir = os.path.join(it_dir, EVAL_BASELINES_DIR)
            if held_out:
                collection.collect(
                    held_out,
                    policies.parse_all(current),
                    baselines_dir,
                    executor,
                    exploration_policy="none",
                    max_exploration_steps=0,
                    cache_dir=cache_dir,
                    progress=progress,
                )
            records = os.path.join(traj_dir, collection.RECORDS_DIR, "*.tfrecord")
            vocab_dir = os.path.join(root_dir, "vocab") if not regenerate_vocab else os.path.join(it_dir, "vocab")
            logging.info("iteration %d: training", t, extra=console.STEP)
            if not os.path.exists(os.path.join(vocab_dir, ".complete")):
                build_vocab(records, vocab_dir)
            profiles_path = os.path.join(traj_dir, collection.PROFILES_FILE)
            if candidates == 1:
                training = weighted_bc_trainer_lib.train([records], vocab_dir, model_dir, profiles_path=profiles_path)
                policy = "saved:" + training.saved_policy_dir
                candidate_ratios = {}
            else:
                policy, candidate_ratios = _train_candidates(
                    module_splits, records, vocab_dir, profiles_path, it_dir, candidates, executor, cache_dir, progress
                )
            logging.info("iteration %d: evaluating the learned policy", t, extra=console.STEP)
            evaluated = [*(module_splits.train if evaluate_train else ()), *held_out]
            evaluations = _evaluate(module_splits, evaluated, policy, executor, cache_dir, it_dir, progress)
            oracle_sizes = {
                **_oracle_sizes(os.path.join(baselines_dir, collection.PROFILES_FILE)),
                **_oracle_sizes(os.path.join(traj_dir, collection.PROFILES_FILE)),
            }
            parts, test_codebases = figures(module_splits, evaluations, oracle_sizes)
            result = IterationResult(
                iteration=t,
                policy=policy,
                baselines=tuple(current),
                parts=parts,
                test_codebases=test_codebases,
                wins=summary["wins"],
                seconds=round(time.monotonic() - start, 1),
                candidates=candidate_ratios,
            )
            result = dataclasses.replace(result, validation_kinds=validation_kinds(module_splits, it_dir))
            atomic_file.write_text(done_path, result.to_json())
            logging.info(
                "iteration %d: %s",
                t,
                ", ".join(f"{p} {_fmt(result.ratio(p))}" for p in splits.PARTS),
                extra=console.STEP,
            )
        results.append(result)
        learned.append(result.policy)
        if _should_stop(results, patience):
            logging.info("validation size has not improved for %d iteration(s): stopping", patience, extra=console.STEP)
            break
    return results


def _train_candidates(
    module_splits, records, vocab_dir, profiles_path, it_dir, count, executor, cache_dir, progress
) -> tuple[str, dict[str, float | None]]:
    """Trains `count` policies on `records` with trainer seeds TrainerConfig.seed + k * ensemble_size into
    it_dir/candidates/seed_<s>/, evaluates each on the validation part (it_dir/candidates/seed_<s>/eval_validation.csv)
    and copies the one choose_candidate picks to it_dir/model, written whole or not at all. Returns its policy spec and
    {"seed_<s>": validation ratio}. Resumable: training continues from checkpoints and compiles come from the
    cache."""
    config = weighted_bc_trainer_lib.TrainerConfig()
    evaluations: dict[str, dict[str, evaluate_policy_lib.ModuleEvaluation]] = {}
    dirs: dict[str, str] = {}
    for k in range(count):
        seed = config.seed + k * max(config.ensemble_size, 1)
        name = f"seed_{seed}"
        cand_dir = os.path.join(it_dir, "candidates", name)
        logging.info("training candidate %d of %d (trainer seed %d)", k + 1, count, seed, extra=console.STEP)
        training = weighted_bc_trainer_lib.train(
            [records],
            vocab_dir,
            os.path.join(cand_dir, "model"),
            profiles_path=profiles_path,
            config=dataclasses.replace(config, seed=seed),
        )
        spec = "saved:" + training.saved_policy_dir
        evaluations[name] = _evaluate(
            module_splits, module_splits.validation, spec, executor, cache_dir, cand_dir, progress
        )
        dirs[name] = training.saved_policy_dir
    chosen, ratios = choose_candidate(evaluations)
    for name, ratio in ratios.items():
        logging.info("candidate %s: validation %s", name, _fmt(ratio), extra=console.STEP)
    model_dir = os.path.join(it_dir, "model")
    chosen_root = os.path.join(it_dir, "candidates", chosen, "model")
    with atomic_file.staged_dir(model_dir) as tmp:  # replaces whatever a killed run left there
        shutil.copytree(chosen_root, tmp, dirs_exist_ok=True)
    logging.info("kept candidate %s (validation %s) as %s", chosen, _fmt(ratios[chosen]), model_dir, extra=console.STEP)
    return "saved:" + os.path.join(model_dir, os.path.relpath(dirs[chosen], chosen_root)), ratios


def choose_candidate(
    evaluations: Mapping[str, Mapping[str, evaluate_policy_lib.ModuleEvaluation]],
) -> tuple[str, dict[str, float | None]]:
    """The candidate to keep, from each candidate's evaluations (candidate name -> module name -> ModuleEvaluation,
    in candidate order), and every candidate's ratio (policy bytes / -Oz bytes) over the modules that every candidate
    with at least one successful compile compiled successfully, so that no candidate is scored on a set the others
    were not. The lowest ratio wins, the first among equals; a candidate with no successful compile has ratio None
    and never wins over one with a ratio. Raises ValueError for no candidates."""
    if not evaluations:
        raise ValueError("choose_candidate: no candidates")
    scored = [n for n, by_module in evaluations.items() if any(e.ok for e in by_module.values())]
    common = set.intersection(*({m for m, e in evaluations[n].items() if e.ok} for n in scored)) if scored else set()
    ratios: dict[str, float | None] = {}
    for name, by_module in evaluations.items():
        oz = sum(by_module[m].oz_size for m in common) if name in scored else 0
        ratios[name] = sum(by_module[m].policy_size for m in common) / oz if oz else None
    ranked = [n for n in ratios if ratios[n] is not None]
    return (min(ranked, key=lambda n: ratios[n]) if ranked else next(iter(ratios))), ratios


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def best_iteration(results: Sequence[IterationResult]) -> IterationResult | None:
    """The iteration with the lowest validation ratio (the earliest among equals); the last one when no iteration
    has a validation ratio (an empty validation part); None for no results. Test figures play no part."""
    scored = [r for r in results if r.ratio(splits.VALIDATION) is not None]
    if not scored:
        return results[-1] if results else None
    return min(scored, key=lambda r: (r.ratio(splits.VALIDATION), r.iteration))


def _should_stop(results: Sequence[IterationResult], patience: int) -> bool:
    ratios = [r.ratio(splits.VALIDATION) for r in results if r.ratio(splits.VALIDATION) is not None]
    if len(ratios) <= patience:
        return False
    best_before = min(ratios[:-patience])
    return min(ratios[-patience:]) >= best_before


def part_figures(
    modules: Sequence,
    evaluations: Mapping[str, evaluate_policy_lib.ModuleEvaluation],
    oracle_sizes: Mapping[str, tuple[int, int]],
) -> PartFigures:
    """Figures of `modules` from their evaluations (module name -> ModuleEvaluation) and their collection's sizes
    (module name -> (best size, -Oz size) in bytes). The oracle is over the evaluated modules with the evaluation's
    stock -Oz sizes as denominator; when none of `modules` was evaluated (train with evaluate_train=False) it is
    over the collection's own sizes."""
    ok = [evaluations[m.name] for m in modules if m.name in evaluations and evaluations[m.name].ok]
    summary = evaluate_policy_lib.summarize("", ok)
    if ok:
        oracle_total = sum(min(oracle_sizes.get(e.module, (e.oz_size,))[0], e.oz_size) for e in ok)
        oracle = oracle_total / summary.oz_total if summary.oz_total else None
    else:
        pairs = [oracle_sizes[m.name] for m in modules if m.name in oracle_sizes]
        oz_total = sum(oz for _, oz in pairs)
        oracle = sum(best for best, _ in pairs) / oz_total if oz_total else None
    return PartFigures(
        modules=len(modules),
        evaluated=len(ok),
        ratio=summary.total_ratio,
        oracle_ratio=oracle,
        geomean=summary.geomean_ratio,
        smaller=summary.smaller,
        larger=summary.larger,
    )


def figures(
    module_splits: splits.ModuleSplits,
    evaluations: Mapping[str, evaluate_policy_lib.ModuleEvaluation],
    oracle_sizes: Mapping[str, tuple[int, int]],
) -> tuple[dict[str, PartFigures], tuple[CodebaseFigures, ...]]:
    """PartFigures of every part, and of every codebase's test modules (sorted by part, then codebase)."""
    parts = {p: part_figures(modules, evaluations, oracle_sizes) for p, modules in module_splits.items()}
    by_codebase = []
    for part in splits.TEST_PARTS:
        for codebase in module_splits.codebases(part):
            modules = [m for m in module_splits.part(part) if splits.codebase_of(m.name) == codebase]
            by_codebase.append(
                CodebaseFigures(
                    codebase=codebase,
                    part=part,
                    language=module_splits.languages.get(codebase, ""),
                    figures=part_figures(modules, evaluations, oracle_sizes),
                )
            )
    return parts, tuple(by_codebase)


def validation_kinds(module_splits: splits.ModuleSplits, it_dir: str) -> dict[str, PartFigures]:
    """The validation part's figures by kind: modules of codebases with no train module (VALIDATION_UNSEEN_CODEBASES:
    the question a user's own code asks), modules of training codebases (VALIDATION_UNSEEN_FILES), and the large
    modules a run adds from another corpus (VALIDATION_LARGE_MODULES), if any. Read from the
    iteration's files (eval_validation.csv and the held-out baselines' profiles), so an iteration run before this
    existed gets them too; {} when the iteration has no validation evaluation."""
    path = os.path.join(it_dir, f"eval_{splits.VALIDATION}.csv")
    if not module_splits.validation or not os.path.exists(path):
        return {}
    try:
        evaluations = evaluate_policy_lib.read_csv(path)
    except (ValueError, KeyError, OSError) as e:
        # Supplementary figures: a damaged file costs them, not the run (the iteration's own figures are kept).
        logging.warning("%s: cannot read it (%s); validation by kind is left out for this iteration", path, e)
        return {}
    oracle_sizes = _oracle_sizes(os.path.join(it_dir, EVAL_BASELINES_DIR, collection.PROFILES_FILE))
    return {
        kind: part_figures(modules, evaluations, oracle_sizes)
        for kind, modules in validation_kind_modules(module_splits).items()
    }


def validation_kind_modules(module_splits: splits.ModuleSplits) -> dict[str, list]:
    """The validation modules by kind (VALIDATION_KINDS): of the main corpus, those of codebases with no train module
    and those of the others; and the large modules added from another corpus, when there are any."""
    seen = set(module_splits.codebases(splits.TRAIN))
    main = [m for m in module_splits.validation if m.name not in module_splits.large]
    kinds = {
        VALIDATION_UNSEEN_CODEBASES: [m for m in main if splits.codebase_of(m.name) not in seen],
        VALIDATION_UNSEEN_FILES: [m for m in main if splits.codebase_of(m.name) in seen],
    }
    if module_splits.large:
        kinds[VALIDATION_LARGE_MODULES] = [m for m in module_splits.validation if m.name in module_splits.large]
    return kinds


def _oracle_sizes(profiles_path: str) -> dict[str, tuple[int, int]]:
    """Module name -> (best size, -Oz size) in bytes, from a collection's profiles (modules with both known)."""
    if not os.path.exists(profiles_path):
        return {}
    return {
        p.module: (p.best_size, p.oz_size)
        for p in profiles_lib.read_jsonl(profiles_path)
        if p.best_size is not None and p.oz_size is not None
    }


def build_vocab(records: str | Sequence[str], vocab_dir: str) -> None:
    """The vocab (feature quantiles) of `records` (files or globs) into vocab_dir, written whole or not at all."""
    with atomic_file.staged_dir(vocab_dir) as tmp:
        generate_vocab_lib.generate_vocab([records] if isinstance(records, str) else list(records), tmp)
        atomic_file.write_text(os.path.join(tmp, ".complete"), "")


def _evaluate(
    module_splits: splits.ModuleSplits, modules, policy_spec, executor, cache_dir, it_dir, progress
) -> dict[str, evaluate_policy_lib.ModuleEvaluation]:
    """Evaluates `policy_spec` on `modules` in one pass; writes it_dir/eval_<part>.csv and .summary.json for every
    part with modules. A rerun recompiles nothing: the compiles are cached."""
    if not modules:
        return {}
    evaluations, _ = evaluate_policy_lib.evaluate(
        modules, policies.parse(policy_spec), executor, cache_dir=cache_dir, progress=progress
    )
    by_name = {e.module: e for e in evaluations}
    for part, part_modules in module_splits.items():
        rows = [by_name[m.name] for m in part_modules if m.name in by_name]
        if rows:
            rows.sort(key=lambda e: e.module)
            summary = evaluate_policy_lib.summarize(policy_spec, rows)
            evaluate_policy_lib.write(os.path.join(it_dir, f"eval_{part}"), rows, summary)
    return by_name
