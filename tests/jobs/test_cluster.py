"""A real Dask cluster of two worker processes: compiles on it equal serial compiles (report.json
apart from timings, IR text, Verilog), a version mismatch and a dying worker are one line each
and write nothing, and Ctrl-C leaves no process and no file behind."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnlcc.driver import EXAMPLE_CNN, CompileOptions, compile_model
from nnlcc.errors import BadInputError, TaskFailedError
from nnlcc.ir.matrix import MatrixGraph
from nnlcc.jobs import open_jobs
from nnlcc.passes import Pass, PassContext, PassKind, register_pass, unregister_pass

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local cluster the test starts, reached by its address as a user's would be."""
    import dask

    scratch = tmp_path_factory.mktemp("dask")
    config = {"distributed.scheduler.allowed-failures": 1, "temporary-directory": str(scratch)}
    with dask.config.set(config):
        lc = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.ERROR,
        )
    client = distributed.Client(lc, set_as_default=False)
    yield client
    client.close()
    lc.close()


def mlp_model(tmp: Path) -> tuple[Path, Path]:
    """A 3-layer ReLU MLP (16-12-10-4, seeded weights) and labelled data beside it (the float
    network's own classes, so ``--accuracy-drop`` runs by default)."""
    rng = np.random.default_rng(7)
    sizes = (16, 12, 10, 4)
    nodes, inits, x = [], [], "x"
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = rng.normal(0, 1 / np.sqrt(n_in), (n_out, n_in)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(
            rng.normal(0, 0.1, n_out).astype(np.float32), f"b{i}")]  # fmt: skip
        nodes.append(helper.make_node("Gemm", [x, f"W{i}", f"b{i}"], [f"h{i}"], transB=1))
        x = f"h{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "mlp3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, sizes[-1]])],
        inits,
    )
    model = tmp / "mlp3.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    from nnlcc.frontends import load_model

    xs = rng.uniform(-1, 1, (200, sizes[0]))
    labels = np.asarray(load_model(model).forward_float(xs)).argmax(1)
    data = tmp / "mlp3_data.npz"
    np.savez(data, x_train=xs[:100], x_test=xs[100:], y_test=labels[100:])
    return model, data


def untimed(o: Any) -> Any:
    """report.json's data without timings and the output directory."""
    if isinstance(o, dict):
        return {k: untimed(v) for k, v in o.items() if k not in ("seconds", "timings_s", "outdir")}
    if isinstance(o, list):
        return [untimed(v) for v in o]
    return o


def outputs(report: Any) -> dict[str, Any]:
    """What a compile wrote: report.json (timings aside), the IR text and the Verilog."""
    out = Path(report.outdir)
    facts = untimed(json.loads((out / "report.json").read_text()))
    files = {p.name: p.read_text() for p in sorted(out.iterdir()) if p.suffix in (".v", ".txt")}
    assert "ir.txt" in files
    return {"report": facts, "files": files}


def _uncounted(lines: Iterable[str]) -> list[str]:
    """Progress lines without the "(k/n)" of a per-layer step."""
    return sorted(re.sub(r" \(\d+/\d+\)$", "", ln) for ln in lines)


