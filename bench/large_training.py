r"""Does cloning on large modules help on large modules? A finished BC-MAX iteration retrained with the trajectories
of some of the slow TUs that corpus v2 leaves out, judged on the slow TUs of the validation part.

Usage:
  nice -n 10 .venv/bin/python bench/large_training.py --run_dir=RUN --iteration=4 --data_path=CORPUS_V2 \
      --gin_files=gin_configs/bc_max_full.gin --gin_files=gin_configs/splits_v2.gin \
      [--codebases=duckdb,llama,sentencepiece] [--tus_per_codebase=60] [--max_large_train=25] [--seeds=0,1,2] \
      [--variants=base,with_large] [--winners=SPEC,...] [--own_vocab] [--base_with_large_vocab] \
      [--max_compile_seconds=120] [--num_workers=2]

Input: a finished iteration of a BC-MAX run on corpus v2 (RUN/iteration_T: trajectories/, iteration.json; RUN/vocab;
RUN/compile_cache) and that run's corpus and gin files. The codebases of --codebases are built again without the
pinned slow list (corpus_v2_lib.build_corpus_v2 with `slow_list=None`; at most --tus_per_codebase TUs each, in the
corpus's own sampling order, or with 0 only the slow TUs; its own cache entry). Of the TUs the slow list leaves out
of corpus v2, those the split (the gin files' splits.SplitPolicy, a function of the module name) puts in train are
the large train modules (at most --max_large_train, by the split's name hash), those it puts in validation the large
validation modules; test modules are not touched. The large train modules are collected like the iteration's own
train modules (its baselines, its exploration: the newest learned policy among them, 2 steps) into WORK/trajectories
(WORK: --work_dir, by default RUN/large_training_T); then for every seed the variants are trained with the
iteration's trainer settings, each evaluated on the whole validation part of the corpus and on the large validation
modules. Variants (records; vocab): `base` (the iteration's; the run's), `with_large` (those and the large ones; the
run's), with --winners `with_large_winners` (the iteration's and the large modules one of those baselines won; the
run's). --own_vocab gives every variant but base a vocab of its own records (suffix `_own_vocab`);
--base_with_large_vocab adds `base_with_large_vocab` (the iteration's records; the vocab of those and the large ones).
Compiles are cached in RUN/compile_cache; a rerun resumes.

Prints JSON: the module counts; for the iteration's own train records and for the large ones (`collections`), the
modules, the decisions recorded, the oracle and each baseline alone as total text size over stock -Oz, and which
trajectory was best how often (`wins`); and per seed and policy the total text size over stock -Oz (modules
smaller/larger) on validation, on its unseen codebases and unseen files, and on the large validation modules; the
same for each threshold baseline alone on the large validation modules.
"""

import json
import os

import gin
from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import corpus, corpus_v2_lib, evaluate_policy_lib, module_selection, policies
from compiler_opt.rl import splits as splits_lib
from compiler_opt.rl.imitation_learning import bc_max_lib, profiles, weighted_bc_trainer_lib
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection

_RUN_DIR = flags.DEFINE_string("run_dir", None, "A finished BC-MAX run on corpus v2.", required=True)
_ITERATION = flags.DEFINE_integer("iteration", 4, "The finished iteration to retrain.")
_DATA_PATH = flags.DEFINE_string("data_path", None, "The run's corpus (corpus v2).", required=True)
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "The run's gin files (recipe and split).")
_CODEBASES = flags.DEFINE_list("codebases", ["duckdb", "llama", "sentencepiece"], "Codebases built without the limit.")
_TUS_PER_CODEBASE = flags.DEFINE_integer(
    "tus_per_codebase", 60, "TUs built per codebase, in the corpus's sampling order (0: every slow TU, only those)."
)
_MAX_LARGE_TRAIN = flags.DEFINE_integer("max_large_train", 25, "Large train modules collected (0: all).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Trainer seeds.")
_WINNERS = flags.DEFINE_list(
    "winners",
    [],
    "If given, a third policy `with_large_winners`: the large train modules whose best trajectory is one of these "
    "baselines (or exploration around one) join the iteration's records, the others do not.",
)
_OWN_VOCAB = flags.DEFINE_bool(
    "own_vocab",
    False,
    "Train the variants other than base with a vocab (feature quantiles) of their own records, large modules "
    "included, instead of the run's (players and directories get the suffix `_own_vocab`).",
)
_BASE_WITH_LARGE_VOCAB = flags.DEFINE_bool(
    "base_with_large_vocab",
    False,
    "Also `base_with_large_vocab`: the iteration's records alone with the vocab of those and the large ones (does "
    "the vocab alone help?).",
)
_VARIANTS = flags.DEFINE_list("variants", ["base", "with_large"], "Which of base, with_large to train and evaluate.")
_WORK_DIR = flags.DEFINE_string("work_dir", None, "Records and policies of this bench (default RUN/large_training_T).")
_MAX_COMPILE_SECONDS = flags.DEFINE_float("max_compile_seconds", 120.0, "CPU seconds over which a TU is left out.")
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()
_ratio = evaluate_policy_lib.ratio_of


