"""Which modules of a corpus a binary works on: all, or one side of the deterministic train/held-out split."""

from __future__ import annotations

# Imported here, not when needed: it registers gin configurables, which must exist before a binary parses gin.
from compiler_opt.rl import corpus, make_default_corpus_lib

SPLITS = ("all", "train", "held_out")


def corpus_or_default(data_path: str | None) -> str:
    """`data_path`, or the default corpus (built and cached on first use) when it is None."""
    return data_path if data_path is not None else make_default_corpus_lib.default_corpus_dir()


def select(data_path: str, split: str = "all", held_out_fraction: float = 0.2, max_modules: int | None = None) -> list:
    """Modules of the corpus at `data_path`; `max_modules` keeps a fixed sample of that many."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    modules = corpus.Corpus.load(data_path)
    if split != "all":
        train, held_out = modules.split(held_out_fraction)
        modules = train if split == "train" else held_out
    if max_modules is not None:
        modules = modules.sample(max_modules)
    return list(modules)
