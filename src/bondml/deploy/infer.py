"""Per-frame inference over a structure or trajectory: bonds, SOAP, -ICOHP + std, flags.

For each frame (streamed, never the whole trajectory in memory):

1. bonds in the per-type windows (Angstrom; default: the model's, i.e. the study's
   :data:`bondml.constants.INFERENCE_WINDOWS`), any cell shape (vesin, every periodic image);
2. SOAP of every atom **recomputed for this frame** (the original reused frame 0's: a bug);
3. ``model.predict_bonds``: -ICOHP (eV), predictive std (eV), ``fallback`` and
   ``out_of_domain`` flags;
4. per-frame files written atomically (:mod:`bondml.deploy.outputs`), then the frame is recorded
   in ``manifest.json``, in frame order.

Frames run in ``workers`` processes (``concurrent.futures``, at most 2 x workers frames in
flight). Worker processes are replaced every ``recycle_every`` frames. The SOAP engines bondml
computes itself (the default for every backend) do not leak, but quippy's library engine
(``BONDML_QUIP_ENGINE=library``) leaks memory on every call (about 2 MB per 1,000 atoms, measured
with quippy-ase 0.10.3), so with it a long-lived process would grow without bound over a
728-frame trajectory; recycling keeps the peak flat. ``in_process=True`` runs everything in the
calling process (tests, debugging).

``predict_trajectory(..., executor=ex)`` submits the frames to an external executor instead: any
object with ``submit(fn, *args) -> future`` (a ``concurrent.futures`` executor, the pipeline's
:class:`bondml.pipeline.executor.TaskRunner` for parsl / Dask). The same window of at most
2 x ``workers`` frames in flight, the same in-order manifest, resume and overwrite rules apply, and
the results are identical. The external executor owns its workers, so ``recycle_every`` does not
apply there: with quippy's library engine, long-lived worker processes (parsl
HighThroughputExecutor) grow by QUIP's leak over a long trajectory. Thread executors run SOAP
inside the calling process; threads share the loaded model (prediction does not modify it) and
calls into quippy itself are serialised by a lock (QUIP's Fortran is not known to be thread safe).

A run is resumable: run the same command again and it
continues after the last frame recorded in the manifest. An output folder holding another run
(other input, model or settings) is refused unless ``overwrite``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import BondmlError, ConfigError, InputFileError, ModelError, PartialFailure
from ..features.soap import FeatureSettings, compute_bond_features, compute_soap, quip_engine
from ..io.lammps import Frame, iter_frames, per_atom_stress_gpa, sniff_format
from ..structure.bonds import find_bonds
from ..util import (
    atomic_write_json,
    clean_temp_files,
    code_version,
    file_lock,
    lock_wait_seconds,
    sha256_file,
    sha256_json,
)
from .outputs import FrameResult, write_frame

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
_OUTPUT_PARTS = ("bonds", "peratom", "icohplist", MANIFEST, SUMMARY)
_RUN_INFO: dict[str, dict[str, Any]] = {}  # run key -> {"model": ..., "input": ...} (error messages)


@dataclass(frozen=True)
class PredictConfig:
    """Options of a deployment run.

    ``windows``: per-type bond windows (Angstrom), None = the model's. ``settings``: SOAP settings
    to compute (None = the model's; other settings raise FeatureMismatchError). ``workers``:
    processes (1 = in this process). ``strain_axis``: 0/1/2, strain = L/L0 - 1 of that cell
    length relative to the first frame. ``max_frames``: stop after this many frames in total
    (the run stays resumable). ``type_map``: LAMMPS types -> elements (e.g. ``1=Zr,2=Cu,3=Al``).
    ``recycle_every``: frames per worker process before it is replaced (bounds QUIP's leak).
    ``in_process``: no worker processes at all. ``precision``: arithmetic of the model's SOAP
    products and variance solve (float32 default: < 1e-4 eV change, ~1.5x faster; float64 exact).
    ``exact_std``: the exact predictive std (cost grows as n_train^2 per bond) instead of the
    low-rank one (p95 error ~1 %). ``progress``: ignored (kept for existing callers); progress
    is reported through ``predict_trajectory(..., progress=callback)`` and ``logging``.
    """

    windows: dict[str, tuple[float, float]] | None = None
    settings: FeatureSettings | None = None
    workers: int = 1
    icohplist: bool = False
    ovito: bool = False
    overwrite: bool = False
    return_std: bool = True
    batch_size: int = 4096
    strain_axis: int = 0
    max_frames: int | None = None
    type_map: str | None = None
    progress: bool = True
    fmt: str | None = None
    recycle_every: int | None = 20
    in_process: bool = False
    precision: str = "float32"
    exact_std: bool = False

    def key_fields(self) -> dict[str, Any]:
        """The options that change results (part of the run key)."""
        return {
            "windows": {k: list(v) for k, v in sorted((self.windows or {}).items())},
            "settings": self.settings.to_dict() if self.settings else None,
            "return_std": self.return_std,
            "strain_axis": self.strain_axis,
            "type_map": self.type_map,
            "icohplist": self.icohplist,
            **({"exact_std": True} if self.exact_std else {}),
        }


@dataclass(frozen=True)
class FrameJob:
    """One frame to infer (picklable, sent to a worker)."""

    index: int
    frame: Frame
    l0: float
    model_dir: str
    out_dir: str
    model_digest: str
    windows: dict[str, tuple[float, float]]
    settings: FeatureSettings
    cfg: PredictConfig


@dataclass
class FrameMeta:
    """What the manifest records about a finished frame (seconds = wall time of the worker)."""

    frame: int
    timestep: int
    strain: float
    n_atoms: int
    n_bonds: int
    counts: dict[str, int]
    n_out_of_domain: int
    n_fallback: int
    seconds: float
    cpu_seconds: float = 0.0  # CPU time of the process that computed the frame (all its threads)
    unwrapped: bool = False
    steps: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> SHA-256 of every file


class FrameExecutor(Protocol):
    """What ``predict_trajectory(executor=...)`` needs: ``submit(fn, *args)`` returning a future
    with ``result()`` and ``done()`` (``concurrent.futures``, parsl, Dask futures all fit)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...


def model_digest(model_dir: str | Path) -> str:
    """Pin of a model folder: the SHA-256 of its ``model.json``, which records the SHA-256 of every
    array file (checked once, by the process that starts the run) and everything else of the model."""
    p = Path(model_dir) / "model.json"
    if not p.is_file():
        raise ModelError(f"{model_dir}: not a model folder (no model.json)")
    return sha256_file(p)


@lru_cache(maxsize=4)
def _load_model(model_dir: str, digest: str | None = None, verify: bool = True) -> Any:
    """The model of ``model_dir``, memory-mapped (workers share one copy through the page cache);
    with ``digest``, only if the folder still holds exactly the model of that digest (checked
    before and after loading): a model replaced during a run is a clear error, never a silent mix
    of two models in one output. ``verify``: check every array file against its SHA-256 (the
    parent does, once; workers of a pinned run need not)."""
    from ..model.bondmodel import BondModel

    if digest is None:
        return BondModel.load(model_dir, verify=verify)
    before = model_digest(model_dir)
    if before != digest:
        raise ModelError(f"{model_dir}: the model changed during this run (digest {before[:12]}, "
                         f"the run is pinned to {digest[:12]}); restore it, or start the run again")
    model = BondModel.load(model_dir, verify=verify)
    if model_digest(model_dir) != before:
        raise ModelError(f"{model_dir}: the model changed while it was being loaded; restore it, or start the "
                         "run again")
    return model


def _verified_cache_dir() -> Path:
    """Where verified model array signatures are kept: ``$BONDML_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/bondml``, else ``~/.cache/bondml`` (``verified-models/<digest>.json``)."""
    root = os.environ.get("BONDML_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "bondml")
    return Path(root) / "verified-models"


def _signature(path: Path) -> list[int]:
    """What a change of the file changes: size, inode, device, mtime and ctime (ns). ctime cannot be
    set by a user: any write, copy or replacement of the file changes it."""
    st = path.stat()
    return [st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns]


class _ArrayCheck:
    """SHA-256 of every array file of a (format-2) model folder against its ``model.json``, in a
    background thread (hashlib and file reads release the GIL) so that it overlaps the rest of the
    start-up; :meth:`result` waits and raises the ModelError that ``BondModel.load(verify=True)``
    would have raised. Format-1 folders are verified by the (synchronous) loader instead.

    Hashing reads the whole model (hundreds of MB, most of it never paged in by the fast
    prediction: seconds when it is not in the page cache), so a successful check is remembered
    per model digest with each file's signature (:func:`_signature`); a later run whose files
    all have the same signatures skips the hashing (like git's index). A file changed in any
    way is hashed again."""

    def __init__(self, model_dir: Path, digest: str) -> None:
        import json

        try:
            hashes = json.loads((model_dir / "model.json").read_text()).get("arrays")
        except (OSError, ValueError):
            hashes = None
        self.error: BondmlError | None = None
        self.applies = isinstance(hashes, dict) and bool(hashes)
        self.thread: threading.Thread | None = None
        self.cached = False
        if self.applies:
            self.thread = threading.Thread(target=self._run, args=(model_dir, hashes, digest),
                                           name="bondml-model-verify", daemon=True)
            self.thread.start()

    def _run(self, model_dir: Path, hashes: dict[str, str], digest: str) -> None:
        import json

        from ..model.bondmodel import ARRAYS_DIR

        stamp = _verified_cache_dir() / f"{digest}.json"
        try:
            sigs = {}
            for name, h in hashes.items():
                path = model_dir / ARRAYS_DIR / name
                if not path.is_file():
                    self.error = ModelError(f"{path}: model array file not found")
                    return
                sigs[name] = [str(path.resolve()), h, *_signature(path)]
            with contextlib.suppress(OSError, ValueError):
                if json.loads(stamp.read_text()) == sigs:
                    self.cached = True
                    return
            for name, h in hashes.items():
                path = model_dir / ARRAYS_DIR / name
                if sha256_file(path, chunk=1 << 24) != h:
                    self.error = ModelError(f"{path}: content does not match model.json "
                                            "(corrupt or from another model)")
                    return
                if [str(path.resolve()), h, *_signature(path)] != sigs[name]:  # changed while hashed
                    return
        except OSError as exc:
            self.error = ModelError(f"{model_dir}: cannot read the model arrays ({exc.strerror or exc})")
            return
        with contextlib.suppress(OSError):  # only a cache: a read-only home is no error
            stamp.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(stamp, sigs)

    def result(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            raise self.error


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _limit_threads(n: int) -> None:
    """At most ``n`` BLAS/OpenMP threads in this worker (unless the user set a thread count):
    ``workers`` processes each running a BLAS pool as wide as the machine oversubscribe the cores
    (OpenBLAS threads spin between calls), which serialises the workers. Libraries loaded later
    (QUIP's own OpenBLAS) read the variables; numpy's, already loaded, is limited through
    threadpoolctl when installed."""
    if any(v in os.environ for v in _THREAD_VARS):
        return
    for v in _THREAD_VARS:
        os.environ[v] = str(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional (bondml[pipeline])
        return
    threadpool_limits(limits=n)


def _worker_init(parent: int, threads: int | None = None) -> None:
    """Worker processes die with their parent: ``PR_SET_PDEATHSIG`` (Linux) plus a watch thread
    (any OS; also covers the parent thread that spawned us exiting before the parent itself).
    ``threads``: BLAS/OpenMP threads of this worker (:func:`_limit_threads`)."""
    import signal
    import sys

    if threads is not None:
        _limit_threads(threads)

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="bondml-parent-watch", daemon=True).start()


_SOAP_LOCK = threading.Lock()


def _soap(atoms: Any, settings: FeatureSettings, dtype: Any = np.float64) -> np.ndarray:
    """``compute_soap``; calls into quippy itself (the library engine of the quippy backend) are
    serialised between threads of one process, and it gives its own float64 array; ``dtype``
    applies to every numpy engine (the default)."""
    if settings.backend != "quippy" or quip_engine() == "numpy":
        return compute_soap(atoms, settings, dtype=dtype)
    with _SOAP_LOCK:
        return compute_soap(atoms, settings)


def strain_of(frame: Frame, l0: float, axis: int) -> float:
    """Engineering strain (L - L0)/L0 of cell length ``axis`` (negative in compression)."""
    return float(np.linalg.norm(frame.atoms.cell.array[axis]) / l0 - 1.0)


def check_frame(frame: Frame, source: str | Path, index: int) -> None:
    """InputFileError unless the frame's positions and cell are finite and the cell has volume."""
    a = frame.atoms
    if len(a) == 0:
        raise InputFileError(source, f"frame {index} has no atoms")
    if not np.isfinite(a.positions).all():
        raise InputFileError(source, f"frame {index}: non-finite atom coordinates (NaN or inf)")
    cell = a.cell.array
    if not np.isfinite(cell).all() or abs(np.linalg.det(cell)) < 1e-9:
        raise InputFileError(source, f"frame {index}: the cell is not finite or has no volume")


#: Per thread: the array the bond-centred rows of the last frame were written into, reused by the
#: next frame of this process (frames differ by a few bonds; 10 % headroom).
_ROWS = threading.local()


def _bond_rows(atoms: Any, bonds: Any, settings: FeatureSettings,
               dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``compute_bond_features`` for the bond-centred descriptor, written into this thread's reused
    array: a fresh (n_bonds, 2100) array per frame (560 MB in float32 for a 10,000-atom frame) cost
    about 1 CPU second per frame in page faults, zeroing and freeing (bench/bench_bond_descriptor.py:
    descriptor 2.1-2.3 s CPU with the reused array against 2.9-4.5 s fresh). The rows are valid
    until the next call in the same thread."""
    from ..features.bond_centred import n_components

    n, p = len(bonds), n_components(settings)
    buf = getattr(_ROWS, "buf", None)
    if buf is None or buf.dtype != np.dtype(dtype) or buf.size < n * p:
        _ROWS.buf = None  # free the old one first
        buf = _ROWS.buf = np.empty(int(1.1 * n) * p + p, dtype=dtype)
    return compute_bond_features(atoms, bonds.i, bonds.j, bonds.shift, settings, dtype=dtype,
                                 out=buf[: n * p].reshape(n, p))


def infer_frame(job: FrameJob) -> FrameMeta:
    """Bonds, SOAP, prediction and files of one frame; returns its manifest entry."""
    check_frame(job.frame, f"frame {job.index} of the input", job.index)
    t0, c0 = time.perf_counter(), time.process_time()
    model = _load_model(job.model_dir, job.model_digest, False)  # verified by the parent; read-only, shared
    atoms = job.frame.atoms
    model.check_elements(atoms.get_chemical_symbols(), f"frame {job.index}")
    t1 = time.perf_counter()
    bonds = find_bonds(atoms, windows=job.windows)
    t2 = time.perf_counter()
    model.check_bond_types(bonds.type, f"frame {job.index}: ")
    # float32 rows when the products are float32 anyway: half the memory and its page faults
    rows_dtype = np.float32 if job.cfg.precision == "float32" else np.float64
    if job.settings.kind == "bond":  # bond-centred SOAP: one row per bond (accuracy, issue 12)
        soap, row_i, row_j = _bond_rows(atoms, bonds, job.settings, rows_dtype)
    else:
        soap, row_i, row_j = _soap(atoms, job.settings, rows_dtype), bonds.i, bonds.j
    t3 = time.perf_counter()
    pred = model.predict_bonds(
        bonds.type, bonds.distance, soap, row_i, row_j, job.settings,
        return_std=job.cfg.return_std, batch_size=job.cfg.batch_size, precision=job.cfg.precision,
        exact_std=job.cfg.exact_std,
    )
    t4 = time.perf_counter()
    strain = strain_of(job.frame, job.l0, job.cfg.strain_axis)
    res = FrameResult(job.index, job.frame.timestep, strain, atoms, bonds, pred, per_atom_stress_gpa(job.frame))
    counts = write_frame(Path(job.out_dir), res, icohplist=job.cfg.icohplist, ovito=job.cfg.ovito)
    files = {rel: sha256_file(Path(job.out_dir) / rel)
             for rel in frame_files(job.index, job.cfg.icohplist, job.cfg.ovito)}
    t5 = time.perf_counter()
    meta = FrameMeta(
        frame=job.index, timestep=job.frame.timestep, strain=strain, n_atoms=len(atoms), n_bonds=len(bonds),
        counts=counts, n_out_of_domain=int(pred["out_of_domain"].sum()), n_fallback=int(pred["fallback"].sum()),
        seconds=t5 - t0, cpu_seconds=time.process_time() - c0, unwrapped=job.frame.unwrapped,
        steps={"load": t1 - t0, "bonds": t2 - t1, "soap": t3 - t2, "predict": t4 - t3, "write": t5 - t4},
        files=files,
    )
    return meta


# ------------------------------------------------------------------------------------------
# run bookkeeping
# ------------------------------------------------------------------------------------------


def frame_files(frame: int, icohplist: bool, ovito: bool = False) -> list[str]:
    """Paths (relative to the output folder) of every file of one frame."""
    from .outputs import frame_dir

    rel = [frame_dir(Path(""), "bonds", frame) / "part-0.parquet",
           frame_dir(Path(""), "peratom", frame) / "part-0.parquet",
           Path("peratom") / f"frame_{frame:05d}.xyz"]
    if icohplist:
        rel.append(Path("icohplist") / f"frame_{frame:05d}.ICOHPLIST.lobster")
    if ovito:
        rel += [Path("ovito") / f"frame_{frame:05d}.data", Path("ovito") / f"frame_{frame:05d}.bonds.dump"]
    return [p.as_posix() for p in rel]


def _intact_frames(out: Path, manifest: dict[str, Any]) -> list[str]:
    """Drop from ``manifest`` every recorded frame whose files are missing or damaged (SHA-256);
    returns one line per frame dropped (those frames are computed again)."""
    kept, dropped = [], []
    for m in manifest["frames"]:
        files = m.get("files")
        bad = None
        if not files:
            bad = "records no file hashes (older bondml)"
        else:
            for rel, sha in files.items():
                p = out / rel
                if not p.is_file():
                    bad = f"{p} is missing"
                    break
                if sha256_file(p) != sha:
                    bad = f"{p} is damaged (SHA-256 differs from the manifest)"
                    break
        if bad is None:
            kept.append(m)
        else:
            dropped.append(f"frame {m['frame']}: {bad}")
    manifest["frames"] = kept
    return dropped


def _prepare_out(out: Path, run_key: str, overwrite: bool) -> dict[str, Any] | None:
    """Check the output folder; returns the existing manifest of the same run (resume) or None."""
    import json

    man = out / MANIFEST
    if man.is_file():
        try:
            old = json.loads(man.read_text())
        except ValueError:
            old = {"run_key": "unreadable"}
        if old.get("run_key") == run_key and not overwrite:
            return old
        if not overwrite:
            what = []
            new = _RUN_INFO.get(run_key, {})
            if old.get("model", {}).get("digest") != new.get("model", {}).get("digest"):
                what.append(f"model was {old.get('model', {}).get('path', '?')} digest "
                            f"{str(old.get('model', {}).get('digest', '?'))[:12]}")
            if old.get("input", {}).get("sha256") != new.get("input", {}).get("sha256"):
                what.append(f"input was {old.get('input', {}).get('path', '?')}")
            detail = ", ".join(what) or "other settings"
            raise BondmlError(
                f"{out}: holds the predictions of another run ({detail}); "
                "replace them (overwrite) or choose another output folder"
            )
    elif (out / "bonds").exists() and not overwrite:
        raise BondmlError(f"{out}: holds bond tables without a manifest (not a bondml predict folder); "
                          "replace them (overwrite) or choose another output folder")
    if overwrite:
        for part in _OUTPUT_PARTS:
            p = out / part
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    return None


def count_frames(path: str | Path, fmt: str) -> int | None:
    """Number of frames (fast scan of a LAMMPS dump; 1 for a data file; None if unknown)."""
    if fmt == "lammps-data":
        return 1
    if fmt != "lammps-dump":
        return None
    n = 0
    tail = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            buf = tail + chunk
            n += buf.count(b"ITEM: TIMESTEP")
            tail = buf[-13:]  # shorter than the marker: no double count
    return n


def _frames(structure: Path, cfg: PredictConfig) -> Iterator[Frame]:
    return iter_frames(structure, type_map=cfg.type_map, fmt=cfg.fmt)


#: ``progress(done, total)``: called after every frame recorded in the manifest (and once before the
#: first, with the frames already done); ``total`` is None when the number of frames is unknown.
ProgressCallback = Callable[[int, int | None], None]

_log = logging.getLogger("bondml.deploy")


class _Progress:
    """Counts recorded frames; reports them to the caller's callback and to ``logging``."""

    def __init__(self, callback: ProgressCallback | None, total: int | None, done: int) -> None:
        self.callback, self.total, self.done = callback, total, done
        self.t0 = time.perf_counter()
        self.n = 0
        if callback is not None:
            callback(done, total)

    def advance(self, frame: int) -> None:
        self.done += 1
        self.n += 1
        _log.info("frame %d recorded (%d of %s; %.3f frames/s)", frame, self.done,
                  "?" if self.total is None else self.total, self.n / max(time.perf_counter() - self.t0, 1e-9))
        if self.callback is not None:
            self.callback(self.done, self.total)


def predict_trajectory(
    model_dir: str | Path, structure: str | Path, out: str | Path, cfg: PredictConfig | None = None,
    *, executor: FrameExecutor | None = None, progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Infer every bond of every frame of ``structure`` (LAMMPS data or dump, ext-xyz, any ASE format).

    Writes the run folder described in :mod:`bondml.deploy.outputs` and returns the summary.
    Resumes an interrupted run of the same input, model and settings; refuses a folder holding
    another run unless ``cfg.overwrite``. ``executor``: submit frames there (``submit(fn, *args)``,
    at most 2 x ``cfg.workers`` in flight; not shut down here) instead of the own process pool;
    ``cfg.in_process`` and ``cfg.recycle_every`` are then ignored. ``progress``: called as
    ``progress(done, total)`` once before the first frame and after every frame recorded (``total``:
    frames of this run, None if unknown); each recorded frame is also logged (``bondml.deploy``, INFO).
    Nothing is printed.
    """
    cfg = cfg or PredictConfig()
    structure, out, model_dir = Path(structure), Path(out), Path(model_dir)
    _check_config(cfg)
    if not structure.is_file():
        raise InputFileError(structure, "structure file not found" if not structure.exists() else "is not a file")
    digest = model_digest(model_dir)
    check = _ArrayCheck(model_dir, digest)  # hashes the arrays in the background while the input is checked
    model = _load_model(str(model_dir.resolve()), digest, not check.applies)
    settings = cfg.settings or model.settings
    model.settings.require_same(settings, "SOAP settings requested for this run")
    windows = dict(cfg.windows or model.windows)
    fmt = cfg.fmt or sniff_format(structure)
    input_info = {"path": str(structure.resolve()), "sha256": sha256_file(structure), "format": fmt}
    model_info = {"path": str(model_dir.resolve()), "digest": digest}
    run_key = sha256_json({"input": input_info["sha256"], "model": model_info["digest"], "cfg": cfg.key_fields(),
                           "windows": {k: list(v) for k, v in sorted(windows.items())}})
    _RUN_INFO[run_key] = {"model": model_info, "input": input_info}
    if out.exists() and not out.is_dir():
        raise InputFileError(out, "output folder is a file; give a folder path")
    frames = _frames(structure, cfg)
    first = next(frames, None)  # bad input is refused before anything is written
    if first is None:
        raise InputFileError(structure, "holds no frame")
    check_frame(first, structure, 0)
    check.result()  # a damaged model is refused before anything is written
    if out.is_dir() and not cfg.overwrite:  # refuse before anything (even the lock file) is created
        _prepare_out(out, run_key, False)
    out.mkdir(parents=True, exist_ok=True)
    with file_lock(out / ".lock", lambda: BondmlError(
            f"{out}: another bondml predict is writing this output folder; wait for it or use another --out"),
            wait=lock_wait_seconds(0.0)):
        clean_temp_files(out)  # left by a run killed mid-write
        manifest = _prepare_out(out, run_key, cfg.overwrite) or {
            "run_key": run_key, "input": input_info, "model": model_info, "config": cfg.key_fields(),
            "windows": windows, "settings": settings.to_dict(), "code": code_version(), "frames": [], "l0": None,
            "complete": False,
        }
        dropped = _intact_frames(out, manifest)
        for line in dropped:
            _log.warning("recomputing %s", line)
        manifest["complete"] = False
        atomic_write_json(out / MANIFEST, manifest)  # before the first frame: a kill at any point resumes
        done = {m["frame"] for m in manifest["frames"]}
        total = count_frames(structure, fmt)
        limit = cfg.max_frames
        counter = _Progress(progress, total if limit is None else min(total or limit, limit), len(done))
        t_start = time.perf_counter()
        if executor is None and not cfg.in_process and (total == 1 or limit == 1):
            # one frame: no worker process to start (it would re-import everything); nothing to leak into
            from dataclasses import replace

            cfg = replace(cfg, in_process=True)
        try:
            _run_frames(model_dir, structure, out, cfg, windows, settings, manifest, done, counter, executor,
                        digest, itertools.chain([first], frames))
        except BondmlError as exc:
            if not manifest["frames"] or isinstance(exc, PartialFailure):
                raise
            raise PartialFailure(f"{out}: stopped at a failing frame after {len(manifest['frames'])} frame(s), "
                                 "which are kept; fix the input and run the same command to resume") from exc
        manifest["complete"] = limit is None or len(manifest["frames"]) < limit
        atomic_write_json(out / MANIFEST, manifest)
        summary = _summary(manifest, time.perf_counter() - t_start, cfg)
        atomic_write_json(out / SUMMARY, summary)
    return summary


def _check_config(cfg: PredictConfig) -> None:
    """Range checks of the options (one line naming the value and the valid range)."""
    if cfg.workers < 1:
        raise ConfigError(f"workers = {cfg.workers}: must be >= 1")
    if cfg.recycle_every is not None and cfg.recycle_every < 1:
        raise ConfigError(f"recycle_every = {cfg.recycle_every}: must be >= 1 frame per worker")
    if cfg.max_frames is not None and cfg.max_frames < 1:
        raise ConfigError(f"max_frames = {cfg.max_frames}: must be >= 1")
    if cfg.batch_size < 1:
        raise ConfigError(f"batch_size = {cfg.batch_size}: must be >= 1")
    if cfg.precision not in ("float32", "float64"):
        raise ConfigError(f"precision = {cfg.precision!r}: use float32 or float64")
    if cfg.strain_axis not in (0, 1, 2):
        raise ConfigError(f"strain_axis = {cfg.strain_axis}: must be 0, 1 or 2")
    for t, (lo, hi) in (cfg.windows or {}).items():
        if not 0 <= lo < hi:
            raise ConfigError(f"window of {t} = ({lo}, {hi}): needs 0 <= low < high (Angstrom)")


def _run_frames(
    model_dir: Path, structure: Path, out: Path, cfg: PredictConfig, windows: dict[str, tuple[float, float]],
    settings: FeatureSettings, manifest: dict[str, Any], done: set[int], progress: _Progress,
    external: FrameExecutor | None = None, digest: str | None = None, frames: Iterator[Frame] | None = None,
) -> None:
    """Stream frames (``frames``, else read from ``structure``) to workers (own process pool,
    ``external`` or none); record finished frames in order in the manifest."""
    pending: dict[int, Any] = {}  # frame -> FrameMeta or a future of one
    next_record = 0
    limit = cfg.max_frames
    executor: Any = external
    if executor is None and not cfg.in_process:
        from concurrent.futures import ProcessPoolExecutor  # not imported by one-frame (in-process) runs

        executor = ProcessPoolExecutor(max_workers=max(1, cfg.workers), mp_context=_mp_context(),
                                       max_tasks_per_child=cfg.recycle_every, initializer=_worker_init,
                                       initargs=(os.getpid(), max(1, default_workers() // max(1, cfg.workers))))

    def record_ready(block: bool) -> None:
        nonlocal next_record
        while next_record in pending:
            item = pending[next_record]
            if not isinstance(item, FrameMeta):
                if not block and not item.done():
                    return
                item = item.result()
            manifest["frames"].append(asdict(item))
            manifest["frames"].sort(key=lambda m: m["frame"])  # a recomputed damaged frame goes in its place
            atomic_write_json(out / MANIFEST, manifest)
            progress.advance(item.frame)
            del pending[next_record]
            next_record += 1
            while next_record in done:
                next_record += 1

    try:
        while next_record in done:
            next_record += 1
        for k, frame in enumerate(frames if frames is not None else _frames(structure, cfg)):
            if limit is not None and k >= limit:
                break
            if manifest["l0"] is None:
                manifest["l0"] = float(np.linalg.norm(frame.atoms.cell.array[cfg.strain_axis]))
            if k in done:
                continue
            job = FrameJob(k, frame, manifest["l0"], str(model_dir.resolve()), str(out),
                           digest or model_digest(model_dir), windows, settings, cfg)
            if executor is None:
                pending[k] = infer_frame(job)
                record_ready(block=True)
            else:
                pending[k] = executor.submit(infer_frame, job)
                if len(pending) >= 2 * max(1, cfg.workers):
                    first = min(pending)
                    item = pending[first]
                    if not isinstance(item, FrameMeta):
                        item.result()
                record_ready(block=False)
        record_ready(block=True)
    finally:
        if external is not None:
            _drain(pending)
        elif executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _drain(pending: dict[int, Any]) -> None:
    """After an error: cancel the frames not yet started on an external executor and wait for the
    running ones (they write into the output folder), ignoring their outcome."""
    for item in pending.values():
        if isinstance(item, FrameMeta):
            continue
        with contextlib.suppress(Exception):  # parsl AppFutures do not implement cancel
            item.cancel()
    for item in pending.values():
        if isinstance(item, FrameMeta):
            continue
        with contextlib.suppress(Exception):  # the first error is already propagating
            item.result()


def _mp_context() -> Any:
    """Process start method: ``spawn`` (safe with the threads of the progress bar and BLAS)."""
    import multiprocessing

    return multiprocessing.get_context("spawn")


def _summary(manifest: dict[str, Any], wall: float, cfg: PredictConfig) -> dict[str, Any]:
    frames = manifest["frames"]
    secs = [f["seconds"] for f in frames]
    first = frames[0] if frames else None
    steps: dict[str, float] = {}
    for f in frames:
        for k, v in f.get("steps", {}).items():
            steps[k] = steps.get(k, 0.0) + v / len(frames)
    n_b = sum(f["n_bonds"] for f in frames)
    return {
        "frames": len(frames),
        "complete": manifest["complete"],
        "bonds": first["counts"] if first else {},
        "bonds_total_first_frame": first["n_bonds"] if first else 0,
        "n_atoms": first["n_atoms"] if first else 0,
        "seconds_per_frame": float(np.mean(secs)) if secs else None,
        "cpu_seconds_per_frame": float(np.mean([f.get("cpu_seconds", 0.0) for f in frames])) if frames else None,
        "seconds_per_frame_steps": steps,
        "wall_seconds_this_call": wall,
        "workers": cfg.workers,
        "strain": [f["strain"] for f in frames],
        "fraction_out_of_domain": sum(f["n_out_of_domain"] for f in frames) / n_b if n_b else 0.0,
        "fraction_fallback": sum(f["n_fallback"] for f in frames) / n_b if n_b else 0.0,
        "input": manifest["input"],
        "model": manifest["model"],
        "windows": manifest["windows"],
        "units": {"distance": "Angstrom", "minus_icohp": "eV", "std": "eV", "stress": "GPa", "time": "ps"},
    }


def default_workers() -> int:
    """Worker processes by default: the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
