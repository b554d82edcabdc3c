"""Inlining policies as small picklable objects, named by spec strings usable from flags and gin.

Spec strings:
  heuristic                 LLVM's -Oz heuristic: plays the compiler's own `inlining_default` decision.
  heuristic:threshold=N     the same heuristic compiled with `-mllvm -inline-threshold=N` (changes its decisions).
  heuristic:OPT=V[,OPT=V]   the same heuristic compiled with `-mllvm -OPT=V` for LLVM inliner options OPT (see
                            HEURISTIC_OPTIONS; `threshold` is short for `inline-threshold`). The name is canonical:
                            options sorted, integers normalized, so equal settings get equal names.
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


# LLVM inliner options (clang-22's `-mllvm` spellings, from llvm/lib/Analysis/InlineCost.cpp) a heuristic baseline
# may set, with their value type. Which of them change clang-22's -Oz decisions on real modules is measured by
# bench/baseline_flags.py (README, "Baseline families"); the others are accepted so that they can be measured.
HEURISTIC_OPTIONS: dict[str, type] = {
    "inline-threshold": int,
    "inlinedefault-threshold": int,
    "inlinehint-threshold": int,
    "inlinecold-threshold": int,
    "inline-cold-callsite-threshold": int,
    "hot-callsite-threshold": int,
    "locally-hot-callsite-threshold": int,
    "cold-callsite-rel-freq": int,
    "hot-callsite-rel-freq": int,
    "inline-instr-cost": int,
    "inline-memaccess-cost": int,
    "inline-call-penalty": int,
    "inline-asm-instr-cost": int,
    "inline-max-stacksize": int,
    "recursive-inline-max-stacksize": int,
    "inline-savings-multiplier": int,
    "inline-savings-profitable-multiplier": int,
    "inline-size-allowance": int,
    "inline-enable-cost-benefit-analysis": bool,
    "inline-cost-full": bool,
    "inline-caller-superset-nobuiltin": bool,
    "disable-gep-const-evaluation": bool,
}
# Not offered: -ignore-tti-inline-compatible skips the target-feature compatibility check, so it inlines call sites
# the stock compiler must not (and never asks a policy about).
# Short names accepted in specs, and used in canonical names (so `heuristic:threshold=N` keeps its name).
_OPTION_ALIASES = {"threshold": "inline-threshold"}
_SHORT_NAMES = {v: k for k, v in _OPTION_ALIASES.items()}


@dataclasses.dataclass(frozen=True)
class HeuristicPolicy:
    """LLVM's inlining heuristic, compiled with `options`: ((llvm option, value string), ...) sorted by option.

    No options = the stock -Oz heuristic. Build from spec strings with `parse`, which checks the options.
    """

    options: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        if not self.options:
            return "heuristic"
        return "heuristic:" + ",".join(f"{_SHORT_NAMES.get(k, k)}={v}" for k, v in self.options)

    @property
    def extra_args(self) -> tuple[str, ...]:
        return tuple(arg for k, v in self.options for arg in ("-mllvm", f"-{k}={v}"))

    @property
    def cache_id(self) -> str:
        return self.name

    def new_episode(self, header: protocol.Header) -> Decide:
        offset = _int64_offset(header, DEFAULT_DECISION_FEATURE, self.name)
        unpack = struct.Struct("<q").unpack_from
        return lambda obs: unpack(obs.payload, offset)[0]


def _parse_heuristic_options(spec: str, body: str) -> HeuristicPolicy:
    options: dict[str, str] = {}
    for item in body.split(","):
        key, sep, value = item.strip().partition("=")
        key, value = key.strip().lstrip("-"), value.strip()
        if not sep or not key or not value:
            raise PolicySpecError(f"bad policy spec {spec!r}: {item!r} is not OPTION=VALUE")
        option = _OPTION_ALIASES.get(key, key)
        kind = HEURISTIC_OPTIONS.get(option)
        if kind is None:
            raise PolicySpecError(
                f"bad policy spec {spec!r}: {key!r} is not an LLVM inliner option a heuristic baseline can set; "
                f"use threshold or one of {sorted(HEURISTIC_OPTIONS)}"
            )
        if option in options:
            raise PolicySpecError(f"bad policy spec {spec!r}: option {key!r} given twice")
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise PolicySpecError(f"bad policy spec {spec!r}: option {key!r} takes true or false, got {value!r}")
            options[option] = "true" if value.lower() in ("true", "1") else "false"
        else:
            if not value.lstrip("-").isdigit():
                raise PolicySpecError(f"bad policy spec {spec!r}: option {key!r} takes an integer, got {value!r}")
            options[option] = str(int(value))
    return HeuristicPolicy(tuple(sorted(options.items(), key=lambda kv: _SHORT_NAMES.get(kv[0], kv[0]))))


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
        return _parse_heuristic_options(spec, spec[len("heuristic:") :])
    if spec == "always":
        return ConstantPolicy(1)
    if spec == "never":
        return ConstantPolicy(0)
    if spec.startswith("saved:"):
        policy = SavedModelPolicy(spec[len("saved:") :])
        policy.model  # noqa: B018 - loads and checks it (signature, NaN outputs) before any compile starts.
        return policy
    raise PolicySpecError(
        f"unknown policy spec {spec!r}: use heuristic, heuristic:threshold=N, heuristic:OPTION=V[,OPTION=V], "
        "saved:PATH, always or never"
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
