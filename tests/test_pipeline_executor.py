"""Task execution through parsl (local threads / processes) and the engine errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bondml.errors import ConfigError, JobError
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


def test_dask_without_package(tmp_path: Path) -> None:
    pytest.importorskip("parsl")
    try:
        import dask.distributed  # noqa: F401
    except ModuleNotFoundError:
        with TaskRunner(ExecutorSection(kind="dask", address="tcp://nowhere:8786"), tmp_path) as r:
            with pytest.raises(ConfigError, match="dask.distributed"):
                r.map(_square, [1])


def test_scheduler_configs_build_without_submitting(tmp_path: Path) -> None:
    cfg = parsl_config(ExecutorSection(kind="slurm", partition="compute", account="acc", cores_per_node=32,
                                       max_blocks=4, walltime="02:00:00", worker_init="module load qe"), tmp_path)
    ex = cfg.executors[0]
    assert type(ex).__name__ == "HighThroughputExecutor" and type(ex.provider).__name__ == "SlurmProvider"
    assert ex.provider.partition == "compute" and ex.provider.max_blocks == 4
    pbs = parsl_config(ExecutorSection(kind="pbs", queue="workq", cores_per_node=8), tmp_path).executors[0]
    assert type(pbs.provider).__name__ == "PBSProProvider"


@pytest.mark.slow
def test_local_processes_htex(tmp_path: Path) -> None:
    from bondml.types import parse_composition  # importable by the worker processes

    with TaskRunner(ExecutorSection(kind="local", workers=2, processes=True), tmp_path) as r:
        assert r.map(parse_composition, ["Zr50Cu50", "Zr49Cu49Al2"]) == [
            {"Zr": 50.0, "Cu": 50.0}, {"Zr": 49.0, "Cu": 49.0, "Al": 2.0}]
