"""Per-module profiles: how every baseline and exploration did on each module, and which one won.

File format (`profiles.jsonl`, one JSON object per line, sorted by module name):
  {"module": NAME, "oz_size": int | null, "best": POLICY_NAME | null, "best_size": int | null, "label": int,
   "record": RELATIVE_PATH | null,
   "results": {POLICY_NAME: {"size": int | null, "text_section_size": int | null, "horizon": int,
                             "seconds": float, "status": "ok" | "failed" | "timeout", "error": str, "cached": bool}}}
Sizes are `llvm-size` text columns in bytes. `oz_size` is the stock compile's size (clang-22 with the module's own
-Oz command, no host: the denominator of every size ratio); `best` ranges over the baselines and explorations.
`label` is the size bucket of the module (see `size_bucket`), used for weighting in training.

MLGO's profile files, written beside `profiles.jsonl` and read by the trainer (`read_for_weights`): a JSON list of
  {"module_name": NAME, "loss": float (text size in bytes), "horizon": int (decisions)}
`profile_max.json` holds each module's best trajectory over every policy and exploration, `profile_pol.json` that of
one policy (MLGO: the last of its `policy_paths`; here: `write_mlgo`'s `policy`). MLGO's trainer takes them in pairs,
the evaluated policy's file then its comparator's (`--profiling_data=X_pol.json --profiling_data=X_max.json`).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import os
from collections.abc import Iterable, Sequence

import gin

from compiler_opt.rl import atomic_file


@dataclasses.dataclass(frozen=True)
class PolicyOutcome:
    """One compile's summary. status: "ok", "failed", "timeout"; `cached` says the result was reused."""

    size: int | None
    text_section_size: int | None
    horizon: int
    seconds: float
    status: str
    error: str = ""
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclasses.dataclass(frozen=True)
class ModuleProfile:
    """All outcomes of one module; `best` is the smallest-size trajectory's policy name (None if all failed)."""

    module: str
    results: dict[str, PolicyOutcome]
    best: str | None
    best_size: int | None
    oz_size: int | None
    label: int
    record: str | None = None
    # The policy whose trajectory the record holds: `best`, or the reference heuristic's when `best` did not beat it
    # by the collection's `label_min_gain` (None in profiles written before this field existed: then `best`).
    recorded: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> ModuleProfile:
        obj = json.loads(line)
        obj["results"] = {k: PolicyOutcome(**v) for k, v in obj["results"].items()}
        return cls(**obj)


@gin.configurable(module="profiles")
def size_bucket(size: int | None, partitions: Sequence[int] = (1024, 4096, 16384, 65536)) -> int:
    """Index of the bucket of a module's size in bytes: 0 below partitions[0], len(partitions) at or above the last.

    The one place where bucket partitions are defined: collection writes this as the `label` of every record and
    training reads the label, so the two can never disagree.
    """
    if size is None:
        return 0
    return bisect.bisect_right(list(partitions), size)


def num_buckets() -> int:
    return size_bucket(1 << 62) + 1


def select_best(outcomes: dict[str, PolicyOutcome]) -> str | None:
    """Smallest size among ok outcomes; ties go to the earliest name in insertion order (baselines first)."""
    best = None
    for name, outcome in outcomes.items():
        if outcome.ok and outcome.size is not None and (best is None or outcome.size < outcomes[best].size):
            best = name
    return best


def select_recorded(
    outcomes: dict[str, PolicyOutcome], best: str | None, reference: str, min_gain: float
) -> str | None:
    """The trajectory to clone: `best`, unless `reference` (the compiler's own heuristic) compiled and `best` is less
    than `min_gain` (a fraction of the reference's size) smaller than it; then `reference`.

    The oracle is still `best`; only the record changes. A winner that beats the heuristic by a few bytes teaches
    the policy to leave the heuristic's decisions where that does not pay; min_gain = 0 records `best` always.
    """
    if not 0.0 <= min_gain < 1.0:
        raise ValueError(f"label_min_gain must be in [0, 1), got {min_gain}")
    ref = outcomes.get(reference)
    if best is None or best == reference or min_gain == 0.0 or ref is None or not ref.ok or ref.size is None:
        return best
    return best if outcomes[best].size <= (1.0 - min_gain) * ref.size else reference


MLGO_MAX_FILE = "profile_max.json"
MLGO_POL_FILE = "profile_pol.json"
# Names under which `from_mlgo` files the outcomes it reads: the evaluated policy's file, and the comparator's.
MLGO_POLICY_PREFIX = "mlgo_pol:"
MLGO_BEST_PREFIX = "mlgo_max:"


@dataclasses.dataclass(frozen=True)
class MlgoProfileEntry:
    """One entry of an MLGO profile file: module, its loss (text size in bytes) and horizon (decisions)."""

    module_name: str
    loss: float
    horizon: int


