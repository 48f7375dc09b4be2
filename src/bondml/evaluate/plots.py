"""PNG plots: parity per type, learning curves, error vs distance (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..constants import BOND_TYPES
from ..plotting import new_figure, save


def _type_panels(per_type: dict[str, Any], row_height: float) -> tuple[Any, list[tuple[Any, str]]]:
    """A figure with one panel per bond type present (paper order, 3 per row); unused panels off."""
    types = [t for t in BOND_TYPES if t in per_type] or list(per_type)
    cols = min(3, max(len(types), 1))
    rows = (len(types) + cols - 1) // cols
    fig, axes = new_figure(rows, cols, figsize=(4 * cols, row_height * rows), squeeze=False)
    for ax in axes.ravel()[len(types):]:
        ax.axis("off")
    return fig, list(zip(axes.ravel(), types, strict=False))


def _finish(fig: Any, path: str | Path, title: str) -> Path:
    if title:
        fig.suptitle(title)
    return save(fig, path, dpi=110)


def parity_plot(per_type: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str = "") -> Path:
    """One panel per type: predicted vs LOBSTER -ICOHP (eV), RMSE in the panel title."""
    fig, panels = _type_panels(per_type, 3.8)
    for ax, t in panels:
        y, p = per_type[t]
        lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.scatter(y, p, s=4, alpha=0.5)
        rmse = float(np.sqrt(np.mean((p - y) ** 2)))
        ax.set_title(f"{t}: RMSE {rmse:.3f} eV (n={y.size})")
        ax.set_xlabel("LOBSTER -ICOHP (eV)")
        ax.set_ylabel("predicted -ICOHP (eV)")
    return _finish(fig, path, title)


def error_vs_distance_plot(per_type: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], path: str | Path,
                           title: str = "") -> Path:
    """Signed error (pred - LOBSTER, eV) vs bond length (Angstrom) per type; ``(d, y, pred)``."""
    fig, panels = _type_panels(per_type, 3.5)
    for ax, t in panels:
        d, y, p = per_type[t]
        ax.axhline(0, color="k", lw=0.8)
        ax.scatter(d, p - y, s=4, alpha=0.5)
        ax.set_title(t)
        ax.set_xlabel("bond length (Angstrom)")
        ax.set_ylabel("error (eV)")
    return _finish(fig, path, title)


def learning_curve_plot(curves: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """RMSE (eV) vs training bonds per type, error bars = std over seeds."""
    fig, ax = new_figure(figsize=(6, 4.2))
    for cv in curves:
        ax.errorbar(cv["sizes"], cv["rmse_mean"], yerr=cv["rmse_std"], marker="o", capsize=3, label=cv["bond_type"])
    ax.set_xscale("log")
    ax.set_xlabel("training bonds per type")
    ax.set_ylabel("RMSE on held-out cells (eV)")
    ax.legend()
    ax.set_title(title or "learning curves")
    return save(fig, path, dpi=110)
