"""Entry point of the ``bondml`` CLI.

Each stage module in this package exposes ``register(app)``. :func:`run` is the top-level handler
of the reliability contract (docs/reliability.md): every failure becomes one line on stderr,
``error: <file or value>: <problem>[; <what to do>]``, and an exit status

* 0 everything asked was done;
* 1 done, but some items failed (cells not ingested, jobs failed), with a summary;
* 2 bad input or usage: nothing was changed;
* 3 internal error (a bug in bondml; re-run with ``--debug`` for the traceback and report it);
* 130 interrupted (Ctrl-C): everything written so far is complete, re-run to resume.

``bondml --debug <command> ...`` (or ``BONDML_DEBUG=1``) prints the traceback as well.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click
import typer

from ..errors import BondmlError
from . import _io

try:  # typer >= 0.20 vendors click as typer._click: its exceptions are other classes
    from typer._click import exceptions as _tclick
except ImportError:  # pragma: no cover
    _tclick = click.exceptions

_USAGE = tuple({click.exceptions.UsageError, _tclick.UsageError})
_CLICK = tuple({click.exceptions.ClickException, _tclick.ClickException})
_EXIT = tuple({click.exceptions.Exit, typer.Exit, getattr(_tclick, "Exit", typer.Exit)})
_ABORT = tuple({click.exceptions.Abort, typer.Abort, getattr(_tclick, "Abort", typer.Abort)})
_NOARGS = tuple(c for c in (getattr(_tclick, "NoArgsIsHelpError", None),
                            getattr(click.exceptions, "NoArgsIsHelpError", None)) if c is not None)

#: Stage modules whose commands make up the CLI, in help order.
COMMAND_MODULES = (
    "bondml.cli.etl",
    "bondml.cli.model",
    "bondml.cli.deploy",
    "bondml.cli.augment",
    "bondml.cli.generate",
    "bondml.cli.pipeline",
)

_DEBUG = {"on": False}


def build_app() -> typer.Typer:
    """Assemble the typer app from the stage modules."""
    app = typer.Typer(
        name="bondml",
        help="Machine-learned DFT bond strengths (-ICOHP) for Zr-Cu-Al metallic glasses. "
        "Units: Angstrom, eV, GPa, ps. Exit status: 0 done, 1 done but some items failed, "
        "2 bad input (nothing changed), 3 internal error.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def _root(debug: bool = typer.Option(False, "--debug", help="print the traceback of an error")) -> None:
        if debug:
            _DEBUG["on"] = True

    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # stage not installed in this build
                continue
            raise
        mod.register(app)
    return app


# ------------------------------------------------------------------------------------------ mapping
_OS_PROBLEMS = {
    errno.ENOSPC: "no space left on the device; free some space and run the same command again "
                  "(what was written is complete, the command resumes)",
    errno.EDQUOT: "disk quota exceeded; free some space and run the same command again",
    errno.EACCES: "permission denied; check the permissions of this path or choose another one",
    errno.EPERM: "operation not permitted; check the permissions of this path",
    errno.EROFS: "read-only file system; choose a writable location",
    errno.EISDIR: "is a folder where a file is expected; give a file path",
    errno.ENOTDIR: "a part of this path is a file where a folder is expected; give a folder path",
    errno.EEXIST: "already exists; remove it or choose another path",
    errno.ENOENT: "no such file or folder",
    errno.ENOTEMPTY: "folder is not empty",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) and re-run",
    errno.ENOMEM: "out of memory; use fewer workers or a smaller input",
    errno.EIO: "input/output error (disk or network file system); check the device and re-run",
}


def _guess_input(argv: list[str]) -> str:
    """The first argument naming an existing file, else folder (for decode errors that carry no
    file name)."""
    for test in (Path.is_file, Path.is_dir):
        for a in argv:
            v = a.split("=", 1)[1] if a.startswith("--") and "=" in a else a
            try:
                if v and not v.startswith("-") and test(Path(v)):
                    return v
            except OSError:
                continue
    return "input"


def describe(exc: BaseException, argv: list[str]) -> tuple[str, int]:
    """(one-line message, exit status) for an exception raised by a command."""
    if isinstance(exc, BondmlError):
        return str(exc), int(getattr(exc, "exit_code", _io.BAD_INPUT))
    if isinstance(exc, _USAGE):
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "bondml"
        return f"{where}: {exc.format_message()}; see '{where} --help'", _io.BAD_INPUT
    if isinstance(exc, _CLICK):
        return exc.format_message(), _io.BAD_INPUT
    if isinstance(exc, OSError) and not type(exc).__module__.startswith(("pyarrow", "duckdb")):
        path = exc.filename if exc.filename is not None else (exc.filename2 or "")
        problem = _OS_PROBLEMS.get(exc.errno or -1) or (exc.strerror or str(exc) or type(exc).__name__)
        if exc.filename2 is not None and exc.filename is not None:
            path = f"{exc.filename} -> {exc.filename2}"
        return f"{path or os.getcwd()}: {problem}", _io.BAD_INPUT
    if isinstance(exc, UnicodeDecodeError):
        return (f"{_guess_input(argv)}: not a text file (invalid {exc.encoding} byte at offset {exc.start}); "
                "give the text file this option expects"), _io.BAD_INPUT
    if isinstance(exc, json.JSONDecodeError):
        return f"{_guess_input(argv)}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", _io.BAD_INPUT
    try:
        import tomllib

        if isinstance(exc, tomllib.TOMLDecodeError):
            return f"{_guess_input(argv)}: not valid TOML ({exc})", _io.BAD_INPUT
    except ImportError:  # pragma: no cover
        pass
    mod = type(exc).__module__ or ""
    if mod.startswith("pyarrow"):
        return (f"{_guess_input(argv)}: damaged or unreadable Parquet data ({exc}); "
                "run 'bondml db verify' on the store or re-create the file"), _io.BAD_INPUT
    if mod.startswith(("duckdb", "_duckdb")):
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"SQL: {first}", _io.BAD_INPUT
    if isinstance(exc, MemoryError):
        return "out of memory; use fewer workers or a smaller input", _io.BAD_INPUT
    return (f"internal error ({type(exc).__name__}: {exc}); re-run with 'bondml --debug ...' "
            "and report the traceback"), _io.INTERNAL


def _keep_invoked(app: typer.Typer, args: list[str]) -> None:
    """Drop every command but the one ``args`` invokes (when it names one exactly): typer then
    builds the options of that command only (building all ~30 costs about 0.2 s of start-up).
    Top-level help, unknown or misspelt commands keep the full set (listing, suggestions)."""
    name = next((a for a in args if not a.startswith("-")), None)
    if name is None or args[: args.index(name)] not in ([], ["--debug"]):
        return

    def cmd_name(info: Any) -> str:
        return info.name or typer.main.get_command_name(info.callback.__name__)

    cmds = [c for c in app.registered_commands if cmd_name(c) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if cmds or groups:
        app.registered_commands, app.registered_groups = cmds, groups


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status (never raises, never prints a traceback unless debug)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG["on"] = os.environ.get("BONDML_DEBUG", "") not in ("", "0") or "--debug" in args[:1]
    try:
        app = build_app()
        _keep_invoked(app, args)
        rv = typer.main.get_command(app).main(args=args, prog_name="bondml", standalone_mode=False)
        return int(rv) if isinstance(rv, int) else _io.OK
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0))
    except _NOARGS as exc:
        ctx = getattr(exc, "ctx", None)
        sys.stdout.write((ctx.get_help() if ctx is not None else str(exc)) + "\n")
        return _io.BAD_INPUT
    except _ABORT:
        _io.print_error("interrupted; what was written is complete, run the same command again to resume")
        return _io.INTERRUPTED
    except KeyboardInterrupt:
        _io.print_error("interrupted; what was written is complete, run the same command again to resume")
        return _io.INTERRUPTED
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else _io.BAD_INPUT)
    except BaseException as exc:  # noqa: BLE001 - the top-level handler
        msg, code = describe(exc, args)
        if _DEBUG["on"]:
            traceback.print_exc()
        _io.print_error(msg)
        return code


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: :func:`run`, then exit with its status."""
    sys.exit(run(argv))


if __name__ == "__main__":  # pragma: no cover
    main()
