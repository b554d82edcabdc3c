r"""Quality of BC-MAX: total text size vs stock -Oz per iteration on every part of the split by codebase.

Usage:
  .venv/bin/python bench/quality.py [--data_path=CORPUS] [--root_dir=/tmp/bcmax_quality] [--iterations=3]
      [--max_modules=N] [--num_workers=2] [--gin_files=gin_configs/bc_max.gin] [--gin_bindings=...]
      [--large_data_path=LARGE_CORPUS]

Runs the loop of `bc_max` with the settings of the gin files (resumable: an existing --root_dir is continued) on the
corpus split by gin's `splits.SplitPolicy` (compiler_opt/rl/splits.py), then prints JSON: the split (modules and
codebases per part); for each iteration, per part (train, validation, test_unseen_codebases, test_unseen_files) the
policy's ratio (policy total / stock -Oz total) with its oracle (per-module best of that iteration's baselines and,
on train, of the explorations around them, over the same -Oz total), geometric mean and smaller/larger counts, the
same for validation's two kinds of modules (`validation_unseen_codebases`: its whole codebases, never trained on;
`validation_unseen_files`: its files of the training codebases), and the test ratios per codebase; the iteration
chosen on validation with its test ratios against the goal (test on unseen codebases <= 0.98, no test codebase >
1.01) and, per part, every initial baseline played alone
(`heuristic:threshold=N` over the same -Oz total; a failed compile counts at its -Oz size) with the best single one,
the same per codebase beside the policy's ratio, and that iteration's figures per module-size bucket (by stock -Oz
text bytes; large modules decide the totals). With --large_data_path (the corpus of the large modules corpus v2
leaves out: `make_default_corpus --corpus=v2_large`), those the split puts in validation join it
(module_selection.load_splits), and `validation_large_modules` gives their figures; with gin's
`module_selection.load_splits.large_train_modules` (gin_configs/large_train.gin) some of those it puts in train join
train.
"""

import csv
import dataclasses
import json
import os
import tempfile

from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import module_selection, saved_policy, splits
from compiler_opt.rl.imitation_learning import bc_max_lib, profiles, report
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection

_DATA_PATH = flags.DEFINE_string("data_path", None, "MLGO corpus (default: the default corpus, built if needed).")
_ROOT_DIR = flags.DEFINE_string("root_dir", None, "Where the loop writes (default: a new temporary directory).")
_ITERATIONS = flags.DEFINE_integer("iterations", 3, "BC-MAX iterations.")
_MAX_MODULES = flags.DEFINE_integer("max_modules", None, "Use a fixed sample of this many modules (default: all).")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", ["gin_configs/bc_max.gin"], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")
_LARGE_DATA_PATH = flags.DEFINE_string(
    "large_data_path",
    None,
    "Corpus of large modules --data_path leaves out; its validation modules join validation.",
)
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()

GOAL_TEST_UNSEEN_CODEBASES = 0.98
GOAL_WORST_TEST_CODEBASE = 1.01


def _policy_digest(spec: str) -> str | None:
    """saved_policy.saved_model_digest of a learned policy spec (`saved:DIR`), the digest that
    compiler_opt/tools/ship_model_lib.py records for a shipped model; None for any other policy."""
    if not spec.startswith("saved:"):
        return None
    return saved_policy.saved_model_digest(spec[len("saved:") :])


def _figures(f: bc_max_lib.PartFigures) -> dict:
    return {
        "ratio": f.ratio,
        "oracle_ratio": f.oracle_ratio,
        "geomean": f.geomean,
        "smaller": f.smaller,
        "larger": f.larger,
        "modules": f.modules,
        "evaluated": f.evaluated,
    }


def _iteration(r: bc_max_lib.IterationResult) -> dict:
    return {
        "iteration": r.iteration,
        **{p: _figures(r.parts[p]) for p in splits.PARTS},
        **{f"validation_{k}": _figures(f) for k, f in r.validation_kinds.items()},
        "test_by_codebase": {
            c.codebase: {"part": c.part, "language": c.language, **_figures(c.figures)} for c in r.test_codebases
        },
        "seconds": r.seconds,
    }


def _baseline_ratios(it_dir: str, part: str, baselines, by_codebase: bool = False) -> dict:
    """Total size of each baseline alone over the -Oz total, on the modules of `part` evaluated in `it_dir`
    ({baseline: ratio}); with by_codebase, the same per codebase of the part ({codebase: {baseline: ratio}}), the
    policy's ratio beside them under "policy"."""
    path = os.path.join(it_dir, f"eval_{part}.csv")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        rows = [row for row in csv.DictReader(f) if row["ratio"]]
    collected = {}
    for sub in ("trajectories", bc_max_lib.EVAL_BASELINES_DIR):
        profiles_path = os.path.join(it_dir, sub, collection.PROFILES_FILE)
        if os.path.exists(profiles_path):
            collected.update({p.module: p for p in profiles.read_jsonl(profiles_path)})
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(splits.codebase_of(row["module"]) if by_codebase else "", []).append(row)
    out = {}
    for group, members in sorted(groups.items()):
        total = sum(int(r["oz_size"]) for r in members)
        ratios = {}
        for baseline in baselines:
            size = 0
            for r in members:
                module, oz_size = r["module"], int(r["oz_size"])
                outcome = collected[module].results.get(baseline) if module in collected else None
                size += outcome.size if outcome is not None and outcome.ok else oz_size
            ratios[baseline] = size / total if total else None
        if by_codebase:
            ratios["policy"] = sum(int(r["policy_size"]) for r in members) / total if total else None
        out[group] = ratios
    return out if by_codebase else out.get("", {b: None for b in baselines})


