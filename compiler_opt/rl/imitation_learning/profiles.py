"""Per-module profiles: how every baseline and exploration did on each module, and which one won.

File format (`profiles.jsonl`, one JSON object per line, sorted by module name):
  {"module": NAME, "oz_size": int | null, "best": POLICY_NAME | null, "best_size": int | null, "label": int,
   "record": RELATIVE_PATH | null,
   "results": {POLICY_NAME: {"size": int | null, "text_section_size": int | null, "horizon": int,
                             "seconds": float, "status": "ok" | "failed" | "timeout", "error": str, "cached": bool}}}
Sizes are `llvm-size` text columns in bytes. `oz_size` is the stock compile's size (clang-22 with the module's own
-Oz command, no host: the denominator of every size ratio); `best` ranges over the baselines and explorations.
`label` is the size bucket of the module (see `size_bucket`), used for weighting in training.
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
