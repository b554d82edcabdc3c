r"""Trainer settings judged on codebases they never saw: leave-codebase-out cross-validation over the train part.

Usage:
  nice -n 10 .venv/bin/python bench/codebase_cv.py --run_dir=RUN/default [--iteration=1] --data_path=CORPUS \
      --gin_files=gin_configs/bc_max.gin [--gin_files=gin_configs/splits_v2.gin] [--max_modules=N] [--folds=3] \
      --variant='NAME:BINDING[;BINDING...]' [--variant=...] [--num_workers=2]

Input: a finished BC-MAX iteration under --run_dir (bc_max_lib's layout: iteration_T/trajectories/ records and
profiles.jsonl, compile_cache). --data_path, --max_modules and the split gin files must be those of that run, so the
modules are the same. Each variant is the run's gin files plus its bindings; "current" (no bindings) is always run.

The train part's codebases are dealt into --folds folds in `splits.rank_codebases` order (a hash of the names,
alternating C and C++), so the folds are fixed by the names alone. For every variant and fold, a policy is trained on
the iteration's trajectories of the train modules of the other folds, with a vocab (feature quantiles) built from
those trajectories only, into RUN_DIR/codebase_cv_iteration_T/NAME/fold_F; it is then evaluated (evaluate_policy's
compiles) on the train modules of the fold's codebases: codebases it has never seen, as a user's code would be.
Only the train part is used: validation and test are not read, so the result may choose any setting.

Prints JSON: the folds' codebases; per variant its bindings, the held-out total ratio over stock -Oz pooled over all
folds (sizes summed over every train module, each measured by the policy that did not train on its codebase), the
geometric mean of the per-codebase ratios, per fold and per codebase ratios, and modules smaller/larger than -Oz;
over the same modules, the oracle of the iteration's trajectories and each baseline alone, pooled and per codebase;
and the winner (the lowest pooled ratio). A rerun resumes: training continues from its checkpoints and compiles come
from the run's cache.
"""

import json
import math
import os
import sys

import gin
from absl import app, flags

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)  # bench.trainer_sweep, when run as `python bench/codebase_cv.py`

from bench.trainer_sweep import parse_variant  # noqa: E402
from compiler_opt import atomic_file, gin_setup  # noqa: E402
from compiler_opt.distributed import executors  # noqa: E402
from compiler_opt.rl import evaluate_policy_lib, generate_vocab_lib, module_selection, policies  # noqa: E402
from compiler_opt.rl import splits as splits_lib  # noqa: E402
from compiler_opt.rl.imitation_learning import bc_max_lib, profiles, weighted_bc_trainer_lib  # noqa: E402
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection  # noqa: E402

_RUN_DIR = flags.DEFINE_string("run_dir", None, "A BC-MAX run (bc_max's --root_dir).", required=True)
_ITERATION = flags.DEFINE_integer("iteration", 1, "The finished iteration whose trajectories are trained on.")
_DATA_PATH = flags.DEFINE_string("data_path", None, "The run's corpus (default: the default corpus).")
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "The run's --max_modules sample, if any.")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "The run's gin files (recipe and split).")
_VARIANTS = flags.DEFINE_multi_string("variant", [], "NAME:BINDING[;BINDING...] (gin bindings of the trainer).")
_FOLDS = flags.DEFINE_integer("folds", 3, "Folds of the train part's codebases (at least 2).")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()


def codebase_folds(codebases, languages, folds: int) -> list[list[str]]:
    """The codebases dealt round-robin into `folds` lists in `splits.rank_codebases` order."""
    if folds < 2:
        raise ValueError(f"--folds must be at least 2, got {folds}")
    ranked = splits_lib.rank_codebases(codebases, languages)
    if len(ranked) < folds:
        raise ValueError(f"{len(ranked)} train codebases cannot make {folds} folds; use --folds={max(2, len(ranked))}")
    return [ranked[i::folds] for i in range(folds)]


def _total(sizes: dict[str, tuple[int, int]], names) -> tuple[float | None, int, int, int]:
    """(sum of sizes / sum of -Oz sizes, modules smaller, larger, counted) over the names with both known."""
    pairs = [sizes[n] for n in names if n in sizes]
    if not pairs:
        return None, 0, 0, 0
    return (
        sum(s for s, _ in pairs) / sum(o for _, o in pairs),
        sum(s < o for s, o in pairs),
        sum(s > o for s, o in pairs),
        len(pairs),
    )


