"""``bondml demo``: the main job end to end on the bundled real data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""

    @app.command()
    def demo(
        out: Annotated[Path, typer.Option(help="output folder")] = Path("demo-output"),
    ) -> None:
        """Ingest the bundled reference tree (run 21 of Zr49Cu49Al2) into a bond store, import the
        original label tables and print the inventory."""
        from ..data import reference_root
        from ..store.db import BondStore
        from .etl import ingest_with_progress, print_summary

        root = reference_root()
        store_dir = out / "store"
        console.rule("[bold]1. Extract / Transform / Load")
        rep = ingest_with_progress(root, store_dir)
        console.print(f"ingest: {len(rep.added)} added, {len(rep.unchanged)} unchanged, version {rep.version}")
        store = BondStore(store_dir)
        for name in ("DB4", "DB8", "Zr49Cu49Al2-PBSSDB"):
            counts = store.import_tables(root / "ML/big-data-full" / name)
            console.print(f"imported original table {name}: {sum(counts.values())} label-only bonds")
        print_summary(store.info())
