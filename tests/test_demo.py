"""The README's demo, end to end: `bondml run configs/demo.toml` on the bundled real data."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bondml.cli.main", "run", str(ROOT / "configs/demo.toml"),
                           "--out", str(out)], capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
def test_demo_runs_the_whole_loop_and_reruns_from_cache(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    t0 = time.perf_counter()
    p = _run(out)
    first = time.perf_counter() - t0
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for table in ("cells by status", "SCF_NOT_CONVERGED_AND_NO_ICOHP", "labelled bonds", "accuracy"):
        assert table in p.stdout
    rep = out / "report"
    assert (rep / "report.md").is_file() and (rep / "report.html").is_file()
    md = (rep / "report.md").read_text()
    assert "APPROXIMATE xTB labels" in md and "Active learning" in md and "Deployment" in md
    val = json.loads(next((out / "stages/validate").glob("*/manifest.json")).read_text())["summary"]
    assert val["protocol"] == "leave-deformation-group-out"  # the demo validates the default model under shift
    for t in ("Zr-Zr", "Zr-Cu", "Zr-Al", "Cu-Cu", "Cu-Al"):
        assert val["rmse"][t] < 0.12, (t, val["rmse"][t])  # whole deformation families out, default model
        # 1-sigma coverage with the validate stage's inner cell-grouped calibration, which is milder
        # than the held-out deformation family: it under-covers (measured: Cu-Cu 0.55, others 0.62-0.67)
        assert 0.50 <= val["cov1"][t] <= 0.80, (t, val["cov1"][t])
    dep = json.loads(next((out / "stages/deploy").glob("*/manifest.json")).read_text())["summary"]
    assert dep["frames"] >= 2 and dep["bonds_first_frame"]["Zr-Cu"] > 0
    assert list((out / "al").glob("batch-*.json"))
    # unchanged re-run: every stage from cache, a small fraction of the first run's time
    t0 = time.perf_counter()
    p2 = _run(out)
    again = time.perf_counter() - t0
    assert p2.returncode == 0 and "0 stage(s) ran" in p2.stdout
    assert again < 0.25 * first  # interpreter start-up dominates; the pipeline itself takes ~0.03 s