def write_mlgo(output_dir: str, module_profiles: Iterable[ModuleProfile], policy: str | None) -> tuple[str, str]:
    """Writes output_dir/profile_max.json (each module's best trajectory) and output_dir/profile_pol.json (`policy`'s
    trajectory, where it compiled; an empty list without a policy), sorted by module. As in MLGO's files, only modules
    with at least one decision (those that have a record) appear. Returns both paths."""
    best, pol = [], []
    for p in sorted(module_profiles, key=lambda p: p.module):
        if p.best is None or p.results[p.best].horizon == 0:
            continue
        best.append(MlgoProfileEntry(p.module, float(p.best_size), p.results[p.best].horizon))
        outcome = p.results.get(policy) if policy else None
        if outcome is not None and outcome.ok and outcome.size is not None:
            pol.append(MlgoProfileEntry(p.module, float(outcome.size), outcome.horizon))
    paths = os.path.join(output_dir, MLGO_MAX_FILE), os.path.join(output_dir, MLGO_POL_FILE)
    for path, entries in zip(paths, (best, pol), strict=True):
        atomic_file.write_text(path, json.dumps([dataclasses.asdict(e) for e in entries], indent=2) + "\n")
    return paths


def read_mlgo(path: str) -> list[MlgoProfileEntry]:
    """Reads one MLGO profile file; ValueError naming the file and the entry when it is not one."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"no MLGO profile at {path}") from None
    except ValueError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: an MLGO profile is a JSON list of {{module_name, loss, horizon}}")
    entries = []
    for i, item in enumerate(data):
        try:
            entries.append(MlgoProfileEntry(str(item["module_name"]), float(item["loss"]), int(item["horizon"])))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: entry {i} is not {{module_name, loss, horizon}} ({e!r})") from None
    return entries


def from_mlgo(pairs: Sequence[tuple[str, str]]) -> tuple[list[ModuleProfile], tuple[str, ...]]:
    """ModuleProfiles from MLGO profile pairs (evaluated policy's file, comparator's file), and the names of the
    evaluated policies in order (`mlgo_pol:<path>`), for the regret weights.

    Each module's `best_size` is its smallest comparator loss over the pairs (MLGO compares each policy with its own
    comparator; with one pair, as BC-MAX writes them, the two agree) and its `label` is `size_bucket(best_size)`:
    the bucket MLGO's generator writes into the module's record, when both use the same partitions.
    """
    results: dict[str, dict[str, PolicyOutcome]] = {}
    policies = []
    for pol_path, max_path in pairs:
        name = MLGO_POLICY_PREFIX + pol_path
        policies.append(name)
        for prefix, path in ((name, pol_path), (MLGO_BEST_PREFIX + max_path, max_path)):
            for e in read_mlgo(path):
                size = round(e.loss)
                results.setdefault(e.module_name, {})[prefix] = PolicyOutcome(
                    size=size, text_section_size=None, horizon=e.horizon, seconds=0.0, status="ok"
                )
    module_profiles = []
    for module, outcomes in sorted(results.items()):
        bests = {n: o for n, o in outcomes.items() if n.startswith(MLGO_BEST_PREFIX)}
        best = select_best(bests)
        best_size = bests[best].size if best else None
        module_profiles.append(
            ModuleProfile(
                module=module,
                results=outcomes,
                best=best,
                best_size=best_size,
                oz_size=None,
                label=size_bucket(best_size),
            )
        )
    return module_profiles, tuple(policies)


def read_for_weights(paths: str | Sequence[str]) -> tuple[list[ModuleProfile], tuple[str, ...] | None]:
    """The profiles training weights are computed from: one `profiles.jsonl`, or MLGO profile files in pairs
    (evaluated policy's `*_pol.json`, then comparator's `*_max.json`). Returns the profiles and, for MLGO's, the
    evaluated policies (None for profiles.jsonl, whose learned policies are found by name)."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    if len(paths) == 1 and not paths[0].endswith(".json"):
        return read_jsonl(paths[0]), None
    if len(paths) % 2 or not all(p.endswith(".json") for p in paths):
        raise ValueError(
            f"profiles {paths}: give one profiles.jsonl, or MLGO profile files in pairs (X_pol.json, X_max.json)"
        )
    return from_mlgo(list(zip(paths[0::2], paths[1::2], strict=True)))


def write_jsonl(path: str, profiles: Iterable[ModuleProfile]) -> None:
    lines = sorted(p.to_json() for p in profiles)
    atomic_file.write_text(path, "".join(line + "\n" for line in lines))


def read_jsonl(path: str) -> list[ModuleProfile]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"no profiles at {path}: run generate_bc_trajectories first")
    result = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                result.append(ModuleProfile.from_json(line))
            except (ValueError, TypeError, KeyError) as e:
                raise ValueError(
                    f"{path}:{number} is not a module profile ({e!r}); rerun generate_bc_trajectories with the same "
                    "--output_dir to rewrite it from the per-module profiles"
                ) from None
    return result
