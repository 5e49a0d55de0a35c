"""Progress on the terminal (stderr) for the driver's ``log`` messages.

The driver reports progress by calling ``log(title)`` at the start of each step (frontend,
each pass and each layer of it, lowering, Verilog, simulation, board builds); a step ends when
the next begins.  :class:`StepProgress` is such a callable: a live spinner with the running
step and its elapsed time (so a long yosys run visibly ticks), and a line per finished step.

Levels: 0 quiet (nothing), 1 normal (steps that took at least :data:`SHOW_AFTER_S` seconds),
2 verbose (every step, with its start time).  On a non-terminal stderr (CI logs, pipes) the
spinner is off and only the finished-step lines are written.  Titles are plain text (rich
markup in them is escaped).  A title starting with ``warning:`` or ``note:`` is not a step: it
is printed at once (levels 1 and 2) and the running step goes on; one starting with
``task:`` (a task's seconds and peak memory) likewise, at the verbose level only.  A step
stopped by an error is listed (with a cross) only at the verbose level, so an error stays one
line on stderr.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

#: At the normal level, finished steps shorter than this are not listed.
SHOW_AFTER_S = 1.0
#: Title prefixes printed at once rather than run as steps.
NOTICES = ("warning:", "note:")
#: Title prefixes printed at once at the verbose level only (a task's time and peak memory,
#: :mod:`nnlcc.jobs`), not steps.
DETAILS = ("task:",)


class StepProgress:
    """``log(title)`` callable showing step-by-step progress; use as a context manager."""

    def __init__(self, level: int = 1, console: Console | None = None) -> None:
        self.level = level
        self.console = console or Console(stderr=True, highlight=False)
        self.t0 = time.perf_counter()
        self.steps: list[tuple[str, float]] = []  # (title, seconds) of finished steps
        self._current: tuple[str, float] | None = None
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> StepProgress:
        if self.level >= 1 and self.console.is_terminal:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(failed=exc_type is not None)

    def __call__(self, title: str) -> None:
        if title.startswith(DETAILS):
            if self.level >= 2:
                self.console.print(f"[dim]{escape(title)}[/dim]", soft_wrap=True)
            return
        if title.startswith(NOTICES):
            if self.level >= 1:
                self.console.print(f"[yellow]{escape(title)}[/yellow]", soft_wrap=True)
            return
        now = time.perf_counter()
        self._finish(now)
        self._current = (title, now)
        if self._progress is not None:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(escape(title), total=None)

    def _finish(self, now: float, failed: bool = False) -> None:
        if self._current is None:
            return
        raw, start = self._current
        title = escape(raw)
        dt = now - start
        self.steps.append((raw, dt))
        self._current = None
        if failed and self.level >= 2:
            self.console.print(f"[red]✗[/red] {title} [dim]{dt:.1f}s[/dim]", soft_wrap=True)
        elif self.level >= 2:
            self.console.print(
                f"[dim]{start - self.t0:6.1f}s[/dim] [green]✓[/green] {title} [dim]{dt:.1f}s[/dim]",
                soft_wrap=True,
            )
        elif self.level == 1 and dt >= SHOW_AFTER_S:
            self.console.print(f"[green]✓[/green] {title} [dim]{dt:.1f}s[/dim]", soft_wrap=True)

    def close(self, failed: bool = False) -> None:
        """End the running step (marked failed if an error stopped it) and the live display."""
        self._finish(time.perf_counter(), failed=failed)
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0
