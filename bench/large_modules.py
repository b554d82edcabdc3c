r"""The policy on the large modules that corpus v2 leaves out: the slow TUs of codebases held out from training.

Usage:
  nice -n 10 .venv/bin/python bench/large_modules.py [--codebases=xgboost,lightgbm,capstone] \
      [--policy=saved:models/inliner_size] [--baselines=heuristic:threshold=25 ...] [--max_compile_seconds=120] \
      [--root_dir=/tmp/bcmax_large_modules] [--num_workers=2]
  # The large modules of one part of the split (e.g. validation, to choose by), several policies:
  nice -n 10 .venv/bin/python bench/large_modules.py --part=validation --data_path=CORPUS_V2 \
      --gin_files=gin_configs/splits_v2.gin --codebases=duckdb,sentencepiece,... \
      --policy=it1=saved:RUN/iteration_1/model/saved_policy --policy=it2=saved:RUN/iteration_2/model/saved_policy

Corpus v2 leaves out every TU whose stock -Oz compile took more than 3 s of CPU (the pinned list
compiler_opt/rl/corpus_v2_slow.json), and those are mostly the largest, template-heavy C++ modules, which decide a
program's total size. This bench builds the codebases of --codebases again without that list (every TU kept unless
its compile takes more than --max_compile_seconds of CPU; a separate entry of the corpus v2 cache, so a rerun
compiles nothing), keeps the modules the pinned list left out, and plays on each: stock clang-22 -Oz, the policy
(a spec of compiler_opt/rl/policies.py; the shipped model by default) and every baseline alone. Compiles are
cached under --root_dir (resumable). The default codebases are the unseen test codebases of gin_configs/splits_v2.gin
that have slow TUs (libuv has none): no policy trained on them, and nothing is chosen by this figure. Only the slow
TUs are compiled (a selection by module name). With --part, only the slow TUs that the split of --gin_files (a
function of the module name, as for corpus v2's own modules, whose names come from --data_path) puts in that part are
played. --policy may be given several times, each `LABEL=SPEC` or a SPEC (label "policy"). With
--with_corpus_modules, the corpus v2 modules of --data_path of the same codebases (with --part, of that part) are
played too, so that `whole_codebases` covers every TU that those codebases' recipes build (within
--max_compile_seconds): the figure of a whole build of them, not only of the TUs corpus v2 keeps or only of those it
leaves out.

Prints JSON: the modules (count and stock -Oz text bytes per codebase), and per codebase and over all of them each
player's total text size over stock -Oz's (a failed compile counts at its -Oz size) with its modules smaller/larger
than -Oz, the per-module best of the baselines and -Oz (`oracle_of_baselines`), and the compiles that failed; with
--with_corpus_modules, the same figures over the corpus modules and the large ones together (`whole_codebases`).
"""

import json
import os
import tempfile

from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.distributed import executors
from compiler_opt.rl import corpus, corpus_v2_lib, evaluate_policy_lib, module_selection, policies, splits

_CODEBASES = flags.DEFINE_list("codebases", ["xgboost", "lightgbm", "capstone"], "Codebases whose slow TUs to play.")
_POLICY = flags.DEFINE_multi_string(
    "policy", ["saved:models/inliner_size"], "LABEL=SPEC or SPEC: a policy spec (compiler_opt/rl/policies.py)."
)
_PART = flags.DEFINE_enum(
    "part", None, [splits.TRAIN, splits.VALIDATION, *splits.TEST_PARTS], "Only the slow TUs of this part of the split."
)
_DATA_PATH = flags.DEFINE_string("data_path", None, "Corpus v2 (with --part: the names the split is drawn over).")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "With --part: gin files of the split (splits.SplitPolicy).")
_BASELINES = flags.DEFINE_multi_string(
    "baselines",
    ["heuristic:threshold=10", "heuristic:threshold=25", "heuristic:threshold=40", "heuristic:threshold=100"],
    "Baselines played alone beside the policy.",
)
_MAX_COMPILE_SECONDS = flags.DEFINE_float("max_compile_seconds", 120.0, "CPU seconds over which a TU is left out.")
_ROOT_DIR = flags.DEFINE_string("root_dir", None, "Compile cache (default: a new temporary directory).")
_WITH_CORPUS_MODULES = flags.DEFINE_bool(
    "with_corpus_modules",
    False,
    "Also play the --data_path modules of --codebases (of --part) and report both together.",
)
_EXECUTOR, _NUM_WORKERS, _RAY_ADDRESS = executors.define_flags()


def parse_players(specs) -> dict:
    """{label: policy} of `LABEL=SPEC` or `SPEC` (label "policy") flags."""
    players = {}
    for spec in specs:
        label, sep, rest = spec.partition("=")
        if not sep or ":" in label:
            label, rest = "policy", spec
        if label in players:
            raise app.UsageError(f"--policy: label {label!r} given twice")
        players[label] = policies.parse(rest)
    return players


