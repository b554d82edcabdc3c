"""The Ray executor: jobs run as Ray tasks on a cluster; results stream back to the driver, which alone writes them.

A cluster is started outside this program (`ray start --head` on one node, `ray start --address=HEAD:PORT` on the
others, each from an environment where this project is installed, with clang-22 on PATH); `RayExecutor` connects to
it. Importing this module does not import Ray: only constructing a `RayExecutor` does.

Each job is one Ray task, not a call on a pool of actors. Measured on collection (one machine, 2 CPUs, 24 modules):
the per-job cost is 1-3 ms either way, against about a second of compiling per job, and throughput is equal within
noise. Tasks handle failures better: Ray resubmits a task lost with its node (`max_retries`) on any node with a free
CPU and rebuilds a lost result from lineage, while an actor must first be restarted somewhere with a CPU free, and
idle actors hold CPUs that other work could use. Ray reuses a task's worker process for later tasks, so per-process
caches stay warm as in an actor. Each job has exactly one task reference (a retry fills the same reference), and a
job is yielded at most once.

Where a module's bitcode comes from (gin `RayExecutor.ship_bitcode`):
  False (default)  workers read `ModuleSpec.bc_path`: the corpus must be at the same path on every node.
  True             the driver reads each job's bitcode and puts it in Ray's object store; the worker writes it to a
                   private temporary file and runs the job on a copy whose ModuleSpec points there (the original
                   path is also replaced inside `cc1_args`). Only the `.bc` travels: flags naming other corpus files
                   still need them on the workers. Jobs are searched for ModuleSpec values in their top-level
                   dataclass fields.

Failures: an exception raised by the job function stops the run, as with the local executor. A job Ray could not
finish after `max_retries` resubmissions (nodes lost again and again) does not: every other job's result is still
yielded, then `JobsLostError` names the lost jobs; rerunning the same command resumes them.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gin
from absl import logging

from compiler_opt.distributed.executor import Executor
from compiler_opt.rl import corpus


class JobsLostError(RuntimeError):
    """Ray could not finish some jobs (their nodes kept failing); every other job's result was yielded first."""

    def __init__(self, lost: list[tuple[Any, BaseException]]):
        self.lost = lost
        names = ", ".join(_job_name(job) for job, _ in lost[:10])
        more = f" and {len(lost) - 10} more" if len(lost) > 10 else ""
        super().__init__(
            f"Ray lost {len(lost)} job(s) after all retries: {names}{more}; first error: {lost[0][1]!r}. "
            "Check `ray status` for dead nodes, then rerun the same command to finish them."
        )


