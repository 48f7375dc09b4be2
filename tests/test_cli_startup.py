"""Start-up of the CLI (issue 15, target 3): `bondml --help` imports nothing heavy, and a command
builds only its own options."""

from __future__ import annotations

import subprocess
import sys


def _imported(args: list[str]) -> set[str]:
    """Modules loaded by running the CLI with ``args`` in a fresh interpreter."""
    code = (f"import sys\nfrom bondml.cli.main import run\nrc = run({args!r})\n"
            "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\nsys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "predict" in r.stdout
    return set(r.stderr.rsplit("MODULES ", 1)[1].split())


def test_help_imports_nothing_heavy() -> None:
    mods = _imported(["--help"])
    assert "bondml.cli.deploy" in mods  # every stage registered its commands
    heavy = {"rich", "numpy", "scipy", "pandas", "pyarrow", "quippy", "ase", "sklearn", "parsl", "mlflow", "duckdb"}
    assert not heavy & {m.split(".")[0] for m in mods}


def test_only_the_invoked_command_is_built() -> None:
    import typer

    from bondml.cli.main import _keep_invoked, build_app

    app = build_app()
    n = len(app.registered_commands)
    assert n > 10
    _keep_invoked(app, ["--debug", "predict", "--help"])
    assert [c.callback.__name__ for c in app.registered_commands] == ["predict"] and not app.registered_groups
    for args in (["--help"], [], ["predikt"], ["--version", "predict"]):  # help, typo: the full set stays
        app = build_app()
        _keep_invoked(app, args)
        assert len(app.registered_commands) == n
    app = build_app()
    _keep_invoked(app, ["db", "verify", "--help"])
    assert [g.name for g in app.registered_groups] == ["db"] and not app.registered_commands
    assert "verify" in typer.main.get_command(app).commands["db"].commands
