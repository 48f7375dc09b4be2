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
from typing import Any

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
    stream = sys.stderr if stderr else sys.stdout
    tty = bool(getattr(stream, "isatty", lambda: False)())
    width = None if tty or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True, emoji=False, width=width)


class _LazyConsole:
    """Created on first use, so that the stream seen is the one in place then (pytest's capture)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(make_console(), name)


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
