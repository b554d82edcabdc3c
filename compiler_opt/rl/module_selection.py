"""Which modules of a corpus a binary works on: all, or parts of the split by codebase (compiler_opt/rl/splits.py).

The split is configured in gin (`splits.SplitPolicy`); every binary that selects a part uses the same policy, so
`--split=test_unseen_codebases` in evaluate_policy is exactly the part bc_max never trained or validated on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import gin

# Imported here, not when needed: it registers gin configurables, which must exist before a binary parses gin.
from compiler_opt.rl import corpus, make_default_corpus_lib, splits

# "test" is both test parts.
SPLITS = ("all", *splits.PARTS, "test")


def corpus_or_default(data_path: str | None) -> str:
    """`data_path`, or the default corpus (built and cached on first use) when it is None."""
    return data_path if data_path is not None else make_default_corpus_lib.default_corpus_dir()


def languages(data_path: str, modules: corpus.Corpus) -> dict[str, str]:
    """Codebase -> language: from the default corpus manifest when `data_path` has one (its `library` and
    `language` per module), else inferred from the modules' -cc1 arguments."""
    inferred = corpus.codebase_languages(modules)
    manifest = make_default_corpus_lib.read_manifest(data_path)
    if manifest is None:
        return inferred
    declared = {splits.codebase_of(m.name): m.language for m in manifest.modules}
    return {**inferred, **declared}


@gin.configurable(module="module_selection", allowlist=["large_train_modules"])
def load_splits(
    data_path: str,
    max_modules: int | None = None,
    large_data_path: str | None = None,
    large_train_modules: int | None = 0,
) -> splits.ModuleSplits:
    """The corpus at `data_path` split by the gin-configured policy; `max_modules` keeps a fixed sample of that many
    modules in all, spread over the parts and, inside each, over the codebases (`ModuleSplits.sample`).

    `large_data_path`: a corpus of the large modules `data_path` leaves out (make_default_corpus --corpus=v2_large).
    Its modules are split by the same policy (a function of the name, drawn over both corpora's names), and those
    that fall in validation join it (after the sample, all of them), so that choices made on validation weigh the
    large modules that decide a program's size. `large_train_modules` (gin; a training setting, default 0) of those
    that fall in train join train after the main corpus's train modules: 0 none, None all, N a sample of N spread
    over the codebases (`splits.stratified_sample`, fixed by the names). Every module taken from that corpus is named
    in `ModuleSplits.large`. Its test modules are never used. A name in both corpora raises CorpusError naming it;
    `large_train_modules` other than 0 without `large_data_path` raises ValueError."""
    if large_train_modules is not None and large_train_modules < 0:
        raise ValueError(f"large_train_modules must be None (all), 0 (none) or a count, got {large_train_modules}")
    modules = corpus.Corpus.load(data_path)
    langs = languages(data_path, modules)
    if large_data_path is None:
        if large_train_modules != 0:
            raise ValueError(
                f"module_selection.load_splits.large_train_modules = {large_train_modules} needs a corpus of large "
                "modules: pass --large_data_path (make_default_corpus --corpus=v2_large), or bind it to 0"
            )
        return modules.splits(languages=langs).sample(max_modules)
    large = corpus.Corpus.load(large_data_path)
    shared = sorted(set(modules.names) & set(large.names))
    if shared:
        raise corpus.CorpusError(
            f"{large_data_path} and {data_path} both hold {shared[:3]}{' ...' if len(shared) > 3 else ''}: "
            "the large-modules corpus must hold only modules the main corpus leaves out"
        )
    parts = parts_with(data_path, large.names, languages(large_data_path, large))
    main = splits.ModuleSplits.of(modules.modules, parts, langs).sample(max_modules)
    validation = tuple(m for m in large.modules if parts[m.name] == splits.VALIDATION)
    train = [m for m in large.modules if parts[m.name] == splits.TRAIN]
    if large_train_modules is not None:
        train = splits.stratified_sample(train, large_train_modules, name=lambda m: m.name)
    return dataclasses.replace(
        main,
        train=(*main.train, *train),
        validation=(*main.validation, *validation),
        large=frozenset(m.name for m in (*train, *validation)),
    )


def parts_with(
    data_path: str, extra_names: Iterable[str], extra_languages: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Name -> part of the split (gin's splits.SplitPolicy) for the modules of the corpus at `data_path` and for
    `extra_names`, modules it leaves out (such as its large modules), the split drawn over both: the part every
    binary gives the extra modules. `extra_languages` adds codebase languages for codebases the corpus lacks."""
    modules = corpus.Corpus.load(data_path)
    names = [*modules.names, *sorted(set(extra_names) - set(modules.names))]
    return splits.assign(names, splits.SplitPolicy(), {**(extra_languages or {}), **languages(data_path, modules)})


def select(data_path: str, split: str = "all", max_modules: int | None = None) -> list:
    """Modules of the corpus at `data_path` in part `split` (one of SPLITS); `max_modules` keeps a fixed sample of
    that many, spread over the codebases."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    modules = corpus.Corpus.load(data_path)
    if split == "all":
        chosen = list(modules)
    else:
        by_part = modules.splits(languages=languages(data_path, modules))
        parts = splits.TEST_PARTS if split == "test" else (split,)
        wanted = {m.name for p in parts for m in by_part.part(p)}
        chosen = [m for m in modules if m.name in wanted]
    if max_modules is not None:
        chosen = splits.stratified_sample(chosen, max_modules, name=lambda m: m.name)
    return chosen