def _by_size_bucket(it_dir: str, part: str) -> list[dict]:
    """Per size bucket of stock -Oz text size (profiles.size_bucket's partitions): modules, -Oz total bytes, the
    share of the part's -Oz bytes, the policy's and the oracle's total over the -Oz total, and modules smaller /
    larger than -Oz."""
    path = os.path.join(it_dir, f"eval_{part}.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r["ratio"]]
    best = {}
    for sub in ("trajectories", bc_max_lib.EVAL_BASELINES_DIR):
        profiles_path = os.path.join(it_dir, sub, collection.PROFILES_FILE)
        if os.path.exists(profiles_path):
            best.update({p.module: p.best_size for p in profiles.read_jsonl(profiles_path) if p.best_size})
    buckets: dict[int, list] = {}
    for r in rows:
        buckets.setdefault(profiles.size_bucket(int(r["oz_size"])), []).append(r)
    part_oz = sum(int(r["oz_size"]) for r in rows)
    out = []
    for b in sorted(buckets):
        members = buckets[b]
        sizes = [int(r["oz_size"]) for r in members]
        oz = sum(int(r["oz_size"]) for r in members)
        policy = sum(int(r["policy_size"]) for r in members)
        oracle = sum(min(best.get(r["module"], int(r["oz_size"])), int(r["oz_size"])) for r in members)
        out.append(
            {
                "bucket": b,
                "modules": len(members),
                "module_oz_bytes_min_max": [min(sizes), max(sizes)],
                "oz_bytes": oz,
                "share_of_part_oz_bytes": oz / part_oz if part_oz else None,
                "ratio": policy / oz if oz else None,
                "oracle_ratio": oracle / oz if oz else None,
                "smaller": sum(int(r["policy_size"]) < int(r["oz_size"]) for r in members),
                "larger": sum(int(r["policy_size"]) > int(r["oz_size"]) for r in members),
            }
        )
    return out


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    data_path = module_selection.corpus_or_default(_DATA_PATH.value)
    module_splits = module_selection.load_splits(data_path, _MAX_MODULES.value, _LARGE_DATA_PATH.value)
    root_dir = _ROOT_DIR.value or tempfile.mkdtemp(prefix="bcmax_quality_")
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        results = bc_max_lib.run(module_splits, root_dir, executor, iterations=_ITERATIONS.value, progress=False)
    # The run directory gets bc_max's report and results.json (the iteration chosen on validation), so that
    # export_model and ship_model take that iteration from it, as from a `bc_max` run.
    report.write(root_dir, results, module_splits)
    best = bc_max_lib.best_iteration(results)
    initial = [b for b in results[0].baselines if not b.startswith("saved:")]
    best_dir = bc_max_lib.iteration_dir(root_dir, best.iteration)
    single = {p: _baseline_ratios(best_dir, p, initial) for p in splits.PARTS}
    worst = max(
        (c for c in best.test_codebases if c.figures.ratio is not None), key=lambda c: c.figures.ratio, default=None
    )
    print(
        json.dumps(
            {
                "benchmark": "quality",
                "data_path": os.path.abspath(data_path),
                "large_data_path": _LARGE_DATA_PATH.value and os.path.abspath(_LARGE_DATA_PATH.value),
                "root_dir": os.path.abspath(root_dir),
                "split_policy": dataclasses.asdict(splits.SplitPolicy()),
                "splits": {
                    p: {"modules": len(module_splits.part(p)), "codebases": module_splits.codebases(p)}
                    for p in splits.PARTS
                },
                "iterations": [_iteration(r) for r in results],
                "best_iteration_on_validation": best.iteration,
                "best": {
                    "saved_model_sha256": _policy_digest(best.policy),
                    "validation_ratio": best.ratio(splits.VALIDATION),
                    "test_unseen_codebases_ratio": best.ratio(splits.TEST_UNSEEN_CODEBASES),
                    "test_unseen_files_ratio": best.ratio(splits.TEST_UNSEEN_FILES),
                    "worst_test_codebase": {"codebase": worst.codebase, "ratio": worst.figures.ratio}
                    if worst
                    else None,
                    "single_baseline_ratios": single,
                    "by_size_bucket": {p: _by_size_bucket(best_dir, p) for p in splits.PARTS},
                    "single_baseline_ratios_by_codebase": {
                        p: _baseline_ratios(best_dir, p, initial, by_codebase=True) for p in splits.PARTS
                    },
                    "best_single_baseline": {
                        p: min(r.items(), key=lambda kv: kv[1]) if r else None for p, r in single.items()
                    },
                },
                "goal": {
                    "test_unseen_codebases_ratio_at_most": GOAL_TEST_UNSEEN_CODEBASES,
                    "every_test_codebase_ratio_at_most": GOAL_WORST_TEST_CODEBASE,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    app.run(main)
