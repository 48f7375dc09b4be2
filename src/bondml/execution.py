"""Where tasks run: one executor configuration and one engine for every entry point.

Both the generate stage (DFT jobs, :func:`bondml.generate.jobs.run_jobs`) and the pipeline
(per-cell / per-frame tasks, :class:`bondml.pipeline.executor.TaskRunner`) describe the machine
with the same :class:`ExecutorConfig` and run through the same :class:`Engine`, so the same
Slurm request gives the same parsl provider, launcher and retry policy wherever it comes from.

==========  ==========================================================================
``kind``    engine
==========  ==========================================================================
``local``   parsl ``ThreadPoolExecutor`` with ``workers`` threads, or (``processes``)
            a parsl ``HighThroughputExecutor`` with ``workers`` processes here
``slurm``   parsl ``HighThroughputExecutor`` on ``SlurmProvider`` blocks (sbatch)
``pbs``     the same on ``PBSProProvider`` blocks (qsub, PBS Pro / OpenPBS)
``torque``  the same on ``TorqueProvider`` blocks (qsub, Torque)
``dask``    a ``dask.distributed.Client``: the scheduler at ``address``, or, with no
            address, a ``LocalCluster`` of ``workers`` workers started here
==========  ==========================================================================

Launcher (scheduler kinds): one node per block starts the worker pool directly in the batch
script (parsl ``SimpleLauncher``); several nodes per block start one pool per node with
``srun`` (Slurm) or ``mpirun`` (PBS/Torque). A task uses ``cores_per_task`` cores (the MPI
ranks of a DFT job); a node runs ``cores_per_node // cores_per_task`` tasks at once.

Retries: only transient failures are retried, ``retries`` times, on every engine: a
:class:`TransientJobError` raised by the task (a step killed by a signal), and a worker or
block lost under the task (parsl ``ManagerLost`` / ``WorkerLost``, e.g. ``scancel`` of the
block, a node failure; Dask reschedules tasks of a lost worker itself). Any other error is
permanent: it is reported at once and never retried.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError, JobError

R = TypeVar("R")

#: Executor kinds (see the module docstring).
EXECUTOR_KINDS: tuple[str, ...] = ("local", "slurm", "pbs", "torque", "dask")
#: Kinds that submit parsl blocks to a batch scheduler.
SCHEDULER_KINDS: tuple[str, ...] = ("slurm", "pbs", "torque")


class TransientJobError(JobError):
    """A failure worth retrying (process killed by a signal, launcher hiccup)."""


@dataclass(frozen=True)
class ExecutorConfig:
    """Where and how tasks run (the ``[executor]`` table of a pipeline, ``--executor`` of generate).

    Parameters
    ----------
    kind : str
        ``local`` | ``slurm`` | ``pbs`` | ``torque`` | ``dask``.
    workers : int
        ``local``: tasks at once (threads, or processes with ``processes``); ``dask`` without
        ``address``: workers of the local cluster.
    processes : bool
        ``local``: worker processes (parsl HTEX) instead of threads; ``dask`` local cluster:
        one process per worker.
    partition, queue, account : str
        Slurm partition (``--partition``), PBS/Torque queue (``-q``; ``partition`` is used when
        ``queue`` is empty), allocation (``--account`` / ``-A``).
    walltime : str
        ``HH:MM:SS`` per scheduler block.
    nodes : int
        Nodes per block.
    cores_per_node : int
        Cores of one node that bondml may use (the block's request).
    cores_per_task : int
        Cores one task uses (MPI ranks of a DFT job; 1 for per-cell / per-frame work).
    max_blocks : int
        Scheduler blocks (batch jobs) at most at once.
    worker_init : str
        Shell lines run in each block before the worker pool starts (``module load ...;
        source /path/venv/bin/activate``): they must put bondml's environment on PATH.
    scheduler_options : str
        Extra header lines for the batch script (``#SBATCH --qos=long``, ``#PBS -l ...``).
    mem_per_node_gb : float
        Memory per node in GB (0: the scheduler's default).
    retries : int
        Retries of a transient failure.
    address : str
        ``dask``: scheduler address ``tcp://host:8786`` (empty: a local cluster).
    blas_threads : int
        BLAS/OpenMP threads per task.
    heartbeat_s : int
        Scheduler kinds: seconds without a heartbeat after which a worker pool (a block killed
        by ``scancel``, a dead node) counts as lost and its tasks are retried.
    poll_s : int
        Scheduler kinds: seconds between status polls of the blocks (``squeue``/``qstat``);
        a block that ended is replaced at the next poll.
    recycle_every : int
        Worker processes (``local`` with ``processes``, scheduler kinds): run each task in a
        child process of the worker that is replaced every ``recycle_every`` tasks (0: tasks run
        in the long-lived worker itself). QUIP's SOAP leaks about 4 MB per call, so a worker
        that featurises frame after frame for hours grows without bound; recycling bounds it at
        ``recycle_every`` calls' worth. Costs one interpreter start per ``recycle_every`` tasks.
    """

    kind: str = "local"
    workers: int = 1
    processes: bool = False
    partition: str = ""
    queue: str = ""
    account: str = ""
    walltime: str = "01:00:00"
    nodes: int = 1
    cores_per_node: int = 1
    cores_per_task: int = 1
    max_blocks: int = 1
    worker_init: str = ""
    scheduler_options: str = ""
    mem_per_node_gb: float = 0.0
    retries: int = 1
    address: str = ""
    blas_threads: int = 1
    heartbeat_s: int = 120
    poll_s: int = 60
    recycle_every: int = 0

    def validate(self, where: str = "executor") -> ExecutorConfig:
        """Return self when consistent, else raise a one-line :class:`ConfigError` naming the key."""
        if self.kind not in EXECUTOR_KINDS:
            raise ConfigError(f"{where}.kind {self.kind!r} is not one of {', '.join(EXECUTOR_KINDS)}")
        for name in ("workers", "nodes", "cores_per_node", "cores_per_task", "max_blocks", "blas_threads",
                     "heartbeat_s", "poll_s"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{where}.{name} must be >= 1, got {getattr(self, name)}")
        if self.retries < 0:
            raise ConfigError(f"{where}.retries must be >= 0, got {self.retries}")
        if self.recycle_every < 0:
            raise ConfigError(f"{where}.recycle_every must be >= 0, got {self.recycle_every}")
        if self.mem_per_node_gb < 0:
            raise ConfigError(f"{where}.mem_per_node_gb must be >= 0, got {self.mem_per_node_gb}")
        parts = self.walltime.split(":")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ConfigError(f"{where}.walltime {self.walltime!r} is not HH:MM:SS")
        if self.kind == "slurm" and not self.partition:
            raise ConfigError(f"{where}.kind = 'slurm' needs {where}.partition")
        if self.kind in ("pbs", "torque") and not (self.queue or self.partition):
            raise ConfigError(f"{where}.kind = {self.kind!r} needs {where}.queue")
        if self.kind in SCHEDULER_KINDS and self.cores_per_task > self.cores_per_node:
            raise ConfigError(f"{where}.cores_per_task ({self.cores_per_task}) exceeds "
                              f"{where}.cores_per_node ({self.cores_per_node})")
        return self

    @property
    def walltime_s(self) -> int:
        """The walltime in seconds."""
        h, m, s = (int(p) for p in self.walltime.split(":"))
        return h * 3600 + m * 60 + s

    @property
    def tasks_per_node(self) -> int:
        """Tasks one node of a scheduler block runs at once."""
        return max(1, self.cores_per_node // self.cores_per_task)

    @property
    def parallelism(self) -> int:
        """Tasks running at once when every block is up."""
        if self.kind in SCHEDULER_KINDS:
            return self.tasks_per_node * self.nodes * self.max_blocks
        return self.workers

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (manifests)."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# retry policy (the same on every engine)


def is_transient(exc: BaseException) -> bool:
    """True for failures worth a retry: :class:`TransientJobError` and a lost parsl worker/block."""
    if isinstance(exc, TransientJobError):
        return True
    return type(exc).__name__ in ("ManagerLost", "WorkerLost")


def _retry_cost(retries: int) -> Callable[[BaseException, object], float]:
    def cost(exc: BaseException, _task: object) -> float:
        return 1.0 if is_transient(exc) else float(retries + 1)

    return cost


class _Retrying:
    """``fn`` retried in the worker on :class:`TransientJobError` (Dask's side of the policy)."""

    def __init__(self, fn: Callable[..., Any], retries: int) -> None:
        self.fn, self.retries = fn, retries

    def __call__(self, *args: Any) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return self.fn(*args)
            except TransientJobError:
                if attempt == self.retries:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


_CHILD_POOL: Any = None


def _child_pool(every: int) -> Any:
    """This worker process's child pool (one process, replaced every ``every`` tasks)."""
    global _CHILD_POOL
    if _CHILD_POOL is None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        _CHILD_POOL = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"),
                                          max_tasks_per_child=every)
    return _CHILD_POOL


class _Recycled:
    """``fn`` run in a child process of the worker that is replaced every ``every`` tasks (bounds a
    leak such as QUIP's SOAP); in a daemonic worker, which cannot have children, ``fn`` runs in place."""

    def __init__(self, fn: Callable[..., Any], every: int) -> None:
        self.fn, self.every = fn, every
        self.__name__ = getattr(fn, "__name__", "task")

    def __call__(self, *args: Any) -> Any:
        import multiprocessing as mp

        if mp.current_process().daemon:
            return self.fn(*args)
        return _child_pool(self.every).submit(self.fn, *args).result()


# --------------------------------------------------------------------------------------------
# parsl


def _interchange_cmd() -> list[str] | None:
    """parsl's interchange started with this interpreter (works without an activated venv)."""
    script = Path(sys.executable).parent / "interchange.py"
    return [sys.executable, str(script)] if script.is_file() else None


def _local_worker_cmd() -> str | None:
    """parsl's worker pool through this interpreter (local processes without the venv on PATH)."""
    from parsl.executors.high_throughput import executor as htex

    script = Path(sys.executable).parent / "process_worker_pool.py"
    if not script.is_file():
        return None
    return f"{sys.executable} {script} " + htex.DEFAULT_LAUNCH_CMD.split(" ", 1)[1]


def launcher_name(cfg: ExecutorConfig) -> str:
    """The parsl launcher a scheduler block uses: ``SimpleLauncher`` for one node per block,
    else ``SrunLauncher`` (Slurm) or ``MpiRunLauncher`` (PBS, Torque)."""
    if cfg.nodes == 1:
        return "SimpleLauncher"
    return "SrunLauncher" if cfg.kind == "slurm" else "MpiRunLauncher"


def build_provider(cfg: ExecutorConfig) -> Any:
    """The parsl provider of a scheduler kind (``slurm``, ``pbs``, ``torque``)."""
    from parsl import launchers

    launcher = getattr(launchers, launcher_name(cfg))()
    common: dict[str, Any] = dict(nodes_per_block=cfg.nodes, init_blocks=0, min_blocks=0,
                                  max_blocks=cfg.max_blocks, walltime=cfg.walltime,
                                  worker_init=cfg.worker_init, scheduler_options=cfg.scheduler_options,
                                  launcher=launcher)
    provider = _provider(cfg, common)
    provider.__class__ = _polled(type(provider))
    provider.poll_s = cfg.poll_s
    return provider


_POLLED: dict[type, type] = {}


def _polled(cls: type) -> type:
    """``cls`` with its status-polling interval read from ``self.poll_s`` (parsl fixes it at 60 s)."""
    if cls not in _POLLED:
        _POLLED[cls] = type(cls.__name__, (cls,), {
            "status_polling_interval": property(lambda self: int(getattr(self, "poll_s", 60))),
            "__module__": __name__})
    return _POLLED[cls]


def _provider(cfg: ExecutorConfig, common: dict[str, Any]) -> Any:
    if cfg.kind == "slurm":
        from parsl.providers import SlurmProvider

        return SlurmProvider(partition=cfg.partition, account=cfg.account or None, exclusive=False,
                             cores_per_node=cfg.cores_per_node,
                             mem_per_node=int(cfg.mem_per_node_gb) if cfg.mem_per_node_gb else None, **common)
    if cfg.kind == "pbs":
        from parsl.providers import PBSProProvider

        return PBSProProvider(queue=cfg.queue or cfg.partition, account=cfg.account or None,
                              cpus_per_node=cfg.cores_per_node, **common)
    if cfg.kind == "torque":
        from parsl.providers import TorqueProvider

        return TorqueProvider(queue=cfg.queue or cfg.partition, account=cfg.account or None, **common)
    raise ConfigError(f"executor kind {cfg.kind!r} has no parsl provider")


def build_parsl_config(cfg: ExecutorConfig, run_dir: str | Path) -> Any:  # -> parsl.config.Config
    """The parsl ``Config`` of ``cfg`` (any kind but ``dask``); retries follow :func:`is_transient`."""
    from parsl.config import Config

    cfg.validate()
    if cfg.kind == "dask":
        raise ConfigError("executor kind 'dask' runs on dask.distributed, not parsl")
    executor: Any
    if cfg.kind == "local" and not cfg.processes:
        from parsl.executors.threads import ThreadPoolExecutor

        executor = ThreadPoolExecutor(label="bondml_local", max_threads=cfg.workers)
    else:
        from parsl.executors import HighThroughputExecutor

        extra: dict[str, Any] = {}
        if (cmd := _interchange_cmd()) is not None:
            extra["interchange_launch_cmd"] = cmd
        if cfg.kind == "local":
            from parsl.providers import LocalProvider

            provider: Any = LocalProvider(init_blocks=1, max_blocks=1, worker_init=cfg.worker_init)
            per_node = cfg.workers
            if (wcmd := _local_worker_cmd()) is not None:
                extra["launch_cmd"] = wcmd
            cores_per_worker: float = 1.0
        else:
            provider = build_provider(cfg)
            per_node = cfg.tasks_per_node
            cores_per_worker = float(cfg.cores_per_task)
            extra["heartbeat_threshold"] = cfg.heartbeat_s
            extra["heartbeat_period"] = max(1, cfg.heartbeat_s // 4)
        executor = HighThroughputExecutor(label=f"bondml_{cfg.kind}", cores_per_worker=cores_per_worker,
                                          max_workers_per_node=per_node, provider=provider, **extra)
    return Config(executors=[executor], retries=cfg.retries, retry_handler=_retry_cost(cfg.retries),
                  run_dir=str(run_dir), initialize_logging=False, usage_tracking=0, strategy="simple")


# --------------------------------------------------------------------------------------------
# the engine


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when empty)."""
    text = str(exc)
    return text.splitlines()[0] if text.strip() else type(exc).__name__


class Engine:
    """Runs tasks on the engine ``cfg`` names; starts lazily on the first task; ``close()`` stops it.

    ``submit(fn, *args)`` returns a future with ``result()`` and ``done()`` (parsl ``AppFuture``
    or a Dask future); :meth:`map` runs a function over items and returns results in input
    order. Use as a context manager. A never-used engine starts nothing and writes nothing.
    """

    def __init__(self, cfg: ExecutorConfig, run_dir: str | Path) -> None:
        self.cfg = cfg.validate()
        self.run_dir = Path(run_dir)
        self._dfk: Any = None
        self._client: Any = None
        self._cluster: Any = None
        self._apps: dict[Any, Any] = {}
        self.tasks_run = 0

    # compatibility name used by the pipeline stages
    @property
    def ex(self) -> ExecutorConfig:
        return self.cfg

    @property
    def workers(self) -> int:
        """Tasks that can run at once."""
        return self.cfg.parallelism

    @property
    def started(self) -> bool:
        return self._dfk is not None or self._client is not None

    @property
    def dask_client(self) -> Any:
        """The ``dask.distributed.Client`` (``kind = 'dask'``, once started), else None."""
        return self._client

    def _start(self) -> None:
        if self.started:
            return
        if self.cfg.kind == "dask":
            try:
                from dask.distributed import Client, LocalCluster
            except ModuleNotFoundError:
                raise ConfigError("executor.kind = 'dask' needs the dask.distributed package "
                                  "(pip install 'dask[distributed]')") from None
            if self.cfg.address:
                self._client = Client(self.cfg.address)
            else:
                self._cluster = LocalCluster(n_workers=self.cfg.workers, threads_per_worker=1,
                                             processes=self.cfg.processes, dashboard_address=None)
                self._client = Client(self._cluster)
            return
        import parsl

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._dfk = parsl.load(build_parsl_config(self.cfg, self.run_dir))

    def submit(self, fn: Callable[..., R], /, *args: Any) -> Any:
        """One task ``fn(*args)``; returns its future."""
        self._start()
        self.tasks_run += 1
        task: Callable[..., Any] = fn
        if self.cfg.recycle_every and (self.cfg.processes or self.cfg.kind in SCHEDULER_KINDS):
            task = _Recycled(fn, self.cfg.recycle_every)
        if self._client is not None:
            return self._client.submit(_Retrying(task, self.cfg.retries), *args, pure=False)
        app = self._apps.get(fn)
        if app is None:
            from parsl.app.app import python_app

            app = self._apps[fn] = python_app(task, data_flow_kernel=self._dfk)
        return app(*args)

    def as_completed(self, futures: Iterable[Any]) -> Iterable[Any]:
        """Futures of this engine in completion order."""
        futures = list(futures)
        if self._client is not None:
            from dask.distributed import as_completed as dask_completed

            return dask_completed(futures)
        from concurrent.futures import as_completed

        return as_completed(futures)

    def map(self, fn: Callable[..., R], items: Sequence[Any], label: Callable[[Any], str] = str,
            on_done: Callable[[int, int], None] | None = None) -> list[R]:
        """``[fn(item) for item in items]`` as parallel tasks, in input order.

        ``on_done(done, total)`` after each task. The first task error is raised as a one-line
        :class:`JobError` naming its item once the other tasks have finished.
        """
        items = list(items)
        if not items:
            return []
        futs = [self.submit(fn, it) for it in items]
        index = {id(f): k for k, f in enumerate(futs)}
        out: list[Any] = [None] * len(items)
        first_error: str | None = None
        for done, f in enumerate(self.as_completed(futs), start=1):
            k = index[id(f)]
            try:
                out[k] = f.result()
            except Exception as exc:  # noqa: BLE001 - collected, reported once below
                first_error = first_error or f"task {label(items[k])} failed: {first_line(exc)}"
            if on_done:
                on_done(done, len(items))
        if first_error:
            raise JobError(first_error)
        return out

    def close(self) -> None:
        """Shut the engine down (parsl blocks cancelled, Dask cluster closed); no-op when never started."""
        if self._dfk is not None:
            self._dfk.cleanup()
            self._dfk = None
            self._apps.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["EXECUTOR_KINDS", "SCHEDULER_KINDS", "ExecutorConfig", "Engine", "TransientJobError",
           "build_parsl_config", "build_provider", "launcher_name", "is_transient", "first_line"]
