"""Independent tasks, run one after another in this process (:class:`SerialJobs`) or at once
on a Dask cluster (:class:`nnlcc.jobs.cluster.DaskJobs`), with the same results either way.

A task is ``fn(item, shared)``: ``fn`` a module-level function (workers import it by name),
``item`` this task's input and ``shared`` what every task of the map reads (sent to each
worker once).  :meth:`Jobs.map` returns the results in the order of ``items`` whatever the
order of completion, so a caller that installs them in that order gets what a serial run
gets.  A task must not depend on what other tasks did before it in the same process.

Every task is timed and its peak memory measured (:class:`TaskStats`); the map logs one
``task:`` line per task, which :class:`nnlcc.progress.StepProgress` shows in ``-v`` mode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from nnlcc.errors import TaskFailedError

T = TypeVar("T")
S = TypeVar("S")
R = TypeVar("R")
Log = Callable[[str], None]
Progress = Callable[[int], None]

#: How often the peak-memory sampler reads the process's resident memory.
SAMPLE_S = 0.005


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class TaskStats:
    """What one task cost: wall seconds and the peak resident memory (bytes) of the process
    that ran it, while it ran, and where it ran."""

    name: str
    seconds: float
    peak_bytes: int
    where: str

    def line(self) -> str:
        """The ``task:`` progress line (``-v``)."""
        mb = self.peak_bytes / 2**20
        return f"task: {self.name}: {self.seconds:.2f} s, peak {mb:.0f} MB ({self.where})"


class PeakMemory:
    """The peak resident memory of this process while the ``with`` block runs, sampled
    every :data:`SAMPLE_S` by a thread (and at both ends)."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _read(self) -> None:
        self.peak = max(self.peak, int(self._proc.memory_info().rss))

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._read()

    def __enter__(self) -> PeakMemory:
        self._read()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._read()


def run_task(
    fn: Callable[[T, S], R], item: T, shared: S, name: str, where: str
) -> tuple[R, TaskStats]:
    """``fn(item, shared)`` timed and measured; a ``MemoryError`` becomes a one-line
    :class:`~nnlcc.errors.TaskFailedError` naming the task."""
    t0 = time.perf_counter()
    with PeakMemory() as peak:
        try:
            value = fn(item, shared)
        except MemoryError:
            raise TaskFailedError(
                f"{name}: out of memory ({where}); free memory or run fewer tasks at once (--jobs)"
            ) from None
    return value, TaskStats(name, time.perf_counter() - t0, peak.peak, where)


class Jobs:
    """Runs independent tasks (see the module docstring); :attr:`workers` is how many run
    at once (1: one after another, in this process)."""

    workers: int = 1

    def __init__(self, log: Log = _quiet) -> None:
        self.log = log

    def map(
        self,
        fn: Callable[[T, S], R],
        items: Sequence[T],
        shared: S,
        names: Sequence[str],
        progress: Progress | None = None,
    ) -> list[R]:
        """``[fn(item, shared) for item in items]``, in the order of ``items``.  ``names``
        name the tasks (in errors and ``task:`` lines); ``progress(i)`` is called when the
        display should name task ``i``: as it starts when tasks run one after another, as it
        finishes when they run at once."""
        raise NotImplementedError

    def prepare(self, tasks: int, work: int) -> None:
        """A hint, before the first map: about ``tasks`` tasks at once, ``work`` weights in
        all.  A local cluster starts here (in the background) when that pays off."""

    def close(self) -> None:
        """Stop what :meth:`prepare` or :meth:`map` started (idempotent)."""

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        # a task that receives the jobs object (inside a worker) runs its own tasks serially
        return (SerialJobs, ())


class SerialJobs(Jobs):
    """Every task in this process, one after another: no engine, nothing shipped."""

    def map(
        self,
        fn: Callable[[T, S], R],
        items: Sequence[T],
        shared: S,
        names: Sequence[str],
        progress: Progress | None = None,
    ) -> list[R]:
        if len(names) != len(items):
            raise ValueError("map: one name per item")
        out: list[R] = []
        for i, item in enumerate(items):
            if progress is not None:
                progress(i)
            value, stats = run_task(fn, item, shared, names[i], "this process")
            self.log(stats.line())
            out.append(value)
        return out


#: The jobs of a caller that gives none: one task after another, silently.
SERIAL = SerialJobs()