def large_modules(codebases, data_path) -> tuple[list, list]:
    """(large train modules, large validation modules): the slow-listed TUs of `codebases` that a build without the
    limit kept, by the gin split of their names beside those of corpus v2 at `data_path`."""
    slow = corpus_v2_lib.slow_module_names(codebases)
    # --tus_per_codebase=0: every slow TU of the codebases, and only those (a selection by module name).
    sample = _TUS_PER_CODEBASE.value
    corpus_dir, _ = corpus_v2_lib.build_corpus_v2(
        selection=corpus_v2_lib.Selection(
            codebases=tuple(codebases), max_modules=sample, modules=() if sample else tuple(sorted(slow))
        ),
        slow_list=None,
        max_compile_seconds=_MAX_COMPILE_SECONDS.value,
    )
    built = [m for m in corpus.Corpus.load(corpus_dir).modules if m.name in slow]
    # The split of the large modules is the one corpus v2's own modules get: by codebase, then by name hash.
    parts = module_selection.parts_with(data_path, [m.name for m in built])
    train = sorted((m for m in built if parts[m.name] == splits_lib.TRAIN), key=lambda m: splits_lib.score(m.name))
    validation = [m for m in built if parts[m.name] == splits_lib.VALIDATION]
    return train[: _MAX_LARGE_TRAIN.value or None], validation


def collection_figures(profiles_path: str, baselines) -> dict:
    """What a collection's profiles.jsonl says of its modules: decisions recorded, the oracle and each baseline alone
    (total text size over stock -Oz, modules without an -Oz size left out) and the best trajectory's counts."""
    rows = [r for r in profiles.read_jsonl(profiles_path) if r.oz_size and r.best_size]
    oz = sum(r.oz_size for r in rows)

    def alone(spec):  # a baseline that failed or did not run on a module counts at its -Oz size
        return sum((r.results[spec].size if spec in r.results else None) or r.oz_size for r in rows) / oz

    wins: dict[str, int] = {}
    for r in rows:
        wins[r.best] = wins.get(r.best, 0) + 1
    return {
        "modules": len(rows),
        "decisions": sum(r.results[r.recorded].horizon for r in rows if r.recorded in r.results),
        "oracle_ratio": sum(r.best_size for r in rows) / oz,
        "baseline_ratios": {b: alone(b) for b in baselines},
        "wins": dict(sorted(wins.items(), key=lambda kv: -kv[1])),
    }


