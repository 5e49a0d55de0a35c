"""Tasks on a Dask distributed cluster: a local one of worker processes that nnlcc starts and
stops, or an existing scheduler the user names (``--cluster tcp://HOST:8786``).

Why Dask and how it is used: docs/parallel.md.  The local cluster starts in a background
thread (while the frontend and ``quantize`` run), only when :meth:`DaskJobs.prepare` says the
work pays for it; until then, and for a map of one task, tasks run in this process.  An
existing cluster is reached and checked at once (:meth:`DaskJobs.connect`): its workers must
run the same nnlcc code, Python and numerical libraries as this client, else one line says
which differ.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib
import importlib.util
import logging
import platform
import shutil
import signal
import tempfile
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from nnlcc.errors import BadInputError, TaskFailedError
from nnlcc.jobs.base import Jobs, Log, Progress, R, S, SerialJobs, T, TaskStats, run_task

#: Seconds to reach an existing scheduler, and to wait for it to have a worker.
CONNECT_TIMEOUT_S = 10.0
#: Retries of a task whose worker died (then :class:`~nnlcc.errors.TaskFailedError`), on a
#: local cluster; an existing cluster's scheduler keeps its own setting.
RETRIES = 1
#: The packages whose versions client and workers must share (nnlcc: also its code).
CHECKED = ("nnlcc", "python", "numpy", "numba", "dask", "distributed", "cloudpickle")
#: nnlcc's top-level packages (``pyproject.toml``'s ``package-dir``), whose code is compared.
_PACKAGES = ("nnlcc", "nnlcc.frontends", "nnlcc.hdl", "nnlcc.sim", "nnlcc.boards")


def dask_setup(worker: Any) -> None:
    """Preload of a local cluster's workers: Ctrl-C in the terminal reaches every process of
    the foreground group; the workers leave it to the client, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def code_digest() -> str:
    """A digest of nnlcc's source, by module name (the same for a wheel and an editable
    install of the same code)."""
    files: dict[str, bytes] = {}
    for package in _PACKAGES:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for f in Path(root).rglob("*.py"):
                rel = f.relative_to(root).with_suffix("")
                files[".".join((package, *rel.parts))] = hashlib.sha256(f.read_bytes()).digest()
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + files[name])
    return h.hexdigest()[:12]


