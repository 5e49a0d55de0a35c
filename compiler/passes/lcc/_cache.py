"""Where numba keeps the compiled LCC kernels (``@numba.njit(cache=True)``).

numba caches next to the source (``__pycache__``) or, when that is read-only (a system-wide
install), under the user's cache folder; when neither can be written (HOME read-only, as for
service accounts) it refuses to decorate the kernels at import.  :func:`ensure_numba_cache_dir`
then points ``NUMBA_CACHE_DIR`` to a private folder in the temporary directory, before numba is
imported; an explicit ``NUMBA_CACHE_DIR`` is always kept.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ensure_numba_cache_dir", "fallback_cache_dir"]


def _writable(d: Path) -> bool:
    """Whether ``d`` (or its nearest existing ancestor, where it would be made) takes files:
    tried, as numba does (permission bits say nothing for root or read-only mounts)."""
    while not d.exists() and d != d.parent:
        d = d.parent
    try:
        with tempfile.TemporaryFile(dir=d):
            return True
    except OSError:
        return False


def fallback_cache_dir(source_dir: Path, env: Mapping[str, str]) -> Path | None:
    """The ``NUMBA_CACHE_DIR`` to set for kernels in ``source_dir``, or None when numba's own
    choice works (or the user chose one)."""
    if env.get("NUMBA_CACHE_DIR"):
        return None
    if _writable(source_dir / "__pycache__"):
        return None
    home = env.get("HOME")
    user_cache = env.get("XDG_CACHE_HOME") or (str(Path(home) / ".cache") if home else "")
    if user_cache and _writable(Path(user_cache) / "numba"):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"nnlcc-numba-cache-{uid}"


def ensure_numba_cache_dir() -> None:
    """Set ``NUMBA_CACHE_DIR`` when numba could not cache the kernels of this package."""
    d = fallback_cache_dir(Path(__file__).parent, os.environ)
    if d is not None:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(d)
