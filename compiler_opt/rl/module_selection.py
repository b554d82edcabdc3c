"""Which modules of a corpus a binary works on: all, or parts of the split by codebase (compiler_opt/rl/splits.py).

The split is configured in gin (`splits.SplitPolicy`); every binary that selects a part uses the same policy, so
`--split=test_unseen_codebases` in evaluate_policy is exactly the part bc_max never trained or validated on.
"""

from __future__ import annotations

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


def load_splits(data_path: str, max_modules: int | None = None) -> splits.ModuleSplits:
    """The corpus at `data_path` split by the gin-configured policy; `max_modules` keeps a fixed sample of that many
    modules in all, spread over the parts and, inside each, over the codebases (`ModuleSplits.sample`)."""
    modules = corpus.Corpus.load(data_path)
    return modules.splits(languages=languages(data_path, modules)).sample(max_modules)


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