@gin.configurable(module="ray_executor")
class RayExecutor(Executor):
    """Runs jobs as tasks on a Ray cluster.

    Args:
      address: the cluster: "auto" (the one started on this machine by `ray start`, or $RAY_ADDRESS) or HOST:PORT
        of the head node's GCS.
      ship_bitcode: send each job's module bitcode through the object store instead of reading a shared path.
      max_retries: resubmissions of a task whose worker or node died (Ray's task retries; exceptions raised by the
        job function are never retried).
      cpus_per_job: CPUs a job holds while it runs (a compile uses one).
      in_flight_per_worker: jobs submitted ahead per worker slot; bounds the driver's and object store's memory
        while keeping every worker busy.
      node_ip_address: this driver's address as the cluster sees it (Ray's `_node_ip_address`), when the machine
        has several (e.g. a test cluster on 127.0.0.2); None lets Ray choose.
      log_to_driver: print the workers' stdout/stderr (their absl logs) on the driver.
    """

    def __init__(
        self,
        address: str = "auto",
        *,
        ship_bitcode: bool = False,
        max_retries: int = 3,
        cpus_per_job: float = 1.0,
        in_flight_per_worker: int = 2,
        node_ip_address: str | None = None,
        log_to_driver: bool = True,
    ):
        import ray

        if max_retries < 0 or in_flight_per_worker < 1 or cpus_per_job <= 0:
            raise ValueError(
                "RayExecutor needs max_retries >= 0, in_flight_per_worker >= 1 and cpus_per_job > 0; got "
                f"{max_retries}, {in_flight_per_worker}, {cpus_per_job}"
            )
        self._ship_bitcode = ship_bitcode
        self._in_flight_per_worker = in_flight_per_worker
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            _check_reachable(address)
            try:
                ray.init(
                    address=address,
                    _node_ip_address=node_ip_address,
                    log_to_driver=log_to_driver,
                    logging_level="WARNING",
                )
            except ConnectionError as e:
                raise ConnectionError(_no_cluster(address)) from e
        cpus = ray.cluster_resources().get("CPU", 0.0)
        self._num_workers = max(1, int(cpus // cpus_per_job))
        self._remote = ray.remote(_run_job).options(
            num_cpus=cpus_per_job, max_retries=max_retries, retry_exceptions=False
        )
        logging.info("Ray cluster at %s: %d worker slots", address, self._num_workers)

    @property
    def num_workers(self) -> int:
        """Job slots of the cluster when this executor connected (its CPUs / cpus_per_job)."""
        return self._num_workers

    def map_unordered(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        import ray

        jobs = list(jobs)
        window = self._num_workers * self._in_flight_per_worker
        pending: dict[Any, int] = {}  # ObjectRef of a submitted task -> index of its job.
        yielded: set[int] = set()
        lost: list[tuple[Any, BaseException]] = []
        submitted = 0

        def submit_more() -> None:
            nonlocal submitted
            while submitted < len(jobs) and len(pending) < window:
                job = jobs[submitted]
                fields, blobs = _ship(job) if self._ship_bitcode else ((), ())
                pending[self._remote.remote(fn, job, fields, *blobs)] = submitted
                submitted += 1

        try:
            submit_more()
            while pending:
                [ready], _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(ready)
                submit_more()
                try:
                    result = ray.get(ready)
                except ray.exceptions.RayTaskError:
                    raise
                except ray.exceptions.RayError as e:
                    logging.warning("Ray lost %s after all retries: %r", _job_name(jobs[index]), e)
                    lost.append((jobs[index], e))
                    continue
                if index in yielded:
                    continue
                yielded.add(index)
                yield jobs[index], result
        finally:
            for ref in pending:
                ray.cancel(ref)
        if lost:
            raise JobsLostError(lost)

    def close(self) -> None:
        if self._owns_connection:
            import ray

            ray.shutdown()
            self._owns_connection = False


def _no_cluster(address: str) -> str:
    return (
        f"no Ray cluster at --ray_address={address}: start one with `ray start --head` (then "
        "`ray start --address=HEAD_IP:PORT` on the other nodes), or pass the head's HOST:PORT"
    )


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fails fast on a HOST:PORT where nothing listens (Ray itself would retry for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConnectionError(f"{_no_cluster(address)} ({e})") from e


def _job_name(job) -> str:
    module = getattr(job, "module", None)
    return getattr(module, "name", None) or repr(job)[:80]


def _module_fields(job) -> tuple[str, ...]:
    if not dataclasses.is_dataclass(job) or isinstance(job, type):
        return ()
    return tuple(f.name for f in dataclasses.fields(job) if isinstance(getattr(job, f.name), corpus.ModuleSpec))


def _ship(job) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """Driver side: puts the bitcode of each ModuleSpec field of `job` in the object store."""
    import ray

    fields = _module_fields(job)
    blobs = []
    for name in fields:
        with open(getattr(job, name).bc_path, "rb") as f:
            blobs.append(ray.put(f.read()))
    return fields, tuple(blobs)


def land(job, fields: tuple[str, ...], blobs: tuple[bytes, ...], directory: str):
    """Worker side: writes each shipped bitcode under `directory`; returns `job` with its ModuleSpecs pointing there."""
    changes = {}
    for i, (name, blob) in enumerate(zip(fields, blobs, strict=True)):
        spec = getattr(job, name)
        path = os.path.join(directory, f"{i}-{os.path.basename(spec.bc_path)}")
        with open(path, "wb") as f:
            f.write(blob)
        changes[name] = dataclasses.replace(
            spec, bc_path=path, cc1_args=tuple(a.replace(spec.bc_path, path) for a in spec.cc1_args)
        )
    return dataclasses.replace(job, **changes)


def _run_job(fn: Callable[[Any], Any], job, fields: tuple[str, ...], *blobs: bytes):
    """The Ray task: runs `fn(job)`, first landing shipped bitcode in a temporary directory removed afterwards."""
    if not fields:
        return fn(job)
    directory = tempfile.mkdtemp(prefix="bcmax-shipped-")
    try:
        return fn(land(job, fields, blobs, directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
