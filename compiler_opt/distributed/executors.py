"""Choosing an executor from flags: `local` (default; never imports Ray) or `ray`."""

from __future__ import annotations

from absl import flags

from compiler_opt.distributed import ray_executor  # Registers its gin configurables before parsing; imports no Ray.
from compiler_opt.distributed.executor import Executor

EXECUTORS = ("local", "ray")


def define_flags():
    """Defines --executor, --num_workers and --ray_address; returns their holders (call at module level)."""
    return (
        flags.DEFINE_enum("executor", "local", EXECUTORS, "Where compiles run: a local process pool or a Ray cluster."),
        flags.DEFINE_integer("num_workers", None, "Local worker processes (default: the number of cores)."),
        flags.DEFINE_string("ray_address", "auto", "Ray cluster address for --executor=ray: auto or HOST:PORT."),
    )


def make(kind: str = "local", num_workers: int | None = None, ray_address: str = "auto") -> Executor:
    if kind == "local":
        from compiler_opt.distributed import local

        return local.LocalExecutor(num_workers)
    if kind == "ray":
        return ray_executor.RayExecutor(address=ray_address)
    raise ValueError(f"unknown executor {kind!r}: use one of {EXECUTORS}")
