"""Jobs (pw.x + LOBSTER) state machine, parsl execution, dry-run scripts, status, grow driver."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from bondml.data import reference_root, run21_dir
from bondml.errors import ConfigError, InputFileError
from bondml.generate.jobs import (
    JOB_RECORD,
    JOB_SCRIPT,
    ExecutorConfig,
    JobSpec,
    TransientJobError,
    build_parsl_config,
    default_pseudo_dir,
    next_action,
    plan_jobs,
    prepare_inputs,
    render_job_script,
    run_jobs,
    run_subrun_job,
    tree_status,
    write_job_scripts,
)
from bondml.io.getl import classify, subrun_path
from bondml.types import CellId
from bondml.util import sha256_file

NC = "Zr49Cu49Al2"


def _copy_subrun(tmp: Path, sub: int, keep: tuple[str, ...], run: int = 21) -> tuple[Path, CellId]:
    """Copy some files of reference sub-run ``sub`` into a fresh tree under ``tmp``."""
    cell = CellId(NC, run, sub)
    dst = subrun_path(tmp, cell)
    dst.mkdir(parents=True)
    src = run21_dir() / "2000" / str(sub)
    for name in keep:
        shutil.copy(src / name.format(nc=NC), dst / name.format(nc=NC))
    return dst, cell


# ---------------------------------------------------------------------------------------------
# state machine and status


def test_next_action_table():
    assert next_action("NEW") == "scf+lobster"
    assert next_action("SCF_CONVERGED_BUT_NO_ICOHP") == "lobster"
    for st in ("DONE", "LOB_NOT_FINISHED_BUT_ICOHP_OK", "SCF_CONVERGED_LOB_NOT_FINISHED_BUT_ICOHP_OK"):
        assert next_action(st) == "none"
        assert next_action(st, retry_failed=True) == "none"  # labelled: never resubmitted
    assert next_action("SCF_NOT_CONVERGED_AND_NO_ICOHP") == "none"
    assert next_action("SCF_NOT_CONVERGED_AND_NO_ICOHP", retry_failed=True) == "scf+lobster"
    with pytest.raises(ConfigError):
        next_action("RUNNING?")


def test_status_of_reference_tree():
    rows = tree_status(reference_root())
    run21 = [r for r in rows if r.cell.nc == NC and r.cell.run == 21]
    assert len(run21) == 15
    done = [r for r in run21 if r.status == "DONE"]
    assert len(done) == 14 and all(r.labels == ["lobster"] for r in done)
    (bad,) = [r for r in run21 if r.status != "DONE"]
    assert bad.cell.sub_run == 13
    assert bad.status == "SCF_NOT_CONVERGED_AND_NO_ICOHP"
    assert "ICOHPLIST" in bad.reason and "convergence" in bad.reason


def test_status_cli_table_and_json():
    import typer
    from typer.testing import CliRunner

    from bondml.cli.generate import register

    app = typer.Typer()
    register(app)
    r = CliRunner().invoke(app, ["generate", "status", "--root", str(reference_root()), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert sum(x["status"] == "DONE" for x in rows) == 14
    (bad,) = [x for x in rows if x["status"] != "DONE"]
    assert (bad["run"], bad["sub_run"]) == (21, 13) and bad["reason"]
    r = CliRunner().invoke(app, ["generate", "status", "--root", str(reference_root())], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "DONE: 14" in r.output and "SCF_NOT_CONVERGED_AND_NO_ICOHP: 1" in r.output
    r = CliRunner().invoke(app, ["generate", "status", "--root", str(reference_root())])  # piped, no COLUMNS
    assert r.exit_code == 0 and "…" not in r.output  # nothing truncated when not a terminal
    assert "Zr49Cu49Al2" in r.output and "SCF_NOT_CONVERGED_AND_NO_ICOHP" in r.output


def test_plan_skips_done_and_failed_on_a_copy(tmp_path):
    _copy_subrun(tmp_path, 0, ("{nc}.xyz", "{nc}.scf.out", "ICOHPLIST.lobster", "lobsterout"))
    _copy_subrun(tmp_path, 13, ("{nc}.xyz", "{nc}.scf.in", "{nc}.scf.out"))
    _copy_subrun(tmp_path, 1, ("{nc}.xyz",))
    todo, skipped = plan_jobs(tmp_path)
    assert [s.cell.sub_run for s in todo] == [1]
    assert {o.cell.sub_run: o.status for o in skipped} == {0: "DONE", 13: "SCF_NOT_CONVERGED_AND_NO_ICOHP"}
    todo, _ = plan_jobs(tmp_path, retry_failed=True)
    assert [s.cell.sub_run for s in todo] == [1, 13]


def test_done_subrun_is_never_touched(tmp_path):
    folder, cell = _copy_subrun(tmp_path, 0, ("{nc}.xyz", "{nc}.scf.out", "ICOHPLIST.lobster", "lobsterout"))
    before = {p.name: sha256_file(p) for p in folder.iterdir()}
    out = run_subrun_job(JobSpec(cell, str(folder), retry_failed=True))
    assert (out.status, out.action) == ("DONE", "none")
    assert {p.name: sha256_file(p) for p in folder.iterdir()} == before


# ---------------------------------------------------------------------------------------------
# LOBSTER step (real reference outputs; LOBSTER itself cannot be installed)


def test_lobster_missing_then_collected(tmp_path):
    folder, cell = _copy_subrun(tmp_path, 0, ("{nc}.xyz", "{nc}.scf.in", "{nc}.scf.out", "lobsterin"))
    assert classify(folder, NC).status == "SCF_CONVERGED_BUT_NO_ICOHP"
    spec = JobSpec(cell, str(folder), lobster_command="no-such-lobster-3.0.0")
    out = run_subrun_job(spec)
    assert out.action == "lobster" and out.status == "SCF_CONVERGED_BUT_NO_ICOHP"
    assert "no-such-lobster-3.0.0" in out.reason and "not found" in out.reason
    # an ICOHPLIST produced elsewhere and copied in is collected, nothing is run
    src = run21_dir() / "2000" / "0"
    shutil.copy(src / "ICOHPLIST.lobster", folder)
    shutil.copy(src / "lobsterout", folder)
    out = run_subrun_job(spec)
    assert out.status == "DONE" and out.action == "none"
    log = json.loads((folder / JOB_RECORD).read_text())
    assert log["attempts"][0]["lobster"]["missing_executable"] == "no-such-lobster-3.0.0"


def _fake_lobster(tmp: Path) -> Path:
    """An executable standing in for LOBSTER: killed by a signal on its first call (a transient
    failure), then on its second call writes the reference ICOHPLIST and lobsterout of sub-run 0."""
    src = run21_dir() / "2000" / "0"
    exe = tmp / "bin" / "fake-lobster"
    exe.parent.mkdir()
    exe.write_text(
        "#!/usr/bin/env bash\n"
        f"if [ ! -e {tmp}/first-call ]; then touch {tmp}/first-call; kill -9 $$; fi\n"
        "grep -q cohpGenerator lobsterin || exit 1\n"
        f"cp {src}/ICOHPLIST.lobster {src}/lobsterout .\n"
        "echo 'LOBSTER stand-in finished'\n"
    )
    exe.chmod(0o755)
    return exe


def test_transient_failure_retried_by_parsl(tmp_path):
    folder, cell = _copy_subrun(tmp_path, 0, ("{nc}.xyz", "{nc}.scf.in", "{nc}.scf.out", "lobsterin"))
    exe = _fake_lobster(tmp_path)
    spec = JobSpec(cell, str(folder), lobster_command=str(exe))
    with pytest.raises(TransientJobError):  # without parsl: the first call is killed
        run_subrun_job(spec)
    (tmp_path / "first-call").unlink()
    outs = run_jobs([spec], ExecutorConfig(retries=2), tmp_path / "parsl")
    assert outs[0].error is None and outs[0].status == "DONE"
    attempts = json.loads((folder / JOB_RECORD).read_text())["attempts"]
    assert [a.get("transient", False) for a in attempts] == [True, True, False]
    assert list(folder.glob(f"{NC}.lb.out.killed-*"))  # partial output kept aside, not as result


def test_missing_executable_is_permanent_one_line(tmp_path):
    folder, cell = _copy_subrun(tmp_path, 1, ("{nc}.xyz", "{nc}.scf.in", "lobsterin"))
    outs = run_jobs([JobSpec(cell, str(folder), pw_command="no-such-pw.x")], ExecutorConfig(retries=3),
                    tmp_path / "parsl")
    assert outs[0].status == "NEW"
    assert "no-such-pw.x" in outs[0].error and "\n" not in outs[0].error
    attempts = json.loads((folder / JOB_RECORD).read_text())["attempts"]
    assert len(attempts) == 1  # not retried
    assert not (folder / f"{NC}.scf.out").exists()


def test_missing_pseudopotential_names_the_file(tmp_path):
    folder, _ = _copy_subrun(tmp_path, 0, ("{nc}.xyz",))
    (tmp_path / "pseudo").mkdir()
    with pytest.raises(InputFileError, match=r"Al\.aryjr-1\.0\.0-ld1\.UPF"):
        prepare_inputs(folder, NC, tmp_path / "pseudo")
    assert not (folder / f"{NC}.scf.in").exists()


def test_prepare_inputs_never_overwrites(tmp_path):
    folder, _ = _copy_subrun(tmp_path, 0, ("{nc}.xyz", "{nc}.scf.in", "lobsterin"))
    before = sha256_file(folder / f"{NC}.scf.in")
    assert prepare_inputs(folder, NC, tmp_path / "nowhere") == []
    assert sha256_file(folder / f"{NC}.scf.in") == before


# ---------------------------------------------------------------------------------------------
# dry run, submit scripts, executor configuration


@pytest.mark.parametrize("kind,marker", [("slurm", "#SBATCH --partition=short"), ("pbs", "#PBS -q short"),
                                         ("local", None)])
def test_dry_run_scripts(tmp_path, kind, marker):
    folder, cell = _copy_subrun(tmp_path, 1, ("{nc}.xyz", "{nc}.scf.in", "lobsterin"))
    cfg = ExecutorConfig(kind=kind, partition="short", walltime="02:00:00", cores_per_node=8, account="proj42",
                         worker_init="module load qe")
    todo, _ = plan_jobs(tmp_path, cores=8)
    top = write_job_scripts(todo, cfg, tmp_path)
    script = (folder / JOB_SCRIPT).read_text()
    assert subprocess.run(["bash", "-n", str(folder / JOB_SCRIPT)]).returncode == 0
    assert subprocess.run(["bash", "-n", str(top)]).returncode == 0
    assert "mpirun -np 8 pw.x -in Zr49Cu49Al2.scf.in" in script and "lobster-3.0.0" in script
    assert "module load qe" in script
    if marker:
        assert marker in script and ("proj42" in script)
    submit = {"slurm": "sbatch", "pbs": "qsub", "local": "bash"}[kind]
    assert f"{submit} {folder / JOB_SCRIPT}" in top.read_text()
    assert classify(folder, NC).status == "NEW"  # nothing ran


def test_local_script_runs_and_respects_done(tmp_path):
    """The bash job script skips a sub-run whose ICOHPLIST exists."""
    folder, cell = _copy_subrun(tmp_path, 0, ("{nc}.xyz", "{nc}.scf.out", "ICOHPLIST.lobster", "lobsterout"))
    path = folder / JOB_SCRIPT
    path.write_text(render_job_script(JobSpec(cell, str(folder), pw_command="false"), ExecutorConfig()))
    r = subprocess.run(["bash", str(path)], capture_output=True, text=True)
    assert r.returncode == 0 and "nothing to do" in r.stdout


def test_executor_config_validation_and_parsl_configs(tmp_path):
    with pytest.raises(ConfigError, match="kind"):
        ExecutorConfig(kind="lsf").validate()
    with pytest.raises(ConfigError, match="walltime"):
        ExecutorConfig(walltime="2h").validate()
    with pytest.raises(ConfigError, match="cores"):
        ExecutorConfig(cores_per_task=0).validate()
    with pytest.raises(ConfigError, match="partition"):
        ExecutorConfig(kind="slurm").validate()
    slurm = build_parsl_config(ExecutorConfig(kind="slurm", partition="p", account="a", cores_per_task=4,
                                              cores_per_node=32, walltime="01:00:00", retries=2), tmp_path)
    ex = slurm.executors[0]
    assert type(ex).__name__ == "HighThroughputExecutor"
    assert type(ex.provider).__name__ == "SlurmProvider" and ex.provider.partition == "p"
    assert ex.max_workers_per_node == 8 and slurm.retries == 2
    assert type(ex.provider.launcher).__name__ == "SimpleLauncher"
    pbs = build_parsl_config(ExecutorConfig(kind="pbs", queue="q", cores_per_node=2, cores_per_task=2), tmp_path)
    assert type(pbs.executors[0].provider).__name__ == "PBSProProvider"
    torque = build_parsl_config(ExecutorConfig(kind="torque", queue="q", nodes=2), tmp_path)
    assert type(torque.executors[0].provider).__name__ == "TorqueProvider"
    assert type(torque.executors[0].provider.launcher).__name__ == "MpiRunLauncher"
    # permanent errors cost more than the retry budget, transient ones cost 1
    assert slurm.retry_handler(TransientJobError("x"), None) == 1.0
    assert slurm.retry_handler(ValueError("x"), None) > slurm.retries
    from parsl.executors.high_throughput.errors import ManagerLost

    assert slurm.retry_handler(ManagerLost(b"m", "host"), None) == 1.0  # a lost block is retried


# ---------------------------------------------------------------------------------------------
# real DFT: a one-atom Cu cell through pw.x and the same job path


def _cu_tree(tmp: Path, **settings) -> tuple[Path, CellId]:
    from ase.build import bulk

    from bondml.generate.augment import write_xyz
    from bondml.generate.dft import QESettings

    pseudo = default_pseudo_dir()
    if shutil.which("pw.x") is None or pseudo is None or not (pseudo / "Cu.pbe-kjpaw.UPF").is_file():
        pytest.skip("pw.x or Cu.pbe-kjpaw.UPF missing: run scripts/install-system-deps.sh (Debian quantum-espresso)")
    cell = CellId("Cu100", 1, 0)
    folder = subrun_path(tmp, cell)
    write_xyz(bulk("Cu", "fcc", a=3.61), folder / "Cu100.xyz")
    qe = QESettings(ecutwfc=25, ecutrho=200, kpoints=(3, 3, 3), degauss=0.02, nbnd=10, verbosity="low",
                    pseudopotentials=(("Cu", "Cu.pbe-kjpaw.UPF"),), **settings)
    prepare_inputs(folder, "Cu100", pseudo, qe)
    return folder, cell


@pytest.mark.slow
def test_real_pw_run_end_to_end(tmp_path):
    folder, cell = _cu_tree(tmp_path)
    assert [r.status for r in tree_status(tmp_path)] == ["NEW"]
    todo, skipped = plan_jobs(tmp_path)
    assert len(todo) == 1 and not skipped
    outs = run_jobs(todo, ExecutorConfig(), tmp_path / "parsl")  # parsl, local
    (out,) = outs
    assert out.error is None
    assert out.status == "SCF_CONVERGED_BUT_NO_ICOHP"
    assert "lobster-3.0.0" in out.reason
    from bondml.io.espresso import read_pw_output

    pw = read_pw_output(folder / "Cu100.scf.out")
    assert pw.converged and pw.job_done and pw.n_atoms == 1
    assert -2920 < pw.total_energy_ev < -2880  # about -213.19 Ry for this PAW set at 25 Ry
    (row,) = tree_status(tmp_path)
    assert row.status == "SCF_CONVERGED_BUT_NO_ICOHP"
    scf_hash = sha256_file(folder / "Cu100.scf.out")
    # LOBSTER's output produced elsewhere (a real ICOHPLIST of the reference data) is collected
    shutil.copy(run21_dir() / "2000" / "0" / "ICOHPLIST.lobster", folder)
    out = run_subrun_job(JobSpec(cell, str(folder)))
    assert out.status == "SCF_CONVERGED_LOB_NOT_FINISHED_BUT_ICOHP_OK" and out.action == "none"
    assert sha256_file(folder / "Cu100.scf.out") == scf_hash  # finished SCF not redone
    todo, skipped = plan_jobs(tmp_path)
    assert todo == [] and skipped[0].status == "SCF_CONVERGED_LOB_NOT_FINISHED_BUT_ICOHP_OK"
    (row,) = tree_status(tmp_path)
    assert row.labels == ["lobster"]


@pytest.mark.slow
def test_real_pw_not_converged_is_final(tmp_path):
    folder, cell = _cu_tree(tmp_path, electron_maxstep=2)
    (out,) = run_jobs(plan_jobs(tmp_path)[0], ExecutorConfig(), tmp_path / "parsl")
    assert out.status == "SCF_NOT_CONVERGED_AND_NO_ICOHP" and out.error is None
    assert "NOT achieved" in out.reason or "without convergence" in out.reason
    todo, skipped = plan_jobs(tmp_path)
    assert todo == []  # not resubmitted
    first = sha256_file(folder / "Cu100.scf.out")
    todo, _ = plan_jobs(tmp_path, retry_failed=True)
    (out,) = run_jobs(todo, ExecutorConfig(), tmp_path / "parsl")
    assert sha256_file(folder / "Cu100.scf.out.failed-1") == first  # old output kept aside


@pytest.mark.slow
def test_scheduler_refusing_the_job_is_a_one_line_error(tmp_path, monkeypatch):
    """A Slurm that refuses every submission (fake ``sbatch`` exiting 1): the job comes back
    failed with the scheduler's message, the sub-run stays NEW, nothing is written."""
    folder, cell = _copy_subrun(tmp_path, 1, ("{nc}.xyz", "{nc}.scf.in", "lobsterin"))
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "sbatch").write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n")
    (bin_ / "squeue").write_text("#!/bin/sh\nexit 0\n")
    (bin_ / "scancel").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{__import__('os').environ['PATH']}")
    cfg = ExecutorConfig(kind="slurm", partition="nope", walltime="00:10:00", retries=0)
    outs = run_jobs([JobSpec(cell, str(folder))], cfg, tmp_path / "parsl")
    (out,) = outs
    assert out.error is not None and "\n" not in out.error and "scheduler refused" in out.error
    assert out.status == "NEW"
    assert not (folder / f"{NC}.scf.out").exists()


