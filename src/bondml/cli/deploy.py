"""``bondml predict``, ``bondml analyze`` and ``bondml compress``: the deployment stage (SS-ML)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..constants import BOND_TYPES
from ._io import Table, console


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


class _ProgressBar:
    """``predict_trajectory``'s progress callback drawn as a rich bar (frames, frames/s, ETA)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, done: int, total: int | None) -> None:
        import time

        if self.bar is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]predict"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} frames/s"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("frames", total=total, completed=done, rate="-")
            self.t0, self.first = time.perf_counter(), done
            return
        rate = (done - self.first) / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.update(self.task, completed=done, rate=f"{rate:.2f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _check_type_map(text: str) -> None:
    """``--type-map 1=Zr,2=Cu,3=Al``: integer types, known elements (one-line error otherwise)."""
    from ..errors import BondmlError, ConfigError
    from ..types import check_element

    for item in text.split(","):
        t, _, el = item.partition("=")
        if not t.strip().isdigit() or not el.strip():
            raise ConfigError(f"--type-map {text!r}: {item!r} is not TYPE=ELEMENT (e.g. 1=Zr,2=Cu,3=Al)")
        try:
            check_element(el.strip())
        except BondmlError as exc:
            raise ConfigError(f"--type-map {text!r}: {exc}") from None


def register(app: typer.Typer) -> None:
    """Add ``predict``, ``analyze`` and ``compress`` to the bondml app."""

    @app.command()
    def predict(
        model: Annotated[Path, typer.Option(help="model folder (bondml train)")],
        structure: Annotated[Path, typer.Option(help="LAMMPS data file or dump, ext-xyz, any ASE format")],
        out: Annotated[Path, typer.Option(help="output folder (resumable)")],
        icohplist: Annotated[bool, typer.Option("--icohplist", help="also write LOBSTER ICOHPLIST per frame")] = False,
        ovito: Annotated[bool, typer.Option("--ovito", help="also write OVITO files per frame: LAMMPS data with "
                                                            "bonds + dump local with per-bond -ICOHP")] = False,
        workers: Annotated[int | None, typer.Option(help="processes (default: all cores)")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="replace another run in --out")] = False,
        type_map: Annotated[str | None, typer.Option(help="LAMMPS types, e.g. 1=Zr,2=Cu,3=Al")] = None,
        max_frames: Annotated[int | None, typer.Option(help="stop after this many frames")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
        recycle_every: Annotated[int, typer.Option(help="frames per worker process (bounds QUIP's SOAP leak)")] = 20,
        precision: Annotated[str, typer.Option(help="float32 (fast, < 1e-4 eV change) or float64")] = "float32",
        exact_std: Annotated[bool, typer.Option("--exact-std", help="exact GP std (slow: grows as n_train^2) "
                                                "instead of the low-rank one (~1 % p95 error)")] = False,
    ) -> None:
        """-ICOHP (eV) + std of every bond of every frame; Parquet, per-atom ext-xyz, summary.json."""
        from ..deploy.infer import PredictConfig, default_workers, predict_trajectory
        from ._io import check_range

        check_range("--workers", workers, 1)
        check_range("--max-frames", max_frames, 1)
        check_range("--recycle-every", recycle_every, 1)
        if precision not in ("float32", "float64"):
            from ..errors import ConfigError

            raise ConfigError(f"--precision {precision!r}: use float32 or float64")
        if type_map:
            _check_type_map(type_map)

        cfg = PredictConfig(workers=workers or default_workers(), icohplist=icohplist, ovito=ovito, overwrite=overwrite,
                            type_map=type_map, max_frames=max_frames,
                            recycle_every=recycle_every, precision=precision, exact_std=exact_std)
        from ..errors import BondmlError, PartialFailure
        from ._io import print_error

        bar = None if quiet else _ProgressBar()
        try:
            s = predict_trajectory(model, structure, out, cfg, progress=bar)
        except PartialFailure as exc:  # a bad frame after good ones: those are kept, the run resumes
            if isinstance(exc.__cause__, BondmlError):
                print_error(exc.__cause__)
            raise
        finally:
            if bar is not None:
                bar.close()
        _print_summary(s)
        console.print(f"wrote {out / 'summary.json'}")

    @app.command()
    def analyze(
        run: Annotated[Path, typer.Argument(help="output folder of bondml predict")],
        out: Annotated[Path, typer.Option(help="report folder")],
        thermo: Annotated[Path | None, typer.Option(help="thermo.csv of the MD (default: beside the input)")] = None,
    ) -> None:
        """Stress-strain, distributions, per-atom correlations, bond exchange, maps -> report."""
        from ..analysis.report import analyze as run_analysis
        from ..errors import InputFileError
        from ._io import output_lock

        if not (run / "manifest.json").is_file():
            raise InputFileError(run, "not a bondml predict output folder (no manifest.json)")
        with output_lock(out, "report folder"):
            path = run_analysis(run, out, thermo)
        console.print(f"wrote {path} and {path.with_suffix('.md')}")

    @app.command()
    def compress(
        out: Annotated[Path, typer.Option(help="output folder (dump, thermo.csv, log)")],
        cell: Annotated[Path | None, typer.Option(help="LAMMPS data file (default: the shipped 10k cell)")] = None,
        scaled: Annotated[bool, typer.Option("--scaled", help="scaled-down demo: cut cell, fast strain rate")] = False,
        cut_side: Annotated[float, typer.Option(help="--scaled: side of the cut cube (Angstrom)")] = 28.0,
        strain_rate: Annotated[float | None, typer.Option(help="1/s (default 1e7; scaled 1e10)")] = None,
        final_strain: Annotated[float | None, typer.Option(help="negative (default -0.1454; scaled -0.06)")] = None,
        frame_ps: Annotated[float | None, typer.Option(help="ps between frames")] = None,
        seed: Annotated[int, typer.Option(help="velocity seed")] = 12345,
        threads: Annotated[int | None, typer.Option(help="OpenMP threads")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
    ) -> None:
        """Run the compression MD (the study's protocol, or the documented scaled-down one)."""
        from dataclasses import replace

        from ..errors import ConfigError, InputFileError
        from ..md.compress import CompressionProtocol, cut_cell, run_compression, scaled_protocol
        from ._io import check_range

        check_range("--cut-side", cut_side, 0, low_open=True)
        check_range("--strain-rate", strain_rate, 0, low_open=True)
        check_range("--frame-ps", frame_ps, 0, low_open=True)
        check_range("--seed", seed, 0)
        check_range("--threads", threads, 1)
        if final_strain is not None and not -1.0 < final_strain < 0.0:
            raise ConfigError(f"--final-strain = {final_strain}: must be in (-1, 0) (compression is negative)")
        if cell is not None and not cell.is_file():
            raise InputFileError(cell, "LAMMPS data file not found" if not cell.exists() else "is not a file")
        if out.exists() and not out.is_dir():
            raise InputFileError(out, "is a file, not a folder; give a folder for --out")
        if (out / "compression.dump").exists() and not overwrite:  # before anything is written
            raise ConfigError(f"{out}: already holds a compression run (compression.dump); "
                              "use --overwrite or another --out")
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
