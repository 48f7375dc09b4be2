"""DFT jobs per sub-run (pw.x SCF, then LOBSTER) as a small state machine run through parsl.

States are the ingest statuses computed from the files by :func:`bondml.io.getl.classify`
(``NEW``, ``SCF_CONVERGED_BUT_NO_ICOHP``, ``DONE``...); nothing here keeps its own notion of
state, so a re-run after any interruption picks up where the files say it stopped:

==========================================  ==========================================
status from the files                       next action
==========================================  ==========================================
``NEW``                                     SCF, then LOBSTER
``SCF_CONVERGED_BUT_NO_ICOHP``              LOBSTER only (or collect an ICOHPLIST)
labelled statuses (``DONE``...)             nothing: never resubmitted, never rewritten
``SCF_NOT_CONVERGED*``                      nothing (a physics failure, not transient);
                                            ``retry_failed=True`` moves the old output
                                            aside (``*.failed-<n>``) and starts again
==========================================  ==========================================

Execution goes through parsl (ThreadPool locally, HighThroughputExecutor on Slurm/PBS blocks).
Transient failures (a step killed by a signal, a launcher that could not start) raise
:class:`TransientJobError` and are retried by parsl's ``retries``; permanent ones (missing
executable, missing input) fail at once with a one-line message. Each step writes its output
to a ``.running`` file renamed on completion, so a killed job leaves no half result behind and
nothing finished is ever overwritten. Every attempt is logged in ``bondml-job.json``.

LOBSTER is proprietary; its step is a real command template (default ``lobster-3.0.0``). When
the executable is absent the job collects an ``ICOHPLIST.lobster`` already present (e.g. run
elsewhere and copied in) or else ends as ``SCF_CONVERGED_BUT_NO_ICOHP``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..constants import LABELLED_STATUSES
from ..errors import ConfigError, JobError
from ..io.getl import STATUS_NEW, SubRunFiles, classify, discover, subrun_path
from ..types import CellId
from ..util import atomic_write_json, atomic_write_text

#: File in each sub-run folder logging every job attempt (JSON).
JOB_RECORD = "bondml-job.json"
#: Submit script written into each sub-run folder (dry-run and scheduler use).
JOB_SCRIPT = "bondml-job.sh"
#: Statuses after which the job has nothing left to do.
FINAL_FAILURES: frozenset[str] = frozenset({"SCF_NOT_CONVERGED", "SCF_NOT_CONVERGED_AND_NO_ICOHP"})
EXECUTOR_KINDS: tuple[str, ...] = ("local", "slurm", "pbs")


class TransientJobError(JobError):
    """A failure worth retrying (process killed by a signal, launcher hiccup)."""


@dataclass(frozen=True)
class ExecutorConfig:
    """Where and how jobs run.

    ``kind``: ``local`` (parsl ThreadPool, ``max_workers`` jobs at once), ``slurm`` or ``pbs``
    (parsl HighThroughputExecutor on scheduler blocks). ``partition`` is the Slurm partition,
    ``queue`` the PBS queue; ``walltime`` ``HH:MM:SS`` per block/job; ``nodes`` per block;
    ``cores`` MPI ranks per job; ``account`` the allocation; ``worker_init`` shell lines run
    before a job (module loads, venv activation); ``retries`` parsl retries of transient failures;
    ``max_blocks`` scheduler blocks at most; ``cores_per_node`` cores of one node (HTEX sizing).
    On Slurm/PBS, ``worker_init`` must put bondml's environment on the compute node's PATH
    (e.g. ``source /path/to/venv/bin/activate``): parsl starts ``process_worker_pool.py`` there.
    """

    kind: str = "local"
    partition: str | None = None
    queue: str | None = None
    walltime: str = "24:00:00"
    nodes: int = 1
    cores: int = 1
    account: str | None = None
    worker_init: str = ""
    retries: int = 2
    max_workers: int = 1
    max_blocks: int = 1
    cores_per_node: int | None = None
    mem_per_job_gb: float | None = None

    def validate(self) -> ExecutorConfig:
        """Return self when consistent, else raise a one-line :class:`ConfigError`."""
        if self.kind not in EXECUTOR_KINDS:
            raise ConfigError(f"executor kind {self.kind!r} is not one of {', '.join(EXECUTOR_KINDS)}")
        for name in ("nodes", "cores", "max_workers", "max_blocks"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"executor {name} must be >= 1, got {getattr(self, name)}")
        if self.retries < 0:
            raise ConfigError(f"executor retries must be >= 0, got {self.retries}")
        parts = self.walltime.split(":")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ConfigError(f"walltime {self.walltime!r} is not HH:MM:SS")
        return self

    @property
    def walltime_s(self) -> int:
        h, m, s = (int(p) for p in self.walltime.split(":"))
        return h * 3600 + m * 60 + s


@dataclass(frozen=True)
class JobSpec:
    """One sub-run job: the folder, composition, commands and per-job resources.

    ``pw_command``/``lobster_command`` are executables (optionally with arguments);
    ``mpi_command`` is a template with ``{cores}`` used when ``cores > 1``;
    ``timeout_s`` bounds each step (seconds); ``retry_failed`` restarts non-converged SCFs.
    """

    cell: CellId
    folder: str
    cores: int = 1
    pw_command: str = "pw.x"
    lobster_command: str = "lobster-3.0.0"
    mpi_command: str = "mpirun -np {cores}"
    timeout_s: float | None = None
    retry_failed: bool = False

    @property
    def files(self) -> SubRunFiles:
        return SubRunFiles(Path(self.folder), self.cell.nc)


@dataclass(frozen=True)
class JobOutcome:
    """What a job (or a skipped sub-run) ended as."""

    cell: CellId
    status: str
    reason: str
    action: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status in LABELLED_STATUSES


# --------------------------------------------------------------------------------------------
# state machine


def next_action(status: str, retry_failed: bool = False) -> str:
    """What a job must do for a sub-run in ``status``: ``scf+lobster``, ``lobster`` or ``none``."""
    if status in LABELLED_STATUSES:
        return "none"
    if status == STATUS_NEW:
        return "scf+lobster"
    if status == "SCF_CONVERGED_BUT_NO_ICOHP":
        return "lobster"
    if status in FINAL_FAILURES:
        return "scf+lobster" if retry_failed else "none"
    raise ConfigError(f"unknown sub-run status {status!r}")


def scf_command(spec: JobSpec) -> list[str]:
    """Argument list of the pw.x step (stdin-free: ``-in <NC>.scf.in``)."""
    cmd = shlex.split(spec.pw_command) + ["-in", spec.files.scf_in.name]
    if spec.cores > 1:
        cmd = shlex.split(spec.mpi_command.format(cores=spec.cores)) + cmd
    return cmd


def lobster_command(spec: JobSpec) -> list[str]:
    """Argument list of the LOBSTER step (reads ``lobsterin`` in the sub-run folder)."""
    return shlex.split(spec.lobster_command)


def _record(folder: Path, entry: dict) -> None:
    """Append one attempt to the sub-run's job log (atomic rewrite of a small JSON file)."""
    import json

    path = folder / JOB_RECORD
    log: dict = {"attempts": []}
    if path.is_file():
        try:
            log = json.loads(path.read_text())
        except ValueError:
            log = {"attempts": [], "note": "previous log unreadable, restarted"}
    log.setdefault("attempts", []).append(entry)
    log["last"] = entry
    atomic_write_json(path, log)


