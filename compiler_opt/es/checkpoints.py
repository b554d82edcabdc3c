"""ES checkpoints: the parameters, the optimizer state and the per-step statistics after each step.

File format: `<dir>/ckpt-<step, 8 digits>.npz` (numpy .npz, no pickles), format_version 1:
  format_version int; step int (ES steps done); theta float64 [d]; optimizer_steps int; optimizer_m and
  optimizer_v float64 [d]; history str (JSON list of StepStats, one per step done, in order).
Written atomically (temp file, fsync, rename); the newest `max_to_keep` are kept. The policy's fixed part (its
normalization and layer shapes) is stored once per run, as the initial policy (see es_trainer_lib).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re

import numpy as np
from absl import logging

from compiler_opt.es import blackbox_optimizer
from compiler_opt.rl import atomic_file

_FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{8})\.npz$")


@dataclasses.dataclass(frozen=True)
class StepStats:
    """One ES step. Rewards are over the step's 2P perturbations: each the mean over the batch's modules of
    (-Oz size - size) / -Oz size. grad_norm: of the gradient estimate; step_norm: of the parameter change.
    compiles / failures: rollouts run / failed; seconds: wall time of the step."""

    step: int
    mean_reward: float
    max_reward: float
    min_reward: float
    grad_norm: float
    step_norm: float
    compiles: int
    failures: int
    seconds: float
    modules: tuple[str, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class Checkpoint:
    step: int
    theta: np.ndarray
    optimizer: blackbox_optimizer.OptimizerState
    history: tuple[StepStats, ...]

    def save(self, directory: str, max_to_keep: int = 3) -> str:
        """Writes `directory/ckpt-<step>.npz` atomically, then deletes all but the newest `max_to_keep`."""
        buf = io.BytesIO()
        np.savez(
            buf,
            format_version=np.int64(_FORMAT_VERSION),
            step=np.int64(self.step),
            theta=np.asarray(self.theta, np.float64),
            optimizer_steps=np.int64(self.optimizer.steps),
            optimizer_m=np.asarray(self.optimizer.m, np.float64),
            optimizer_v=np.asarray(self.optimizer.v, np.float64),
            history=np.str_(json.dumps([dataclasses.asdict(s) for s in self.history])),
        )
        path = os.path.join(directory, f"ckpt-{self.step:08d}.npz")
        atomic_file.write_bytes(path, buf.getvalue())
        for old in list_steps(directory)[:-max_to_keep] if max_to_keep > 0 else []:
            os.unlink(os.path.join(directory, f"ckpt-{old:08d}.npz"))
        return path

    @classmethod
    def load(cls, path: str) -> Checkpoint:
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format_version"])
                if version != _FORMAT_VERSION:
                    raise ValueError(f"format {version}, expected {_FORMAT_VERSION}")
                history = tuple(
                    StepStats(**{**s, "modules": tuple(s["modules"])}) for s in json.loads(str(data["history"]))
                )
                return cls(
                    step=int(data["step"]),
                    theta=data["theta"],
                    optimizer=blackbox_optimizer.OptimizerState(
                        int(data["optimizer_steps"]), data["optimizer_m"], data["optimizer_v"]
                    ),
                    history=history,
                )
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise ValueError(
                f"{path} is not a readable ES checkpoint ({e}); delete it to resume from an older one"
            ) from None

    @classmethod
    def latest(cls, directory: str) -> Checkpoint | None:
        """The newest checkpoint in `directory` (None if there is none)."""
        if os.path.isdir(directory):
            removed = atomic_file.remove_stale_temporaries(directory)
            if removed:
                logging.info("removed %d half-written checkpoints in %s", removed, directory)
        steps = list_steps(directory)
        return cls.load(os.path.join(directory, f"ckpt-{steps[-1]:08d}.npz")) if steps else None


def list_steps(directory: str) -> list[int]:
    """Steps of the checkpoints in `directory`, ascending."""
    if not os.path.isdir(directory):
        return []
    return sorted(int(m.group(1)) for name in os.listdir(directory) if (m := _NAME.match(name)))
