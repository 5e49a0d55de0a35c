"""The output directory (issue 15): replaced only when nnlcc made it, never the current or
the model's folder, staging cleaned on SIGTERM and swept when stale, mode from the umask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from nnlcc.cli import app
from nnlcc.errors import BadInputError
from nnlcc.outdir import MARKER, STAGING_PREFIX, check_outdir, default_name, staged_outdir

sys.path.insert(0, str(Path(__file__).parents[1] / "corpus"))
from generate import mlp


def _run(*args: str | Path) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "models" / "mlp.onnx"
    p.parent.mkdir()
    onnx.save(mlp(), p)
    return p


def test_own_directory_is_replaced_user_directory_needs_force(model: Path) -> None:
    code, _, err = _run("compile", model, "-o", "out", "--report-only", "-q")
    assert code == 0, err
    assert (Path("out") / MARKER).is_file()
    (Path("out") / "report.md").write_text("old")  # a file nnlcc wrote: replaced
    assert _run("compile", model, "-o", "out", "--report-only", "-q")[0] == 0
    assert (Path("out") / "report.md").read_text() != "old"
    (Path("out") / "notes.txt").write_text("mine")  # a file the marker does not list: kept
    code, _, err = _run("compile", model, "-o", "out", "--report-only", "-q")
    assert code == 2 and "notes.txt" in err and "--force" in err
    assert (Path("out") / "notes.txt").read_text() == "mine"
    assert _run("compile", model, "-o", "out", "--report-only", "-q", "--force")[0] == 0
    assert not (Path("out") / "notes.txt").exists()

    Path("mine").mkdir()
    (Path("mine") / "thesis.tex").write_text("years")
    code, _, err = _run("compile", model, "-o", "mine", "--report-only", "-q")
    assert code == 2 and "--force" in err
    assert (Path("mine") / "thesis.tex").read_text() == "years"
    code, _, err = _run("compile", model, "-o", "mine", "--report-only", "-q", "--force")
    assert code == 0, err
    assert (Path("mine") / "report.json").is_file() and not (Path("mine") / "thesis.tex").exists()


@pytest.mark.parametrize("out", [".", "", "models", ".."])
def test_force_never_removes_cwd_model_folder_or_ancestor(model: Path, out: str) -> None:
    before = sorted(p.name for p in Path.cwd().iterdir())
    code, _, err = _run("compile", model, "-o", out, "--report-only", "-q", "--force")
    assert code == 2 and "never" in err
    assert sorted(p.name for p in Path.cwd().iterdir()) == before
    assert model.is_file()


def test_dotdot_model_name_gets_a_folder_of_its_own(model: Path) -> None:
    dots = model.parent / "..onnx"
    onnx.save(mlp(), dots)
    (Path("build")).mkdir()
    (Path("build") / "notes.txt").write_text("mine")
    assert default_name(dots.stem) == "model"
    code, _, err = _run("compile", dots, "--report-only", "-q")
    assert code == 0, err
    assert (Path("build") / "notes.txt").read_text() == "mine"
    assert (Path("build") / "model" / "report.json").is_file()


def test_mode_follows_umask(model: Path) -> None:
    old = os.umask(0o027)
    try:
        assert _run("compile", model, "-o", "out", "--report-only", "-q")[0] == 0
    finally:
        os.umask(old)
    assert Path("out").stat().st_mode & 0o777 == 0o750


def test_sigterm_removes_the_staging_directory(tmp_path: Path) -> None:
    out = tmp_path / "o" / "design"
    seen: list[Path] = []
    with pytest.raises(SystemExit) as exc, staged_outdir(out, []) as tmp:
        seen.append(tmp)
        (tmp / "partial.v").write_text("module")
        os.kill(os.getpid(), signal.SIGTERM)
    assert exc.value.code == 128 + signal.SIGTERM
    assert not seen[0].exists() and not out.exists()
    assert list(out.parent.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(
        signal.getsignal(signal.SIGTERM)
    )


def test_sigterm_of_a_real_run_leaves_nothing(tmp_path: Path) -> None:
    """A compile killed while writing (the staging directory exists) leaves no staging dir."""
    script = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "from nnlcc.outdir import staged_outdir\n"
        "with staged_outdir(Path(sys.argv[1]), []) as tmp:\n"
        "    (tmp / 'x.v').write_text('partial')\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    out = tmp_path / "design"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_stale_staging_is_swept_and_said(model: Path) -> None:
    stale = Path(f"{STAGING_PREFIX}abc123")
    stale.mkdir()
    (stale / "partial.v").write_text("x")
    (stale / MARKER).write_text("written by nnlcc\npid 999999999\n")  # no such process
    foreign = Path(f"{STAGING_PREFIX}user")  # no marker: not nnlcc's, kept
    foreign.mkdir()
    code, _, err = _run("compile", model, "-o", "out", "--report-only")
    assert code == 0, err
    assert not stale.exists() and foreign.is_dir()
    assert "removed stale staging directory" in err


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: p.write_text("x"), "existing file"),
        (lambda p: p.symlink_to(p.parent), "symbolic link"),
    ],
)
def test_check_outdir_refuses(tmp_path: Path, make: object, fragment: str) -> None:
    target = tmp_path / "t"
    make(target)  # type: ignore[operator]
    with pytest.raises(BadInputError, match=fragment):
        check_outdir(target, [])


def test_layer_with_a_long_or_odd_name_stays_inside_outdir(model: Path) -> None:
    long = "fc_" + "x" * 300
    odd = "module"  # a Verilog keyword
    path = model.parent / "names.onnx"
    onnx.save(mlp(names=(long, odd)), path)
    for name in (long, odd):
        code, out, err = _run(
            "compile", path, "--layer", name, "-o", "lay", "--no-verify", "-q", "--json"
        )
        assert code == 0, err
        files = sorted(p.name for p in Path("lay").iterdir())
        assert all(len(f) < 100 for f in files), files
        assert json.loads(out)["verilog"].startswith("lay/")


def test_negative_vectors_and_seed_from_cli_and_toml(model: Path) -> None:
    code, _, err = _run("compile", model, "--vectors", "-3", "-o", "o")
    assert code == 2 and "-3" in err
    Path("c.toml").write_text("[compile]\nseed = -2\n")
    code, _, err = _run("compile", model, "-c", "c.toml", "-o", "o")
    assert code == 2 and "seed" in err and "c.toml" in err
    assert not Path("o").exists()


def test_sidecar_npz_used_only_when_it_fits(model: Path) -> None:
    x = np.random.default_rng(0).uniform(size=(6, 4))
    np.savez(model.with_suffix(".npz"), x_test=x, y_test=np.arange(6) % 2)
    code, out, err = _run("compile", model, "-o", "o1", "--report-only", "--json")
    assert code == 0, err
    assert "found beside the model" in err
    assert "found beside the model" in json.loads(out)["accuracy"]["dataset"]
    np.savez(model.with_suffix(".npz"), images=x)  # keys that do not fit
    code, out, err = _run("compile", model, "-o", "o2", "--report-only", "--json")
    assert code == 0, err
    assert "not using" in err
    assert json.loads(out)["accuracy"]["dataset"].startswith("random")