def last_job_entry(folder: str | Path) -> dict | None:
    """The last logged job attempt of a sub-run folder, or None."""
    import json

    path = Path(folder) / JOB_RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get("last")
    except ValueError:
        return None


def _set_aside(path: Path) -> Path | None:
    """Rename ``path`` to ``path.failed-<n>`` (first free n); nothing is deleted."""
    if not path.exists():
        return None
    n = 1
    while path.with_name(f"{path.name}.failed-{n}").exists():
        n += 1
    target = path.with_name(f"{path.name}.failed-{n}")
    path.rename(target)
    return target


def _which(cmd: list[str]) -> str | None:
    return shutil.which(cmd[0])


def _run_step(cmd: list[str], cwd: Path, out: Path, timeout_s: float | None,
              stdin: Path | None = None) -> tuple[int, float]:
    """Run ``cmd`` in ``cwd`` writing stdout+stderr to ``out.running``, then rename it to ``out``.

    Returns (return code, wall seconds). A missing executable is a :class:`JobError`; a process
    killed by a signal is a :class:`TransientJobError` (its partial output is kept as
    ``out.killed-<n>``, never as ``out``). ``out`` must not exist (never overwritten).
    """
    if out.exists():
        raise JobError(f"{out}: exists already; a job never overwrites a result")
    if _which(cmd) is None:
        raise JobError(f"executable {cmd[0]!r} not found on PATH")
    running = out.with_name(out.name + ".running")
    t0 = time.perf_counter()
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    try:
        with open(running, "wb") as fh:
            fin = open(stdin, "rb") if stdin is not None else subprocess.DEVNULL
            try:
                proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, stdin=fin,
                                      timeout=timeout_s, env=env, check=False)
            finally:
                if stdin is not None:
                    fin.close()
    except subprocess.TimeoutExpired:
        running.rename(out)  # the partial output tells classify where it stopped
        return -9999, time.perf_counter() - t0
    except OSError as exc:
        raise TransientJobError(f"{cmd[0]}: could not start ({exc})") from None
    wall = time.perf_counter() - t0
    if proc.returncode < 0:
        n = 1
        while out.with_name(f"{out.name}.killed-{n}").exists():
            n += 1
        running.rename(out.with_name(f"{out.name}.killed-{n}"))
        raise TransientJobError(f"{cmd[0]} killed by signal {-proc.returncode} in {cwd}")
    running.rename(out)
    return proc.returncode, wall


