"""One command from nothing to labelled cells: melt-quench -> 14 augmentations -> labels.

For a composition ``nc`` and run ids ``first_run .. first_run + runs - 1`` it writes the
original layout ``<root>/ML/big-data-full/<NC>/c/md/lammps/100/<run>/`` (LAMMPS input, log,
final cell) and ``.../<run>/2000/<k>/<NC>.xyz`` (k = 0..14), then labels each sub-run:

* ``labeler="xtb"``: GFN1-xTB on this machine, ``ICOHPLIST.xtb`` + ``LABEL_SOURCE.xtb.json``
  (approximate, label source ``xtb-gfn1``; never written as ``ICOHPLIST.lobster``);
* ``labeler="dft"``: pw.x + LOBSTER inputs and jobs (:mod:`bondml.generate.jobs`), run through
  parsl locally or on Slurm/PBS, or, with ``dry_run``, only written with submit scripts.

Every step is skipped when its outputs exist and are valid, so running the same command again
after an interruption continues where it stopped; nothing finished is rewritten. Run ``r`` of
the command uses MD seed ``seed * 100003 + r`` (reproducible, distinct per run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..io.getl import run_path, subrun_path
from ..types import CellId, composition_counts
from .jobs import ExecutorConfig, JobOutcome, default_pseudo_dir, plan_jobs, prepare_inputs, run_jobs, write_job_scripts
from .xtb import XtbSettings, label_subrun

LABELERS: tuple[str, ...] = ("xtb", "dft")
#: Sub-runs of one MD run: 0 = quenched cell, 1..14 = the study's augmentations.
N_SUBRUNS = 15

#: progress callback: (stage, done, total, message)
Progress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class GrowOptions:
    """What to grow. ``subruns`` limits labelling to some sub-runs (default all 0..14);
    ``md_threads`` LAMMPS threads; ``protocol`` a :class:`~bondml.md.quench.QuenchProtocol` (overrides
    ``scaled``); DFT: ``pseudo_dir``, ``qe_settings``, ``cores`` per job,
    ``pw_command``, ``lobster_command``; xTB: ``xtb``; ``engine``: a running
    :class:`bondml.execution.Engine` to run the DFT jobs on (default: one built from ``executor``)."""

    nc: str
    root: Path
    runs: int = 1
    first_run: int = 1
    seed: int = 0
    labeler: str = "xtb"
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    dry_run: bool = False
    scaled: bool = False
    n_atoms: int = 100
    subruns: tuple[int, ...] = tuple(range(N_SUBRUNS))
    md_threads: int | None = None
    protocol: object | None = None
    pseudo_dir: Path | None = None
    qe_settings: object | None = None
    cores: int = 1
    pw_command: str = "pw.x"
    lobster_command: str = "lobster-3.0.0"
    xtb: XtbSettings = field(default_factory=XtbSettings)
    engine: object | None = None

    def validate(self) -> GrowOptions:
        """One-line :class:`ConfigError` for impossible options (checked before any work)."""
        composition_counts(self.nc, self.n_atoms)
        if self.labeler not in LABELERS:
            raise ConfigError(f"labeler {self.labeler!r} is not one of {', '.join(LABELERS)}")
        if self.runs < 1 or self.first_run < 0:
            raise ConfigError(f"runs must be >= 1 and first_run >= 0 (got {self.runs}, {self.first_run})")
        bad = [k for k in self.subruns if not 0 <= k < N_SUBRUNS]
        if bad:
            raise ConfigError(f"sub-runs {bad} out of range 0..{N_SUBRUNS - 1}")
        if self.labeler == "xtb" and self.executor.kind not in ("local", "dask"):
            raise ConfigError("the xTB labeler runs on this machine; use the local or dask executor "
                              "(or the dft labeler)")
        self.executor.validate()
        return self

    def run_seed(self, run: int) -> int:
        return self.seed * 100003 + run


@dataclass
class GrowReport:
    """What one call did: per-step counts of work done and skipped, and job outcomes."""

    done: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    jobs: list[JobOutcome] = field(default_factory=list)
    submit_script: Path | None = None
    cells: list[CellId] = field(default_factory=list)

    def count(self, step: str, did: bool) -> None:
        d = self.done if did else self.skipped
        d[step] = d.get(step, 0) + 1


def _md_valid(run_dir: Path, nc: str, n_atoms: int) -> bool:
    """A finished melt-quench: ``result.json`` and a readable final cell of the right size."""
    from ase.io import read

    xyz = run_dir / f"{nc}.xyz"
    if not (run_dir / "result.json").is_file() or not xyz.is_file():
        return False
    try:
        return len(read(xyz)) == n_atoms
    except Exception:  # noqa: BLE001 - unreadable = not valid
        return False


def _set_aside_partial(run_dir: Path) -> None:
    """Keep the files of an interrupted melt-quench as ``*.interrupted-<n>`` before redoing it."""
    for p in sorted(run_dir.glob("*")):
        if p.is_file() and ".interrupted-" not in p.name:
            n = 1
            while p.with_name(f"{p.name}.interrupted-{n}").exists():
                n += 1
            p.rename(p.with_name(f"{p.name}.interrupted-{n}"))


def md_step(opts: GrowOptions, run: int, report: GrowReport):
    """Melt-quench run ``run`` unless a valid one exists; returns the quenched ``Atoms``."""
    from ase.io import read

    from ..md.quench import melt_quench

    rd = run_path(opts.root, opts.nc, run)
    if _md_valid(rd, opts.nc, opts.n_atoms):
        report.count("md", False)
        return read(rd / f"{opts.nc}.xyz")
    if rd.is_dir():
        _set_aside_partial(rd)
    res = melt_quench(opts.nc, rd, opts.run_seed(run), n_atoms=opts.n_atoms, protocol=opts.protocol,  # type: ignore[arg-type]
                      scaled=opts.scaled, threads=opts.md_threads, overwrite=True)
    report.count("md", True)
    return read(res.xyz_path)  # the file, not the in-memory cell: a resumed run augments the same numbers


def augment_step(opts: GrowOptions, run: int, atoms, report: GrowReport) -> None:
    """Write sub-runs 0..14 of ``run`` (unchanged files are left alone; a different one is an error)."""
    from .augment import write_augmented

    q = run_path(opts.root, opts.nc, run) / "2000"
    existing = [q / str(k) / f"{opts.nc}.xyz" for k in range(N_SUBRUNS)]
    all_there = all(p.is_file() for p in existing)
    write_augmented(atoms, q, opts.nc)  # raises InputFileError rather than overwrite a different cell
    report.count("augment", not all_there)


def _cells(opts: GrowOptions) -> list[CellId]:
    return [CellId(opts.nc, r, k) for r in range(opts.first_run, opts.first_run + opts.runs) for k in opts.subruns]


def xtb_step(opts: GrowOptions, cells: Sequence[CellId], report: GrowReport,
             progress: Progress | None = None) -> None:
    """Label ``cells`` with xTB (skipping those with valid labels)."""
    for n, cell in enumerate(cells):
        if progress:
            progress("xtb", n, len(cells), f"xTB {cell}")
        state = label_subrun(subrun_path(opts.root, cell), cell.nc, opts.xtb)
        report.count("xtb", state == "done")
    if progress:
        progress("xtb", len(cells), len(cells), "xTB labels done")


def dft_step(opts: GrowOptions, cells: Sequence[CellId], report: GrowReport,
             progress: Progress | None = None) -> None:
    """Write DFT inputs, then submit the jobs not done (or, with ``dry_run``, write the scripts)."""
    pseudo = opts.pseudo_dir or default_pseudo_dir()
    if pseudo is None:
        raise ConfigError("no pseudopotential folder: set pseudo_dir or ESPRESSO_PSEUDO")
    for cell in cells:
        written = prepare_inputs(subrun_path(opts.root, cell), cell.nc, pseudo, opts.qe_settings)
        report.count("dft-inputs", bool(written))
    todo, skipped = plan_jobs(opts.root, cells, cores=opts.cores, pw_command=opts.pw_command,
                              lobster_command=opts.lobster_command)
    report.jobs.extend(skipped)
    if opts.dry_run:
        report.submit_script = write_job_scripts(todo, opts.executor, opts.root)
        return
    total = len(todo)
    counter = {"n": 0}

    def on_done(o: JobOutcome) -> None:
        counter["n"] += 1
        if progress:
            progress("dft", counter["n"], total, f"{o.cell}: {o.status}")

    report.jobs.extend(run_jobs(todo, opts.executor, Path(opts.root) / ".bondml-parsl", on_done,
                                engine=opts.engine))  # type: ignore[arg-type]


def grow(opts: GrowOptions, progress: Progress | None = None) -> GrowReport:
    """Run the whole Generate stage for ``opts`` and return what was done and skipped.

    Bad options fail before any work; a failing step raises a one-line :class:`BondmlError`
    after the steps before it have been kept on disk.
    """
    opts.validate()
    if opts.labeler == "dft" and not opts.dry_run and opts.executor.kind == "local":
        import shutil

        from ..errors import JobError

        if shutil.which(opts.pw_command.split()[0]) is None:
            raise JobError(f"executable {opts.pw_command.split()[0]!r} not found on PATH "
                           "(install Quantum ESPRESSO or write the inputs only with dry_run)")
    Path(opts.root).mkdir(parents=True, exist_ok=True)
    report = GrowReport(cells=_cells(opts))
    runs = list(range(opts.first_run, opts.first_run + opts.runs))
    for n, run in enumerate(runs):
        if progress:
            progress("md", n, len(runs), f"melt-quench {opts.nc} run {run}")
        atoms = md_step(opts, run, report)
        augment_step(opts, run, atoms, report)
    if progress:
        progress("md", len(runs), len(runs), "cells ready")
    if opts.labeler == "xtb":
        xtb_step(opts, report.cells, report, progress)
    else:
        dft_step(opts, report.cells, report, progress)
    return report


def parse_subruns(text: str | None) -> tuple[int, ...]:
    """``"0,7-9"`` -> (0, 7, 8, 9); None or ``"all"`` -> 0..14."""
    if text is None or text.strip().lower() == "all":
        return tuple(range(N_SUBRUNS))
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                a, b = part.split("-")
                out += list(range(int(a), int(b) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError:
        raise ConfigError(f"sub-runs {text!r} is not a list like 0,7-9") from None
    return tuple(sorted(set(out)))


__all__ = ["GrowOptions", "GrowReport", "grow", "parse_subruns", "LABELERS"]
