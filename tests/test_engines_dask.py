"""kind = "dask" end to end: the pipeline's stages and a real pw.x job on a dask.distributed
LocalCluster (never silently parsl or local threads)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bondml.execution import ExecutorConfig

pytest.importorskip("dask.distributed")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "pipeline_tiny.toml"


def test_pipeline_stages_on_dask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bondml.execution as execution
    from bondml.pipeline import run_pipeline
    from bondml.pipeline.config import load_config

    started: list[str] = []
    real = execution.Engine._start

    def spy(self):  # noqa: ANN001, ANN202
        if not self.started:
            started.append(self.cfg.kind)
        real(self)
        assert self._dfk is None and self._client is not None  # dask, not parsl

    monkeypatch.setattr(execution.Engine, "_start", spy)
    cfg = load_config(TINY)
    cfg = replace(cfg, executor=ExecutorConfig(kind="dask", workers=2))
    res = run_pipeline(cfg, tmp_path / "out", log=lambda m: None)
    assert started == ["dask"] and res["tasks"] >= 6
    v = json.loads(res["stages"]["validate"].path("validation.json").read_text())
    assert v["n_folds"] == 6 and 0.0 < v["metrics"]["Cu-Cu"]["rmse"] < 0.3
    al = res["stages"]["al_propose"]
    assert al.ran  # candidates scored as Dask tasks
    assert not (tmp_path / "out" / "work" / "parsl").exists()  # parsl never started


def test_dft_job_on_dask(tmp_path: Path) -> None:
    """The generate stage's DFT job (real pw.x, Cu cell) on a Dask LocalCluster."""
    from test_generate_jobs import _cu_tree

    from bondml.generate.jobs import plan_jobs, run_jobs
    from bondml.io.espresso import read_pw_output

    folder, _ = _cu_tree(tmp_path)
    (out,) = run_jobs(plan_jobs(tmp_path)[0], ExecutorConfig(kind="dask", workers=1), tmp_path / "run")
    assert out.error is None and out.status == "SCF_CONVERGED_BUT_NO_ICOHP"
    assert read_pw_output(folder / "Cu100.scf.out").converged
    assert not (tmp_path / "run").exists()
