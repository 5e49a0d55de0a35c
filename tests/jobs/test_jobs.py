"""nnlcc.jobs without a cluster: serial maps, the option checks, when a local cluster starts,
the version check's line, and the command line's one-line errors (exit 2, nothing written)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnlcc.cli import app
from nnlcc.config import parse_config
from nnlcc.driver import EXAMPLE_MODEL, CompileOptions, compile_model
from nnlcc.errors import BadInputError, TaskFailedError
from nnlcc.frontends import load_model
from nnlcc.jobs import SerialJobs, TaskStats, check_jobs, open_jobs, pays_off
from nnlcc.jobs.base import run_task
from nnlcc.jobs.cluster import CHECKED, DaskJobs, _mismatch, code_digest, versions
from nnlcc.progress import StepProgress


def _square_plus(x: int, shared: int) -> int:
    return x * x + shared


def _greedy(n: int, _: None) -> bytes:
    raise MemoryError


def test_serial_map_keeps_order_names_progress_and_logs_each_task() -> None:
    lines: list[str] = []

    def progress(i: int) -> None:
        lines.append(f"progress {i}")

    jobs = SerialJobs(lines.append)
    assert jobs.map(_square_plus, [3, 1, 2], 10, ["a", "b", "c"], progress) == [19, 11, 14]
    # one after another: each task is named as it starts, then its task: line
    kinds = [ln.split(":")[0] for ln in lines]
    assert kinds == ["progress 0", "task", "progress 1", "task", "progress 2", "task"]
    assert lines[1].startswith("task: a: ") and "peak" in lines[1] and "this process" in lines[1]
    with pytest.raises(ValueError, match="one name per item"):
        jobs.map(_square_plus, [1, 2], 0, ["only one"])


def test_task_stats_line_and_a_memory_error_names_the_task() -> None:
    value, stats = run_task(_square_plus, 4, 1, "auto fc1", "this process")
    assert value == 17 and stats.name == "auto fc1" and stats.peak_bytes > 10 * 2**20
    assert TaskStats("lower c1", 1.234, 300 * 2**20, "worker 1").line() == (
        "task: lower c1: 1.23 s, peak 300 MB (worker 1)"
    )
    with pytest.raises(TaskFailedError, match=r"^lower fc2: out of memory \(this process\)"):
        run_task(_greedy, 1, None, "lower fc2", "this process")


@pytest.mark.parametrize(
    ("jobs", "cluster", "says"),
    [
        (0, None, "--jobs must be a whole number of at least 1"),
        (-2, None, "not -2"),
        (True, None, "not True"),
        ("4", None, "not '4'"),
        (None, " ", "--cluster must be a Dask scheduler's address"),
        (3, "tcp://h:8786", "--jobs 3 and --cluster tcp://h:8786 exclude each other"),
    ],
)
def test_bad_jobs_and_cluster_are_one_line(jobs: object, cluster: object, says: str) -> None:
    with pytest.raises(BadInputError, match=says) as e:
        check_jobs(jobs, cluster)  # type: ignore[arg-type]
    assert "\n" not in str(e.value)
    check_jobs(None, "tcp://h:8786")
    check_jobs(1, "tcp://h:8786")  # serial: the cluster is not used (a note says so)


def test_jobs_1_starts_no_engine() -> None:
    code = (
        "import sys; from nnlcc.jobs import open_jobs, SerialJobs\n"
        "with open_jobs(1, 'tcp://nowhere:1') as j:\n"
        "    assert type(j) is SerialJobs, j\n"
        "    assert j.map(divmod, [7, 9], 2, ['a', 'b']) == [(3, 1), (4, 1)]\n"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_local_cluster_starts_only_where_it_pays() -> None:
    assert not pays_off(1000) and pays_off(1 << 20)
    with open_jobs(None, None) as auto:  # the machine's cores, small work: nothing starts
        assert isinstance(auto, DaskJobs | SerialJobs)
        auto.prepare(tasks=3, work=1000)
        lines: list[str] = []
        auto.log = lines.append
        if isinstance(auto, DaskJobs):
            assert auto._thread is None
        assert auto.map(_square_plus, [1, 2], 0, ["a", "b"]) == [1, 4]
        assert all("(this process)" in ln for ln in lines)
    with open_jobs(2, None) as given:  # --jobs 2, one task: nothing to run at once
        assert isinstance(given, DaskJobs)
        given.prepare(tasks=1, work=1 << 30)
        assert given._thread is None
        assert given.map(_square_plus, [5], 0, ["a"]) == [25]


def test_version_mismatch_names_what_differs() -> None:
    ours = versions()
    assert set(ours) == set(CHECKED) and ours["nnlcc"].endswith(f"(code {code_digest()})")
    assert _mismatch("tcp://h:1", ours, {"tcp://w:2": dict(ours)}) is None
    theirs = {**ours, "numpy": "1.0.0", "nnlcc": "0.0.1 (code 000000000000)"}
    line = _mismatch("tcp://h:1", ours, {"tcp://w:2": theirs})
    assert line is not None and "\n" not in line
    assert line.startswith("the Dask worker tcp://w:2 of tcp://h:1 runs nnlcc 0.0.1")
    assert f"numpy 1.0.0; this client runs nnlcc {ours['nnlcc']}, numpy {ours['numpy']}" in line


def test_step_progress_shows_task_lines_only_when_verbose(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rich.console import Console

    for level in (1, 2):
        console = Console(stderr=True, highlight=False, force_terminal=False)
        with StepProgress(level, console) as log:
            log("pass auto")
            log("task: auto fc1: 1.00 s, peak 300 MB (worker 0)")
    err = capsys.readouterr().err
    assert err.count("task: auto fc1: 1.00 s, peak 300 MB (worker 0)") == 1


def test_cli_bad_jobs_and_unreachable_cluster_exit_2_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nnlcc.jobs.cluster as cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1.0)
    runner = CliRunner()
    out = tmp_path / "out"
    cases = {
        ("--jobs", "0"): "error: --jobs must be a whole number of at least 1",
        ("--cluster", "tcp://127.0.0.1:9"): "error: cannot reach a Dask scheduler at",
        ("--cluster", "nonsense://x"): "error: cannot reach a Dask scheduler at",
    }
    for args, says in cases.items():
        res = runner.invoke(app, ["compile", "--report-only", "-o", str(out), *args])
        assert res.exit_code == 2, res.output
        assert res.output.startswith(says) and res.output.count("\n") == 1, res.output
        assert not out.exists()
    toml = tmp_path / "nnlcc.toml"
    toml.write_text("[compile]\njobs = 0\n")
    res = runner.invoke(app, ["opt", "examples/digits_mlp.onnx", "-c", str(toml)])
    assert (
        res.exit_code == 2
        and f"at least 1 (1: one task after another, in this process), not 0 (in {toml})"
        in res.output
    )


def test_api_default_is_serial(tmp_path: Path) -> None:
    assert CompileOptions().jobs == 1
    with pytest.raises(BadInputError, match="--jobs must be"):
        compile_model(CompileOptions(jobs=0, outdir=tmp_path / "o", report_only=True))
    assert not (tmp_path / "o").exists()


def test_cli_default_is_the_cores_but_a_small_model_runs_here(tmp_path: Path) -> None:
    """``nnlcc compile`` without ``--jobs``: the machine's cores, yet a shipped model (far
    below :data:`PAYS_FROM_WEIGHTS`) starts no cluster and never imports Dask, so it is as
    fast as ``--jobs 1``."""
    from nnlcc.config import Config
    from nnlcc.driver import command_jobs
    from nnlcc.jobs.select import PAYS_FROM_WEIGHTS

    assert command_jobs(None, Config()) is None  # None: default_workers() at open_jobs
    assert command_jobs(None, parse_config("[compile]\njobs = 3\n")) == 3
    assert command_jobs(2, parse_config("[compile]\njobs = 3\n")) == 2
    assert load_model(EXAMPLE_MODEL).matrix_layers()[0].weight.size < PAYS_FROM_WEIGHTS
    out = tmp_path / "o"
    code = (
        "import sys\nfrom nnlcc.cli import main\n"
        f"sys.argv = ['nnlcc', 'compile', '--report-only', '--passes', 'quantize,csd', '-v', '-o', {str(out)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'distributed' not in sys.modules, 'Dask was imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    tasks = [ln for ln in res.stderr.splitlines() if ln.startswith("task: ")]
    assert tasks and all(ln.endswith("(this process)") for ln in tasks)
