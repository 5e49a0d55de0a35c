"""Which jobs a run gets, from ``--jobs N`` and ``--cluster ADDRESS`` (or ``jobs`` and
``cluster`` in ``nnlcc.toml``'s ``[compile]``):

- ``jobs`` 1: :class:`~nnlcc.jobs.base.SerialJobs`, every task in this process, no engine
  (also with a cluster named: a note says it is not used);
- ``cluster``: :class:`~nnlcc.jobs.cluster.DaskJobs` on that scheduler, reached and checked
  before any work; its workers set how many tasks run at once;
- otherwise a local Dask cluster of ``jobs`` worker processes (None: the machine's cores),
  started only when the work pays for its start-up (:func:`pays_off`), or, when ``jobs`` is
  given, as soon as two tasks can run at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from nnlcc.errors import BadInputError
from nnlcc.jobs.base import Jobs, Log, SerialJobs, _quiet

#: A local cluster starts by default only for a model of at least this many weights (its
#: start-up, 5 to 10 s of CPU on a busy 2-core machine, would cost small models more than
#: their parallel layers save: docs/parallel.md).
PAYS_FROM_WEIGHTS = 1 << 15


def default_workers() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)  # pragma: no cover - macOS, Windows


def pays_off(work: int) -> bool:
    """Whether ``work`` weights to code are worth a local cluster's start-up."""
    return work >= PAYS_FROM_WEIGHTS


def check_jobs(jobs: int | None, cluster: str | None, where: str = "") -> None:
    """One line for a bad ``jobs`` or ``cluster``, before any work (``where``: " (in FILE)"
    when they come from a config file)."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise BadInputError(
            f"--jobs must be a whole number of at least 1 (1: one task after another, in this"
            f" process), not {jobs!r}{where}"
        )
    if cluster is None:
        return
    if not isinstance(cluster, str) or not cluster.strip():
        raise BadInputError(
            f"--cluster must be a Dask scheduler's address, e.g. tcp://HOST:8786, not"
            f" {cluster!r}{where}"
        )
    if jobs is not None and jobs > 1:
        raise BadInputError(
            f"--jobs {jobs} and --cluster {cluster} exclude each other{where}: the cluster's"
            " workers set how many tasks run at once (--jobs 1 runs without it)"
        )


@contextlib.contextmanager
def open_jobs(
    jobs: int | None = 1,
    cluster: str | None = None,
    log: Log = _quiet,
    warm: Sequence[str] = (),
) -> Iterator[Jobs]:
    """The jobs of a run (see the module docstring), stopped on leaving: a local cluster's
    processes and files are gone when this returns, whatever ended the run (an error,
    Ctrl-C).  ``warm``: modules a local cluster's workers import as they start."""
    check_jobs(jobs, cluster)
    workers = jobs if jobs is not None else default_workers()
    chosen: Jobs
    if jobs == 1 or (cluster is None and workers == 1):
        if cluster is not None:
            log(f"note: --jobs 1: every task runs in this process, not on {cluster}")
        chosen = SerialJobs(log)
    else:
        from nnlcc.jobs.cluster import DaskJobs

        if cluster is not None:
            chosen = DaskJobs(log, workers=1, address=cluster.strip())
            try:
                chosen.connect()
            except BaseException:
                chosen.close()
                raise
        else:
            least = 0 if jobs is not None else PAYS_FROM_WEIGHTS
            chosen = DaskJobs(log, workers=workers, min_work=least, warm=warm)
    with chosen:
        yield chosen
