"""Packages a trained policy as the project's shipped model (what `make plugin` exports by default).

Layout of `output_dir` (in the repository: models/inliner_size/):

  saved_policy/   a copy of the policy's MLGO `saved_policy` directory (saved_model.pb, variables/, the numpy
                  sidecar fast_policy.npz and whatever else the trainer wrote), byte for byte;
  collect_policy/ a copy of its sibling `collect_policy` when there is one (MLGO's layout; the stochastic policy
                  that gives P(inline) when the SavedModel itself is asked, e.g. by bench/plugin.py);
  model.json      provenance, keys: format_version int; saved_model_sha256 str (`saved_policy.saved_model_digest`,
                  the digest `bench/quality.py` records for the policy it measured); source str (the path packaged,
                  relative to the run's root when it came from a bc_max run); iteration int|null and results
                  {part: {ratio, oracle_ratio, modules}} (that iteration's row of the run's results.json, when it came
                  from a bc_max run; ratios are total text size / stock -Oz).

The numpy sidecar must be valid for the SavedModel (its recorded digest matches): collection, evaluation and the
quality figures play the policy through it, so a shipped model without it could not be checked against them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

from compiler_opt.rl import atomic_file, saved_policy
from compiler_opt.rl.imitation_learning import report
from compiler_opt.tools import export_model_lib

FORMAT_VERSION = 1
SAVED_POLICY_DIR = "saved_policy"
COLLECT_POLICY_DIR = "collect_policy"
PROVENANCE_FILE = "model.json"


class ShipError(Exception):
    """The policy cannot be shipped; the message names the path and the fix."""


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Contents of model.json (module docstring)."""

    saved_model_sha256: str
    source: str
    iteration: int | None
    results: dict

    def to_json(self) -> str:
        return json.dumps({"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str) -> Provenance:
        with open(path) as f:
            obj = json.load(f)
        if obj.get("format_version") != FORMAT_VERSION:
            raise ShipError(f"{path}: format_version {obj.get('format_version')!r}, expected {FORMAT_VERSION}")
        return cls(
            saved_model_sha256=obj["saved_model_sha256"],
            source=obj["source"],
            iteration=obj["iteration"],
            results=obj["results"],
        )


def _iteration_row(root_dir: str) -> tuple[int | None, dict]:
    """(chosen iteration, its figures per part) from a bc_max run's results.json; (None, {}) for a plain policy."""
    path = os.path.join(root_dir, report.RESULTS_FILE)
    if not os.path.isfile(path):
        return None, {}
    with open(path) as f:
        obj = json.load(f)
    best = obj.get("best_iteration")
    for row in obj.get("iterations", ()):
        if row.get("iteration") == best:
            parts = {
                part: {key: figures.get(key) for key in ("ratio", "oracle_ratio", "modules")}
                for part, figures in row.get("parts", {}).items()
            }
            return int(best), parts
    return None, {}


def ship(policy: str, output_dir: str) -> Provenance:
    """Copies the saved_policy that `policy` names (a saved_policy dir, a dir holding one, or a bc_max root: the
    iteration it chose on validation) to `output_dir/saved_policy` and writes `output_dir/model.json`; the directory
    is replaced in one step (atomic_file.staged_dir). Raises ShipError when the policy has no valid numpy sidecar."""
    root = os.path.abspath(policy)
    is_policy = any(os.path.isfile(os.path.join(root, d, "saved_model.pb")) for d in ("", SAVED_POLICY_DIR))
    try:
        chosen = report.chosen_policy(root) if os.path.isdir(root) else None
    except ValueError as e:
        raise ShipError(str(e)) from e
    if os.path.isdir(root) and not is_policy and chosen is None:
        # export_model would take the newest iteration of an unfinished run; a shipped model must be the chosen one.
        raise ShipError(
            f"{root} has no {report.RESULTS_FILE} naming the iteration chosen on validation: finish the run "
            "(rerun bc_max or bench/quality.py on it), or pass the saved_policy directory to ship"
        )
    try:
        source = export_model_lib.resolve_policy(policy)
    except export_model_lib.ExportError as e:
        raise ShipError(str(e)) from e
    _check_fast_path(source)
    digest = saved_policy.saved_model_digest(source)
    iteration, results = (None, {})
    relative = source
    if chosen == source:
        iteration, results = _iteration_row(root)
        relative = os.path.relpath(source, root)
    provenance = Provenance(saved_model_sha256=digest, source=relative, iteration=iteration, results=results)
    with atomic_file.staged_dir(output_dir) as tmp:
        shutil.copytree(source, os.path.join(tmp, SAVED_POLICY_DIR))
        collect = os.path.join(os.path.dirname(source), COLLECT_POLICY_DIR)
        if os.path.isfile(os.path.join(collect, "saved_model.pb")):
            shutil.copytree(collect, os.path.join(tmp, COLLECT_POLICY_DIR))
        with open(os.path.join(tmp, PROVENANCE_FILE), "w") as f:
            f.write(provenance.to_json() + "\n")
    return provenance


def check_shipped(output_dir: str) -> Provenance:
    """The provenance of a shipped model, after checking that its saved_policy is the one model.json names (same
    digest) and that its numpy sidecar belongs to it. Raises ShipError naming the file otherwise."""
    path = os.path.join(output_dir, PROVENANCE_FILE)
    if not os.path.isfile(path):
        raise ShipError(f"{output_dir} holds no {PROVENANCE_FILE}: package a model with compiler_opt.tools.ship_model")
    provenance = Provenance.load(path)
    policy_dir = os.path.join(output_dir, SAVED_POLICY_DIR)
    digest = saved_policy.saved_model_digest(policy_dir)
    if digest != provenance.saved_model_sha256:
        raise ShipError(f"{policy_dir} is not the model {path} describes (digest {digest}): package it again")
    _check_fast_path(policy_dir)
    return provenance


def _check_fast_path(policy_dir: str) -> None:
    """Raises ShipError unless `policy_dir` loads (finite outputs) through its numpy sidecar, which
    `saved_policy.SavedPolicy.load` takes only when the sidecar records this SavedModel's digest."""
    try:
        policy = saved_policy.SavedPolicy.load(policy_dir)
    except saved_policy.PolicyLoadError as e:
        raise ShipError(f"{policy_dir} cannot be shipped: {e}") from e
    if not policy.uses_fast_path:
        raise ShipError(
            f"{os.path.join(policy_dir, saved_policy.FAST_POLICY_FILENAME)} is missing or was written for another "
            f"SavedModel: re-export {policy_dir} with the trainer"
        )