def versions() -> dict[str, str]:
    """What client and workers must share (:data:`CHECKED`), as this process has it."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": ".".join(platform.python_version_tuple()[:2])}
    for name in CHECKED[2:]:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    import nnlcc

    out["nnlcc"] = f"{nnlcc.__version__} (code {code_digest()})"
    return out


def _mismatch(address: str, ours: dict[str, str], theirs: dict[str, dict[str, str]]) -> str | None:
    """The line saying which versions differ between this client and a worker, or None."""
    for worker, facts in sorted(theirs.items()):
        diff = [k for k in CHECKED if facts.get(k) != ours.get(k)]
        if diff:
            them = ", ".join(f"{k} {facts.get(k, 'missing')}" for k in diff)
            us = ", ".join(f"{k} {ours[k]}" for k in diff)
            return (
                f"the Dask worker {worker} of {address} runs {them}; this client runs {us}:"
                " install the same versions on the workers"
            )
    return None


def _on_worker(fn: Callable[[T, S], R], item: T, shared: S, name: str) -> tuple[R, TaskStats]:
    from distributed import get_worker

    return run_task(fn, item, shared, name, f"worker {get_worker().name}")


@contextlib.contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's warnings (a large task, mismatched versions: nnlcc checks its own) and log
    lines below errors stay out of nnlcc's one-line output."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class DaskJobs(Jobs):
    """Tasks on Dask: ``address`` an existing scheduler, else a local cluster of ``workers``
    processes, started by :meth:`prepare` when two tasks or more can run at once and their
    work reaches ``min_work`` weights; ``warm``: modules a local worker imports as it
    starts."""

    def __init__(
        self,
        log: Log,
        *,
        workers: int,
        address: str | None = None,
        min_work: int = 0,
        warm: Sequence[str] = (),
    ) -> None:
        super().__init__(log)
        self.workers = workers
        self.address = address
        self.min_work = min_work
        self.warm = tuple(warm)
        self._client: Any = None
        self._cluster: Any = None
        self._dir: str | None = None
        self._cleanup: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None

    # ---- starting and stopping

    def connect(self) -> None:
        """Reach the scheduler at :attr:`address`, wait for a worker and check the workers'
        versions; one :class:`~nnlcc.errors.BadInputError` line when any of it fails."""
        assert self.address is not None
        from distributed import Client

        address = self.address
        with _quiet_dask():
            try:
                self._client = Client(
                    address, timeout=CONNECT_TIMEOUT_S, set_as_default=False, name="nnlcc"
                )
            except (OSError, TimeoutError, ValueError, TypeError) as e:
                raise BadInputError(
                    f"cannot reach a Dask scheduler at {address!r} ({_reason(e)}); start one"
                    " (dask scheduler; dask worker ADDRESS) or leave --cluster out"
                ) from None
            try:
                self._client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
            except TimeoutError:
                raise BadInputError(
                    f"the Dask scheduler at {address} has no worker (waited"
                    f" {CONNECT_TIMEOUT_S:g} s); start one: dask worker {address}"
                ) from None
            try:
                theirs = self._client.run(versions)
            except Exception as e:  # a worker without nnlcc cannot even load the check
                raise BadInputError(
                    f"the Dask workers of {address} cannot run nnlcc ({_reason(e)}): install"
                    " the same nnlcc on them"
                ) from None
        self.workers = max(1, sum(self._client.nthreads().values()))
        why = _mismatch(address, versions(), theirs)
        if why is not None:
            raise BadInputError(why)

    def prepare(self, tasks: int, work: int) -> None:
        if self.address is not None or self._thread is not None or tasks < 2:
            return
        if work >= self.min_work:
            self._thread = threading.Thread(target=self._start, name="nnlcc-dask", daemon=True)
            self._thread.start()

    def _start(self) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster

            self._dir = tempfile.mkdtemp(prefix="nnlcc-dask-")
            self._cleanup = functools.partial(shutil.rmtree, self._dir, ignore_errors=True)
            atexit.register(self._cleanup)  # a second Ctrl-C during close() leaves no files
            with (
                _quiet_dask(),
                dask.config.set(
                    {
                        "distributed.scheduler.allowed-failures": RETRIES,
                        "temporary-directory": self._dir,  # the scheduler's files too
                    }
                ),
            ):
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    scheduler_kwargs={"dashboard": False},
                    local_directory=self._dir,
                    silence_logs=logging.ERROR,
                    preload=["nnlcc.jobs.cluster"],
                )
                self._client = Client(self._cluster, set_as_default=False)
                for module in self.warm:
                    self._client.run(importlib.import_module, module)
        except BaseException as e:  # raised in the main thread, at the first map
            self._failed = e

    def _running(self) -> Any:
        """The client, once the cluster runs (waiting for a start in progress); None when
        no cluster was started."""
        if self._thread is not None:
            self._thread.join()
        if self._failed is not None:
            failed, self._failed = self._failed, None
            self._thread = None
            self.close()
            raise TaskFailedError(
                f"could not start a local Dask cluster of {self.workers} workers"
                f" ({_reason(failed)}); --jobs 1 runs without one"
            ) from failed
        return self._client

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        if cluster is not None:
            self.log("stopping the local Dask cluster")
        with _quiet_dask():
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close(timeout=CONNECT_TIMEOUT_S)
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close(timeout=CONNECT_TIMEOUT_S)
        if self._cleanup is not None:
            self._cleanup()
            atexit.unregister(self._cleanup)
            self._cleanup = self._dir = None

    # ---- tasks

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
        client = self._running() if len(items) > 1 else None
        if client is None:
            return SerialJobs(self.log).map(fn, items, shared, names, progress)
        from distributed import as_completed

        token = uuid.uuid4().hex[:8]
        with _quiet_dask():
            common = client.scatter(shared, broadcast=True, hash=False)
            futures = [
                client.submit(
                    _on_worker, fn, item, common, name, key=f"{name}-{token}-{i}", pure=False
                )
                for i, (item, name) in enumerate(zip(items, names, strict=True))
            ]
        index = {f.key: i for i, f in enumerate(futures)}
        out: list[Any] = [None] * len(items)
        try:
            for future in as_completed(futures, loop=client.loop):
                i = index[future.key]
                value, stats = self._result(future, names[i])
                out[i] = value
                if progress is not None:
                    progress(i)
                self.log(stats.line())
        finally:
            client.cancel([f for f in futures if not f.done()])
        return out

    def _result(self, future: Any, name: str) -> tuple[Any, TaskStats]:
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError

        try:
            value: tuple[Any, TaskStats] = future.result()
        except (KilledWorker, FutureCancelledError):  # a lost worker's task may be forgotten
            where = "a local worker" if self.address is None else f"a worker of {self.address}"
            raise TaskFailedError(
                f"{name}: {where} died running it (out of memory, or killed), also on retry;"
                " nothing was written: free memory or run fewer tasks at once (--jobs)"
            ) from None
        return value


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__
