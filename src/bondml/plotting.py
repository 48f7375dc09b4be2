"""Matplotlib without a display (Agg), one figure at a time, saved atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .util import atomic_write_bytes


def new_figure(*args: Any, **kw: Any) -> tuple[Any, Any]:
    """``plt.subplots`` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kw)


def save(fig: Any, path: str | Path, tight: bool = True, dpi: int = 150) -> Path:
    """Save a figure as PNG atomically (folder created) and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    if tight:
        fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
