"""One ES rollout: one module compiled under one (perturbed) policy, in a worker. Imports no TensorFlow.

Perturbed policies are never cached (each parameter vector is compiled once); the -Oz reference sizes they are
compared with come from `evaluate_policy_lib` and its compile cache.
"""

from __future__ import annotations

import dataclasses

from compiler_opt.rl import env
from compiler_opt.rl.inlining import task as task_lib


@dataclasses.dataclass(frozen=True)
class RolloutJob:
    """Compile `module` under `policy` (a FlatPolicy). perturbation: its index in the step ([0, 2P)); slot: the
    module's index in the step's batch."""

    module: object
    policy: object
    perturbation: int
    slot: int
    task: task_lib.InliningForSizeTask
    timeout_s: float


@dataclasses.dataclass(frozen=True)
class RolloutResult:
    """text_size: bytes (None unless status is "ok"); horizon: decisions taken; seconds: wall time of the compile."""

    perturbation: int
    slot: int
    status: str
    text_size: int | None
    horizon: int
    seconds: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == env.OK


def run_rollout(job: RolloutJob) -> RolloutResult:
    """Runs in a worker. Raises only for what fails every rollout (features the compiler does not send, a missing
    tool); any other failure is the result's status and error."""
    try:
        result = env.compile_module(job.module, job.policy, task=job.task, timeout_s=job.timeout_s)
    except (env.FeatureMismatchError, task_lib.ToolError):
        raise
    except Exception as e:  # noqa: BLE001 - one failed compile must not end the run.
        return RolloutResult(job.perturbation, job.slot, env.FAILED, None, 0, 0.0, repr(e))
    return RolloutResult(
        perturbation=job.perturbation,
        slot=job.slot,
        status=result.status,
        text_size=result.text_size,
        horizon=result.horizon,
        seconds=result.seconds,
        error=env.clip_error(result.error),
    )
