"""Task execution through parsl (local threads / processes) and the engine errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bondml.errors import JobError
from bondml.pipeline.config import ExecutorSection
from bondml.pipeline.executor import TaskRunner, parsl_config


def _square(x: int) -> int:
    time.sleep(0.2)
    return x * x


def _thread_name(_: int) -> str:
    time.sleep(0.3)
    return threading.current_thread().name


def _fail_on_3(x: int) -> int:
    if x == 3:
        raise ValueError("bad cell 3\nsecond line")
    return x


def test_local_threads_in_order_and_parallel(tmp_path: Path) -> None:
    with TaskRunner(ExecutorSection(kind="local", workers=2), tmp_path) as r:
        assert r.map(_square, list(range(6))) == [0, 1, 4, 9, 16, 25]
        assert len(set(r.map(_thread_name, [0, 1, 2, 3]))) == 2  # two workers at a time
        assert r.tasks_run == 10


def test_task_error_is_one_line(tmp_path: Path) -> None:
    with TaskRunner(ExecutorSection(kind="local", workers=2), tmp_path) as r:
        with pytest.raises(JobError) as e:
            r.map(_fail_on_3, [1, 2, 3, 4], label=lambda x: f"cell {x}")
        assert str(e.value) == "task cell 3 failed: bad cell 3"


def test_engine_not_started_without_tasks(tmp_path: Path) -> None:
    with TaskRunner(ExecutorSection(kind="local", workers=2), tmp_path / "p") as r:
        assert r.map(_square, []) == []
        assert r._dfk is None and not (tmp_path / "p").exists()


def test_dask_local_cluster_map_submit_and_errors(tmp_path: Path) -> None:
    """kind = 'dask' without an address: a dask.distributed LocalCluster (never parsl, never local)."""
    pytest.importorskip("dask.distributed")
    with TaskRunner(ExecutorSection(kind="dask", workers=2), tmp_path / "d") as r:
        assert r.map(_square, list(range(5))) == [0, 1, 4, 9, 16]
        assert type(r.dask_client).__name__ == "Client" and r._dfk is None
        assert len(r.dask_client.scheduler_info()["workers"]) == 2
        assert r.submit(_square, 7).result() == 49
        with pytest.raises(JobError) as e:
            r.map(_fail_on_3, [1, 3], label=lambda x: f"cell {x}")
        assert str(e.value) == "task cell 3 failed: bad cell 3"
    assert r.dask_client is None and not (tmp_path / "d").exists()  # closed; parsl never started


_CALLS: dict[str, int] = {}


def _transient_once(x: int) -> int:
    from bondml.execution import TransientJobError

    _CALLS[str(x)] = _CALLS.get(str(x), 0) + 1
    if _CALLS[str(x)] == 1:
        raise TransientJobError(f"killed {x}")
    return x


def test_dask_retries_only_transient_errors(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    _CALLS.clear()
    with TaskRunner(ExecutorSection(kind="dask", workers=1, retries=1), tmp_path) as r:  # threads: shared _CALLS
        assert r.map(_transient_once, [5]) == [5] and _CALLS["5"] == 2
    _CALLS.clear()
    with (TaskRunner(ExecutorSection(kind="dask", workers=1, retries=0), tmp_path) as r,
          pytest.raises(JobError, match="killed 6")):
        r.map(_transient_once, [6])


def test_dask_external_scheduler_address(tmp_path: Path) -> None:
    """kind = 'dask' with ``address``: connects to a running scheduler (here a LocalCluster)."""
    distributed = pytest.importorskip("dask.distributed")
    with (distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                   dashboard_address=None) as cluster,
          TaskRunner(ExecutorSection(kind="dask", address=cluster.scheduler_address), tmp_path) as r):
        assert r.map(_square, [2, 3]) == [4, 9]


def test_scheduler_configs_build_without_submitting(tmp_path: Path) -> None:
    cfg = parsl_config(ExecutorSection(kind="slurm", partition="compute", account="acc", cores_per_node=32,
                                       max_blocks=4, walltime="02:00:00", worker_init="module load qe"), tmp_path)
    ex = cfg.executors[0]
    assert type(ex).__name__ == "HighThroughputExecutor" and type(ex.provider).__name__ == "SlurmProvider"
    assert ex.provider.partition == "compute" and ex.provider.max_blocks == 4
    assert type(ex.provider.launcher).__name__ == "SimpleLauncher"
    pbs = parsl_config(ExecutorSection(kind="pbs", queue="workq", cores_per_node=8), tmp_path).executors[0]
    assert type(pbs.provider).__name__ == "PBSProProvider"


def test_same_request_same_engine_from_generate_and_pipeline(tmp_path: Path) -> None:
    """One Slurm request: the pipeline table and the generate CLI build the same provider/launcher."""
    from bondml.cli.generate import _executor
    from bondml.execution import ExecutorConfig

    toml = tmp_path / "p.toml"
    toml.write_text('[executor]\nkind = "slurm"\npartition = "debug"\nnodes = 2\ncores_per_node = 4\n'
                    'walltime = "00:30:00"\nscheduler_options = "#SBATCH --qos=short"\n')
    from bondml.pipeline.config import load_config

    a = parsl_config(load_config(toml).executor, tmp_path / "a").executors[0]
    b = parsl_config(_executor(toml), tmp_path / "b").executors[0]
    c = parsl_config(ExecutorConfig(kind="slurm", partition="debug", nodes=2, cores_per_node=4,
                                    walltime="00:30:00", scheduler_options="#SBATCH --qos=short"),
                     tmp_path / "c").executors[0]
    for ex in (a, b, c):
        assert type(ex.provider).__name__ == "SlurmProvider" and type(ex.provider.launcher).__name__ == "SrunLauncher"
        assert (ex.provider.partition, ex.provider.nodes_per_block, ex.provider.walltime) == ("debug", 2, "00:30:00")
        assert ex.provider.scheduler_options.startswith("#SBATCH --qos=short") and ex.max_workers_per_node == 4


@pytest.mark.slow
def test_local_processes_htex(tmp_path: Path) -> None:
    from bondml.types import parse_composition  # importable by the worker processes

    with TaskRunner(ExecutorSection(kind="local", workers=2, processes=True), tmp_path) as r:
        assert r.map(parse_composition, ["Zr50Cu50", "Zr49Cu49Al2"]) == [
            {"Zr": 50.0, "Cu": 50.0}, {"Zr": 49.0, "Cu": 49.0, "Al": 2.0}]


@pytest.mark.slow
def test_recycled_worker_children(tmp_path: Path) -> None:
    """recycle_every = 2 on worker processes: tasks run in a child of the worker, replaced every 2 tasks."""
    import os

    with TaskRunner(ExecutorSection(kind="local", workers=1, processes=True, recycle_every=2), tmp_path) as r:
        pids = [r.submit(os.getpid).result() for _ in range(4)]
    assert pids[0] == pids[1] != pids[2] == pids[3] and os.getpid() not in pids
