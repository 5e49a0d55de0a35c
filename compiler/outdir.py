"""The output directory: checked before any work, written through a staging directory, and
replaced only when nnlcc made it.

nnlcc writes a design into a hidden staging directory beside OUTDIR (``.nnlcc-stage.*``,
holding the marker file :data:`MARKER`) and renames it onto OUTDIR at the end, so a failed
run leaves OUTDIR as it was.  An existing OUTDIR is replaced only when it holds the marker (nnlcc
wrote it) or is empty; anything else needs ``--force``, and even ``--force`` never removes the
current directory, the model's folder, or an ancestor of either.  SIGTERM removes the staging
directory; a staging directory left behind by a killed run (its process is gone) is removed by
the next run into the same parent, which says so in the progress log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from nnlcc.errors import BadInputError

__all__ = ["MARKER", "STAGING_PREFIX", "check_outdir", "default_name", "staged_outdir"]

#: The file marking a directory nnlcc wrote (and may therefore replace).
MARKER = ".nnlcc-output"
#: Name prefix of staging directories (beside OUTDIR, removed when the run ends).
STAGING_PREFIX = ".nnlcc-stage."
_NAME_MAX = 255  # bytes per path component on every file system nnlcc targets

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def default_name(stem: str) -> str:
    """A model stem usable as a folder name (``..onnx`` has the stem ``.``)."""
    name = stem.strip()
    return name if name and name.strip(".") else "model"


def _protected(anchors: list[Path]) -> list[Path]:
    """The current directory, the folders of ``anchors`` and every ancestor of them."""
    out: list[Path] = []
    for d in [Path.cwd(), *(a.resolve().parent for a in anchors)]:
        out += [d, *d.parents]
    return out


def _check_name(outdir: Path) -> None:
    for part in outdir.parts:
        if len(part.encode()) > _NAME_MAX:
            raise BadInputError(
                f"output path component '{part[:40]}...' is {len(part.encode())} bytes long"
                f" (the file system allows {_NAME_MAX}); choose a shorter -o path"
            )


def check_outdir(outdir: Path, anchors: list[Path], force: bool = False) -> None:
    """Refuse (one :class:`BadInputError` line) an output path nnlcc must not write or
    replace; ``anchors`` are the user's input files (model, data, config)."""
    if str(outdir) == "":
        raise BadInputError("the output path is empty; pass -o with a new or empty directory")
    _check_name(outdir)
    if outdir.is_symlink():
        raise BadInputError(
            f"output path '{outdir}' is a symbolic link; pass -o with a real directory path"
        )
    probe = outdir.parent  # the staging directory is made there (and its missing parents)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise BadInputError(
            f"output path '{outdir}' is inside '{probe}', which is a file; choose another -o path"
        )
    if outdir.exists() and not outdir.is_dir():
        raise BadInputError(
            f"output path '{outdir}' is an existing file; choose a new or empty directory"
        )
    resolved = outdir.resolve()
    if outdir.is_dir() and resolved in _protected(anchors):
        raise BadInputError(
            f"output directory '{outdir}' is the current directory, the model's folder or one of"
            " their ancestors; nnlcc never replaces it (not even with --force): choose a new path"
        )
    if outdir.is_dir() and not force and not (outdir / MARKER).is_file():
        with os.scandir(outdir) as it:
            if any(True for _ in it):
                raise BadInputError(
                    f"output directory '{outdir}' exists and was not written by nnlcc;"
                    " choose an empty or new path, or pass --force to replace it"
                )
    if outdir.is_dir() and not force and (outdir / MARKER).is_file():
        foreign = _foreign_files(outdir)
        if foreign:
            shown = ", ".join(foreign[:3]) + (
                f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            )
            raise BadInputError(
                f"output directory '{outdir}' holds files nnlcc did not write ({shown});"
                " move them, choose another path, or pass --force to replace it"
            )
    try:  # tried: permission bits say nothing for root or read-only mounts
        tempfile.TemporaryDirectory(prefix=STAGING_PREFIX, dir=probe).cleanup()
    except OSError as e:
        raise BadInputError(
            f"output path '{outdir}' cannot be written ('{probe}': {e.strerror});"
            " choose another -o path"
        ) from None


def _files(root: Path) -> list[str]:
    """Every file below ``root`` (symlinks included, not followed), as relative POSIX paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath).relative_to(root)
        out += [(base / f).as_posix() for f in filenames]
        out += [(base / d).as_posix() for d in dirnames if (Path(dirpath) / d).is_symlink()]
    return sorted(out)


def _manifest(root: Path) -> str:
    """The marker's text: what a later run may replace, and the files this run wrote."""
    names = [f for f in _files(root) if f != MARKER]
    return "written by nnlcc: a later run may replace this directory\nfiles:\n" + "".join(
        f"{name}\n" for name in names
    )


def _foreign_files(outdir: Path) -> list[str]:
    """Files in an nnlcc output directory that its marker does not list (a user's own);
    none when the marker has no list."""
    text = (outdir / MARKER).read_text(errors="replace")
    if "\nfiles:\n" not in text:
        return []
    known = set(text.split("\nfiles:\n", 1)[1].splitlines())
    return [f for f in _files(outdir) if f != MARKER and f not in known]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(parent: Path, log: Log = _quiet) -> list[Path]:
    """Remove staging directories of nnlcc runs that ended without cleaning up (their
    process is gone); returns them."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for d in parent.glob(f"{STAGING_PREFIX}*"):
        marker = d / MARKER
        if d.is_symlink() or not d.is_dir() or not marker.is_file():
            continue
        try:
            pid = int(marker.read_text().split("pid ", 1)[1].split()[0])
        except (OSError, IndexError, ValueError, UnicodeDecodeError):
            continue
        if pid != os.getpid() and _alive(pid):
            continue
        shutil.rmtree(d, ignore_errors=True)
        log(f"note: removed stale staging directory {d} (left by an interrupted nnlcc run)")
        removed.append(d)
    return removed


class _Terminated(SystemExit):
    """SIGTERM arrived while writing: unwinds (removing the staging directory), exit 143."""


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise _Terminated(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def staged_outdir(
    outdir: Path, anchors: list[Path], force: bool = False, log: Log = _quiet
) -> Iterator[Path]:
    """A fresh staging directory to write into; on success it replaces ``outdir`` (checked
    again with :func:`check_outdir`), on any error or SIGTERM it is removed."""
    check_outdir(outdir, anchors, force)
    parent = outdir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInputError(f"cannot create '{parent}' ({e.strerror}); choose another -o") from None
    sweep_stale(parent, log)
    with _sigterm_unwinds():
        try:
            tmp = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent))
        except OSError as e:
            raise BadInputError(
                f"cannot write in '{parent}' ({e.strerror}); choose another -o path"
            ) from None
        try:
            tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; OUTDIR follows the umask
            (tmp / MARKER).write_text(
                f"written by nnlcc: a later run may replace this directory\npid {os.getpid()}\n"
            )
            yield tmp
            check_outdir(outdir, anchors, force)  # the world may have changed meanwhile
            manifest = _manifest(tmp)
            if outdir.is_dir():
                shutil.rmtree(outdir)
            tmp.rename(outdir)
            (outdir / MARKER).write_text(manifest)
        except OSError as e:
            raise BadInputError(
                f"cannot write the output directory '{outdir}' ({e.strerror or e})"
            ) from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
