"""CLI of the Generate stage's local pieces: ``bondml augment`` and ``bondml md quench``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._io import Table, make_console


def _nc_from_path(path: Path) -> str:
    """Composition name from a cell file name such as ``Zr49Cu49Al2.xyz``."""
    from ..types import parse_composition

    name = path.name.split(".")[0]
    parse_composition(name)  # one-line error if the file name is not a composition
    return name


def augment_cmd(
    cell: Annotated[Path, typer.Argument(help="Quenched cell (extended XYZ with Lattice), sub-run 0.")],
    out: Annotated[Path, typer.Option("--out", help="Folder receiving <k>/<NC>.xyz for k = 0..14.")],
    nc: Annotated[str | None, typer.Option("--nc", help="Composition (default: file name).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files with different content.")] = False,
) -> None:
    """Write the study's 14 augmented cells (shears, tension, compression, isotropic) of CELL."""
    from ase.io import read

    from ..errors import InputFileError
    from ..generate.augment import AUGMENTATIONS, write_augmented

    if not cell.is_file():
        raise InputFileError(cell, "file not found")
    name = nc or _nc_from_path(cell)
    try:
        atoms = read(cell)
    except Exception as exc:  # noqa: BLE001 - ase raises many kinds
        raise InputFileError(cell, f"cannot read the cell ({exc})") from None
    paths = write_augmented(atoms, out, name, overwrite=overwrite)
    table = Table(title=f"{name}: {len(paths)} cells in {out}")
    for col in ("k", "transform", "volume (A^3)", "file"):
        table.add_column(col)
    names = ["original", *(t.name for t in AUGMENTATIONS)]
    for k, p in enumerate(paths):
        table.add_row(str(k), names[k] if k < len(names) else "?", f"{read(p).get_volume():.2f}", str(p))
    make_console().print(table)


def quench_cmd(
    nc: Annotated[str, typer.Option("--nc", help="Composition, e.g. Zr49Cu49Al2.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of this run (random start and velocities).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder (input, log, final cell).")],
    n_atoms: Annotated[int, typer.Option("--atoms", help="Number of atoms.")] = 100,
    scaled: Annotated[bool, typer.Option("--scaled", help="Fast protocol (1e13 K/s) for demos.")] = False,
    rate: Annotated[float | None, typer.Option("--rate", help="Quench rate in K/s (default 8.5e9).")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="OpenMP threads for LAMMPS.")] = None,
    augment: Annotated[bool, typer.Option("--augment", help="Also write <out>/2000/<k>/<NC>.xyz.")] = False,
    compare: Annotated[bool, typer.Option("--compare", help="Compare with run 21 (numbers + RDF plot).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Redo a finished run in --out.")] = False,
) -> None:
    """Melt (2000 K), quench (to 300 K) and hold one cell with LAMMPS and the study's EAM potential."""
    import dataclasses

    from ..md.quench import QuenchProtocol, melt_quench

    protocol = QuenchProtocol.scaled() if scaled else QuenchProtocol()
    if rate is not None:
        protocol = dataclasses.replace(protocol, quench_rate_K_per_s=rate)
    console = make_console()
    steps = sum(protocol.steps())
    with console.status(f"LAMMPS melt-quench of {nc} ({n_atoms} atoms, {steps:,} steps, seed {seed})"):
        res = melt_quench(nc, out, seed, n_atoms=n_atoms, protocol=protocol, threads=threads,
                          overwrite=overwrite)
    console.print(
        f"done {res.xyz_path}  density {res.density_g_cm3:.3f} g/cm^3, "
        f"E_pot {res.pe_per_atom_ev:.4f} eV/atom at {res.temperature_K:.0f} K, {res.wall_s:.1f} s"
    )
    if compare:
        _compare_with_run21(res, console)
    if augment:
        from ..generate.augment import write_augmented

        paths = write_augmented(res.atoms, Path(out) / "2000", nc, overwrite=overwrite)
        console.print(f"wrote {len(paths)} cells under {Path(out) / '2000'}")


def _compare_with_run21(res: object, console: Any) -> None:
    """Print density / energy against the real run 21 and write ``rdf-vs-run21.png`` beside the run."""
    from ase.io import read

    from ..data import run21_dir
    from ..md.quench import glass_stats, plot_rdf_comparison

    ref = glass_stats(run21_dir() / "log.lammps", 100)
    table = Table(title="generated glass vs run 21 (300 K hold, 8.5e9 K/s)")
    for col in ("", "generated", "run 21 (mean +- std)"):
        table.add_column(col)
    table.add_row("density (g/cm^3)", f"{res.density_g_cm3:.3f}", f"{ref.density:.3f} +- {ref.density_std:.3f}")
    table.add_row("E_pot (eV/atom)", f"{res.pe_per_atom_ev:.4f}",
                  f"{ref.pe_per_atom:.4f} +- {ref.pe_per_atom_std:.4f}")
    console.print(table)
    ref_cell = read(run21_dir() / "2000" / "0" / "Zr49Cu49Al2.xyz")
    png = plot_rdf_comparison(res.atoms, ref_cell, Path(res.out_dir) / "rdf-vs-run21.png")
    console.print(f"partial RDFs: {png}")


def register(app: typer.Typer) -> None:
    """Add ``augment`` and the ``md`` group (``md quench``) to the bondml CLI."""
    app.command("augment")(augment_cmd)
    md = typer.Typer(help="Classical MD with LAMMPS and the study's EAM potential.", no_args_is_help=True)
    md.command("quench")(quench_cmd)
    app.add_typer(md, name="md")
