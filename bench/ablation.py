r"""Ablation of BC-MAX recipes side by side, on the same data: train oracle and policy, validation and test ratios,
compiles spent.

Usage:
  nice -n 10 .venv/bin/python bench/ablation.py [--data_path=CORPUS] [--root_dir=DIR] [--num_workers=2]
      [--setting=default] [--setting=mlgo_recipe] [--setting=NAME=a.gin+b.gin] [--gin_bindings=...]
      [--max_modules=N] [--cache_dir=DIR] [--gin_files=gin_configs/splits_v2.gin] [--large_data_path=LARGE_CORPUS]

Each setting is a list of gin files (SETTINGS, or NAME=FILE+FILE on the command line) run through the BC-MAX loop
(bc_max_lib.run) on the train split, with the validation split choosing: the loop stops on it, and the reported
iteration is the one with the best validation ratio. That iteration's policy is then evaluated once on the test
split (reported only, never used to choose). --gin_bindings apply to every setting (e.g. fewer steps for a quick
run). Settings share one compile cache under --root_dir, so common baselines compile once; a rerun resumes.

Splits come from compiler_opt/rl/splits.py (by codebase, gin's splits.SplitPolicy defaults): the loop sees train and
validation; test is both test parts (unseen codebases and unseen files), each also reported alone. With
--large_data_path (`make_default_corpus --corpus=v2_large`), the large modules the split puts in validation join it,
as in `bc_max --large_data_path`.

Prints JSON: per setting, per iteration the train oracle (per-module best of baselines and explorations / -Oz),
train policy, validation policy and validation oracle ratios, and the collection compiles spent (every baseline and
exploration compile of the train split, counted whether or not the cache served it); then the chosen iteration's
figures and its test ratios. Ratios are total text size over stock -Oz's.
"""

import dataclasses
import json
import os
import tempfile

import gin
from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import evaluate_policy_lib, module_selection, policies
from compiler_opt.rl import splits as splits_lib
from compiler_opt.rl.imitation_learning import bc_max_lib, profiles
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus (default: the default corpus, built if needed).")
_ROOT_DIR = flags.DEFINE_string("root_dir", None, "Where the runs go (default: a new temporary directory).")
_SETTINGS = flags.DEFINE_multi_string(
    "setting", ["default", "mlgo_recipe"], "A setting of SETTINGS, or NAME=FILE.gin[+FILE.gin...]."
)
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings applied to every setting.")
_GIN_FILES = flags.DEFINE_multi_string(
    "gin_files", [], "Gin files applied after every setting's own (e.g. gin_configs/splits_v2.gin on corpus v2)."
)
_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Shared compile cache (default: ROOT_DIR/compile_cache_shared).")
_MAX_MODULES = flags.DEFINE_integer(
    "max_modules", None, "Use a fixed sample of this many modules in all (spread over parts and codebases)."
)
_LARGE_DATA_PATH = flags.DEFINE_string(
    "large_data_path", None, "Corpus of large modules --data_path leaves out; its validation modules join validation."
)
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()

_GIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gin_configs")
SETTINGS = {
    # This project's default recipe.
    "default": ("bc_max.gin",),
    # google/ml-compiler-opt's BC-MAX recipe (gin_configs/mlgo_recipe.gin).
    "mlgo_recipe": ("mlgo_recipe.gin",),
    # The default recipe with budgeted exploration at the same mean exploration compiles per module.
    "budgeted_exploration": ("budgeted_exploration.gin",),
}


def splits(data_path: str, max_modules: int | None, large_data_path: str | None = None) -> splits_lib.ModuleSplits:
    """The corpus split by codebase; `max_modules` keeps a sample of that many spread over parts and codebases;
    `large_data_path` adds its validation modules to validation (module_selection.load_splits)."""
    return module_selection.load_splits(data_path, max_modules, large_data_path)


def _gin_files(setting: str) -> tuple[str, list[str]]:
    name, sep, files = setting.partition("=")
    if sep:
        return name, files.split("+")
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}: use one of {sorted(SETTINGS)} or NAME=FILE.gin[+FILE.gin]")
    return name, [os.path.join(_GIN_DIR, f) for f in SETTINGS[name]]


