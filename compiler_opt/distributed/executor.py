"""Where work runs. Collection and evaluation hand an executor a picklable function and picklable jobs; the executor
returns their results as they finish. The caller (the driver) alone writes outputs.

Implementations: `local` (a process pool on this machine, the default) and `ray` (a Ray cluster).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class Executor(abc.ABC):
    @abc.abstractmethod
    def map_unordered(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yields (job, fn(job)) in completion order. `fn` must not raise (it reports failures in its result)."""

    @property
    @abc.abstractmethod
    def num_workers(self) -> int: ...

    def close(self) -> None:  # noqa: B027 - optional hook: executors without resources need not override it.
        """Releases workers; the executor is unusable afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
