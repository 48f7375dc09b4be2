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


PROVENANCE = "bondml-run.json"


def _data_identity(cfg: PipelineConfig) -> dict[str, Any]:
    """What decides the data of a run folder: the pipeline name, the GETL roots and the store."""
    return {"pipeline": cfg.pipeline.name,
            "roots": [str(cfg.resolve_path(r).resolve()) for r in cfg.data.roots],
            "store": str(cfg.resolve_path(cfg.data.store).resolve()) if cfg.data.store else ""}


def check_provenance(cfg: PipelineConfig, out: Path, overwrite: bool = False, dry: bool = False) -> dict[str, Any]:
    """Refuse an output folder made by a pipeline that reads other data (another name, other
    GETL roots or store) unless ``overwrite``; then its own store is rebuilt from scratch so the
    data of the two never mix. Edits of other settings (model, validation, deploy...) are fine:
    they enter the cache keys of the stages they affect. Returns the record to write."""
    import json

    from ..errors import BondmlError
    from ..util import sha256_json
    from .config import config_to_dict

    ident = _data_identity(cfg)
    rec = {"config": cfg.source, "config_hash": sha256_json(config_to_dict(cfg)), "data": ident,
           "data_hash": sha256_json(ident)}
    p = out / PROVENANCE
    old = None
    if p.is_file():
        try:
            old = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise BondmlError(f"{p}: damaged run record (not valid JSON); "
                              "use --overwrite to start this folder again") from None
    elif (out / "stages").is_dir() and not overwrite:
        raise BondmlError(f"{out}: holds pipeline results without a run record ({PROVENANCE}); "
                          "use --overwrite to reuse it for this config or choose another --out")
    if old is not None and old.get("data_hash") != rec["data_hash"]:
        if not overwrite:
            was = old.get("data", {})
            diff = [k for k in ("pipeline", "roots", "store") if was.get(k) != ident[k]]
            raise BondmlError(
                f"{out}: holds the run of another pipeline ({old.get('config') or '?'}: other {', '.join(diff)}); "
                "its data would mix with this one's; use --overwrite to start this folder again or another --out")
        if not cfg.data.store and not dry:  # the folder's own stores (either kind): rebuilt, never mixed
            for own in (out / "store", *out.glob("store-*")):
                shutil.rmtree(own, ignore_errors=True)
    rec["history"] = ((old or {}).get("history") or [])[-49:] + [
        {"config": cfg.source, "config_hash": rec["config_hash"],
         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]
    return rec


def run_pipeline(config: str | Path | PipelineConfig, out: str | Path, targets: Iterable[str] | None = None,
                 force: Iterable[str] = (), log: Callable[[str], None] = print,
                 on_stage: Callable[[StageResult], None] | None = None, overwrite: bool = False) -> RunSummary:
    """Run (or resume) the pipeline of ``config`` into ``out``; returns a :class:`RunSummary`.

    Cached stages are not re-run; the task engine (parsl / dask) starts only if a stage needs it.
    ``out`` records what produced it (``bondml-run.json``); a folder of a pipeline that reads
    other data is refused unless ``overwrite`` (:func:`check_provenance`).
    """
    from ..errors import BondmlError
    from ..util import atomic_write_json
    from .dag import out_lock
    from .executor import TaskRunner
    from .stages import build_stages

    cfg = config if isinstance(config, PipelineConfig) else load_config(config)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BondmlError(f"{out}: is a file, not a folder; give a folder for --out")
    from .dag import needed

    stages = build_stages()
    needed(stages, targets)  # an unknown --stage is refused before anything is written
    for name in force:
        needed(stages, [name])
    if out.is_dir():  # refuse before anything (even the lock file) is created; checked again under the lock
        check_provenance(cfg, out, overwrite, dry=True)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with out_lock(out):
        from ..util import clean_temp_files

        clean_temp_files(out, recursive=False)
        rec = check_provenance(cfg, out, overwrite)
        atomic_write_json(out / PROVENANCE, rec)
        with _log_to(out / "pipeline.log"), TaskRunner(cfg.executor, out / "work" / "parsl") as runner, \
                _blas_limit(cfg.executor.blas_threads):
            results = run_dag(stages, cfg, out, targets, force, runner, log, on_stage)
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