def _collection_compiles(profiles_path: str) -> dict[str, int]:
    rows = profiles.read_jsonl(profiles_path)
    every = sum(len(p.results) for p in rows)
    explore = sum(1 for p in rows for name in p.results if "+explore" in name)
    return {"collection_compiles": every, "exploration_compiles": explore}


def run_setting(name, files, data, root_dir, executor, cache_dir) -> dict:
    gin.clear_config()
    gin_setup.parse([*files, *_GIN_FILES.value], _GIN_BINDINGS.value)
    run_dir = os.path.join(root_dir, name)
    os.makedirs(run_dir, exist_ok=True)
    if not os.path.exists(os.path.join(run_dir, "compile_cache")):
        os.symlink(cache_dir, os.path.join(run_dir, "compile_cache"))
    loop_data = dataclasses.replace(data, test_unseen_codebases=(), test_unseen_files=())
    results = bc_max_lib.run(loop_data, run_dir, executor, progress=False)
    iterations = []
    for r in results:
        traj = os.path.join(bc_max_lib.iteration_dir(run_dir, r.iteration), "trajectories", collection.PROFILES_FILE)
        iterations.append(
            {
                "iteration": r.iteration,
                "train_oracle": r.parts[splits_lib.TRAIN].oracle_ratio,
                "train_policy": r.ratio(splits_lib.TRAIN),
                "validation": r.ratio(splits_lib.VALIDATION),
                "validation_oracle": r.parts[splits_lib.VALIDATION].oracle_ratio,
                **_collection_compiles(traj),
            }
        )
    chosen = bc_max_lib.best_iteration(results)
    test = {"test": None, **{p: None for p in splits_lib.TEST_PARTS}}
    test_modules = [m for p in splits_lib.TEST_PARTS for m in data.part(p)]
    if test_modules:
        evaluations, summary = evaluate_policy_lib.evaluate(
            test_modules, policies.parse(chosen.policy), executor, cache_dir=cache_dir, progress=False
        )
        test["test"] = summary.total_ratio
        for p in splits_lib.TEST_PARTS:
            names = {m.name for m in data.part(p)}
            part = [e for e in evaluations if e.module in names]
            test[p] = evaluate_policy_lib.summarize(chosen.policy, part).total_ratio
    row = next(i for i in iterations if i["iteration"] == chosen.iteration)
    return {
        "gin_files": [os.path.relpath(f) for f in (*files, *_GIN_FILES.value)],
        "iterations": iterations,
        "chosen_iteration": chosen.iteration,
        "train_oracle": row["train_oracle"],
        "train_policy": row["train_policy"],
        "validation": row["validation"],
        **test,
        "compiles": sum(i["collection_compiles"] for i in iterations),
        "exploration_compiles": sum(i["exploration_compiles"] for i in iterations),
        "policy": chosen.policy,
    }


def main(argv):
    del argv
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    # The split is the one the first setting's gin files (and --gin_files) give; every setting runs on it.
    gin.clear_config()
    gin_setup.parse([*_gin_files(_SETTINGS.value[0])[1], *_GIN_FILES.value], _GIN_BINDINGS.value)
    data = splits(data_path, _MAX_MODULES.value, _LARGE_DATA_PATH.value)
    root_dir = _ROOT_DIR.value or tempfile.mkdtemp(prefix="bcmax_ablation_")
    cache_dir = os.path.abspath(_CACHE_DIR.value or os.path.join(root_dir, "compile_cache_shared"))
    os.makedirs(cache_dir, exist_ok=True)
    settings = {}
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        for setting in _SETTINGS.value:
            name, files = _gin_files(setting)
            settings[name] = run_setting(name, files, data, root_dir, executor, cache_dir)
    print(
        json.dumps(
            {
                "benchmark": "ablation",
                "data_path": data_path,
                "large_data_path": _LARGE_DATA_PATH.value,
                "root_dir": os.path.abspath(root_dir),
                "modules": {k: len(v) for k, v in data.items()},
                "gin_bindings": _GIN_BINDINGS.value,
                "settings": settings,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    app.run(main)
