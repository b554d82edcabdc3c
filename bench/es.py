r"""Evolution strategies from a heuristic clone, and whether an ES policy helps BC-MAX, on the default corpus.

Usage:
  .venv/bin/python bench/es.py [--data_path=CORPUS] [--work_dir=DIR] [--num_workers=2] [--es_steps=30]
      [--es_modules=16] [--es_max_module_kb=64] [--bc_steps=3000] [--bc_max_modules=N]
      [--gin_files=gin_configs/splits_v2.gin]

--gin_files: gin files read after bc_max.gin and es.gin (e.g. corpus v2's split, gin_configs/splits_v2.gin).

Steps (all on --num_workers local workers, one compile cache shared by every step):
  1. warm start: collect the heuristic alone (no exploration) on the train split, make the vocab, and clone it
     with the weighted BC trainer (--bc_steps steps, gin_configs/weighted_bc_trainer.gin otherwise);
  2. ES train sample: --es_modules modules drawn (seed 0) from the train-split modules whose bitcode is at most
     --es_max_module_kb KiB (small modules keep a step short; ES itself leaves out modules without decisions);
  3. --es_steps ES steps from the warm start with gin_configs/es.gin;
  4. the size ratio vs stock -Oz (total text size / -Oz total) of the warm start and of the ES policy, on the ES
     sample, the whole train part and the validation part of the split by codebase (compiler_opt/rl/splits.py);
  5. one BC-MAX iteration (gin_configs/bc_max.gin: exploration around the best baseline, --bc_steps training steps)
     from {heuristic} and from {heuristic, ES policy}, on the train part (or a --bc_max_modules sample of it),
     both evaluated on the validation part (whether ES helps is a choice: the test parts are not used). The two
     runs share the compile cache (a symlink from each root's compile_cache), so compiles they have in common run
     once.
Prints JSON: ratios before/after ES, ES compiles/s, both BC-MAX validation ratios and their difference, timings.
With the defaults the whole run takes about 9 minutes on 2 cores (ES: 30 steps x 96 compiles, ~5.5 minutes).
"""

import dataclasses
import json
import os
import shutil
import tempfile
import time

from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.distributed import local
from compiler_opt.es import es_trainer_lib
from compiler_opt.rl import corpus, evaluate_policy_lib, generate_vocab_lib, module_selection, policies, splits
from compiler_opt.rl.imitation_learning import bc_max_lib, weighted_bc_trainer_lib
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus (default: the default corpus, built if needed).")
_WORK_DIR = flags.DEFINE_string("work_dir", None, "Where outputs go (default: a temporary dir, removed at the end).")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 2, "Local worker processes.")
_ES_STEPS = flags.DEFINE_integer("es_steps", 30, "ES steps.")
_ES_MODULES = flags.DEFINE_integer("es_modules", 16, "Size of the ES train sample (modules).")
_ES_MAX_MODULE_KB = flags.DEFINE_integer("es_max_module_kb", 64, "Largest bitcode (KiB) in the ES train sample.")
_BC_STEPS = flags.DEFINE_integer("bc_steps", 3000, "Weighted BC training steps (warm start and each BC-MAX run).")
_BC_MAX_MODULES = flags.DEFINE_integer("bc_max_modules", None, "BC-MAX on a sample of the train split (default all).")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Extra gin files (e.g. the split: splits_v2.gin).")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings (es.ESConfig.sigma=..., ...).")

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ratios(modules_by_split, spec, executor, cache_dir) -> dict:
    policy = policies.parse(spec)
    out = {}
    for split, modules in modules_by_split.items():
        _, summary = evaluate_policy_lib.evaluate(modules, policy, executor, cache_dir=cache_dir, progress=False)
        out[split] = round(summary.total_ratio, 6)
        if summary.failures:
            out[split + "_failures"] = summary.failures
    return out


def _warm_start(train, work, executor, cache_dir) -> str:
    traj = os.path.join(work, "warm_start", "trajectories")
    collection.collect(
        train,
        [policies.HeuristicPolicy()],
        traj,
        executor,
        exploration_policy="none",
        max_exploration_steps=0,
        cache_dir=cache_dir,
        progress=False,
    )
    records = os.path.join(traj, collection.RECORDS_DIR, "*.tfrecord")
    vocab = os.path.join(work, "warm_start", "vocab")
    generate_vocab_lib.generate_vocab([records], vocab)
    result = weighted_bc_trainer_lib.train(
        [records],
        vocab,
        os.path.join(work, "warm_start", "model"),
        profiles_path=os.path.join(traj, collection.PROFILES_FILE),
    )
    return result.saved_policy_dir


