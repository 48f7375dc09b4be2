"""``bondml ingest`` and ``bondml db ...``: the Extract/Transform/Load stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import PartialFailure
from ._io import Table, console, make_console, print_error


def ingest_with_progress(root: Path, store_dir: Path, quiet: bool = False, target: str | None = None,
                         labels: str | None = None, descriptor: str | None = None) -> object:
    """Ingest a GETL tree with a rich progress bar; returns the IngestReport."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..errors import ConfigError
    from ..features.soap import settings_for
    from ..store.db import BondStore, require_runs, settings_for_data

    if descriptor is not None and descriptor not in ("atom", "bond"):
        raise ConfigError(f"--descriptor {descriptor!r}: unknown descriptor; use atom or bond")
    cells = require_runs(root)  # bad input: refused before any store is created
    source = {"xtb": "xtb-gfn1"}.get(labels or "", labels)
    if (Path(store_dir) / "store.json").is_file():
        store = BondStore(store_dir, target=target, label_source=source)
        if descriptor is not None and store.settings.kind != descriptor:
            raise ConfigError(f"{store_dir}: the store holds {store.settings.kind}-centred descriptors, not "
                              f"{descriptor}; choose another --store for {descriptor}-centred ones")
    else:
        store = BondStore(store_dir, create=True,
                          settings=settings_for_data(root, settings_for(descriptor or "atom"), cells), target=target,
                          label_source=source)
    with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}", markup=False), TimeRemainingColumn(),
                  console=make_console(), disable=quiet, transient=True) as prog:
        task = prog.add_task("", total=len(cells))

        def step(cell: object, status: str) -> None:
            prog.update(task, advance=1, description=f"{cell} {status}")

        rep = store.ingest(root, progress=step, runs=cells)
    return rep


