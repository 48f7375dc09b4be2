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

The job's steps are defined once, in :data:`JOB_STEPS` (pw.x, then LOBSTER: input, command,
output, the check that says a step succeeded, what an existing output or a missing executable
means). :func:`run_subrun_job` (Python, on any engine) and :func:`render_job_script` (bash, for
``sbatch``/``qsub`` or by hand) both follow that table, so they cannot drift apart.

Execution goes through :class:`bondml.execution.Engine` (the same engine and executor config
as the pipeline: parsl threads locally, HTEX on Slurm/PBS/Torque blocks, or Dask). Transient
failures (a step killed by a signal, a launcher that could not start) raise
:class:`TransientJobError` and are retried by parsl's ``retries``; permanent ones (missing
executable, missing input) fail at once with a one-line message. Each step writes its output
to a ``.running`` file renamed on completion, so a killed job leaves no half result behind and
nothing finished is ever overwritten. Every attempt is logged in ``bondml-job.json``.

LOBSTER is proprietary; its step is a real command template (default ``lobster-3.0.0``). When
the executable is absent the job collects an ``ICOHPLIST.lobster`` already present (e.g. run
elsewhere and copied in) or else ends as ``SCF_CONVERGED_BUT_NO_ICOHP``.
"""

from __future__ import annotations

import contextlib
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
from ..execution import (  # noqa: F401 - re-exported
    EXECUTOR_KINDS,
    Engine,
    ExecutorConfig,
    TransientJobError,
    build_parsl_config,
    first_line,
)
from ..io.getl import STATUS_NEW, SubRunFiles, classify, discover, subrun_path
from ..types import CellId
from ..util import atomic_write_json, atomic_write_text

#: File in each sub-run folder logging every job attempt (JSON).
JOB_RECORD = "bondml-job.json"
#: Submit script written into each sub-run folder (dry-run and scheduler use).
JOB_SCRIPT = "bondml-job.sh"
#: Statuses after which the job has nothing left to do.
FINAL_FAILURES: frozenset[str] = frozenset({"SCF_NOT_CONVERGED", "SCF_NOT_CONVERGED_AND_NO_ICOHP"})


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
        with (open(running, "wb") as fh,
              open(stdin, "rb") if stdin is not None else contextlib.nullcontext(subprocess.DEVNULL) as fin):
            proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, stdin=fin,
                                  timeout=timeout_s, env=env, check=False)
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


# ---------------------------------------------------------------------------------------------
# the job's steps, defined once


@dataclass(frozen=True)
class JobStep:
    """One step of a DFT job: the single definition the Python runner and the bash script follow.

    ``input``/``output``/``done_file``: file names in the sub-run folder (``{nc}`` is replaced by
    the composition); ``done_pattern``: text whose presence in ``done_file`` says the step
    succeeded (None: ``done_file`` exists and is not empty); ``existing_output``: ``final`` (an
    output that exists is the step's result: never rerun, unless ``retry_failed`` sets it aside)
    or ``set-aside`` (an old output is moved aside and the step runs again);
    ``missing_executable``: ``error`` (a permanent job failure) or ``stop`` (the job ends, its
    status, ``stop_status``, says why; exit code ``stop_exit`` in the script).
    """

    name: str
    program: str
    input: str
    output: str
    done_file: str
    done_pattern: str | None
    existing_output: str
    missing_executable: str
    stop_status: str = ""
    stop_exit: int = 3

    def path(self, spec: JobSpec, which: str) -> Path:
        return Path(spec.folder) / getattr(self, which).format(nc=spec.cell.nc)

    def command(self, spec: JobSpec) -> list[str]:
        return scf_command(spec) if self.name == "scf" else lobster_command(spec)

    def done(self, spec: JobSpec) -> bool:
        """Did this step succeed (the same test as the script's ``done`` check)?"""
        f = self.path(spec, "done_file")
        if not f.is_file() or f.stat().st_size == 0:
            return False
        return self.done_pattern is None or self.done_pattern in f.read_text(errors="replace")

    def shell_done(self, spec: JobSpec) -> str:
        """The same test in POSIX shell."""
        name = shlex.quote(self.done_file.format(nc=spec.cell.nc))
        if self.done_pattern is None:
            return f"[ -s {name} ]"
        return f"grep -qF {shlex.quote(self.done_pattern)} {name} 2>/dev/null"


#: The DFT job: pw.x SCF (its output is final: a non-converged SCF is a physics failure), then
#: LOBSTER (absent executable: the job ends as SCF_CONVERGED_BUT_NO_ICOHP).
JOB_STEPS: tuple[JobStep, ...] = (
    JobStep("scf", "pw.x", input="{nc}.scf.in", output="{nc}.scf.out", done_file="{nc}.scf.out",
            done_pattern="convergence has been achieved", existing_output="final", missing_executable="error"),
    JobStep("lobster", "LOBSTER", input="lobsterin", output="{nc}.lb.out", done_file="ICOHPLIST.lobster",
            done_pattern=None, existing_output="set-aside", missing_executable="stop",
            stop_status="SCF_CONVERGED_BUT_NO_ICOHP", stop_exit=3),
)


def _steps_for(action: str) -> tuple[JobStep, ...]:
    return JOB_STEPS if action == "scf+lobster" else JOB_STEPS[1:]


def _run_py_step(step: JobStep, spec: JobSpec, entry: dict) -> bool:
    """Run one step in Python; False when the job stops here (the status says why)."""
    cmd = step.command(spec)
    if _which(cmd) is None:
        if step.missing_executable == "error":
            raise JobError(f"executable {cmd[0]!r} not found on PATH")
        entry[step.name] = {"missing_executable": cmd[0],
                            "message": f"{step.program} executable {cmd[0]!r} not found and no "
                                       f"{step.done_file.format(nc=spec.cell.nc)} to collect"}
        return False
    inp = step.path(spec, "input")
    if not inp.is_file():
        raise JobError(f"{inp}: {step.program} input missing (write the inputs first)")
    out = step.path(spec, "output")
    if out.exists():
        if step.existing_output == "final" and not spec.retry_failed:
            raise JobError(f"{out}: exists already; a job never overwrites a result")
        moved = _set_aside(out)
        if step.existing_output == "final":
            entry["set_aside"] = str(moved)
    rc, wall = _run_step(cmd, Path(spec.folder), out, spec.timeout_s)
    entry[step.name] = {"returncode": rc, "wall_s": round(wall, 3), "command": " ".join(cmd)}
    if rc != 0 and step.name == "scf":
        entry[step.name]["message"] = _pw_error(out, rc)
    return True


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


def run_subrun_job(spec: JobSpec) -> JobOutcome:
    """Run what the sub-run still needs (the steps of :data:`JOB_STEPS`) and return its new status.

    Skips labelled sub-runs. A step whose ``done`` check holds is not rerun (an ICOHPLIST copied
    in is collected); a step runs only when the one before it succeeded. Raises
    :class:`JobError` (permanent) or :class:`TransientJobError` (retry worth it); both are
    logged in ``bondml-job.json``.
    """
    folder = Path(spec.folder)
    before = classify(folder, spec.cell.nc)
    action = next_action(before.status, spec.retry_failed)
    if action == "none":
        return JobOutcome(spec.cell, before.status, before.reason, "none")
    entry: dict = {"cell": str(spec.cell), "action": action, "status_before": before.status,
                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        steps = _steps_for(action)
        for k, step in enumerate(steps):
            if step.done(spec):
                if step.name != "scf":
                    entry[step.name] = {"collected": str(step.path(spec, "done_file"))}
                continue
            if k > 0 and not steps[k - 1].done(spec):
                break  # the step before did not succeed: the status says why
            if not _run_py_step(step, spec, entry):
                break
    except JobError as exc:
        entry["error"] = str(exc)
        entry["transient"] = isinstance(exc, TransientJobError)
        entry["status_after"] = classify(folder, spec.cell.nc).status
        _record(folder, entry)
        raise
    after = classify(folder, spec.cell.nc)
    reason = after.reason
    for step in JOB_STEPS:
        if step.name in entry and "message" in entry[step.name]:
            reason = f"{reason}; {entry[step.name]['message']}"
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
    """``#SBATCH`` / ``#PBS`` lines of one job from the executor config (one node, ``spec.cores`` ranks)."""
    name = f"bondml-{spec.cell.key}"
    extra = [ln.strip() for ln in cfg.scheduler_options.splitlines() if ln.strip()]
    if cfg.kind == "slurm":
        h = [f"#SBATCH --job-name={name}", "#SBATCH --nodes=1", f"#SBATCH --ntasks={spec.cores}",
             f"#SBATCH --time={cfg.walltime}", f"#SBATCH --chdir={spec.folder}",
             f"#SBATCH --output={spec.folder}/bondml-job.%j.log"]
        if cfg.partition:
            h.append(f"#SBATCH --partition={cfg.partition}")
        if cfg.account:
            h.append(f"#SBATCH --account={cfg.account}")
        if cfg.mem_per_node_gb:
            h.append(f"#SBATCH --mem={int(cfg.mem_per_node_gb * 1024)}M")
        return h + extra
    if cfg.kind in ("pbs", "torque"):
        if cfg.kind == "pbs":
            sel = f"select=1:ncpus={spec.cores}:mpiprocs={spec.cores}"
            if cfg.mem_per_node_gb:
                sel += f":mem={int(cfg.mem_per_node_gb)}gb"
        else:
            sel = f"nodes=1:ppn={spec.cores}"
        h = [f"#PBS -N {name[:15]}", f"#PBS -l {sel}", f"#PBS -l walltime={cfg.walltime}",
             "#PBS -j oe", f"#PBS -o {spec.folder}/bondml-job.pbs.log"]
        if cfg.queue or cfg.partition:
            h.append(f"#PBS -q {cfg.queue or cfg.partition}")
        if cfg.account:
            h.append(f"#PBS -A {cfg.account}")
        return h + extra
    return []


def _shell_step(step: JobStep, spec: JobSpec, previous: JobStep | None) -> list[str]:
    """One step of :data:`JOB_STEPS` in bash (the same checks as :func:`run_subrun_job`)."""
    q = shlex.quote
    out = q(step.output.format(nc=spec.cell.nc))
    cmd = step.command(spec)
    lines = [f"# step {step.name}: {step.program}", f"if ! {step.shell_done(spec)}; then"]
    if previous is not None:
        lines += [f"    if ! {previous.shell_done(spec)}; then",
                  f"        echo '{previous.name} did not succeed: {step.name} skipped' >&2; exit 1", "    fi"]
    if step.missing_executable == "error":
        lines += [f"    command -v {q(cmd[0])} >/dev/null 2>&1 || "
                  f"{{ echo 'executable {cmd[0]} not found on PATH' >&2; exit 2; }}"]
    else:
        lines += [f"    if ! command -v {q(cmd[0])} >/dev/null 2>&1; then",
                  f"        echo '{step.program} executable {cmd[0]} not found: status {step.stop_status}' >&2",
                  f"        exit {step.stop_exit}", "    fi"]
    lines += [f"    [ -f {q(step.input.format(nc=spec.cell.nc))} ] || "
              f"{{ echo '{step.input.format(nc=spec.cell.nc)}: {step.program} input missing' >&2; exit 2; }}"]
    if step.existing_output == "final":
        lines += [f"    if [ -e {out} ]; then echo '{step.output.format(nc=spec.cell.nc)} exists and did not "
                  f"succeed: final (a job never overwrites a result)' >&2; exit 1; fi"]
    else:
        lines += [f"    if [ -e {out} ]; then mv {out} {out}.old-$(date +%s); fi"]
    lines += [f"    {' '.join(q(a) for a in cmd)} > {out}.running 2>&1",
              "    rc=$?",
              f"    if [ $rc -gt 128 ]; then echo \"{step.program} killed (exit $rc)\" >&2; exit $rc; fi",
              f"    mv {out}.running {out}",
              "fi"]
    return lines


def render_job_script(spec: JobSpec, cfg: ExecutorConfig) -> str:
    """The submit script of one sub-run (sbatch/qsub header for Slurm/PBS, plain bash locally).

    Rendered from :data:`JOB_STEPS`, the table :func:`run_subrun_job` runs: nothing to do when
    the last step succeeded already; each step runs only when the one before it succeeded,
    never overwrites a final output, and stops as the table says on a missing executable.
    """
    last = JOB_STEPS[-1]
    lines = ["#!/usr/bin/env bash", *_scheduler_header(spec, cfg),
             f"# bondml DFT job for {spec.cell} ({', then '.join(s.program for s in JOB_STEPS)}); "
             "never overwrites results",
             "set -u", f"cd {shlex.quote(spec.folder)} || exit 2"]
    if cfg.worker_init.strip():
        lines.append(cfg.worker_init.strip())
    lines.append(f"if {last.shell_done(spec)}; then echo '{last.done_file.format(nc=spec.cell.nc)} present: "
                 "nothing to do'; exit 0; fi")
    prev = None
    for step in JOB_STEPS:
        lines += _shell_step(step, spec, prev)
        prev = step
    return "\n".join(lines) + "\n"


def write_job_scripts(specs: Sequence[JobSpec], cfg: ExecutorConfig, root: str | Path) -> Path:
    """Write each job's ``bondml-job.sh`` and ``<root>/bondml-submit-<kind>.sh`` submitting them all.

    Returns the path of the top-level submit script. Nothing is run. ``dask`` writes plain bash
    scripts (as ``local``).
    """
    cfg.validate()
    kind = cfg.kind if cfg.kind in ("slurm", "pbs", "torque") else "local"
    submit = {"slurm": "sbatch", "pbs": "qsub", "torque": "qsub", "local": "bash"}[kind]
    lines = ["#!/usr/bin/env bash", f"# bondml: submit {len(specs)} sub-run job(s) ({kind})"]
    if kind != "local":
        lines.append("set -e  # stop at the first submission the scheduler refuses")
    for spec in specs:
        path = Path(spec.folder) / JOB_SCRIPT
        atomic_write_text(path, render_job_script(spec, cfg))
        path.chmod(0o755)
        if kind == "local":  # one job's failure does not stop the others
            lines.append(f"{submit} {shlex.quote(str(path))} || echo \"{spec.cell}: job exited $?\" >&2")
        else:
            lines.append(f"{submit} {shlex.quote(str(path))}")
    top = Path(root) / f"bondml-submit-{kind}.sh"
    atomic_write_text(top, "\n".join(lines) + "\n")
    top.chmod(0o755)
    return top


# --------------------------------------------------------------------------------------------
# execution (bondml.execution: the same engine as the pipeline)


def run_jobs(specs: Sequence[JobSpec], cfg: ExecutorConfig, run_dir: str | Path,
             on_done: Callable[[JobOutcome], None] | None = None,
             engine: Engine | None = None) -> list[JobOutcome]:
    """Run ``specs`` on the engine of ``cfg`` (or on ``engine``), wait for all, one outcome per job.

    Each task uses ``max(spec.cores)`` cores (``cores_per_task``). Failed jobs (after the
    transient retries) come back as outcomes with ``error`` set and the status the files give;
    nothing raises for a single job's failure. ``on_done`` is called per job.
    """
    if not specs:
        return []
    cores = max(s.cores for s in specs)
    own = engine is None
    if own:
        if cfg.kind in ("slurm", "pbs", "torque"):
            cfg = replace(cfg, cores_per_task=max(cfg.cores_per_task, cores),
                          cores_per_node=max(cfg.cores_per_node, cores))
        engine = Engine(cfg, run_dir)
    assert engine is not None
    outcomes: list[JobOutcome] = []
    try:
        futures = {id(f): (spec, f) for spec in specs for f in [engine.submit(run_subrun_job, spec)]}
        for fut in engine.as_completed([f for _, f in futures.values()]):
            spec = futures[id(fut)][0]
            try:
                out = fut.result()
            except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the others
                rep = classify(spec.folder, spec.cell.nc)
                msg = first_line(exc)
                if type(exc).__name__ == "BadStateException":
                    msg = (f"{engine.cfg.kind} scheduler refused or lost the job's block ({msg}); "
                           f"parsl's submit scripts are under {engine.run_dir}")
                out = JobOutcome(spec.cell, rep.status, rep.reason, "failed", error=msg)
            outcomes.append(out)
            if on_done is not None:
                on_done(out)
    finally:
        if own:
            engine.close()
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