def _run_scf(spec: JobSpec, entry: dict) -> None:
    f = spec.files
    if not f.scf_in.is_file():
        raise JobError(f"{f.scf_in}: pw.x input missing (write the inputs first)")
    if f.scf_out.exists():
        if not spec.retry_failed:
            raise JobError(f"{f.scf_out}: exists already; a job never overwrites a result")
        entry["set_aside"] = str(_set_aside(f.scf_out))
    rc, wall = _run_step(scf_command(spec), f.folder, f.scf_out, spec.timeout_s)
    entry["scf"] = {"returncode": rc, "wall_s": round(wall, 3), "command": " ".join(scf_command(spec))}
    if rc != 0:
        entry["scf"]["message"] = _pw_error(f.scf_out, rc)


def _pw_error(path: Path, rc: int) -> str:
    """One line saying why pw.x failed: its ``Error in routine`` block, else the exit code."""
    if rc == -9999:
        return "pw.x hit the job's time limit"
    lines = path.read_text(errors="replace").splitlines()
    for k, line in enumerate(lines):
        if "Error in routine" in line:
            detail = lines[k + 1].strip() if k + 1 < len(lines) else ""
            return f"pw.x {line.strip()}: {detail}".strip()
    return f"pw.x exited with status {rc}"


def _run_lobster(spec: JobSpec, entry: dict) -> None:
    f = spec.files
    if f.icohplist.is_file():
        entry["lobster"] = {"collected": str(f.icohplist)}
        return
    cmd = lobster_command(spec)
    if _which(cmd) is None:
        entry["lobster"] = {"missing_executable": cmd[0],
                            "message": f"LOBSTER executable {cmd[0]!r} not found and no ICOHPLIST to collect"}
        return
    if not f.lobsterin.is_file():
        raise JobError(f"{f.lobsterin}: lobsterin missing (write the inputs first)")
    lb_out = f.folder / f"{spec.cell.nc}.lb.out"
    _set_aside(lb_out)
    rc, wall = _run_step(cmd, f.folder, lb_out, spec.timeout_s)
    entry["lobster"] = {"returncode": rc, "wall_s": round(wall, 3), "command": " ".join(cmd)}


