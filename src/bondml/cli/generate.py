"""``bondml generate``: grow labelled cells (MD -> augmentations -> xTB or DFT labels) and show states.

Usage::

    bondml generate --nc Zr47Cu47Al6 --runs 2 --root store [--labeler xtb|dft]
                    [--executor local|slurm|pbs] [--dry-run] [--scaled]
    bondml generate run --nc ...          (same as above, explicit)
    bondml generate status --root store [--json]
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..constants import LABELLED_STATUSES
from ._io import Table, Text, make_console, print_error


def _executor(path: Path):  # -> ExecutorConfig
    """The ``[executor]`` table of a pipeline TOML file (the same keys, the same engine)."""
    import tomllib

    from ..errors import ConfigError
    from ..pipeline.config import _build_section

    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the executor table ({exc})") from None
    if "executor" not in raw:
        raise ConfigError(f"{path}: no [executor] table")
    return _build_section("executor", raw["executor"], str(path)).validate(f"{path}: executor")


def _grow(nc: str, runs: int, root: Path, labeler: str, executor: str, dry_run: bool, scaled: bool,
          first_run: int, seed: int, subruns: str | None, cores: int, partition: str | None,
          queue: str | None, walltime: str, nodes: int, account: str | None, worker_init: str,
          retries: int, max_workers: int, pseudo_dir: Path | None, pseudo: list[str],
          pw_command: str, lobster_command: str, xtb_threads: int | None,
          executor_config: Path | None = None, cores_per_node: int | None = None,
          scheduler_options: str = "") -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..execution import ExecutorConfig
    from ..generate.dft import QESettings
    from ..generate.grow import GrowOptions, grow, parse_subruns
    from ..generate.xtb import XtbSettings

    qe = None
    if pseudo:
        files = {}
        for item in pseudo:
            el, _, name = item.partition("=")
            if not name:
                raise typer.BadParameter(f"--pseudo {item!r} is not ELEMENT=FILE")
            files[el] = name
        qe = QESettings().with_pseudopotentials(files)
    opts = GrowOptions(
        nc=nc, root=root, runs=runs, first_run=first_run, seed=seed, labeler=labeler,
        executor=_executor(executor_config) if executor_config is not None else ExecutorConfig(
            kind=executor, partition=partition or "", queue=queue or "", walltime=walltime, nodes=nodes,
            cores_per_node=max(cores, cores_per_node or cores), cores_per_task=cores, account=account or "",
            worker_init=worker_init, scheduler_options=scheduler_options, retries=retries,
            workers=max_workers),
        dry_run=dry_run, scaled=scaled, subruns=parse_subruns(subruns), pseudo_dir=pseudo_dir,
        qe_settings=qe, cores=cores, pw_command=pw_command, lobster_command=lobster_command,
        xtb=XtbSettings(threads=xtb_threads),
    )
    console = make_console()
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int, msg: str) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(msg, total=total)
            bar.update(tasks[stage], completed=done, total=total, description=f"[{stage}] {msg}")

        report = grow(opts, progress)
    console.print(f"done: {report.done or '{}'}  skipped (already valid): {report.skipped or '{}'}")
    if report.submit_script:
        console.print(f"dry run: nothing ran; submit with bash {report.submit_script}")
    failed = [o for o in report.jobs if o.error]
    if labeler == "xtb":
        console.print("labels: xtb-gfn1 (approximate, ICOHPLIST.xtb), not DFT")
    for o in failed:
        print_error(f"{o.cell}: {o.status}: {o.error}")
    if failed:
        from ..errors import PartialFailure

        raise PartialFailure(f"{root}: {len(failed)} of {len(report.jobs)} job(s) failed (see above); "
                             "fix them and run the same command again (finished cells are kept)")


def _status(root: Path, as_json: bool) -> None:
    from ..generate.jobs import tree_status

    rows = tree_status(root)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    table = Table(title=f"sub-runs under {root}")
    for col in ("NC", "run", "sub", "status", "labels", "reason / last job"):
        table.add_column(col, overflow="fold")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
        style = "green" if r.status in LABELLED_STATUSES else ("yellow" if r.status == "NEW" else "red")
        why = r.reason if not r.last_job or r.last_job == r.status else f"{r.reason} (last job: {r.last_job})"
        table.add_row(r.cell.nc, str(r.cell.run), str(r.cell.sub_run), Text(r.status, style=style),
                      ",".join(r.labels) or "-", why)
    console = make_console()
    console.print(table)
    console.print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no sub-runs found")


def register(app: typer.Typer) -> None:
    """Add the ``generate`` command group to the main CLI."""
    gen = typer.Typer(
        help="Grow labelled cells: melt-quench (LAMMPS, EAM), the 14 augmentations, then labels "
        "(xtb: approximate GFN1-xTB here; dft: pw.x + LOBSTER jobs via parsl, local/Slurm/PBS). "
        "`bondml generate --nc NC --runs N --root DIR` (or `bondml generate run ...`) grows and resumes; "
        "`bondml generate status --root DIR` shows the state of every sub-run.",
        no_args_is_help=False,
    )

    def grow_cmd(
        nc: str = typer.Option(None, "--nc", help="composition, e.g. Zr47Cu47Al6"),
        runs: int = typer.Option(1, help="number of MD runs (ids first-run .. first-run+runs-1)"),
        root: Path = typer.Option(Path("."), help="root of the GETL tree (holds ML/big-data-full)"),
        labeler: str = typer.Option("xtb", help="xtb (approximate, local) or dft (pw.x + LOBSTER jobs)"),
        executor: str = typer.Option("local", help="local, slurm, pbs, torque or dask (DFT jobs)"),
        executor_config: Path = typer.Option(None, help="TOML file whose [executor] table says where jobs run "
                                                      "(the pipeline's keys; overrides the scheduler options)"),
        cores_per_node: int = typer.Option(None, help="cores per node of a scheduler block (default --cores)"),
        scheduler_options: str = typer.Option("", help="extra #SBATCH/#PBS header lines"),
        dry_run: bool = typer.Option(False, "--dry-run", help="DFT: write inputs and submit scripts only"),
        scaled: bool = typer.Option(False, "--scaled", help="short melt-quench (~1e13 K/s) for demos"),
        first_run: int = typer.Option(1, help="first run id"),
        seed: int = typer.Option(0, help="base seed; run r uses seed*100003 + r"),
        subruns: str = typer.Option(None, help="sub-runs to label, e.g. 0,7-9 (default all 0-14)"),
        cores: int = typer.Option(1, help="MPI ranks per DFT job"),
        partition: str = typer.Option(None, help="Slurm partition"),
        queue: str = typer.Option(None, help="PBS queue"),
        walltime: str = typer.Option("24:00:00", help="walltime per job/block HH:MM:SS"),
        nodes: int = typer.Option(1, help="nodes per scheduler block"),
        account: str = typer.Option(None, help="scheduler account"),
        worker_init: str = typer.Option("", help="shell lines run before each job (module load ...)"),
        retries: int = typer.Option(2, help="retries of transient job failures"),
        max_workers: int = typer.Option(1, help="local: DFT jobs at once"),
        pseudo_dir: Path = typer.Option(None, help="pseudopotential folder (default $ESPRESSO_PSEUDO)"),
        pseudo: list[str] = typer.Option([], help="pseudopotential file per element, e.g. Cu=Cu.pbe-kjpaw.UPF"),
        pw_command: str = typer.Option("pw.x", help="pw.x executable"),
        lobster_command: str = typer.Option("lobster-3.0.0", help="LOBSTER executable"),
        xtb_threads: int = typer.Option(None, help="OpenMP threads for tblite"),
    ) -> None:
        if nc is None:
            raise typer.BadParameter("--nc is required (e.g. --nc Zr47Cu47Al6)")
        _grow(nc, runs, root, labeler, executor, dry_run, scaled, first_run, seed, subruns, cores, partition,
              queue, walltime, nodes, account, worker_init, retries, max_workers, pseudo_dir, pseudo,
              pw_command, lobster_command, xtb_threads, executor_config, cores_per_node, scheduler_options)

    @gen.callback(invoke_without_command=True)
    def callback(ctx: typer.Context,
                 nc: str = typer.Option(None, "--nc", help="composition (grows when no sub-command is given)"),
                 runs: int = typer.Option(1), root: Path = typer.Option(Path(".")),
                 labeler: str = typer.Option("xtb"), executor: str = typer.Option("local"),
                 dry_run: bool = typer.Option(False, "--dry-run"), scaled: bool = typer.Option(False, "--scaled"),
                 first_run: int = typer.Option(1), seed: int = typer.Option(0),
                 subruns: str = typer.Option(None), cores: int = typer.Option(1),
                 pseudo_dir: Path = typer.Option(None),
                 pseudo: list[str] = typer.Option([]),
                 xtb_threads: int = typer.Option(None)) -> None:
        """Grow (with --nc) or run a sub-command. Scheduler options: see `bondml generate run --help`."""
        if ctx.invoked_subcommand is not None:
            return
        if nc is None:
            typer.echo(ctx.get_help())
            raise typer.Exit(0)
        _grow(nc, runs, root, labeler, executor, dry_run, scaled, first_run, seed, subruns, cores, None, None,
              "24:00:00", 1, None, "", 2, 1, pseudo_dir, pseudo, "pw.x", "lobster-3.0.0", xtb_threads)

    gen.command("run", help="Grow labelled cells (all options; resumable).")(grow_cmd)

    @gen.command("status")
    def status(root: Path = typer.Option(Path("."), help="root of the GETL tree"),
               as_json: bool = typer.Option(False, "--json", help="JSON instead of a table")) -> None:
        """State of every sub-run (compositions x runs x sub-runs), its reason and label sources."""
        _status(root, as_json)

    app.add_typer(gen, name="generate")
