"""The default executor: a pool of local worker processes (spawned, so no TensorFlow state is forked)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time

from compiler_opt.distributed.executor import Executor

# How often a worker checks that its host is still alive (seconds).
ORPHAN_POLL_SECONDS = 1.0


def exit_with_host(host_pid: int) -> None:
    """Pool worker initializer: the worker exits once `host_pid`, the process that started it, is gone.

    A host stopped by SIGTERM or SIGKILL runs no cleanup, and concurrent.futures' workers wait on their call queue
    forever, each holding its imports (TensorFlow: hundreds of MB). A daemon thread polls the parent pid (a thread,
    not PR_SET_PDEATHSIG: that signal follows the host *thread* that spawned the worker, which need not live as
    long as the host). A compiler the worker is running dies with it (env._die_with_host)."""

    def watch():
        while os.getppid() == host_pid:
            time.sleep(ORPHAN_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-host", daemon=True).start()


class LocalExecutor(Executor):
    """num_workers: worker processes (default: the machine's cores). 1 runs jobs in this process (for debugging)."""

    def __init__(self, num_workers: int | None = None):
        self._num_workers = max(1, num_workers or os.cpu_count() or 1)
        self._pool = None

    @property
    def num_workers(self) -> int:
        return self._num_workers

    def map_unordered(self, fn, jobs):
        jobs = list(jobs)
        if self._num_workers == 1:
            for job in jobs:
                yield job, fn(job)
            return
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self._num_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=exit_with_host,
                initargs=(os.getpid(),),
            )
        futures = {self._pool.submit(fn, job): job for job in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