@pytest.mark.slow  # about 40 s on 2 cores: nine compiles
def test_compiles_on_the_cluster_equal_serial_ones(cluster: Any, tmp_path: Path) -> None:
    address = cluster.scheduler.address
    model, data = mlp_model(tmp_path)
    cases = {
        # report only: its rows and costs from the layers lowered on the cluster, the IR text
        "cnn": {"model": EXAMPLE_CNN, "report_only": True},
        # --accuracy-drop (the default with --data) and two sweep points
        "mlp": {"model": model, "data": data, "sweep": ["csd{weight_bits=6}", "lcc{sqnr_db=30}"]},
        # not auto: each layer's CSD baseline is coded and priced as a task; the Verilog
        "mlp_csd": {"model": model, "passes": "quantize,csd{weight_bits=6}"},
    }
    for name, kw in cases.items():
        base = {"verify": False, "force": True, **kw}
        alone: list[str] = []
        serial = compile_model(CompileOptions(outdir=tmp_path / f"{name}_1", **base), alone.append)
        lines: list[str] = []
        spread = compile_model(
            CompileOptions(outdir=tmp_path / f"{name}_c", cluster=address, jobs=None, **base),
            log=lines.append,
        )
        assert outputs(spread) == outputs(serial), name
        if name == "mlp_csd":
            assert "nnlcc_top.v" in outputs(spread)["files"]
        tasks = [ln for ln in lines if ln.startswith("task: ")]
        assert any("(worker 0)" in t for t in tasks) and any("(worker 1)" in t for t in tasks)
        # the same progress, per layer, in the order the tasks finished (counted as they do)
        steps = sorted(ln for ln in lines if not ln.startswith("task: "))
        assert _uncounted(steps) == _uncounted(ln for ln in alone if not ln.startswith("task: "))
        per_layer = re.compile(r"pass \w+: \S+ \(\d+/\d+\)|accuracy-drop: \S+ at \d+ dB")
        assert any(per_layer.fullmatch(ln) for ln in steps), name
        if name == "mlp":
            assert spread.accuracy_drop is not None and spread.sweep is not None
            assert len(spread.sweep) == 3 and any(ln.startswith("task: sweep ") for ln in lines)
        if name == "mlp_csd":
            assert any(ln.startswith("task: baseline ") for ln in lines)


def test_a_version_mismatch_is_one_line(cluster: Any) -> None:
    def set_version(v: str) -> None:
        import nnlcc

        nnlcc.__version__ = v

    import nnlcc

    cluster.run(set_version, "0.0.0")
    try:
        with pytest.raises(BadInputError) as e, open_jobs(None, cluster.scheduler.address):
            pass
    finally:
        cluster.run(set_version, nnlcc.__version__)
    line = str(e.value)
    assert "\n" not in line and "runs nnlcc 0.0.0 (code" in line
    assert line.endswith("install the same versions on the workers")


@dataclass(frozen=True)
class Die(Pass):
    """A matrix pass whose worker process dies (as the kernel's out-of-memory killer ends
    one); in this process it codes nothing and is never run."""

    name: ClassVar[str] = "die"
    kind: ClassVar[PassKind] = PassKind.MATRIX

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        distributed.get_worker()  # refuses to run outside a worker
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_dying_worker_fails_its_layer_in_one_line(cluster: Any, tmp_path: Path) -> None:
    register_pass(Die)
    out = tmp_path / "out"
    model, _ = mlp_model(tmp_path)
    try:
        with pytest.raises(TaskFailedError) as e:
            compile_model(
                CompileOptions(
                    model=model,
                    passes="quantize,die",
                    outdir=out,
                    report_only=True,
                    cluster=cluster.scheduler.address,
                    jobs=None,
                )
            )
    finally:
        unregister_pass("die")
    line = str(e.value)
    assert "\n" not in line and line.startswith("die ")  # the task: the pass and its layer
    assert "died running it (out of memory, or killed), also on retry; nothing was written" in line
    assert not out.exists()
    cluster.wait_for_workers(2, timeout=60)  # the nanny restarts them


@pytest.mark.slow  # about 20 s on 2 cores: a command starting its own cluster
def test_ctrl_c_leaves_no_process_and_no_file(tmp_path: Path) -> None:
    """``nnlcc compile --jobs 2`` interrupted while its local cluster works."""
    psutil = pytest.importorskip("psutil")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "nnlcc.cli", "compile", str(EXAMPLE_CNN), "--report-only"]
    proc = subprocess.Popen(
        [*cmd, "--jobs", "2", "-v", "-o", str(out)],
        env={**os.environ, "TMPDIR": str(scratch)},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    assert proc.stderr is not None
    children: list[Any] = []
    for line in proc.stderr:
        if line.startswith("task: ") and "(worker" in line:  # the cluster works
            children = psutil.Process(proc.pid).children(recursive=True)
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
            break
    rest = proc.communicate(timeout=60)[1]
    assert len(children) >= 2, "no worker processes seen"
    assert proc.returncode != 0 and "Traceback" not in rest, rest
    deadline = time.monotonic() + 10
    while any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children):
        assert time.monotonic() < deadline, "worker processes left running"
        time.sleep(0.2)
    assert list(scratch.iterdir()) == [] and not out.exists()
