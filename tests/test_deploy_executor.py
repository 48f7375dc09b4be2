"""Per-frame inference on an external executor (the pipeline's parsl runner, concurrent.futures):
identical outputs to the default path, bounded in-flight window, resume."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bondml.deploy.infer import PredictConfig, predict_trajectory
from bondml.deploy.outputs import read_bonds, read_peratom
from bondml.pipeline.config import ExecutorSection
from bondml.pipeline.executor import TaskRunner

pytest.importorskip("parsl")


@pytest.fixture(scope="module")
def reference(model_dir, trajectory, tmp_path_factory):
    """The default path (in this process)."""
    out = tmp_path_factory.mktemp("ref") / "out"
    s = predict_trajectory(model_dir, trajectory, out, PredictConfig(progress=False, in_process=True))
    return out, s


class CountingPool(ThreadPoolExecutor):
    """A real thread pool that records how many frames it was given and the most in flight."""

    def __init__(self, n: int) -> None:
        super().__init__(max_workers=n)
        self.lock = threading.Lock()
        self.submitted = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def submit(self, fn, /, *args, **kwargs):  # noqa: ANN001, ANN201
        with self.lock:
            self.submitted += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        fut = super().submit(fn, *args, **kwargs)
        fut.add_done_callback(self._done)
        return fut

    def _done(self, _fut) -> None:  # noqa: ANN001
        with self.lock:
            self.in_flight -= 1


def _frames(out) -> list[dict]:
    return json.loads((out / "manifest.json").read_text())["frames"]


def _same_outputs(a, b) -> None:
    ta, tb = read_bonds(a), read_bonds(b)
    assert ta.num_rows == tb.num_rows > 0
    assert ta.equals(tb)  # bit-identical bond tables (frame, atoms, shifts, -ICOHP, std, flags)
    assert read_peratom(a).equals(read_peratom(b))
    fa, fb = _frames(a), _frames(b)
    assert [f["frame"] for f in fb] == [0, 1, 2, 3]
    keys = ("counts", "n_bonds", "strain")
    assert [tuple(f[k] for k in keys) for f in fa] == [tuple(f[k] for k in keys) for f in fb]


def test_parsl_runner_matches_default_path(model_dir, trajectory, reference, tmp_path):
    ref_out, ref_s = reference
    out = tmp_path / "parsl"
    with TaskRunner(ExecutorSection(kind="local", workers=2), tmp_path / "parsl_run") as runner:
        s = predict_trajectory(model_dir, trajectory, out, PredictConfig(workers=2, progress=False), executor=runner)
        assert runner.tasks_run == 4  # one parsl task per frame
    assert s["frames"] == ref_s["frames"] == 4 and s["complete"]
    assert s["bonds"] == ref_s["bonds"] and s["strain"] == ref_s["strain"]
    _same_outputs(ref_out, out)


def test_resume_through_external_executors(model_dir, trajectory, reference, tmp_path):
    out = tmp_path / "resume"
    with TaskRunner(ExecutorSection(kind="local", workers=2), tmp_path / "parsl_run") as runner:
        s1 = predict_trajectory(model_dir, trajectory, out, PredictConfig(workers=2, max_frames=2, progress=False),
                                executor=runner)
        assert runner.tasks_run == 2
    assert s1["frames"] == 2 and not s1["complete"]
    # a crash while frame 2 was being written: a stray temp file and no manifest entry
    (out / "bonds" / "frame=2").mkdir(parents=True)
    (out / "bonds" / "frame=2" / ".part-0.parquet.123.tmp").write_bytes(b"partial")
    with CountingPool(2) as pool:
        s2 = predict_trajectory(model_dir, trajectory, out, PredictConfig(workers=1, progress=False), executor=pool)
        assert not pool._shutdown  # the caller's executor is not shut down
    assert pool.submitted == 2  # only frames 2 and 3 were computed again
    assert pool.max_in_flight <= 2  # window of 2 x workers
    assert s2["frames"] == 4 and s2["complete"]
    _same_outputs(reference[0], out)
    # a finished run re-submits nothing
    with CountingPool(2) as pool:
        predict_trajectory(model_dir, trajectory, out, PredictConfig(progress=False), executor=pool)
    assert pool.submitted == 0


@pytest.mark.slow
def test_parsl_local_processes_match_default_path(model_dir, trajectory, reference, tmp_path):
    """HighThroughputExecutor worker processes (long-lived: no recycling there) give the same tables."""
    out = tmp_path / "htex"
    with TaskRunner(ExecutorSection(kind="local", workers=2, processes=True), tmp_path / "parsl_run") as runner:
        s = predict_trajectory(model_dir, trajectory, out, PredictConfig(workers=2, progress=False), executor=runner)
    assert s["frames"] == 4 and s["complete"]
    _same_outputs(reference[0], out)


def test_dask_local_cluster_matches_default_path(model_dir, trajectory, reference, tmp_path):
    """kind = 'dask' (a dask.distributed LocalCluster): the same bit-identical per-frame outputs."""
    pytest.importorskip("dask.distributed")
    out = tmp_path / "dask"
    with TaskRunner(ExecutorSection(kind="dask", workers=2), tmp_path / "dask_run") as runner:
        s = predict_trajectory(model_dir, trajectory, out, PredictConfig(workers=2, progress=False), executor=runner)
        assert runner.tasks_run == 4 and runner.dask_client is not None
    assert s["frames"] == 4 and s["complete"]
    _same_outputs(reference[0], out)