def print_summary(info: dict) -> None:
    """Cells by status, bonds per type, label statistics, as rich tables."""
    t = Table(title=f"cells by status (version {info['version']})")
    t.add_column("status")
    t.add_column("cells", justify="right")
    for st, n in sorted(info["cells_by_status"].items()):
        t.add_row(st, str(n))
    console.print(t)
    bad = [c for c in info["cells"] if c["status"] not in ("DONE",) or c.get("error")]
    for c in bad:
        console.print(f"  {c['nc']}/{c['run']}/{c['sub_run']} {c['status']}: {c.get('error') or c['reason']}")
    lo, hi = info["label_window"]
    t = Table(title=f"labelled bonds {lo:.2f} <= d <= {hi:.2f} A and -ICOHP statistics (eV)")
    for col in ("type", "bonds", "mean", "std", "min", "max", "d range (A)"):
        t.add_column(col, justify="right" if col != "type" else "left")
    for bt in info["bonds"]:
        s = info["label_stats"].get(bt)
        if s:
            t.add_row(bt, str(info["bonds"][bt]), f"{s['mean']:.3f}", f"{s['std']:.3f}", f"{s['min']:.3f}",
                      f"{s['max']:.3f}", f"{s['d_min']:.2f}-{s['d_max']:.2f}")
        else:
            t.add_row(bt, str(info["bonds"][bt]), "-", "-", "-", "-", "-")
    t.add_row("total", str(sum(info["bonds"].values())), "", "", "", "", "")
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add ``ingest`` and the ``db`` group to the CLI."""
    db = typer.Typer(help="Inspect and use the bond database (versions, selections, original tables).",
                     no_args_is_help=True)

    @app.command()
    def ingest(
        root: Annotated[Path, typer.Argument(help="folder of LOBSTER runs: a GETL tree (ML/big-data-full) or any "
                                                  "layout of VASP / Quantum ESPRESSO runs (docs/formats.md)")],
        store: Annotated[Path, typer.Option(help="store folder (created if missing)")],
        json_out: Annotated[bool, typer.Option("--json", help="print the ingest report as JSON")] = False,
        target: Annotated[str | None, typer.Option(help="bond indicator: icohp (-ICOHP, default), icoop (ICOOP) "
                                                           "or icobi (ICOBI); one per store")] = None,
        labels: Annotated[str | None, typer.Option(help="label source: lobster (default) or xtb (approximate "
                                                           "GFN1-xTB labels, ICOHPLIST.xtb); one per store")] = None,
        descriptor: Annotated[str | None, typer.Option(help="atom (the paper's per-atom SOAP, default) or bond "
                                                            "(SOAP at the bond midpoint, for the default "
                                                            "model); fixed when the store is created")] = None,
    ) -> None:
        """Add every LOBSTER run found under ROOT to the store: idempotent, resumable, atomic.

        A new store takes its SOAP species from the elements found (the study's for Zr-Cu-Al)."""
        rep = ingest_with_progress(root, store, quiet=json_out, target=target, labels=labels,
                                   descriptor=descriptor)
        if json_out:
            print(json.dumps({"added": rep.added, "unchanged": rep.unchanged, "errors": rep.errors,
                              "repaired": rep.repaired, "version": rep.version,
                              "version_changed": rep.version_changed}, indent=2))
        else:
            console.print(f"ingest: {len(rep.added)} added, {len(rep.unchanged)} unchanged, "
                          f"{len(rep.repaired)} repaired, {len(rep.errors)} with errors; version {rep.version}"
                          f"{' (new)' if rep.version_changed else ' (unchanged)'} in {rep.seconds:.1f} s")
            from ..store.db import BondStore

            print_summary(BondStore(store).info())
        for cell, err in rep.errors.items():
            print_error(err if err.startswith(str(root)) else f"{cell}: {err}")
        if rep.errors:
            n_cells = len(rep.added) + len(rep.unchanged) + len(rep.repaired)
            raise PartialFailure(f"{root}: {len(rep.errors)} of {n_cells} "
                                 "cell(s) not ingested (see above); fix them and run the same command again")

    @db.command("info")
    def db_info(
        store: Annotated[Path, typer.Option(help="store folder")],
        version: Annotated[str | None, typer.Option(help="dataset version (default: current)")] = None,
        json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """Cells with status, labelled bonds per type (1.80-3.75 A), label statistics."""
        from ..store.db import BondStore

        info = BondStore(store).info(version)
        if json_out:
            print(json.dumps(info, indent=2, default=str))
        else:
            print_summary(info)

    @db.command("verify")
    def db_verify(
        store: Annotated[Path, typer.Option(help="store folder")],
        repair: Annotated[bool, typer.Option(
            "--repair", help="re-extract damaged objects from their source files")] = False,
        json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """Check every stored object and table against its SHA-256 (exit 1 if anything is damaged)."""
        from ..store.db import BondStore

        rep = BondStore(store).verify(repair=repair)
        if json_out:
            print(json.dumps(rep, indent=2))
        else:
            console.print(f"verify {store}: {rep['checked']} objects and tables checked, "
                          f"{len(rep['problems'])} damaged, {len(rep['repaired'])} repaired")
            for line in rep["repaired"]:
                console.print(f"  repaired {line}")
        for line in rep["problems"]:
            print_error(line)
        if rep["problems"]:
            raise PartialFailure(f"{store}: {len(rep['problems'])} damaged object(s) or table(s)"
                                 + ("" if repair else "; run 'bondml db verify --store " + str(store) + " --repair'"))

    @db.command("versions")
    def db_versions(store: Annotated[Path, typer.Option(help="store folder")]) -> None:
        """Dataset versions (content hashes) with their parents."""
        from ..store.db import BondStore

        s = BondStore(store)
        cur = s.current_version(required=False)
        for v in s.versions():
            mark = "*" if v["hash"] == cur else " "
            console.print(f"{mark} {v['hash']}  {v['created']}  {v['cells']} cells  parent={v['parent']}")

    @db.command("select")
    def db_select(
        name: Annotated[str, typer.Argument(help="name of the selection")],
        store: Annotated[Path, typer.Option(help="store folder")],
        n_per_type: Annotated[int, typer.Option(help="bonds per type to draw")] = 600,
        seed: Annotated[int, typer.Option(help="random seed")] = 0,
        nc: Annotated[list[str] | None, typer.Option(help="compositions to draw from (repeat)")] = None,
        run: Annotated[list[int] | None, typer.Option(help="runs to draw from (repeat)")] = None,
        sub_run: Annotated[list[int] | None, typer.Option(help="sub-runs to draw from (repeat)")] = None,
        stratify: Annotated[str, typer.Option(help="equal shares over nc, run or cell")] = "nc",
    ) -> None:
        """Save a seeded, stratified selection / mix of N labelled bonds per type (like DB4/DB8)."""
        from ..errors import ConfigError
        from ..store.db import BondStore
        from ._io import check_range

        check_range("--n-per-type", n_per_type, 1)
        check_range("--seed", seed, 0)
        if stratify not in ("nc", "run", "cell"):
            raise ConfigError(f"--stratify {stratify!r}: use nc, run or cell")

        sel = BondStore(store).make_selection(name, n_per_type, seed, nc, run, sub_run, stratify)
        console.print(f"selection {name} ({sel['hash']}) of version {sel['version']}: "
                      f"{len(sel['bonds'])} bonds")
        for t, c in sel["counts"].items():
            console.print(f"  {t}: {sum(c.values())} over {len(c)} {stratify} groups")

    @db.command("import-tables")
    def db_import(
        folder: Annotated[Path, typer.Argument(help="folder of original .bnd tables (PBSSDB, DB4, DB8)")],
        store: Annotated[Path, typer.Option(help="store folder")],
        name: Annotated[str | None, typer.Option(help="name (default: folder name)")] = None,
    ) -> None:
        """Import the original label-only tables (.bnd, .info, ND.info, DUB.info)."""
        from ..store.db import BondStore

        counts = BondStore(store, create=True).import_tables(folder, name)
        console.print(f"imported {sum(counts.values())} bonds: {counts}")

    @db.command("export-bnd")
    def db_export(
        store: Annotated[Path, typer.Option(help="store folder")],
        out: Annotated[Path, typer.Option(help="output folder")],
        selection: Annotated[str | None, typer.Option(help="selection name")] = None,
        version: Annotated[str | None, typer.Option(help="dataset version")] = None,
    ) -> None:
        """Write the original .bnd/.info tables for a version or selection."""
        from ..store.db import BondStore

        files = BondStore(store).export_bnd(out, selection=selection, version=version)
        for t, p in files.items():
            console.print(f"{t}: {p}")

    @db.command("query")
    def db_query(
        sql: Annotated[str, typer.Argument(help="SQL over views 'bonds' (with a type column) and 'cells'")],
        store: Annotated[Path, typer.Option(help="store folder")],
        version: Annotated[str | None, typer.Option(help="dataset version")] = None,
    ) -> None:
        """Run a duckdb SQL query over the bond database."""
        from ..store.db import BondStore

        for row in BondStore(store).query(sql, version):
            print("\t".join(str(x) for x in row))

    app.add_typer(db, name="db")
