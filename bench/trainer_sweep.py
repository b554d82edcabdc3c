r"""Trainer settings side by side on the same data, chosen on validation: cloning fidelity against generalization.

Usage:
  nice -n 10 .venv/bin/python bench/trainer_sweep.py --run_dir=RUN/default [--iteration=1] --data_path=CORPUS \
      --gin_files=gin_configs/bc_max.gin [--gin_files=gin_configs/splits_v2.gin] [--max_modules=N] \
      --variant='NAME:BINDING[;BINDING...]' [--variant=...] [--evaluate_test] [--evaluate_train] [--num_workers=2] \
      [--codebase_folds=K] [--large_data_path=LARGE_CORPUS]

Input: a finished BC-MAX iteration under --run_dir (bc_max_lib's layout: iteration_T/trajectories/ records and
profiles.jsonl, vocab/, compile_cache). --data_path, --max_modules, --large_data_path and the split gin files must
be those of that run, so the modules are the same. Each variant is the run's gin files plus its bindings
(weighted_bc.TrainerConfig, training_weights.WeightingConfig, features.FeatureConfig); the variant "current" (no
bindings) is always included.

Every variant is trained on the iteration's trajectories (the same records, profiles and vocab) into
RUN_DIR/sweep_iteration_T/NAME and evaluated with the compiles of evaluate_policy on the validation part (with
--evaluate_train also on the train part). The variant with the lowest validation total ratio is the winner; with
--evaluate_test the winner alone is evaluated on the test parts (reported, never used to choose) and on train (how
much of the oracle it keeps). A rerun resumes:
training continues from its checkpoints and compiles come from the run's cache.

With --codebase_folds=K the variants are judged instead on codebases they never saw, by leave-codebase-out
cross-validation over the train part alone (validation and test are not read, so the result may choose any setting).
The train part's codebases are dealt into K folds in `splits.rank_codebases` order (a hash of the names, alternating
C and C++). For every variant and fold a policy is trained on the iteration's trajectories of the train modules of
the other folds, with a vocab (feature quantiles) of those trajectories alone (in
RUN_DIR/codebase_cv_iteration_T/vocab_fold_F), into RUN_DIR/codebase_cv_iteration_T/fold_F/NAME, and evaluated on
the train modules of the fold's codebases. It prints
JSON: the folds; per variant the held-out total ratio over -Oz pooled over the folds (each module measured by the
policy that never saw its codebase), the geometric mean of the per-codebase ratios, per fold and per codebase ratios,
modules smaller/larger; the oracle and each baseline alone on the same modules; the winner (lowest pooled ratio).

Prints JSON: per variant its bindings, train steps, training seconds, validation (and train) total ratio over stock
-Oz with the modules smaller/larger than -Oz, the same for validation's whole codebases (`validation_unseen_codebases`,
never trained on) and its files of the training codebases (`validation_unseen_files`); the train oracle of the
iteration and, per part, each baseline's total ratio (the best single baseline is the lowest); the winner, its test
ratios and its train ratio.
"""

import json
import math
import os

import gin
from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import evaluate_policy_lib, module_selection, policies
from compiler_opt.rl import splits as splits_lib
from compiler_opt.rl.imitation_learning import bc_max_lib, profiles, weighted_bc_trainer_lib
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection

_RUN_DIR = flags.DEFINE_string("run_dir", None, "A BC-MAX run (bc_max's --root_dir).", required=True)
_ITERATION = flags.DEFINE_integer("iteration", 1, "The finished iteration whose trajectories are trained on.")
_DATA_PATH = flags.DEFINE_string("data_path", None, "The run's corpus (default: the default corpus).")
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "The run's --max_modules sample, if any.")
_LARGE_DATA_PATH = flags.DEFINE_string("large_data_path", None, "The run's --large_data_path, if any.")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "The run's gin files (recipe and split).")
_VARIANTS = flags.DEFINE_multi_string("variant", [], "NAME:BINDING[;BINDING...] (gin bindings of the trainer).")
_EVALUATE_TEST = flags.DEFINE_bool(
    "evaluate_test", False, "Evaluate the validation winner on the test parts (and on train, for its fit)."
)
_EVALUATE_TRAIN = flags.DEFINE_bool("evaluate_train", False, "Evaluate every variant on the train part too.")
_CODEBASE_FOLDS = flags.DEFINE_integer(
    "codebase_folds", 0, "K >= 2: judge the variants by leave-codebase-out cross-validation over the train part."
)
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()
_ratio = evaluate_policy_lib.ratio_of


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'NAME:a=1;b=2' -> ('NAME', ['a=1', 'b=2'])."""
    name, sep, bindings = text.partition(":")
    if not sep or not name or "/" in name:
        raise ValueError(f"--variant={text!r}: write NAME:BINDING[;BINDING...], e.g. small:weighted_bc.X.y=1")
    return name, [b.strip() for b in bindings.split(";") if b.strip()]


def best_single_baselines(profiles_paths, module_names) -> dict[str, float]:
    """Baseline -> total size / -Oz total over `module_names`, from collection profiles (modules every one has)."""
    rows = {}
    for path in profiles_paths:
        if os.path.exists(path):
            rows.update({p.module: p for p in profiles.read_jsonl(path) if p.module in module_names})
    usable = [p for p in rows.values() if p.oz_size is not None]
    if not usable:
        return {}
    names = set.intersection(*(set(p.results) for p in usable))
    totals = {}
    oz = sum(p.oz_size for p in usable)
    for name in sorted(n for n in names if "+explore" not in n):
        sizes = [p.results[name].size if p.results[name].ok else None for p in usable]
        if all(s is not None for s in sizes):
            totals[name] = sum(sizes) / oz
    return totals


def codebase_folds(codebases, languages, folds: int) -> list[list[str]]:
    """The codebases dealt round-robin into `folds` lists in `splits.rank_codebases` order."""
    if folds < 2:
        raise ValueError(f"--codebase_folds must be at least 2, got {folds}")
    ranked = splits_lib.rank_codebases(codebases, languages)
    if len(ranked) < folds:
        raise ValueError(
            f"{len(ranked)} train codebases cannot make {folds} folds; use --codebase_folds={max(2, len(ranked))}"
        )
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


def _finished_iteration() -> tuple[str, str, str, str]:
    """(run dir, iteration dir, its trajectories dir, its profiles.jsonl) of --run_dir's --iteration, finished."""
    run_dir = os.path.abspath(_RUN_DIR.value)
    it_dir = bc_max_lib.iteration_dir(run_dir, _ITERATION.value)
    traj_dir = os.path.join(it_dir, "trajectories")
    if not os.path.exists(os.path.join(it_dir, bc_max_lib.ITERATION_FILE)):
        raise SystemExit(f"{it_dir}: iteration {_ITERATION.value} is not finished; run bc_max (or the ablation) first")
    return run_dir, it_dir, traj_dir, os.path.join(traj_dir, collection.PROFILES_FILE)


