"""The ``bondml`` command line: one sub-command group per stage, thin over the Python API."""

from typing import Any

#: Width used when stdout is not a terminal (pipes, files): wide enough that tables of cell
#: names and statuses are never truncated or wrapped with an ellipsis.
PIPE_WIDTH = 220


def make_console(**kw: Any) -> Any:
    """A rich ``Console``; when stdout is piped, ``PIPE_WIDTH`` columns instead of rich's 80."""
    import sys

    from rich.console import Console

    stream = sys.stderr if kw.get("stderr") else sys.stdout
    if "width" not in kw and not (hasattr(stream, "isatty") and stream.isatty()):
        kw["width"] = PIPE_WIDTH
    return Console(**kw)
