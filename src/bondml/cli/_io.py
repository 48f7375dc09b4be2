"""Terminal output of the CLI: one console that never hard-wraps, truncates or reads user text as
markup, and the one-line error format ``error: <file or value>: <problem>[; <what to do>]``.

Rules (the reliability contract, docs/reliability.md):

* every error is one line on stderr, written with plain ``sys.stderr.write`` (no rich, no markup,
  no wrapping), newlines inside a message are folded into spaces;
* stdout goes through :data:`console`: ``markup=False`` and ``highlight=False`` so a path such as
  ``run[bold]2`` is printed as it is, ``soft_wrap=True`` so long lines are never split, and when
  stdout is not a terminal a very wide virtual width so tables are neither truncated nor wrapped;
* :func:`exit_code` constants: 0 all done, 1 done but some items failed, 2 bad input / usage
  (nothing changed), 3 internal error (a bug: report it), 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported on first output (start-up: `bondml --help` < 0.3 s)
    from rich.console import Console

OK = 0
PARTIAL = 1
BAD_INPUT = 2
INTERNAL = 3
INTERRUPTED = 130

#: Width used for tables when stdout is a file or a pipe (no truncation, no wrapping).
PIPE_WIDTH = 100_000


def make_console(stderr: bool = False) -> Console:
    """A rich console for plain user text: no markup, no highlighting, no hard wrapping."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = bool(getattr(stream, "isatty", lambda: False)())
    width = None if tty or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True, emoji=False, width=width)


def Table(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - stands in for the class
    """``rich.table.Table(*args, **kwargs)``, with rich imported on first use (start-up time)."""
    from rich.table import Table as _Table

    return _Table(*args, **kwargs)


def Text(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - stands in for the class
    """``rich.text.Text(*args, **kwargs)``, with rich imported on first use (start-up time)."""
    from rich.text import Text as _Text

    return _Text(*args, **kwargs)


class _LazyConsole:
    """Created on first use, so that the stream seen is the one in place then (pytest's capture)."""

    _cache: tuple[int, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        key = id(sys.stdout)
        if self._cache is None or self._cache[0] != key:
            type(self)._cache = (key, make_console())
        return getattr(self._cache[1], name)


console: Any = _LazyConsole()


def one_line(text: object) -> str:
    """``text`` with every line break folded into one space (messages stay grep-able)."""
    return " ".join(str(text).split("\n")).replace("\r", " ").strip()


def error_line(message: object) -> str:
    """The ``error: ...`` line for a message (already ``<what>: <problem>``)."""
    msg = one_line(message)
    return msg if msg.startswith("error: ") else f"error: {msg}"


def print_error(message: object) -> None:
    """Write one error line to stderr (plain text, never markup, never wrapped)."""
    sys.stderr.write(error_line(message) + "\n")
    sys.stderr.flush()


def warn(message: object) -> None:
    """Write one ``warning:`` line to stderr."""
    sys.stderr.write(f"warning: {one_line(message)}\n")
    sys.stderr.flush()


def check_range(name: str, value: float | int | None, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> None:
    """ConfigError ``<name> = <value>: must be ...`` when ``value`` is outside the range (None passes)."""
    import math

    from ..errors import ConfigError

    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} = {value}: must be a finite number")
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(f"{name} = {value}: must be {'>' if low_open else '>='} {low:g}"
                          + (f" and <= {high:g}" if high is not None else ""))
    if high is not None and value > high:
        raise ConfigError(f"{name} = {value}: must be <= {high:g}")


def int_list(name: str, text: str, low: int | None = None) -> list[int]:
    """Comma-separated integers (``--sizes 50,100``) with a one-line error naming the bad item."""
    from ..errors import ConfigError

    out = []
    for item in text.split(","):
        try:
            v = int(item.strip())
        except ValueError:
            raise ConfigError(f"{name} = {text!r}: {item.strip()!r} is not an integer (e.g. 50,100,200)") from None
        check_range(name, v, low)
        out.append(v)
    if not out:
        raise ConfigError(f"{name} is empty")
    return out


def refuse_existing_output(path: Any, overwrite: bool, what: str, marker: str | None = None) -> None:
    """Refuse to write into ``path`` when it holds something (``marker`` file, or anything) unless
    ``overwrite``; a file where a folder is wanted is refused always."""
    from pathlib import Path

    from ..errors import BondmlError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise BondmlError(f"{p}: is a file, not a folder; give a folder path for the {what}")
    if overwrite or not p.is_dir():
        return
    held = (p / marker).exists() if marker else any(not c.name.startswith(".") for c in p.iterdir())
    if held:
        raise BondmlError(f"{p}: already holds a {what}; use --overwrite to replace it or choose another --out")


def output_lock(out: Any, what: str = "output folder") -> Any:
    """Exclusive lock of a command's output folder (``<out>/.lock``), refused at once when busy
    (unless ``BONDML_LOCK_WAIT``): two commands never write one folder at the same time."""
    from pathlib import Path

    from ..errors import BondmlError
    from ..util import file_lock, lock_wait_seconds

    p = Path(out)
    if p.exists() and not p.is_dir():
        raise BondmlError(f"{p}: is a file, not a folder; give a folder for the {what}")
    p.mkdir(parents=True, exist_ok=True)
    return file_lock(p / ".lock", lambda: BondmlError(
        f"{p}: another bondml command is writing this {what}; wait for it or choose another --out"),
        wait=lock_wait_seconds(0.0))
