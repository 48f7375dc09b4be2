"""Generate-stage speed: LAMMPS EAM throughput and the time per augmented cell.

MD throughput in atom-steps per second (NVT at 300 K, time step 2 fs, the study's EAM) for the
real 100-atom glass (run 21, sub-run 0) and the 10,000-atom production cell, on one thread
(plain ``eam/alloy``) and two OpenMP threads (``package omp 2``, ``suffix omp``); then the time
per augmented cell (transform + extended XYZ), with and without the DFT inputs (pw.x input and
an explicit-pair ``lobsterin``). Runs in well under a minute on an idle machine.

OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE`` unless set): on shared cores, active
spinning makes the 2-thread runs up to 50x slower. The load average is printed: figures taken
on a loaded machine are lower bounds.

Usage: ``python bench/bench_md.py [--steps-small 5000] [--steps-large 200] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from ase.io import read

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before the OpenMP runtime starts

from bondml.constants import ELEMENTS  # noqa: E402
from bondml.data import eam_potential, production_cell, run21_dir  # noqa: E402
from bondml.generate.augment import AUGMENTATIONS, write_augmented  # noqa: E402
from bondml.generate.dft import write_lobsterin, write_pw_input  # noqa: E402
from bondml.md.engine import open_lammps  # noqa: E402
from bondml.md.quench import QuenchProtocol, melt_quench  # noqa: E402


def md_throughput(data_file: Path, threads: int, steps: int) -> tuple[int, float]:
    """(atoms, atom-steps/s) of an NVT run of ``steps`` steps on ``threads`` OpenMP threads."""
    lmp = open_lammps()
    try:
        cmds = [f"package omp {threads}", "suffix omp"] if threads > 1 else []
        cmds += [
            "units metal", "boundary p p p", "atom_style atomic", f"read_data {data_file}",
            "pair_style eam/alloy", f"pair_coeff * * {eam_potential()} {' '.join(ELEMENTS)}",
            "velocity all create 300 12345 dist gaussian", "fix t all nvt temp 300 300 0.2",
            "timestep 0.002", "thermo 0", "run 0",
        ]
        for c in cmds:
            lmp.command(c)
        n = int(lmp.get_natoms())
        t0 = time.perf_counter()
        lmp.command(f"run {steps}")
        dt = time.perf_counter() - t0
    finally:
        lmp.close()
    return n, n * steps / dt


def small_cell_data(tmp: Path) -> Path:
    """The real 100-atom glass (run 21, sub-run 0) as a LAMMPS data file."""
    from ase.io.lammpsdata import write_lammps_data

    path = tmp / "run21-0.data"
    write_lammps_data(str(path), read(run21_dir() / "2000/0/Zr49Cu49Al2.xyz"), specorder=list(ELEMENTS),
                      atom_style="atomic", masses=False)
    return path


def augment_timing(tmp: Path, repeats: int) -> tuple[float, float]:
    """Seconds per augmented cell: (xyz only, xyz + pw.x input + explicit-pair lobsterin)."""
    a0 = read(run21_dir() / "2000/0/Zr49Cu49Al2.xyz")
    n = len(AUGMENTATIONS) + 1
    t0 = time.perf_counter()
    for r in range(repeats):
        write_augmented(a0, tmp / f"aug{r}", "Zr49Cu49Al2")
    t_xyz = (time.perf_counter() - t0) / (repeats * n)
    t0 = time.perf_counter()
    for r in range(repeats):
        for p in write_augmented(a0, tmp / f"full{r}", "Zr49Cu49Al2"):
            cell = read(p)
            write_pw_input(cell, p.with_suffix(".scf.in"), tmp, prefix="Zr49Cu49Al2", check=False)
            write_lobsterin(cell, p.parent / "lobsterin", style="pairs")
    t_full = (time.perf_counter() - t0) / (repeats * n)
    return t_xyz, t_full


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps-small", type=int, default=5000)
    ap.add_argument("--steps-large", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(f"{platform.machine()}, {os.cpu_count()} CPUs visible, load average {load}, "
                  f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    table = Table(title="Generate-stage speed")
    for col in ("what", "atoms", "threads", "steps", "atom-steps/s", "time (s)"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory(prefix="bondml-bench-") as tmpd:
        tmp = Path(tmpd)
        small = small_cell_data(tmp)
        runs = ((small, args.steps_small, "MD 100"), (production_cell(), args.steps_large, "MD 10k"))
        for data, steps, label in runs:
            for threads in (1, 2):
                with console.status(f"{label} atoms, {threads} thread(s)"):
                    n, rate = md_throughput(data, threads, steps)
                table.add_row(label, f"{n:,}", str(threads), f"{steps:,}", f"{rate:,.0f}",
                              f"{1000 * n / rate:.3f} per 1000 steps")
        with console.status("scaled melt-quench"):
            p = QuenchProtocol.scaled(0.1)
            t0 = time.perf_counter()
            melt_quench("Zr49Cu49Al2", tmp / "mq", seed=1, protocol=p)
            wall = time.perf_counter() - t0
        steps = sum(p.steps())
        table.add_row("melt-quench (scaled 0.1)", "100", "1", f"{steps:,}", f"{100 * steps / wall:,.0f}",
                      f"{wall:.2f}")
        with console.status("augmentations"):
            t_xyz, t_full = augment_timing(tmp, args.repeats)
        table.add_row("augmented cell (xyz)", "100", "1", "-", "-", f"{t_xyz:.4f} per cell")
        table.add_row("augmented cell + scf.in + lobsterin", "100", "1", "-", "-",
                      f"{t_full:.4f} per cell")
    console.print(table)


if __name__ == "__main__":
    main()