def _bc_max(name, baselines, train, validation, work, executor, cache_dir) -> dict:
    root = os.path.join(work, name)
    os.makedirs(root, exist_ok=True)
    link = os.path.join(root, "compile_cache")
    if not os.path.lexists(link):
        os.symlink(cache_dir, link)
    start = time.monotonic()
    module_splits = splits.ModuleSplits(train=tuple(train), validation=tuple(validation))
    (result,) = bc_max_lib.run(
        module_splits, root, executor, baselines=baselines, iterations=1, evaluate_train=False, progress=False
    )
    val = result.parts[splits.VALIDATION]
    return {
        "baselines": list(baselines),
        "validation_ratio": round(val.ratio, 6),
        "validation_geomean": round(val.geomean, 6),
        "validation_smaller_larger": [val.smaller, val.larger],
        "train_oracle_ratio": result.parts[splits.TRAIN].oracle_ratio,
        "validation_oracle_ratio": val.oracle_ratio,
        "wins": result.wins,
        "seconds": round(time.monotonic() - start, 1),
    }


def main(argv):
    del argv
    start = time.monotonic()
    gin_setup.parse(
        [
            os.path.join(_REPO, "gin_configs", "bc_max.gin"),
            os.path.join(_REPO, "gin_configs", "es.gin"),
            *_GIN_FILES.value,
        ],
        [
            f"weighted_bc.TrainerConfig.num_steps = {_BC_STEPS.value}",
            f"es.ESConfig.num_steps = {_ES_STEPS.value}",
            "generate_bc_trajectories.collect.progress = False",
            "evaluate_policy.evaluate.progress = False",
            *_GIN_BINDINGS.value,
        ],
    )
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    train = module_selection.select(data_path, splits.TRAIN)
    validation = module_selection.select(data_path, splits.VALIDATION)
    small = [m for m in train if m.size_bytes <= _ES_MAX_MODULE_KB.value * 1024]
    es_sample = list(corpus.Corpus(data_path, small).sample(_ES_MODULES.value))
    bc_max_train = list(corpus.Corpus(data_path, train).sample(_BC_MAX_MODULES.value or len(train)))
    work = _WORK_DIR.value or tempfile.mkdtemp(prefix="bench-es-")
    cache_dir = os.path.join(work, "compile_cache")
    seconds = {}
    try:
        with local.LocalExecutor(_NUM_WORKERS.value) as executor:
            t = time.monotonic()
            warm = _warm_start(train, work, executor, cache_dir)
            seconds["warm_start"] = round(time.monotonic() - t, 1)

            parts = {"es_sample": es_sample, "train": train, "validation": validation}
            t = time.monotonic()
            before = _ratios(parts, "saved:" + warm, executor, cache_dir)
            seconds["evaluate_warm_start"] = round(time.monotonic() - t, 1)

            t = time.monotonic()
            config = es_trainer_lib.ESConfig()
            es = es_trainer_lib.train(
                es_sample,
                os.path.join(work, "es"),
                executor,
                warm_start=warm,
                config=config,
                cache_dir=cache_dir,
                progress=False,
            )
            seconds["es"] = round(time.monotonic() - t, 1)

            t = time.monotonic()
            after = _ratios(parts, "saved:" + es.saved_policy_dir, executor, cache_dir)
            seconds["evaluate_es"] = round(time.monotonic() - t, 1)

            heuristic = _bc_max("bc_max_heuristic", ("heuristic",), bc_max_train, validation, work, executor, cache_dir)
            with_es = _bc_max(
                "bc_max_heuristic_es",
                ("heuristic", "saved:" + es.saved_policy_dir),
                bc_max_train,
                validation,
                work,
                executor,
                cache_dir,
            )
            seconds["bc_max"] = round(heuristic["seconds"] + with_es["seconds"], 1)
    finally:
        if _WORK_DIR.value is None:
            shutil.rmtree(work, ignore_errors=True)
    seconds["total"] = round(time.monotonic() - start, 1)
    history = es.history
    print(
        json.dumps(
            {
                "benchmark": "es",
                "workers": _NUM_WORKERS.value,
                "modules": {
                    "train": len(train),
                    "validation": len(validation),
                    "es_sample": len(es_sample),
                    "es_trained_on": list(es.modules),
                    "es_left_out_no_decisions": list(es.left_out_modules),
                    "bc_max_train": len(bc_max_train),
                },
                "es_config": dataclasses.asdict(config),
                "bc_steps": _BC_STEPS.value,
                "size_ratio_vs_oz": {"warm_start": before, "es": after},
                "es": {
                    "steps": es.steps,
                    "parameters": es.parameters,
                    "compiles": es.compiles,
                    "failures": es.failures,
                    "compiles_per_second": es.compiles_per_second,
                    "mean_reward_first_step": round(history[0].mean_reward, 6) if history else None,
                    "mean_reward_last_step": round(history[-1].mean_reward, 6) if history else None,
                    "best_reward": round(max(s.max_reward for s in history), 6) if history else None,
                },
                "bc_max_validation": {
                    "from_heuristic": heuristic,
                    "from_heuristic_and_es": with_es,
                    "ratio_change_with_es": round(with_es["validation_ratio"] - heuristic["validation_ratio"], 6),
                },
                "seconds": seconds,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    app.run(main)