def test_grow_cli_bad_input_is_one_line_and_writes_nothing(tmp_path):
    import typer
    from typer.testing import CliRunner

    from bondml.cli.generate import register
    from bondml.errors import BondmlError

    app = typer.Typer()
    register(app)
    r = CliRunner().invoke(app, ["generate", "--nc", "Zr47Cu47Al7", "--root", str(tmp_path / "s")])
    assert isinstance(r.exception, BondmlError) and "sums to 101" in str(r.exception)
    r = CliRunner().invoke(app, ["generate", "run", "--nc", "Zr47Cu47Al6", "--labeler", "gaussian",
                                 "--root", str(tmp_path / "s")])
    assert isinstance(r.exception, BondmlError) and "labeler" in str(r.exception)
    r = CliRunner().invoke(app, ["generate", "--nc", "Zr47Cu47Xe6", "--root", str(tmp_path / "s")])
    assert isinstance(r.exception, BondmlError) and "Xe" in str(r.exception)
    assert not (tmp_path / "s").exists()
    r = CliRunner().invoke(app, ["generate", "--help"])
    assert r.exit_code == 0 and "status" in r.output and "run" in r.output


@pytest.mark.slow
def test_real_pw_crash_reports_its_error(tmp_path):
    folder, cell = _cu_tree(tmp_path)
    text = (folder / "Cu100.scf.in").read_text().replace("ecutwfc = 25", "ecutwfc = -25")
    (folder / "Cu100.scf.in").write_text(text)
    (out,) = run_jobs(plan_jobs(tmp_path)[0], ExecutorConfig(), tmp_path / "parsl")
    assert out.status == "SCF_NOT_CONVERGED_AND_NO_ICOHP"
    assert "Error in routine" in out.reason and "\n" not in out.reason


