"""Inlining policies as small picklable objects, named by spec strings usable from flags and gin.

Spec strings:
  heuristic                 LLVM's -Oz heuristic: plays the compiler's own `inlining_default` decision.
  heuristic:threshold=N     the same heuristic compiled with `-mllvm -inline-threshold=N` (changes its decisions).
  saved:PATH                a TF-Agents SavedModel policy in MLGO layout (PATH is the `saved_policy` dir or its
                            parent); greedy decisions; its probabilities guide exploration. Loaded and checked
                            when parsed: a wrong signature or NaN outputs raise saved_policy.PolicyLoadError.
  always / never            inline every / no call site (for tests and sanity checks).

A policy has `name`, `extra_args` (compiler flags it needs) and `new_episode(header) -> decide`, where
`decide(observation) -> 0 | 1`. Policies that have probabilities also implement
`prob_inline(features) -> float64 [T]` over a trajectory's features (name -> [T, ...]).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
from collections.abc import Callable, Sequence

import numpy as np

# saved_policy imports TensorFlow only for a policy without its numpy sidecar. Imported here, before any binary parses
# gin, because it registers gin configurables (features.FeatureConfig).
from compiler_opt.rl import protocol, saved_policy
from compiler_opt.rl.env import FeatureMismatchError
from compiler_opt.rl.inlining.task import DEFAULT_DECISION_FEATURE

Decide = Callable[[protocol.Observation], int]

# Saved policies loaded in this process: a worker loads each model once, not once per module it compiles.
_LOADED: dict = {}

# Saved policies loaded in this process, by path: a worker loads each model once, not once per module.
_LOADED: dict = {}


class PolicySpecError(ValueError):
    """A policy spec string that cannot be parsed or loaded."""


@dataclasses.dataclass(frozen=True)
class HeuristicPolicy:
    """LLVM's inlining heuristic, optionally at another `-inline-threshold` (None = the -Oz default)."""

    threshold: int | None = None

    @property
    def name(self) -> str:
        return "heuristic" if self.threshold is None else f"heuristic:threshold={self.threshold}"

    @property
    def extra_args(self) -> tuple[str, ...]:
        return () if self.threshold is None else ("-mllvm", f"-inline-threshold={self.threshold}")

    @property
    def cache_id(self) -> str:
        return self.name

    def new_episode(self, header: protocol.Header) -> Decide:
        offset = _int64_offset(header, DEFAULT_DECISION_FEATURE, self.name)
        unpack = struct.Struct("<q").unpack_from
        return lambda obs: unpack(obs.payload, offset)[0]


@dataclasses.dataclass(frozen=True)
class ConstantPolicy:
    """Always (1) or never (0) inline."""

    decision: int

    @property
    def name(self) -> str:
        return "always" if self.decision else "never"

    extra_args: tuple[str, ...] = ()

    @property
    def cache_id(self) -> str:
        return self.name

    def new_episode(self, header: protocol.Header) -> Decide:
        return lambda obs: self.decision


@dataclasses.dataclass(frozen=True)
class ReplayPolicy:
    """Plays `actions` for the first len(actions) decisions, then defers to `then`.

    Used by exploration: the prefix of a trajectory with one decision flipped, continued by the base policy. The
    compiler flags are the base policy's, so the replayed prefix sees the same observations.
    """

    actions: tuple[int, ...]
    then: object
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"{self.then.name}+replay{len(self.actions)}"

    @property
    def extra_args(self) -> tuple[str, ...]:
        return self.then.extra_args

    @property
    def cache_id(self) -> str:
        digest = hashlib.sha256(bytes(self.actions)).hexdigest()[:20]
        return f"{self.then.cache_id}+replay:{len(self.actions)}:{digest}"

    def new_episode(self, header: protocol.Header) -> Decide:
        rest = self.then.new_episode(header)
        prefix = self.actions
        step = [0]

        def decide(obs: protocol.Observation) -> int:
            i = step[0]
            step[0] = i + 1
            return prefix[i] if i < len(prefix) else rest(obs)

        return decide


