"""Entry point of the ``bondml`` CLI.

Each stage module in this package exposes ``register(app)``; errors of the
:class:`bondml.errors.BondmlError` family are printed as one red line with exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from ..errors import BondmlError

#: Stage modules whose commands make up the CLI, in help order.
COMMAND_MODULES = (
    "bondml.cli.etl",
    "bondml.cli.model",
    "bondml.cli.deploy",
    "bondml.cli.augment",
    "bondml.cli.generate",
    "bondml.cli.pipeline",
)


def build_app() -> typer.Typer:
    """Assemble the typer app from the stage modules."""
    app = typer.Typer(
        name="bondml",
        help="Machine-learned DFT bond strengths (-ICOHP) for Zr-Cu-Al metallic glasses. "
        "Units: Angstrom, eV, GPa, ps.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # stage not installed in this build
                continue
            raise
        mod.register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; BondmlError -> one line on stderr, exit status 2."""
    app = build_app()
    try:
        app(args=argv, standalone_mode=True)
    except BondmlError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