def _report(sizes: dict[str, tuple[int, int]], folds: list[list[str]], by_codebase: dict[str, list[str]]) -> dict:
    everything = [n for names in by_codebase.values() for n in names]
    ratio, smaller, larger, counted = _total(sizes, everything)
    per_codebase = {c: _total(sizes, names)[0] for c, names in sorted(by_codebase.items())}
    known = [r for r in per_codebase.values() if r]
    return {
        "ratio": ratio,
        "codebase_geomean": math.exp(sum(math.log(r) for r in known) / len(known)) if known else None,
        "smaller": smaller,
        "larger": larger,
        "modules": counted,
        "by_fold": [_total(sizes, [n for c in fold for n in by_codebase[c]])[0] for fold in folds],
        "by_codebase": per_codebase,
    }


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, [])
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    data = module_selection.load_splits(data_path, _MAX_MODULES.value)
    run_dir = os.path.abspath(_RUN_DIR.value)
    it_dir = bc_max_lib.iteration_dir(run_dir, _ITERATION.value)
    traj_dir = os.path.join(it_dir, "trajectories")
    profiles_path = os.path.join(traj_dir, collection.PROFILES_FILE)
    if not os.path.exists(os.path.join(it_dir, bc_max_lib.ITERATION_FILE)):
        raise SystemExit(f"{it_dir}: iteration {_ITERATION.value} is not finished; run bc_max (or the ablation) first")
    cache_dir = os.path.join(run_dir, "compile_cache")
    train = list(data.train)
    by_codebase: dict[str, list[str]] = {}
    for m in train:
        by_codebase.setdefault(splits_lib.codebase_of(m.name), []).append(m.name)
    languages = module_selection.languages(data_path, train)
    folds = codebase_folds(by_codebase, languages, _FOLDS.value)
    train_names = {m.name for m in train}
    module_profiles = {p.module: p for p in profiles.read_jsonl(profiles_path) if p.module in train_names}
    missing = sorted(train_names - set(module_profiles))
    if missing:
        raise SystemExit(
            f"{profiles_path}: no profile of {len(missing)} train modules (e.g. {missing[0]}); "
            "pass the run's --data_path, --max_modules and split gin files"
        )

    baselines: dict[str, dict[str, tuple[int, int]]] = {"oracle": {}}
    for p in module_profiles.values():
        if p.oz_size is None:
            continue
        if p.best_size is not None:
            baselines["oracle"][p.module] = (p.best_size, p.oz_size)
        for name, outcome in p.results.items():
            if "+explore" not in name and outcome.ok and outcome.size is not None:
                baselines.setdefault(name, {})[p.module] = (outcome.size, p.oz_size)
    complete = {n: s for n, s in baselines.items() if len(s) == len(baselines["oracle"])}

    out = {
        "benchmark": "codebase_cv",
        "run_dir": run_dir,
        "iteration": _ITERATION.value,
        "train_modules": len(train),
        "folds": folds,
        "languages": {c: languages.get(c) for c in sorted(by_codebase)},
        "baselines": {n: _report(s, folds, by_codebase) for n, s in sorted(complete.items())},
        "variants": {},
    }
    print(json.dumps({"folds": folds}), flush=True)
    cv_dir = os.path.join(run_dir, f"codebase_cv_iteration_{_ITERATION.value}")
    variants = dict([("current", []), *(parse_variant(v) for v in _VARIANTS.value)])
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        for name, bindings in variants.items():
            sizes: dict[str, tuple[int, int]] = {}
            seconds = 0.0
            for f, fold in enumerate(folds):
                held_out = {n for c in fold for n in by_codebase[c]}
                records = [
                    os.path.join(traj_dir, p.record)
                    for n, p in sorted(module_profiles.items())
                    if n not in held_out and p.record
                ]
                fold_dir = os.path.join(cv_dir, f"fold_{f}")
                vocab_dir = os.path.join(fold_dir, "vocab")
                if not os.path.exists(os.path.join(vocab_dir, ".complete")):
                    with atomic_file.staged_dir(vocab_dir) as tmp:
                        generate_vocab_lib.generate_vocab(records, tmp)
                        atomic_file.write_text(os.path.join(tmp, ".complete"), "")
                gin.clear_config()
                gin_setup.parse(_GIN_FILES.value, bindings)
                training = weighted_bc_trainer_lib.train(
                    records, vocab_dir, os.path.join(fold_dir, name), profiles_path=profiles_path
                )
                seconds += training.seconds
                modules = [m for m in train if m.name in held_out]
                evaluations, _ = evaluate_policy_lib.evaluate(
                    modules,
                    policies.parse("saved:" + training.saved_policy_dir),
                    executor,
                    cache_dir=cache_dir,
                    progress=False,
                )
                for e in evaluations:
                    if e.policy_size is not None and e.oz_size is not None:
                        sizes[e.module] = (e.policy_size, e.oz_size)
            out["variants"][name] = {
                "bindings": bindings,
                "training_seconds": round(seconds, 1),
                "evaluated": len(sizes),
                **_report(sizes, folds, by_codebase),
            }
            print(
                json.dumps({name: {k: v for k, v in out["variants"][name].items() if k != "by_codebase"}}), flush=True
            )
    scored = {n: v for n, v in out["variants"].items() if v["ratio"] is not None}
    out["winner"] = min(scored, key=lambda n: scored[n]["ratio"]) if scored else None
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
