"""The package data ships: a wheel built from this checkout, installed into a fresh venv outside
the checkout, runs ``bondml predict`` on the bundled 10,000-atom cell from a temporary folder.

The fresh venv sees the test environment's third-party packages through a ``.pth`` line (no
downloads), but not its bondml (an editable install is only picked up through the ``.pth`` files
of a real site directory), so everything bondml reads comes from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BONDML_REFERENCE_DATA", "VIRTUAL_ENV")}
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}: {r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _build_wheel(dist: Path, work: Path) -> Path:
    src = work / "src-copy"  # build from a copy: no build/ or egg-info left in the checkout
    skip = shutil.ignore_patterns(".venv", ".git", "__pycache__", "build", "dist", "*.egg-info", ".pytest_cache",
                                  ".ruff_cache")

    def ignore(folder: str, names: list[str]) -> set[str]:  # and the top-level reference data
        return set(skip(folder, names)) | ({"data", "tests", "bench"} if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, src, symlinks=True, ignore=ignore)
    try:
        import setuptools

        isolated = tuple(int(x) for x in setuptools.__version__.split(".")[:2]) < (77, 0)
    except ImportError:
        isolated = True
    cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)]
    _run(cmd if isolated else [*cmd, "--no-isolation"], cwd=work)
    (whl,) = dist.glob("bondml-*.whl")
    return whl


def test_installed_wheel_predicts_outside_the_checkout(tmp_path: Path, model_dir: Path) -> None:
    pytest.importorskip("build")
    whl = _build_wheel(tmp_path / "dist", tmp_path)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).stdout.strip())
    (site / "bondml-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(whl)], cwd=tmp_path)

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = json.loads(_run([str(py), "-c", (
        "import json, bondml, bondml.data as d; print(json.dumps({'pkg': bondml.__file__, "
        "'cell': str(d.production_cell()), 'eam': str(d.eam_potential()), 'tables': str(d.label_tables_root())}))")],
        cwd=work).stdout)
    for k in ("pkg", "cell", "eam", "tables"):
        assert Path(where[k]).resolve().is_relative_to(site.resolve()), (k, where[k])  # from the wheel
        assert not Path(where[k]).resolve().is_relative_to(ROOT), (k, where[k])

    _run([str(venv / "bin" / "bondml"), "predict", "--model", str(model_dir), "--structure", where["cell"],
          "--out", str(work / "pred"), "--workers", "1", "--quiet"], cwd=work)
    summary = json.loads((work / "pred" / "summary.json").read_text())
    assert summary["frames"] == 1 and summary["n_atoms"] == 10000
    # the study's per-type inference windows on the production cell: 66,518 bonds (~13 per atom)
    assert summary["bonds_total_first_frame"] == 66518
    assert summary["input"]["path"] == str(Path(where["cell"]).resolve())