def cross_validate(data_path: str, data) -> dict:
    """The --codebase_folds mode (see the module docstring)."""
    run_dir, _, traj_dir, profiles_path = _finished_iteration()
    cache_dir = os.path.join(run_dir, "compile_cache")
    train = list(data.train)
    by_codebase: dict[str, list[str]] = {}
    for m in train:
        by_codebase.setdefault(splits_lib.codebase_of(m.name), []).append(m.name)
    languages = module_selection.languages(data_path, train)
    folds = codebase_folds(by_codebase, languages, _CODEBASE_FOLDS.value)
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
        "benchmark": "trainer_sweep_codebase_cv",
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
                vocab_dir = os.path.join(cv_dir, f"vocab_fold_{f}")
                if not os.path.exists(os.path.join(vocab_dir, ".complete")):
                    bc_max_lib.build_vocab(records, vocab_dir)
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
    return out


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, [])
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    data = module_selection.load_splits(data_path, _MAX_MODULES.value, _LARGE_DATA_PATH.value)
    if _CODEBASE_FOLDS.value:
        print(json.dumps(cross_validate(data_path, data), indent=2))
        return
    run_dir, it_dir, traj_dir, profiles_path = _finished_iteration()
    records = os.path.join(traj_dir, collection.RECORDS_DIR, "*.tfrecord")
    vocab_dir = os.path.join(run_dir, "vocab")
    cache_dir = os.path.join(run_dir, "compile_cache")
    variants = dict([("current", []), *(parse_variant(v) for v in _VARIANTS.value)])
    held = [os.path.join(it_dir, bc_max_lib.EVAL_BASELINES_DIR, collection.PROFILES_FILE), profiles_path]
    train_names = {m.name for m in data.train}
    oracle = bc_max_lib._oracle_sizes(profiles_path)
    oracle_train = [oracle[n] for n in train_names if n in oracle]
    out = {
        "benchmark": "trainer_sweep",
        "run_dir": run_dir,
        "iteration": _ITERATION.value,
        "modules": {k: len(v) for k, v in data.items()},
        "train_oracle": sum(b for b, _ in oracle_train) / sum(o for _, o in oracle_train) if oracle_train else None,
        "best_single_baseline": {
            part: best_single_baselines(held, {m.name for m in data.part(part)}) for part in splits_lib.PARTS
        },
        "variants": {},
    }
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        for name, bindings in variants.items():
            gin.clear_config()
            gin_setup.parse(_GIN_FILES.value, bindings)
            model_dir = os.path.join(run_dir, f"sweep_iteration_{_ITERATION.value}", name)
            training = weighted_bc_trainer_lib.train([records], vocab_dir, model_dir, profiles_path=profiles_path)
            policy = policies.parse("saved:" + training.saved_policy_dir)
            modules = [*data.validation, *(data.train if _EVALUATE_TRAIN.value else ())]
            evaluations, _ = evaluate_policy_lib.evaluate(
                modules, policy, executor, cache_dir=cache_dir, progress=False
            )
            out["variants"][name] = {
                "bindings": bindings,
                "steps": training.steps,
                "training_seconds": round(training.seconds, 1),
                "validation": _ratio(evaluations, data.validation),
                **{
                    f"validation_{kind}": _ratio(evaluations, modules)
                    for kind, modules in bc_max_lib.validation_kind_modules(data).items()
                },
                "policy": "saved:" + training.saved_policy_dir,
            }
            if _EVALUATE_TRAIN.value:
                out["variants"][name]["train"] = _ratio(evaluations, data.train)
            print(json.dumps({name: out["variants"][name]}), flush=True)
        scored = {n: v for n, v in out["variants"].items() if v["validation"]["ratio"] is not None}
        winner = min(scored, key=lambda n: scored[n]["validation"]["ratio"]) if scored else None
        out["winner"] = winner
        if winner and _EVALUATE_TEST.value:
            test_modules = [m for p in splits_lib.TEST_PARTS for m in data.part(p)]
            evaluated = [*test_modules, *(() if _EVALUATE_TRAIN.value else data.train)]
            evaluations, _ = evaluate_policy_lib.evaluate(
                evaluated, policies.parse(scored[winner]["policy"]), executor, cache_dir=cache_dir, progress=False
            )
            out["winner_test"] = {p: _ratio(evaluations, data.part(p)) for p in splits_lib.TEST_PARTS}
            out["winner_test"]["test"] = _ratio(evaluations, test_modules)
            out["winner_train"] = _ratio(evaluations, data.train) if not _EVALUATE_TRAIN.value else None
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