class SavedModelPolicy:
    """A TF-Agents policy exported in MLGO `saved_policy` layout; loaded lazily (so it pickles as a path)."""

    def __init__(self, path: str):
        if os.path.isdir(os.path.join(path, "saved_policy")):
            path = os.path.join(path, "saved_policy")
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise PolicySpecError(
                f"{path} is not a SavedModel directory (no saved_model.pb); pass the `saved_policy` dir "
                "written by the trainer"
            )
        self.path = os.path.abspath(path)
        self._model = None
        self._digest = None

    @property
    def name(self) -> str:
        return f"saved:{self.path}"

    extra_args: tuple[str, ...] = ()

    @property
    def cache_id(self) -> str:
        if self._digest is None:
            h = hashlib.sha256()
            for root, dirs, files in os.walk(self.path):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(root, name)
                    h.update(os.path.relpath(full, self.path).encode() + b"\0")
                    with open(full, "rb") as f:
                        h.update(hashlib.sha256(f.read()).digest())
            self._digest = h.hexdigest()
        return "saved:" + self._digest

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.path = state["path"]
        self._model = None
        self._digest = None

    def __eq__(self, other):
        return isinstance(other, SavedModelPolicy) and other.path == self.path

    def __hash__(self):
        return hash(self.path)

    @property
    def model(self):
        if self._model is None:
            key = (self.path, os.stat(os.path.join(self.path, "saved_model.pb")).st_mtime_ns)
            if key not in _LOADED:
                _LOADED[key] = saved_policy.SavedPolicy.load(self.path)
            self._model = _LOADED[key]
        return self._model

    def new_episode(self, header: protocol.Header) -> Decide:
        return model_decider(self.model, header, self.path)

    def prob_inline(self, features: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.model.prob_inline_batch(features), dtype=np.float64)


def model_decider(model: saved_policy.SavedPolicy, header: protocol.Header, name: str) -> Decide:
    """The greedy decisions of a loaded policy for one compile; FeatureMismatchError if clang lacks its features."""
    missing = sorted(set(model.feature_names) - set(header.feature_names))
    if missing:
        raise FeatureMismatchError(
            f"policy {name} needs features the compiler does not send: {missing}. "
            "Use the clang the policy was trained with (clang-22)."
        )
    if header.all_scalar_int64:
        decide_vector = model.vector_decider(header.feature_names)
        return lambda obs: decide_vector(obs.int64_vector())
    return lambda obs: model.action(obs.features)


def parse(spec: str):
    """Builds a policy from its spec string (see module docstring)."""
    spec = spec.strip()
    if spec == "heuristic":
        return HeuristicPolicy()
    if spec.startswith("heuristic:"):
        key, _, value = spec[len("heuristic:") :].partition("=")
        if key != "threshold" or not value.lstrip("-").isdigit():
            raise PolicySpecError(f"bad policy spec {spec!r}: expected heuristic:threshold=N with an integer N")
        return HeuristicPolicy(threshold=int(value))
    if spec == "always":
        return ConstantPolicy(1)
    if spec == "never":
        return ConstantPolicy(0)
    if spec.startswith("saved:"):
        policy = SavedModelPolicy(spec[len("saved:") :])
        policy.model  # noqa: B018 - loads and checks it (signature, NaN outputs) before any compile starts.
        return policy
    raise PolicySpecError(
        f"unknown policy spec {spec!r}: use heuristic, heuristic:threshold=N, saved:PATH, always or never"
    )


def parse_all(specs: Sequence[str]) -> list:
    policies = [parse(s) for s in specs]
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise PolicySpecError(f"duplicate policies in {list(specs)}")
    return policies


def _int64_offset(header: protocol.Header, name: str, policy_name: str) -> int:
    if name not in header.offsets:
        raise FeatureMismatchError(
            f"policy {policy_name!r} needs feature {name!r}, which the compiler does not send. Use clang-22 with "
            "`-mllvm -inliner-interactive-include-default` (clang-19 and older do not report the heuristic)."
        )
    offset, spec = header.offsets[name]
    if spec.dtype != "<i8" or spec.num_elements != 1:
        raise FeatureMismatchError(f"feature {name!r} is {spec.dtype}{list(spec.shape)}, expected one int64")
    return offset