def winner_records(profiles_path: str, winners) -> list[str]:
    """Record paths (relative to the collection directory) of the modules whose best trajectory is one of `winners`
    or exploration around one (`SPEC+exploreN`)."""
    return sorted(
        r.record for r in profiles.read_jsonl(profiles_path) if r.record and r.best and r.best.split("+")[0] in winners
    )


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, [])
    data = module_selection.load_splits(_DATA_PATH.value)
    run_dir = os.path.abspath(_RUN_DIR.value)
    it_dir = bc_max_lib.iteration_dir(run_dir, _ITERATION.value)
    iteration = bc_max_lib.IterationResult.read(os.path.join(it_dir, bc_max_lib.ITERATION_FILE))
    traj_dir = os.path.join(it_dir, "trajectories")
    cache_dir = os.path.join(run_dir, "compile_cache")
    work = os.path.abspath(_WORK_DIR.value or os.path.join(run_dir, f"large_training_{_ITERATION.value}"))
    large_train, large_validation = large_modules(_CODEBASES.value, _DATA_PATH.value)
    learned = [b for b in iteration.baselines if b.startswith("saved:")]
    out = {
        "benchmark": "large_training",
        "run_dir": run_dir,
        "iteration": _ITERATION.value,
        "large_train": [m.name for m in large_train],
        "large_validation": [m.name for m in large_validation],
        "validation_modules": len(data.validation),
        "players": {},
    }
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        large_dir = os.path.join(work, "trajectories")
        collection.collect(
            large_train,
            policies.parse_all(iteration.baselines),
            large_dir,
            executor,
            exploration_policy=learned[-1] if learned else "heuristic_margin",
            max_exploration_steps=2,
            cache_dir=cache_dir,
        )
        out["collections"] = {
            name: collection_figures(os.path.join(d, collection.PROFILES_FILE), iteration.baselines)
            for name, d in (("iteration_train", traj_dir), ("large_train", large_dir))
        }
        print(json.dumps({"collections": out["collections"]}), flush=True)
        own = os.path.join(traj_dir, collection.RECORDS_DIR, "*.tfrecord")
        large = os.path.join(large_dir, collection.RECORDS_DIR, "*.tfrecord")
        # name -> records trained on; `vocab_of`: name -> (vocab directory, records it is drawn from), else the run's.
        records = {"base": [own], "with_large": [own, large]}
        records = {name: files for name, files in records.items() if name in _VARIANTS.value}
        if _WINNERS.value:
            chosen = winner_records(os.path.join(large_dir, collection.PROFILES_FILE), _WINNERS.value)
            out["with_large_winners_modules"] = len(chosen)
            records["with_large_winners"] = [own, *(os.path.join(large_dir, r) for r in chosen)]
        vocab_of = {}
        if _OWN_VOCAB.value:
            records = {(n if n == "base" else f"{n}_own_vocab"): files for n, files in records.items()}
            vocab_of = {n: (f"vocab_{n}", files) for n, files in records.items() if n != "base"}
        if _BASE_WITH_LARGE_VOCAB.value:
            records["base_with_large_vocab"] = [own]
            vocab_of["base_with_large_vocab"] = ("vocab_with_large_own_vocab", [own, large])
        vocabs = {name: os.path.join(run_dir, "vocab") for name in records}
        for name, (directory, files) in vocab_of.items():
            vocabs[name] = os.path.join(work, directory)
            if not os.path.exists(os.path.join(vocabs[name], ".complete")):
                bc_max_lib.build_vocab(files, vocabs[name])
        kinds = bc_max_lib.validation_kind_modules(data)
        for seed in _SEEDS.value:
            for name, files in records.items():
                gin.clear_config()
                gin_setup.parse(_GIN_FILES.value, [f"weighted_bc.TrainerConfig.seed={seed}"], log=False)
                # Size-bucket weights from the iteration's profiles (the large modules' sizes fall in its top bucket).
                training = weighted_bc_trainer_lib.train(
                    files,
                    vocabs[name],
                    os.path.join(work, f"seed{seed}", name),
                    profiles_path=os.path.join(traj_dir, collection.PROFILES_FILE),
                )
                policy = policies.parse("saved:" + training.saved_policy_dir)
                evaluations, _ = evaluate_policy_lib.evaluate(
                    [*data.validation, *large_validation], policy, executor, cache_dir=cache_dir, progress=False
                )
                key = f"seed{seed}/{name}"
                out["players"][key] = {
                    "validation": _ratio(evaluations, data.validation),
                    **{f"validation_{k}": _ratio(evaluations, m) for k, m in kinds.items()},
                    "large_validation": _ratio(evaluations, large_validation),
                }
                print(json.dumps({key: out["players"][key]}), flush=True)
        for baseline in iteration.baselines:
            if baseline.startswith("heuristic:"):
                evaluations, _ = evaluate_policy_lib.evaluate(
                    large_validation, policies.parse(baseline), executor, cache_dir=cache_dir, progress=False
                )
                out["players"][baseline] = {"large_validation": _ratio(evaluations, large_validation)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
