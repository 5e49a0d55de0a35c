"""report.html in a real browser: headless Chromium renders the page of a real compile (with a
settings sweep), the rendered DOM is inspected (a table row per layer, every plot decoded
with a nonzero size) and a screenshot is saved next to the test's output.

Chromium comes from Debian (``apt-get install chromium``, done by ``.ci/run``); set
``NNLCC_CHROMIUM`` to use another binary.  Without one the test skips, saying so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnlcc.cli import app

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome", "chrome-headless-shell")

# The board estimate takes minutes (yosys); the page's resource section is rendered from
# these figures (an Arty A7 estimate of the digits MLP measured here) instead.
RESOURCES = {
    "board": "arty-a7",
    "device": "xc7a35ticsg324-1L",
    "tool": "yosys synth_xilinx (estimate)",
    "estimate": True,
    "luts": 22336,
    "ffs": 29749,
    "carry": 6019,
    "bram": 0,
    "dsp": 0,
    "device_luts": 20800,
    "device_ffs": 41600,
    "utilization_pct": 107.38,
    "fits": False,
}

# Runs after the page loaded: writes what the browser decoded into the DOM for --dump-dom.
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images].map(i => ({id: i.parentElement.id, complete: i.complete,
    w: i.naturalWidth, h: i.naturalHeight}));
  document.body.setAttribute("data-probe", JSON.stringify(imgs));
});
</script>"""


def chromium() -> str | None:
    env = os.environ.get("NNLCC_CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def browser(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


class _Dom(HTMLParser):
    """Counts layer rows and collects the probe attribute of the dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.layer_rows: list[str] = []
        self.cells: list[str] | None = None
        self.probe: str | None = None
        self.headings: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("class") == "layer":
            self.cells = []
        elif tag == "td" and self.cells is not None and not self.cells:
            self.cells.append("")
        elif tag == "body" and a.get("data-probe"):
            self.probe = a["data-probe"]
        elif tag == "h2":
            self._in_h2 = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self.cells is not None:
            self.layer_rows.append(self.cells[0] if self.cells else "")
            self.cells = None
        elif tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        if self.cells is not None and len(self.cells) == 1 and not self.cells[0]:
            self.cells[0] = data.strip()
        if self._in_h2:
            self.headings.append(data.strip())


@pytest.mark.slow
def test_report_renders_in_chromium(tmp_path: Path) -> None:
    exe = chromium()
    if exe is None:
        pytest.skip(
            "no Chromium found (apt-get install chromium, or set NNLCC_CHROMIUM); "
            "report.html was not checked in a browser"
        )
    out = tmp_path / "digits"
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["compile", "--report-only", "-q", "-o", str(out),
         "--sweep", "lcc{sqnr_db=35}", "--sweep", "csd{weight_bits=6}"],
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    report = json.loads((out / "report.json").read_text())
    report["resources"] = RESOURCES
    (out / "report.json").write_text(json.dumps(report))
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0

    html = (out / "report.html").read_text()
    probe_page = out / "probe.html"
    probe_page.write_text(html.replace("</body>", PROBE + "</body>"))
    dumped = browser(
        exe, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom",
        probe_page.as_uri(),
    )  # fmt: skip
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = _Dom()
    dom.feed(dumped.stdout)
    assert dom.layer_rows == [lay["name"] for lay in report["layers"]]
    for heading in ("Layers", "Totals", "Accuracy", "Verification", "Resources", "Plots"):
        assert heading in dom.headings
    assert dom.probe is not None, "the page's load event never fired"
    imgs = json.loads(dom.probe)
    assert {i["id"] for i in imgs} == {"fig-adders", "fig-tradeoff", "fig-resources"}
    for img in imgs:
        assert img["complete"] and img["w"] > 100 and img["h"] > 100, img

    shot = tmp_path / "report.png"
    taken = browser(
        exe, tmp_path / "profile", "--window-size=1280,2200", f"--screenshot={shot}",
        (out / "report.html").as_uri(),
    )  # fmt: skip
    assert taken.returncode == 0, taken.stderr[-2000:]
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1280, 2200)
    print(f"screenshot: {shot}")
    assert re.search(r"bit-exact|not</b> verified", html)
