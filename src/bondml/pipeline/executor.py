"""Per-cell / per-frame tasks through parsl (local cores, Slurm, PBS) or a Dask cluster.

The pipeline file names *where* tasks run only in its ``[executor]`` section; stages call
:meth:`TaskRunner.map` and never see the engine. The engine starts lazily on the first task,
so a fully cached re-run never starts it.

* ``local``: parsl ``ThreadPoolExecutor`` with ``workers`` threads (numpy/BLAS, LAMMPS and
  QUIP release the GIL in their hot loops), or with ``processes = true`` a parsl
  ``HighThroughputExecutor`` with ``workers`` worker processes on this machine.
* ``slurm`` / ``pbs``: parsl ``HighThroughputExecutor`` on scheduler blocks (``partition`` /
  ``queue``, ``account``, ``walltime``, ``nodes``, ``cores_per_node``, ``max_blocks``,
  ``worker_init``).
* ``dask``: ``dask.distributed.Client(address)`` of a running cluster (needs the optional
  ``dask[distributed]`` package).

:meth:`TaskRunner.submit` is the ``concurrent.futures``-like side (``submit(fn, *args) -> future``)
that streaming callers use, e.g. the deploy stage passes the runner to
:func:`bondml.deploy.infer.predict_trajectory` so that frames run as tasks of this engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError, JobError
from .config import ExecutorSection

T = TypeVar("T")
R = TypeVar("R")


def parsl_config(ex: ExecutorSection, run_dir: str | Path):  # -> parsl.config.Config
    """The parsl ``Config`` for an executor section (local threads/processes, Slurm, PBS)."""
    from parsl.config import Config

    if ex.kind == "local" and not ex.processes:
        from parsl.executors.threads import ThreadPoolExecutor

        executor: Any = ThreadPoolExecutor(label="bondml_local", max_threads=ex.workers)
    else:
        from parsl.executors import HighThroughputExecutor

        if ex.kind == "local":
            from parsl.providers import LocalProvider

            provider: Any = LocalProvider(init_blocks=1, max_blocks=1, worker_init=ex.worker_init)
            per_node = ex.workers
        else:
            from parsl.launchers import SrunLauncher

            common = dict(nodes_per_block=ex.nodes, init_blocks=0, min_blocks=0, max_blocks=ex.max_blocks,
                          walltime=ex.walltime, worker_init=ex.worker_init)
            per_node = ex.cores_per_node
            if ex.kind == "slurm":
                from parsl.providers import SlurmProvider

                provider = SlurmProvider(partition=ex.partition, account=ex.account or None, exclusive=False,
                                         cores_per_node=per_node, launcher=SrunLauncher(), **common)
            elif ex.kind == "pbs":
                from parsl.launchers import MpiRunLauncher
                from parsl.providers import PBSProProvider

                provider = PBSProProvider(queue=ex.queue or ex.partition, account=ex.account or None,
                                          cpus_per_node=per_node, launcher=MpiRunLauncher(), **common)
            else:  # pragma: no cover - validated before
                raise ConfigError(f"executor kind {ex.kind!r} has no parsl provider")
        extra: dict[str, Any] = {}
        if ex.kind == "local":
            extra = _local_launch_cmds()
        executor = HighThroughputExecutor(label=f"bondml_{ex.kind}", max_workers_per_node=per_node,
                                          provider=provider, **extra)
    return Config(executors=[executor], retries=ex.retries, run_dir=str(run_dir),
                  initialize_logging=False, usage_tracking=0, strategy="simple")


def _local_launch_cmds() -> dict[str, Any]:
    """parsl's interchange and worker pool through this interpreter, so that local processes
    work without the virtual environment's ``bin`` on PATH."""
    import sys

    from parsl.executors.high_throughput import executor as htex

    bindir = Path(sys.executable).parent
    if not (bindir / "interchange.py").is_file():
        return {}
    return {"interchange_launch_cmd": [sys.executable, str(bindir / "interchange.py")],
            "launch_cmd": f"{sys.executable} {bindir / 'process_worker_pool.py'} "
                          + htex.DEFAULT_LAUNCH_CMD.split(" ", 1)[1]}


class TaskRunner:
    """Maps a function over items on the configured engine; start lazily, close with ``close()``.

    Use as a context manager. Results come back in input order; the first task error is raised
    as a one-line :class:`JobError` naming the item after the others finished.
    """

    def __init__(self, ex: ExecutorSection, run_dir: str | Path) -> None:
        self.ex = ex
        self.run_dir = Path(run_dir)
        self._dfk: Any = None
        self._dask: Any = None
        self._apps: dict[Any, Any] = {}
        self.tasks_run = 0

    @property
    def workers(self) -> int:
        return self.ex.workers if self.ex.kind == "local" else self.ex.cores_per_node * self.ex.max_blocks

    def _start(self) -> None:
        if self._dfk is not None or self._dask is not None:
            return
        if self.ex.kind == "dask":
            try:
                from dask.distributed import Client
            except ModuleNotFoundError:
                raise ConfigError("executor.kind = 'dask' needs the dask.distributed package "
                                  "(pip install 'dask[distributed]')") from None
            self._dask = Client(self.ex.address)
            return
        import parsl

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._dfk = parsl.load(parsl_config(self.ex, self.run_dir))

    def submit(self, fn: Callable[..., R], /, *args: Any) -> Any:
        """One task ``fn(*args)`` on the engine; returns its future (parsl ``AppFuture``, a
        ``concurrent.futures.Future``, or a Dask future: all have ``result()`` and ``done()``)."""
        self._start()
        self.tasks_run += 1
        if self._dask is not None:
            return self._dask.submit(fn, *args, pure=False)
        app = self._apps.get(fn)
        if app is None:
            from parsl.app.app import python_app

            app = self._apps[fn] = python_app(fn, data_flow_kernel=self._dfk)
        return app(*args)

    def map(self, fn: Callable[..., R], items: Sequence[Any], label: Callable[[Any], str] = str,
            on_done: Callable[[int, int], None] | None = None) -> list[R]:
        """``[fn(item) for item in items]`` run as parallel tasks; ``on_done(done, total)`` per task."""
        items = list(items)
        if not items:
            return []
        self._start()
        if self._dask is not None:
            from dask.distributed import as_completed as dask_completed

            futs = self._dask.map(fn, items, pure=False)
            getter: Callable[[Any], Any] = lambda f: f.result()  # noqa: E731
            completed: Callable[[Any], Any] = dask_completed
        else:
            from parsl.app.app import python_app

            app = python_app(fn, data_flow_kernel=self._dfk)
            futs = [app(it) for it in items]
            getter = lambda f: f.result()  # noqa: E731
            from concurrent.futures import as_completed as completed
        out: list[Any] = [None] * len(items)
        first_error: str | None = None
        index = {f: k for k, f in enumerate(futs)}
        done = 0
        for f in completed(list(futs)):
            k = index[f]
            try:
                out[k] = getter(f)
            except Exception as exc:  # noqa: BLE001 - collected, reported once below
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                first_error = first_error or f"task {label(items[k])} failed: {msg}"
            done += 1
            self.tasks_run += 1
            if on_done:
                on_done(done, len(items))
        if first_error:
            raise JobError(first_error)
        return out

    def close(self) -> None:
        """Shut the engine down (no-op when never started)."""
        if self._dfk is not None:
            self._dfk.cleanup()
            self._dfk = None
            self._apps.clear()
        if self._dask is not None:
            self._dask.close()
            self._dask = None

    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
