"""Where work runs. Collection and evaluation hand an executor a picklable function and picklable jobs; the executor
returns their results as they finish. The caller (the driver) alone writes outputs.

Implementations: `local` (a process pool on this machine, the default) and `ray` (a Ray cluster).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any


class Executor(abc.ABC):
    @abc.abstractmethod
    def map_unordered(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yields (job, fn(job)) in completion order. `fn` must not raise (it reports failures in its result)."""

    def map_all(self, fn: Callable[[Any], Any], jobs: Sequence[Any], progress: bool = False, unit: str = "module"):
        """The results of fn over `jobs`, in completion order; with `progress`, a tqdm bar counts them."""
        bar = None
        if progress:
            import tqdm

            bar = tqdm.tqdm(total=len(jobs), unit=unit, smoothing=0.1, dynamic_ncols=True)
        results = []
        try:
            for _, result in self.map_unordered(fn, jobs):
                results.append(result)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return results

    @property
    @abc.abstractmethod
    def num_workers(self) -> int: ...

    def close(self) -> None:  # noqa: B027 - optional hook: executors without resources need not override it.
        """Releases workers; the executor is unusable afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
