"""Splits of a corpus by codebase: train, validation, and a test of two parts.

A module's codebase is the first component of its name (`brotli/enc/encode` is in `brotli`; a name without `/` is
in the codebase ""). Every module belongs to exactly one part:

  train                  the modules a policy learns from (collection, training)
  validation             every choice: early stopping, the best iteration, any tuning
  test_unseen_codebases  every module of whole codebases that are in neither train nor validation
  test_unseen_files      files of the training codebases that are never trained on

Test is reported only, never used to choose anything.

The rule (`SplitPolicy`), a function of the module names alone (and of the codebases' languages when the automatic
choice is used), the same on every machine:
  1. Test codebases: `SplitPolicy.test_codebases`; when None, the automatic choice below.
  2. Validation codebases: `SplitPolicy.validation_codebases`, or the automatic choice; all their modules are
     validation.
  3. Every module of the other codebases by `score(name)` (SHA-256 of the name, in [0, 1)): below
     `validation_file_fraction` it is validation, below `validation_file_fraction + test_file_fraction` it is
     test_unseen_files, else train. A module keeps its part when other modules are added.

Automatic choice of codebases (for any corpus): rank the codebases by `score(codebase)`, highest first, alternating
between languages (C, C++) when they are known, so that a test of two or more codebases has both; take the first
`min(auto_test_codebases, (n - 1) // 2)` of the n codebases as test (fewer than half), and the next
`min(auto_validation_codebases, (n - n_test) // 4)` as validation. A corpus of one or two codebases thus has no
unseen-codebase test. On the 91-module default corpus (brotli, zstd, lz4 in C; fasttext, double_conversion in C++)
this holds out double_conversion (C++, 8 modules) and lz4 (C, 4 modules) and no validation codebase; validation
and test_unseen_files are files of brotli, zstd and fasttext.

Sampling (`stratified_sample`) draws a fixed number of modules spread over the codebases in proportion to their
size (at least one each while the budget allows), again by a hash of the names, so a demo sees every codebase.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

import gin

TRAIN = "train"
VALIDATION = "validation"
TEST_UNSEEN_CODEBASES = "test_unseen_codebases"
TEST_UNSEEN_FILES = "test_unseen_files"
PARTS = (TRAIN, VALIDATION, TEST_UNSEEN_CODEBASES, TEST_UNSEEN_FILES)
TEST_PARTS = (TEST_UNSEEN_CODEBASES, TEST_UNSEEN_FILES)

T = TypeVar("T")


class SplitError(ValueError):
    """The split policy does not fit the corpus; the message names the codebase and the fix."""


def score(text: str, salt: str = "") -> float:
    """A value in [0, 1) fixed by `salt + text` alone (SHA-256), the same on every machine."""
    digest = hashlib.sha256((salt + text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def codebase_of(name: str) -> str:
    """The codebase of module `name`: its first path component ("" for a name without `/`)."""
    return name.split("/", 1)[0] if "/" in name else ""


@gin.configurable(module="splits")
@dataclasses.dataclass(frozen=True)
class SplitPolicy:
    """How a corpus is split (see the module docstring for the rule).

    Attributes:
      test_codebases: codebases held out whole as test_unseen_codebases; None chooses automatically, () none.
      validation_codebases: codebases held out whole as validation; None chooses automatically, () none.
      validation_file_fraction: fraction (by name hash) of the other codebases' modules used for validation.
      test_file_fraction: fraction (by name hash) of the other codebases' modules used as test_unseen_files.
      auto_test_codebases: at most this many test codebases in the automatic choice.
      auto_validation_codebases: at most this many validation codebases in the automatic choice.
    """

    test_codebases: tuple[str, ...] | None = None
    validation_codebases: tuple[str, ...] | None = None
    validation_file_fraction: float = 0.2
    test_file_fraction: float = 0.15
    auto_test_codebases: int = 3
    auto_validation_codebases: int = 2

    def __post_init__(self):
        for field in ("test_codebases", "validation_codebases"):
            value = getattr(self, field)
            if value is not None:
                if isinstance(value, str):
                    raise SplitError(f"splits.SplitPolicy.{field} must be a tuple of codebase names, got {value!r}")
                object.__setattr__(self, field, tuple(value))
        fractions = (self.validation_file_fraction, self.test_file_fraction)
        if any(f < 0 for f in fractions) or sum(fractions) >= 1.0:
            raise SplitError(
                f"splits.SplitPolicy: validation_file_fraction ({self.validation_file_fraction}) and "
                f"test_file_fraction ({self.test_file_fraction}) must be >= 0 and leave files for training "
                "(sum below 1)"
            )
        if self.auto_test_codebases < 0 or self.auto_validation_codebases < 0:
            raise SplitError("splits.SplitPolicy: auto_test_codebases and auto_validation_codebases must be >= 0")


def rank_codebases(codebases: Iterable[str], languages: Mapping[str, str] | None = None) -> list[str]:
    """Codebases by descending `score`, alternating between languages (the language of the top codebase first)."""
    languages = languages or {}
    by_language: dict[str, list[str]] = collections.defaultdict(list)
    for codebase in sorted(set(codebases), key=lambda c: -score(c)):
        by_language[languages.get(codebase, "")].append(codebase)
    queues = sorted(by_language.values(), key=lambda q: -score(q[0]))
    ranked = []
    while any(queues):
        for queue in queues:
            if queue:
                ranked.append(queue.pop(0))
    return ranked


def held_out_codebases(
    policy: SplitPolicy, codebases: Iterable[str], languages: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(test codebases, validation codebases) of a corpus with these codebases.

    Raises:
      SplitError: a listed codebase is not in the corpus, is listed twice, or no codebase is left for training.
    """
    present = sorted(set(codebases))
    for field in ("test_codebases", "validation_codebases"):
        missing = sorted(set(getattr(policy, field) or ()) - set(present))
        if missing:
            raise SplitError(
                f"splits.SplitPolicy.{field} names codebases that are not in the corpus: {', '.join(missing)} "
                f"(the corpus has {', '.join(present)}); fix the gin binding, or build those codebases"
            )
    if policy.test_codebases is not None and policy.validation_codebases is not None:
        both = sorted(set(policy.test_codebases) & set(policy.validation_codebases))
        if both:
            raise SplitError(
                f"codebases listed both as test and as validation: {', '.join(both)}; keep each in one list"
            )
    listed = set(policy.test_codebases or ()) | set(policy.validation_codebases or ())
    ranked = [c for c in rank_codebases(present, languages) if c not in listed]
    if policy.test_codebases is not None:
        test = tuple(policy.test_codebases)
    else:
        test = tuple(ranked[: min(policy.auto_test_codebases, (len(present) - 1) // 2)])
        ranked = ranked[len(test) :]
    if policy.validation_codebases is not None:
        validation = tuple(policy.validation_codebases)
    else:
        count = min(policy.auto_validation_codebases, (len(present) - len(test)) // 4)
        validation = tuple(ranked[:count])
    if present and not set(present) - set(test) - set(validation):
        raise SplitError(
            "splits.SplitPolicy holds out every codebase of the corpus as test or validation; leave at least one "
            "codebase for training"
        )
    return test, validation


def assign(
    names: Sequence[str], policy: SplitPolicy | None = None, languages: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Module name -> part (one of PARTS). `languages` maps codebase -> language ("c", "c++"; optional)."""
    policy = SplitPolicy() if policy is None else policy
    test, validation = held_out_codebases(policy, map(codebase_of, names), languages)
    file_cut = policy.validation_file_fraction
    test_cut = file_cut + policy.test_file_fraction
    parts = {}
    for name in names:
        codebase = codebase_of(name)
        if codebase in test:
            parts[name] = TEST_UNSEEN_CODEBASES
        elif codebase in validation:
            parts[name] = VALIDATION
        else:
            s = score(name)
            parts[name] = VALIDATION if s < file_cut else TEST_UNSEEN_FILES if s < test_cut else TRAIN
    return parts


def stratified_sample(items: Sequence[T], n: int, name: Callable[[T], str] = str, salt: str = "sample:") -> list[T]:
    """`n` of `items` (all when n >= len), spread over codebases in proportion to their sizes, in input order.

    Each codebase gets at least one item while n allows (the largest codebases first), the rest by largest
    remainder; inside a codebase the items with the lowest `score(name, salt)` are taken. Fixed by the names.
    """
    if n >= len(items):
        return list(items)
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, item in enumerate(items):
        groups[codebase_of(name(item))].append(i)
    quota = allocate(n, {c: len(g) for c, g in groups.items()})
    chosen = set()
    for codebase, indices in groups.items():
        ranked = sorted(indices, key=lambda i: score(name(items[i]), salt))
        chosen.update(ranked[: quota[codebase]])
    return [item for i, item in enumerate(items) if i in chosen]


def allocate(n: int, sizes: Mapping[str, int]) -> dict[str, int]:
    """Splits a budget of `n` over groups of these sizes: at least 1 per group while n allows (largest groups
    first), the rest in proportion to size (largest remainder); never more than a group's size."""
    quota = {k: 0 for k in sizes}
    order = sorted((k for k in sizes if sizes[k] > 0), key=lambda k: (-sizes[k], k))
    for k in order[:n]:
        quota[k] = 1
    left = n - sum(quota.values())
    while left > 0:
        room = {k: sizes[k] - quota[k] for k in order if sizes[k] > quota[k]}
        if not room:
            break
        total = sum(room.values())
        shares = {k: left * r / total for k, r in room.items()}
        grants = {k: min(room[k], int(s)) for k, s in shares.items()}
        if not any(grants.values()):
            best = max(room, key=lambda k: (shares[k] - int(shares[k]), room[k], k))
            grants = {best: 1}
        for k, g in grants.items():
            quota[k] += g
            left -= g
    return quota


@dataclasses.dataclass(frozen=True)
class ModuleSplits:
    """The modules of a corpus by part (each a tuple of ModuleSpec, corpus order) and the codebases' languages.
    `large`: names of the modules taken from the large-modules corpus (validation, and train when configured;
    module_selection.load_splits)."""

    train: tuple = ()
    validation: tuple = ()
    test_unseen_codebases: tuple = ()
    test_unseen_files: tuple = ()
    languages: Mapping[str, str] = dataclasses.field(default_factory=dict)
    large: frozenset = frozenset()

    @classmethod
    def of(cls, modules: Sequence, parts: Mapping[str, str], languages: Mapping[str, str] | None = None):
        """Groups `modules` (objects with `.name`) by `parts` (name -> part, as `assign` returns)."""
        grouped = {p: tuple(m for m in modules if parts[m.name] == p) for p in PARTS}
        return cls(**grouped, languages=dict(languages or {}))

    def part(self, part: str) -> tuple:
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        return getattr(self, part)

    def items(self) -> list[tuple[str, tuple]]:
        return [(p, self.part(p)) for p in PARTS]

    def codebases(self, part: str) -> list[str]:
        return sorted({codebase_of(m.name) for m in self.part(part)})

    def sample(self, max_modules: int | None) -> ModuleSplits:
        """At most `max_modules` modules in all: the budget goes to the parts in proportion to their sizes (at least
        one each), and inside each part it is spread over the codebases (`stratified_sample`)."""
        if max_modules is None:
            return self
        quota = allocate(max_modules, {p: len(m) for p, m in self.items()})
        sampled = {p: tuple(stratified_sample(m, quota[p], name=lambda x: x.name)) for p, m in self.items()}
        return dataclasses.replace(self, **sampled)

    def describe(self) -> str:
        """One line per part: its module count and codebases."""
        lines = []
        for p, modules in self.items():
            counts = collections.Counter(codebase_of(m.name) for m in modules)
            parts = ", ".join(f"{c or '(top level)'} {n}" for c, n in sorted(counts.items()))
            lines.append(f"{p}: {len(modules)} modules ({parts})")
        return "\n".join(lines)
