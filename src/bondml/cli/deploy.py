"""``bondml predict``, ``bondml analyze`` and ``bondml compress``: the deployment stage (SS-ML)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import make_console
from rich.table import Table

from ..constants import BOND_TYPES

console = make_console()


def _print_summary(s: dict) -> None:
    t = Table(title=f"{s['frames']} frame(s), {s['n_atoms']} atoms, {s['seconds_per_frame'] or 0:.2f} s/frame")
    t.add_column("bond type")
    t.add_column("bonds (frame 0)", justify="right")
    for bt in BOND_TYPES:
        t.add_row(bt, str(s["bonds"].get(bt, 0)))
    t.add_row("total", str(s["bonds_total_first_frame"]))
    console.print(t)
    console.print(f"out of domain: {100 * s['fraction_out_of_domain']:.2f} %, "
                  f"fallback: {100 * s['fraction_fallback']:.3f} %")


def register(app: typer.Typer) -> None:
    """Add ``predict``, ``analyze`` and ``compress`` to the bondml app."""

    @app.command()
    def predict(
        model: Annotated[Path, typer.Option(help="model folder (bondml train)")],
        structure: Annotated[Path, typer.Option(help="LAMMPS data file or dump, ext-xyz, any ASE format")],
        out: Annotated[Path, typer.Option(help="output folder (resumable)")],
        icohplist: Annotated[bool, typer.Option("--icohplist", help="also write LOBSTER ICOHPLIST per frame")] = False,
        workers: Annotated[Optional[int], typer.Option(help="processes (default: all cores)")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="replace another run in --out")] = False,
        type_map: Annotated[Optional[str], typer.Option(help="LAMMPS types, e.g. 1=Zr,2=Cu,3=Al")] = None,
        max_frames: Annotated[Optional[int], typer.Option(help="stop after this many frames")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
        recycle_every: Annotated[int, typer.Option(help="frames per worker process (bounds QUIP's SOAP leak)")] = 20,
        precision: Annotated[str, typer.Option(help="float32 (fast, < 1e-4 eV change) or float64")] = "float32",
    ) -> None:
        """-ICOHP (eV) + std of every bond of every frame; Parquet, per-atom ext-xyz, summary.json."""
        from ..deploy.infer import PredictConfig, default_workers, predict_trajectory

        cfg = PredictConfig(workers=workers or default_workers(), icohplist=icohplist, overwrite=overwrite,
                            type_map=type_map, max_frames=max_frames, progress=not quiet,
                            recycle_every=recycle_every, precision=precision)
        s = predict_trajectory(model, structure, out, cfg)
        _print_summary(s)
        console.print(f"wrote {out / 'summary.json'}")

    @app.command()
    def analyze(
        run: Annotated[Path, typer.Argument(help="output folder of bondml predict")],
        out: Annotated[Path, typer.Option(help="report folder")],
        thermo: Annotated[Optional[Path], typer.Option(help="thermo.csv of the MD (default: beside the input)")] = None,
    ) -> None:
        """Stress-strain, distributions, per-atom correlations, bond exchange, maps -> report."""
        from ..analysis.report import analyze as run_analysis

        path = run_analysis(run, out, thermo)
        console.print(f"wrote {path} and {path.with_suffix('.md')}")

    @app.command()
    def compress(
        out: Annotated[Path, typer.Option(help="output folder (dump, thermo.csv, log)")],
        cell: Annotated[Optional[Path], typer.Option(help="LAMMPS data file (default: the shipped 10k cell)")] = None,
        scaled: Annotated[bool, typer.Option("--scaled", help="scaled-down demo: cut cell, fast strain rate")] = False,
        cut_side: Annotated[float, typer.Option(help="--scaled: side of the cut cube (Angstrom)")] = 28.0,
        strain_rate: Annotated[Optional[float], typer.Option(help="1/s (default 1e7; scaled 1e10)")] = None,
        final_strain: Annotated[Optional[float], typer.Option(help="negative (default -0.1454; scaled -0.06)")] = None,
        frame_ps: Annotated[Optional[float], typer.Option(help="ps between frames")] = None,
        seed: Annotated[int, typer.Option(help="velocity seed")] = 12345,
        threads: Annotated[Optional[int], typer.Option(help="OpenMP threads")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
    ) -> None:
        """Run the compression MD (the study's protocol, or the documented scaled-down one)."""
        from dataclasses import replace

        from ..deploy.md import CompressionProtocol, cut_cell, run_compression, scaled_protocol

        if scaled:
            out.mkdir(parents=True, exist_ok=True)
            src = cell if cell else None
            cell_file = cut_cell(out / "cut.data", side=cut_side, source=src)
            p = scaled_protocol(str(cell_file), threads=threads or 1)
        else:
            p = CompressionProtocol(cell_file=str(cell) if cell else "", threads=threads)
        changes = {k: v for k, v in (("strain_rate_per_s", strain_rate), ("final_strain", final_strain),
                                     ("frame_ps", frame_ps)) if v is not None}
        p = replace(p, seed=seed, **changes)
        console.print(f"compression: {p.n_frames} frames, {p.compression_ps:g} ps of compression")
        run_compression(p, out, overwrite=overwrite)
        console.print(f"wrote {out / 'compression.dump'} and {out / 'thermo.csv'}")