def _totals(evaluations, oz_sizes) -> dict:
    """Total over stock -Oz (a failed compile counts at -Oz's size), modules smaller/larger, failures."""
    total = sum(oz_sizes.values())
    size = smaller = larger = failed = 0
    for name, oz in oz_sizes.items():
        e = evaluations.get(name)
        ok = e is not None and e.ok
        failed += not ok
        s = e.policy_size if ok else oz
        size += s
        smaller += s < oz
        larger += s > oz
    return {"ratio": size / total if total else None, "smaller": smaller, "larger": larger, "failed": failed}


def main(argv):
    del argv
    try:
        wanted = corpus_v2_lib.slow_module_names(_CODEBASES.value)
    except corpus_v2_lib.v1.DefaultCorpusError as e:
        raise app.UsageError(f"--codebases: {e}") from None
    if _WITH_CORPUS_MODULES.value and not _DATA_PATH.value:
        raise app.UsageError("--with_corpus_modules needs --data_path (corpus v2)")
    if _PART.value:
        if not _DATA_PATH.value:
            raise app.UsageError("--part needs --data_path (corpus v2) and the split's --gin_files")
        gin_setup.parse(_GIN_FILES.value, [])
        parts = module_selection.parts_with(_DATA_PATH.value, wanted)
        wanted = {n for n in wanted if parts[n] == _PART.value}
    corpus_dir, stats = corpus_v2_lib.build_corpus_v2(
        selection=corpus_v2_lib.Selection(codebases=tuple(_CODEBASES.value), modules=tuple(sorted(wanted))),
        slow_list=None,
        max_compile_seconds=_MAX_COMPILE_SECONDS.value,
    )
    modules = [m for m in corpus.Corpus.load(corpus_dir).modules if m.name in wanted]
    corpus_modules = _corpus_modules(parts if _PART.value else None) if _WITH_CORPUS_MODULES.value else []
    both = {m.name for m in modules} & {m.name for m in corpus_modules}
    if both:
        raise app.UsageError(f"--data_path holds modules that are also large modules ({sorted(both)[:3]}...)")
    root_dir = os.path.abspath(_ROOT_DIR.value or tempfile.mkdtemp(prefix="bcmax_large_modules_"))
    cache_dir = os.path.join(root_dir, "compile_cache")
    learned = parse_players(_POLICY.value)
    players = {**learned, **{b: policies.parse(b) for b in _BASELINES.value}}
    evaluations = {}
    with executors.make(_EXECUTOR.value, _NUM_WORKERS.value, _RAY_ADDRESS.value) as executor:
        for key, policy in players.items():
            results, _ = evaluate_policy_lib.evaluate(
                [*modules, *corpus_modules], policy, executor, cache_dir=cache_dir
            )
            evaluations[key] = {e.module: e for e in results}
    # Stock -Oz sizes: every evaluation compiles stock clang-22 on the module (cached once).
    oz = {}
    for per_module in evaluations.values():
        for name, e in per_module.items():
            if e.oz_size is not None:
                oz[name] = e.oz_size
    large = {m.name for m in modules}
    groups = _by_codebase(n for n in oz if n in large)
    out = {
        "benchmark": "large_modules",
        "corpus_dir": corpus_dir,
        "build": {"compiled": stats.compiled, "wall_seconds": stats.wall_seconds},
        "part": _PART.value or "all",
        "policies": {label: p.name for label, p in learned.items()},
        "slow_tus_left_out_of_corpus_v2": len(wanted),
        "built": len(modules),
        "groups": {group: _entry(names, oz, evaluations, players) for group, names in groups.items()},
    }
    if _WITH_CORPUS_MODULES.value:
        out["corpus_modules"] = len(corpus_modules)
        out["whole_codebases"] = {
            group: _entry(names, oz, evaluations, players) for group, names in _by_codebase(oz).items()
        }
    print(json.dumps(out, indent=2))


def _corpus_modules(parts: dict[str, str] | None) -> list:
    """The --data_path modules of --codebases (with `parts`, those in --part)."""
    return [
        m
        for m in corpus.Corpus.load(_DATA_PATH.value).modules
        if splits.codebase_of(m.name) in _CODEBASES.value and (parts is None or parts[m.name] == _PART.value)
    ]


def _by_codebase(names) -> dict[str, list[str]]:
    """{"all": every name, codebase: its names}, names sorted."""
    names = sorted(names)
    groups = {"all": names}
    for name in names:
        groups.setdefault(splits.codebase_of(name), []).append(name)
    return groups


def _entry(names, oz, evaluations, players) -> dict:
    """One group's figures: modules, -Oz bytes, each player's totals and the per-module best of the baselines."""
    group_oz = {n: oz[n] for n in names}
    entry = {
        "modules": len(names),
        "oz_text_bytes": sum(group_oz.values()),
        "largest_module_bytes": max(group_oz.values(), default=None),
        "players": {key: _totals(evaluations[key], group_oz) for key in players},
    }
    best = 0
    for n, size in group_oz.items():
        sizes = [size] + [
            evaluations[b][n].policy_size for b in _BASELINES.value if n in evaluations[b] and evaluations[b][n].ok
        ]
        best += min(sizes)
    entry["oracle_of_baselines"] = best / sum(group_oz.values()) if group_oz else None
    return entry


if __name__ == "__main__":
    app.run(main)
