"""Independent tasks (a layer's coding, its lowering, a sweep point), serially in this process
or at once on a Dask cluster, with the same results (see :mod:`nnlcc.jobs.base`, and
docs/parallel.md for the design)."""

from nnlcc.jobs.base import SERIAL, Jobs, SerialJobs, TaskStats
from nnlcc.jobs.select import check_jobs, default_workers, open_jobs, pays_off

__all__ = [
    "SERIAL",
    "Jobs",
    "SerialJobs",
    "TaskStats",
    "check_jobs",
    "default_workers",
    "open_jobs",
    "pays_off",
]
