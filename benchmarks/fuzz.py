"""Fuzz nnlcc: N random matrices through every matrix pipeline, then the bad-input corpus.

Usage::

    .venv/bin/python benchmarks/fuzz.py [-n 200] [--seed 0] [--no-corpus]

Random cases: a matrix with 1..64 rows and columns over up to 12 decades (1e-6..1e6), sparse,
with zero rows/columns and exact powers of two, coded by a random pipeline of
``tests/passes/exactness.PIPELINES`` and checked exact (adder graph = rational product, ranges
and widths hold).  Corpus cases (``tests/corpus/generate.py``): ``nnlcc`` must exit with the
expected status and one stderr line holding the expected fragment, leaving the files as they
were.  Prints each failure, then how many cases were tried and failed and the time taken;
exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "passes"), str(ROOT / "tests" / "corpus")]

import numpy as np  # noqa: E402
from exactness import PIPELINES, check_exact, coded_graph, random_matrix  # noqa: E402
from generate import generate  # noqa: E402

from nnlcc.errors import NnlccError  # noqa: E402


def random_cases(n: int, seed: int) -> tuple[int, list[str]]:
    """Run ``n`` random matrix cases; returns (tried, failures)."""
    rng = np.random.default_rng(seed)
    failures: list[str] = []
    tried = 0
    for i in range(n):
        rows, cols = (int(v) for v in rng.integers(1, 65, size=2))
        w = random_matrix(rng, rows, cols, float(rng.uniform(0, 12)))
        pipeline = str(rng.choice(PIPELINES)).format(
            bits=int(rng.integers(2, 17)),
            sqnr=int(rng.integers(10, 61)),
            k=int(rng.integers(1, cols + 1)),
        )
        try:
            g = coded_graph(w, pipeline, seed=i)
        except NnlccError:
            continue  # options this matrix cannot take: a clean refusal, not a case
        tried += 1
        try:
            check_exact(g, seed=i)
        except Exception:
            failures.append(
                f"random #{i} {rows}x{cols} {pipeline}: {traceback.format_exc(limit=1)}"
            )
    return tried, failures


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(d) / name
            rel = str(p.relative_to(root))
            out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def corpus_cases() -> tuple[int, list[str]]:
    """Run every corpus case through the CLI in this process; returns (tried, failures)."""
    from typer.testing import CliRunner

    from nnlcc.cli import app

    failures: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "work"
        cases = generate(root)
        old = Path.cwd()
        os.chdir(root)
        try:
            for case in cases:
                before = _tree(root.parent)
                res = CliRunner().invoke(app, case.argv)
                lines = [x for x in res.stderr.splitlines() if x.strip()]
                problem = None
                if res.exception is not None and not isinstance(res.exception, SystemExit):
                    problem = f"traceback: {res.exception!r}"
                elif res.exit_code != case.exit_code:
                    problem = f"exit {res.exit_code}, expected {case.exit_code}"
                elif len(lines) != 1 or case.fragment not in lines[0]:
                    problem = f"stderr {res.stderr!r}"
                elif _tree(root.parent) != before:
                    problem = "files changed"
                if problem:
                    failures.append(f"corpus {case.name}: {problem}")
        finally:
            os.chdir(old)
    return len(cases), failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="random matrix cases")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-corpus", action="store_true", help="random cases only")
    args = ap.parse_args()
    t0 = time.perf_counter()
    tried, failures = random_cases(args.n, args.seed)
    if not args.no_corpus:
        c_tried, c_failures = corpus_cases()
        tried += c_tried
        failures += c_failures
    for f in failures:
        print(f"FAIL {f}")
    print(f"tried {tried}, failed {len(failures)}, {time.perf_counter() - t0:.1f} s")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