@pytest.mark.slow
def test_dry_run_script_runs_the_real_job_by_hand(tmp_path):
    """The submit script written by the dry run is a working job: run by hand it does the SCF and
    stops at the missing LOBSTER with the same status the parsl path gives."""
    folder, cell = _cu_tree(tmp_path)
    todo, _ = plan_jobs(tmp_path)
    top = write_job_scripts(todo, ExecutorConfig(kind="local"), tmp_path)
    assert classify(folder, "Cu100").status == "NEW"
    r = subprocess.run(["bash", str(top)], capture_output=True, text=True, timeout=120)
    assert "lobster-3.0.0 not found" in r.stderr and "Cu100/1/0: job exited 3" in r.stderr
    assert classify(folder, "Cu100").status == "SCF_CONVERGED_BUT_NO_ICOHP"
    before = sha256_file(folder / "Cu100.scf.out")
    subprocess.run(["bash", str(folder / JOB_SCRIPT)], capture_output=True, timeout=120)
    assert sha256_file(folder / "Cu100.scf.out") == before  # SCF not redone, not overwritten


def test_script_and_runner_follow_one_step_table(tmp_path, monkeypatch):
    """Both the bash script and the Python runner come from JOB_STEPS: a changed success check
    shows up in both."""
    import bondml.generate.jobs as jobs

    folder, cell = _copy_subrun(tmp_path, 1, ("{nc}.xyz", "{nc}.scf.in", "lobsterin"))
    spec = JobSpec(cell, str(folder))
    assert [s.name for s in jobs.JOB_STEPS] == ["scf", "lobster"]
    script = render_job_script(spec, ExecutorConfig())
    for step in jobs.JOB_STEPS:
        assert step.shell_done(spec) in script and step.output.format(nc=NC) in script
    (folder / f"{NC}.scf.out").write_text("... JOB DONE but no marker ...\n")
    assert not jobs.JOB_STEPS[0].done(spec)
    changed = (replace(jobs.JOB_STEPS[0], done_pattern="JOB DONE"), jobs.JOB_STEPS[1])
    monkeypatch.setattr(jobs, "JOB_STEPS", changed)
    assert jobs.JOB_STEPS[0].done(spec)  # the Python check follows the table
    assert "grep -qF 'JOB DONE'" in render_job_script(spec, ExecutorConfig())  # and so does the script