def run_subrun_job(spec: JobSpec) -> JobOutcome:
    """Run what the sub-run still needs (SCF and/or LOBSTER) and return its new status.

    Skips labelled sub-runs. Raises :class:`JobError` (permanent) or
    :class:`TransientJobError` (retry worth it); both are logged in ``bondml-job.json``.
    """
    folder = Path(spec.folder)
    before = classify(folder, spec.cell.nc)
    action = next_action(before.status, spec.retry_failed)
    if action == "none":
        return JobOutcome(spec.cell, before.status, before.reason, "none")
    entry: dict = {"cell": str(spec.cell), "action": action, "status_before": before.status,
                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        if action == "scf+lobster":
            _run_scf(spec, entry)
            mid = classify(folder, spec.cell.nc)
            if mid.status == "SCF_CONVERGED_BUT_NO_ICOHP" or mid.status in LABELLED_STATUSES:
                _run_lobster(spec, entry)
        else:
            _run_lobster(spec, entry)
    except JobError as exc:
        entry["error"] = str(exc)
        entry["transient"] = isinstance(exc, TransientJobError)
        entry["status_after"] = classify(folder, spec.cell.nc).status
        _record(folder, entry)
        raise
    after = classify(folder, spec.cell.nc)
    reason = after.reason
    for step in ("scf", "lobster"):
        if step in entry and "message" in entry[step]:
            reason = f"{reason}; {entry[step]['message']}"
    entry.update(status_after=after.status, reason=reason, ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    _record(folder, entry)
    return JobOutcome(spec.cell, after.status, reason, action)


# --------------------------------------------------------------------------------------------
# inputs, planning, submit scripts, dry run


def default_pseudo_dir() -> Path | None:
    """``$ESPRESSO_PSEUDO`` if set, else Debian's ``quantum-espresso-data`` folder when present."""
    env = os.environ.get("ESPRESSO_PSEUDO")
    if env:
        return Path(env)
    for c in (Path("/usr/share/espresso/pseudo"),):
        if c.is_dir():
            return c
    return None


def prepare_inputs(folder: str | Path, nc: str, pseudo_dir: str | Path, settings=None,
                   lobster_style: str = "generator") -> list[Path]:
    """Write ``<NC>.scf.in`` and ``lobsterin`` for a sub-run from its ``<NC>.xyz``.

    Existing inputs are kept as they are (never overwritten); a missing pseudopotential is a
    one-line :class:`InputFileError` naming the file. pw.x runs in the sub-run folder with
    ``outdir='./'`` (LOBSTER reads the wavefunctions there). Returns the files written.
    """
    from ase.io import read

    from ..errors import InputFileError
    from .dft import QESettings, write_lobsterin, write_pw_input

    f = SubRunFiles(Path(folder), nc)
    if not f.xyz.is_file():
        raise InputFileError(f.xyz, "structure file missing: cannot write DFT inputs")
    atoms = read(f.xyz)
    written: list[Path] = []
    if not f.scf_in.exists():
        written.append(write_pw_input(atoms, f.scf_in, pseudo_dir, settings or QESettings(), prefix=nc,
                                      outdir="./"))
    if not f.lobsterin.exists():
        written.append(write_lobsterin(atoms, f.lobsterin, style=lobster_style))  # type: ignore[arg-type]
    return written


def plan_jobs(root: str | Path, cells: Iterable[CellId] | None = None, retry_failed: bool = False,
              **spec_kw: object) -> tuple[list[JobSpec], list[JobOutcome]]:
    """Split the sub-runs of a tree into jobs to run and sub-runs with nothing to do.

    ``cells`` defaults to every sub-run of the tree; ``spec_kw`` are :class:`JobSpec` fields.
    """
    todo: list[JobSpec] = []
    skipped: list[JobOutcome] = []
    for cell in (sorted(cells) if cells is not None else discover(root)):
        folder = subrun_path(root, cell)
        rep = classify(folder, cell.nc)
        action = next_action(rep.status, retry_failed)
        if action == "none":
            skipped.append(JobOutcome(cell, rep.status, rep.reason, "none"))
        else:
            todo.append(JobSpec(cell=cell, folder=str(folder), retry_failed=retry_failed, **spec_kw))  # type: ignore[arg-type]
    return todo, skipped


def _scheduler_header(spec: JobSpec, cfg: ExecutorConfig) -> list[str]:
    name = f"bondml-{spec.cell.key}"
    if cfg.kind == "slurm":
        h = [f"#SBATCH --job-name={name}", "#SBATCH --nodes=1", f"#SBATCH --ntasks={spec.cores}",
             f"#SBATCH --time={cfg.walltime}", f"#SBATCH --chdir={spec.folder}",
             f"#SBATCH --output={spec.folder}/bondml-job.%j.log"]
        if cfg.partition:
            h.append(f"#SBATCH --partition={cfg.partition}")
        if cfg.account:
            h.append(f"#SBATCH --account={cfg.account}")
        if cfg.mem_per_job_gb:
            h.append(f"#SBATCH --mem={int(cfg.mem_per_job_gb * 1024)}M")
        return h
    if cfg.kind == "pbs":
        sel = f"select=1:ncpus={spec.cores}:mpiprocs={spec.cores}"
        if cfg.mem_per_job_gb:
            sel += f":mem={int(cfg.mem_per_job_gb)}gb"
        h = [f"#PBS -N {name[:15]}", f"#PBS -l {sel}", f"#PBS -l walltime={cfg.walltime}",
             "#PBS -j oe", f"#PBS -o {spec.folder}/bondml-job.pbs.log"]
        if cfg.queue or cfg.partition:
            h.append(f"#PBS -q {cfg.queue or cfg.partition}")
        if cfg.account:
            h.append(f"#PBS -A {cfg.account}")
        return h
    return []


def render_job_script(spec: JobSpec, cfg: ExecutorConfig) -> str:
    """The submit script of one sub-run (sbatch/qsub header for Slurm/PBS, plain bash locally).

    It does what :func:`run_subrun_job` does, in shell: skip when an ICOHPLIST exists, run pw.x
    unless an output exists, run LOBSTER when the SCF converged and the executable exists.
    """
    f = spec.files
    q = shlex.quote
    scf = " ".join(q(a) for a in scf_command(spec))
    lob = " ".join(q(a) for a in lobster_command(spec))
    lob_exe = q(lobster_command(spec)[0])
    lines = ["#!/usr/bin/env bash", *_scheduler_header(spec, cfg),
             f"# bondml DFT job for {spec.cell} (pw.x SCF, then LOBSTER); never overwrites results",
             "set -u", f"cd {q(spec.folder)} || exit 2"]
    if cfg.worker_init.strip():
        lines.append(cfg.worker_init.strip())
    lines += [
        f"if [ -s {q(f.icohplist.name)} ]; then echo 'ICOHPLIST.lobster present: nothing to do'; exit 0; fi",
        f"if [ ! -e {q(f.scf_out.name)} ]; then",
        f"    {scf} > {q(f.scf_out.name)}.running 2>&1",
        "    rc=$?",
        "    if [ $rc -gt 128 ]; then echo \"pw.x killed (exit $rc)\" >&2; exit $rc; fi",
        f"    mv {q(f.scf_out.name)}.running {q(f.scf_out.name)}",
        "fi",
        f"if ! grep -q 'convergence has been achieved' {q(f.scf_out.name)}; then",
        "    echo 'SCF not converged: LOBSTER skipped' >&2; exit 1",
        "fi",
        f"if ! command -v {lob_exe} >/dev/null 2>&1; then",
        f"    echo 'LOBSTER executable {lobster_command(spec)[0]} not found: status SCF_CONVERGED_BUT_NO_ICOHP' >&2",
        "    exit 3",
        "fi",
        f"if [ -e {q(spec.cell.nc + '.lb.out')} ]; then mv {q(spec.cell.nc + '.lb.out')} "
        f"{q(spec.cell.nc + '.lb.out')}.old-$(date +%s); fi",
        f"{lob} > {q(spec.cell.nc + '.lb.out')} 2>&1",
        "",
    ]
    return "\n".join(lines)


def write_job_scripts(specs: Sequence[JobSpec], cfg: ExecutorConfig, root: str | Path) -> Path:
    """Write each job's ``bondml-job.sh`` and ``<root>/bondml-submit-<kind>.sh`` submitting them all.

    Returns the path of the top-level submit script. Nothing is run.
    """
    cfg.validate()
    submit = {"slurm": "sbatch", "pbs": "qsub", "local": "bash"}[cfg.kind]
    lines = ["#!/usr/bin/env bash", f"# bondml: submit {len(specs)} sub-run job(s) ({cfg.kind})"]
    if cfg.kind != "local":
        lines.append("set -e  # stop at the first submission the scheduler refuses")
    for spec in specs:
        path = Path(spec.folder) / JOB_SCRIPT
        atomic_write_text(path, render_job_script(spec, cfg))
        path.chmod(0o755)
        if cfg.kind == "local":  # one job's failure does not stop the others
            lines.append(f"{submit} {shlex.quote(str(path))} || echo \"{spec.cell}: job exited $?\" >&2")
        else:
            lines.append(f"{submit} {shlex.quote(str(path))}")
    top = Path(root) / f"bondml-submit-{cfg.kind}.sh"
    atomic_write_text(top, "\n".join(lines) + "\n")
    top.chmod(0o755)
    return top


# --------------------------------------------------------------------------------------------
# parsl execution


def _interchange_cmd() -> list[str] | None:
    """parsl's interchange started with this interpreter (works without an activated venv)."""
    import sys

    script = Path(sys.executable).parent / "interchange.py"
    return [sys.executable, str(script)] if script.is_file() else None


def build_parsl_config(cfg: ExecutorConfig, run_dir: str | Path):  # -> parsl.config.Config
    """A parsl ``Config`` for ``cfg``: ThreadPool locally, HTEX on a Slurm/PBS provider.

    Transient failures (:class:`TransientJobError`) cost one retry; any other error costs more
    than the retry budget, so permanent failures are not retried.
    """
    from parsl.config import Config

    cfg.validate()
    retries = cfg.retries

    def retry_handler(exc: BaseException, _task: object) -> float:
        return 1.0 if isinstance(exc, TransientJobError) else float(retries + 1)

    if cfg.kind == "local":
        from parsl.executors.threads import ThreadPoolExecutor

        executor = ThreadPoolExecutor(label="bondml_local", max_threads=cfg.max_workers)
    else:
        from parsl.executors import HighThroughputExecutor
        from parsl.launchers import SimpleLauncher

        per_node = cfg.cores_per_node or cfg.cores
        common = dict(nodes_per_block=cfg.nodes, init_blocks=0, min_blocks=0, max_blocks=cfg.max_blocks,
                      walltime=cfg.walltime, worker_init=cfg.worker_init, launcher=SimpleLauncher())
        if cfg.kind == "slurm":
            from parsl.providers import SlurmProvider

            provider = SlurmProvider(partition=cfg.partition or "", account=cfg.account,
                                     exclusive=False, cores_per_node=per_node,
                                     mem_per_node=int(cfg.mem_per_job_gb) if cfg.mem_per_job_gb else None,
                                     **common)
        else:
            from parsl.providers import PBSProProvider

            provider = PBSProProvider(queue=cfg.queue or cfg.partition, account=cfg.account,
                                      cpus_per_node=per_node, **common)
        executor = HighThroughputExecutor(label=f"bondml_{cfg.kind}", cores_per_worker=cfg.cores,
                                          max_workers_per_node=max(1, per_node // cfg.cores),
                                          provider=provider, interchange_launch_cmd=_interchange_cmd())
    return Config(executors=[executor], retries=retries, retry_handler=retry_handler,
                  run_dir=str(run_dir), initialize_logging=False, usage_tracking=0, strategy="simple")


def run_jobs(specs: Sequence[JobSpec], cfg: ExecutorConfig, run_dir: str | Path,
             on_done: Callable[[JobOutcome], None] | None = None) -> list[JobOutcome]:
    """Submit ``specs`` through parsl, wait for all, and return one outcome per job.

    Failed jobs (after retries) come back as outcomes with ``error`` set and the status the
    files give; nothing raises for a single job's failure. ``on_done`` is called per job
    (e.g. to advance a progress bar).
    """
    import parsl
    from parsl.app.app import python_app

    if not specs:
        return []
    config = build_parsl_config(cfg, run_dir)
    outcomes: list[JobOutcome] = []
    with parsl.load(config) as dfk:
        app = python_app(run_subrun_job, data_flow_kernel=dfk, executors=[config.executors[0].label])
        futures = [(spec, app(spec)) for spec in specs]
        from concurrent.futures import as_completed

        index = {fut: spec for spec, fut in futures}
        for fut in as_completed(index):
            spec = index[fut]
            try:
                out = fut.result()
            except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the others
                rep = classify(spec.folder, spec.cell.nc)
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if type(exc).__name__ == "BadStateException":
                    msg = (f"{cfg.kind} scheduler refused or lost the job's block ({msg}); "
                           f"parsl's submit scripts are under {run_dir}")
                out = JobOutcome(spec.cell, rep.status, rep.reason, "failed", error=msg)
            outcomes.append(out)
            if on_done is not None:
                on_done(out)
    return sorted(outcomes, key=lambda o: o.cell)


def specs_with(specs: Sequence[JobSpec], **changes: object) -> list[JobSpec]:
    """Copies of ``specs`` with some fields changed (e.g. ``cores``)."""
    return [replace(s, **changes) for s in specs]  # type: ignore[arg-type]


def outcome_dict(o: JobOutcome) -> dict:
    """JSON-friendly form of an outcome."""
    d = asdict(o)
    d["cell"] = str(o.cell)
    return d


@dataclass
class StatusRow:
    """One row of the status table."""

    cell: CellId
    status: str
    reason: str
    labels: list[str] = field(default_factory=list)
    last_job: str | None = None

    def to_dict(self) -> dict:
        return {"nc": self.cell.nc, "run": self.cell.run, "sub_run": self.cell.sub_run,
                "status": self.status, "reason": self.reason, "labels": self.labels,
                "last_job": self.last_job}


def tree_status(root: str | Path) -> list[StatusRow]:
    """Status of every sub-run of a tree: ingest status, reason, label sources, last job error."""
    from .xtb import has_xtb_labels

    rows = []
    for cell in discover(root):
        folder = subrun_path(root, cell)
        rep = classify(folder, cell.nc)
        labels = []
        if rep.labelled:
            labels.append("lobster")
        if has_xtb_labels(folder, cell.nc):
            labels.append("xtb-gfn1")
        last = last_job_entry(folder)
        last_s = None
        if last is not None:
            last_s = last.get("error") or last.get("status_after")
        rows.append(StatusRow(cell, rep.status, rep.reason, labels, last_s))
    return rows
