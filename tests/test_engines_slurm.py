"""A real one-node Slurm (the ``slurm_cluster`` fixture): the pipeline and a pw.x job through
parsl's SlurmProvider, a block killed with ``scancel`` and the job retried."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

import bondml
from bondml.execution import ExecutorConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "pipeline_tiny.toml"

pytestmark = pytest.mark.slow


def _worker_init() -> str:
    """What a compute node needs: this interpreter's venv on PATH and this checkout of bondml."""
    src = Path(bondml.__file__).resolve().parents[1]
    return f"export PATH={Path(sys.executable).parent}:$PATH; export PYTHONPATH={src}; export OMP_NUM_THREADS=1"


def _drained(cluster, timeout_s: float = 20.0) -> bool:
    """True once no job is left in the queue (cancelled blocks pass through COMPLETING first)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if not cluster.jobs():
            return True
        time.sleep(0.3)
    return False


class _QueueWatch:
    """Polls ``squeue`` in a thread and keeps every job seen (id -> (name, states))."""

    def __init__(self, cluster) -> None:
        self.cluster, self.seen, self._stop = cluster, {}, threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                for j in self.cluster.jobs():
                    self.seen.setdefault(j["id"], (j["name"], set()))[1].add(j["state"])
            except Exception:  # noqa: BLE001 - a failed poll is retried
                pass
            time.sleep(0.3)

    def __enter__(self) -> _QueueWatch:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join(timeout=5)


def test_pipeline_on_slurm_blocks(slurm_cluster, tmp_path: Path) -> None:
    """``[executor] kind = "slurm"``: the tiny pipeline's tasks run in parsl blocks (sbatch jobs
    visible in squeue) and give the same validation numbers as the local threads."""
    from bondml.pipeline import run_pipeline
    from bondml.pipeline.config import load_config

    base = load_config(TINY)
    base = replace(base, active_learning=replace(base.active_learning, enabled=False))
    executor = ExecutorConfig(kind="slurm", partition=slurm_cluster.partition, cores_per_node=2,
                              walltime="00:10:00", worker_init=_worker_init(), max_blocks=1, poll_s=3)
    cfg = replace(base, executor=executor)
    with _QueueWatch(slurm_cluster) as watch:
        res = run_pipeline(cfg, tmp_path / "slurm", log=lambda m: None)
    blocks = [name for name, _ in watch.seen.values() if name.startswith("parsl.bondml_slurm")]
    assert blocks, f"no parsl block seen in squeue: {watch.seen}"
    assert res["tasks"] >= 6
    assert _drained(slurm_cluster), slurm_cluster.jobs()  # blocks cancelled when the run ended
    v = json.loads(res["stages"]["validate"].path("validation.json").read_text())
    assert v["n_folds"] == 6 and 0.0 < v["metrics"]["Cu-Cu"]["rmse"] < 0.3
    local = run_pipeline(base, tmp_path / "local", targets=["validate"], log=lambda m: None)
    w = json.loads(local["stages"]["validate"].path("validation.json").read_text())
    for t in v["metrics"]:
        assert v["metrics"][t]["rmse"] == pytest.approx(w["metrics"][t]["rmse"], rel=1e-9)


def test_dft_job_on_slurm_then_scancel_and_retry(slurm_cluster, tmp_path: Path) -> None:
    """The Cu pw.x cell submitted through SlurmProvider and monitored in squeue; its block killed
    with scancel mid-SCF: parsl sees the lost block (ManagerLost, a transient failure) and reruns
    the job in a new block; the SCF is parsed and the sub-run gets its status."""
    from test_generate_jobs import _cu_tree

    from bondml.generate.jobs import plan_jobs, run_jobs, tree_status
    from bondml.io.espresso import read_pw_output

    cfg = ExecutorConfig(kind="slurm", partition=slurm_cluster.partition, cores_per_node=2, walltime="00:10:00",
                         worker_init=_worker_init(), retries=1, heartbeat_s=6, poll_s=3)
    # the first pw.x call is slowed down so that its block can be killed while it runs
    folder, cell = _cu_tree(tmp_path / "b")
    calls = tmp_path / "calls.log"
    slow = tmp_path / "slow-pw.x"
    slow.write_text(f"#!/bin/sh\necho call >> {calls}\n"
                    f"if [ $(wc -l < {calls}) -eq 1 ]; then sleep 60; fi\nexec pw.x \"$@\"\n")
    slow.chmod(0o755)
    (spec,) = plan_jobs(tmp_path / "b", pw_command=str(slow))[0]
    result: dict = {}
    with _QueueWatch(slurm_cluster) as watch:
        t = threading.Thread(target=lambda: result.update(out=run_jobs([spec], cfg, tmp_path / "parsl-b")))
        t.start()
        t0 = time.monotonic()
        while not calls.is_file() and time.monotonic() - t0 < 60:
            time.sleep(0.2)
        assert calls.is_file(), f"the job never started: {watch.seen}"
        (first,) = [j["id"] for j in slurm_cluster.jobs() if j["state"] == "RUNNING"]
        slurm_cluster.run("scancel", first)
        t.join(timeout=100)
    assert not t.is_alive(), "run_jobs did not come back after the scancel"
    out = result["out"][0]
    assert calls.read_text().count("call") == 2  # pw.x started again in a new block
    ids = [i for i, (n, _) in watch.seen.items() if n.startswith("parsl.bondml_slurm")]
    assert first in ids and len(ids) >= 2, watch.seen
    assert out.error is None and out.status == "SCF_CONVERGED_BUT_NO_ICOHP"
    assert [r.status for r in tree_status(tmp_path / "b")] == ["SCF_CONVERGED_BUT_NO_ICOHP"]
    assert not list(folder.glob("*.running"))
    pw = read_pw_output(folder / "Cu100.scf.out")  # parsed: the retried SCF is complete
    assert pw.converged and pw.job_done and -2920 < pw.total_energy_ev < -2880
    assert _drained(slurm_cluster), slurm_cluster.jobs()
