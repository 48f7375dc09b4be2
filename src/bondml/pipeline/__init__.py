"""The whole loop as one reproducible pipeline: config -> DAG of cached stages -> report.

``run_pipeline(config_path, out)`` validates the TOML file (:mod:`.config`), starts the task
engine lazily (:mod:`.executor`), runs the stages of :mod:`.stages` through the cached DAG
runner (:mod:`.dag`), tracks training in MLflow (:mod:`.tracking`), proposes the next
active-learning batch (:mod:`.active`) and writes the report (:mod:`.report`) to
``<out>/report/``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import PipelineConfig, load_config
from .dag import StageResult, run_dag

__all__ = ["run_pipeline", "load_config", "PipelineConfig", "RunSummary"]


class RunSummary(dict):
    """Results of one pipeline run: ``stages`` {name: StageResult}, ``seconds``, ``report``."""


def _blas_limit(n: int) -> Any:
    from contextlib import nullcontext

    if n <= 0:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n)


@contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """Send bondml's log records (fallback warnings...) to ``path`` instead of the terminal."""
    lg = logging.getLogger("bondml")
    h = logging.FileHandler(path)
    h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    old = lg.propagate
    lg.addHandler(h)
    lg.propagate = False
    try:
        yield
    finally:
        lg.removeHandler(h)
        lg.propagate = old
        h.close()


def run_pipeline(config: str | Path | PipelineConfig, out: str | Path, targets: Iterable[str] | None = None,
                 force: Iterable[str] = (), log: Callable[[str], None] = print,
                 on_stage: Callable[[StageResult], None] | None = None) -> RunSummary:
    """Run (or resume) the pipeline of ``config`` into ``out``; returns a :class:`RunSummary`.

    Cached stages are not re-run; the task engine (parsl / dask) starts only if a stage needs it.
    """
    from .executor import TaskRunner
    from .stages import build_stages

    cfg = config if isinstance(config, PipelineConfig) else load_config(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with _log_to(out / "pipeline.log"), TaskRunner(cfg.executor, out / "work" / "parsl") as runner, \
            _blas_limit(cfg.executor.blas_threads):
        results = run_dag(build_stages(), cfg, out, targets, force, runner, log, on_stage)
        tasks = runner.tasks_run
    rep = results.get("report")
    report_dir = out / "report"
    if rep is not None and rep.dir is not None:
        tmp = out / ".report.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(rep.dir, tmp)
        shutil.rmtree(report_dir, ignore_errors=True)
        tmp.rename(report_dir)
    return RunSummary(stages=results, seconds=time.perf_counter() - t0, tasks=tasks,
                      report=str(report_dir / "report.html") if rep is not None else None)
