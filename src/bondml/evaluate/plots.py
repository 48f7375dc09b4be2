"""PNG plots: parity per type, learning curves, error vs distance (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..constants import BOND_TYPES


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, max(n, 1))
    return (n + cols - 1) // cols, cols


def parity_plot(per_type: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str = "") -> Path:
    """One panel per type: predicted vs LOBSTER -ICOHP (eV), RMSE in the panel title."""
    plt = _plt()
    types = [t for t in BOND_TYPES if t in per_type] or list(per_type)
    r, c = _grid(len(types))
    fig, axes = plt.subplots(r, c, figsize=(4 * c, 3.8 * r), squeeze=False)
    for ax, t in zip(axes.ravel(), types, strict=False):
        y, p = per_type[t]
        lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.scatter(y, p, s=4, alpha=0.5)
        rmse = float(np.sqrt(np.mean((p - y) ** 2)))
        ax.set_title(f"{t}: RMSE {rmse:.3f} eV (n={y.size})")
        ax.set_xlabel("LOBSTER -ICOHP (eV)")
        ax.set_ylabel("predicted -ICOHP (eV)")
    for ax in axes.ravel()[len(types):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def error_vs_distance_plot(per_type: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], path: str | Path,
                           title: str = "") -> Path:
    """Signed error (pred - LOBSTER, eV) vs bond length (Angstrom) per type; ``(d, y, pred)``."""
    plt = _plt()
    types = [t for t in BOND_TYPES if t in per_type] or list(per_type)
    r, c = _grid(len(types))
    fig, axes = plt.subplots(r, c, figsize=(4 * c, 3.5 * r), squeeze=False)
    for ax, t in zip(axes.ravel(), types, strict=False):
        d, y, p = per_type[t]
        ax.axhline(0, color="k", lw=0.8)
        ax.scatter(d, p - y, s=4, alpha=0.5)
        ax.set_title(t)
        ax.set_xlabel("bond length (Angstrom)")
        ax.set_ylabel("error (eV)")
    for ax in axes.ravel()[len(types):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def learning_curve_plot(curves: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """RMSE (eV) vs training bonds per type, error bars = std over seeds."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for cv in curves:
        ax.errorbar(cv["sizes"], cv["rmse_mean"], yerr=cv["rmse_std"], marker="o", capsize=3, label=cv["bond_type"])
    ax.set_xscale("log")
    ax.set_xlabel("training bonds per type")
    ax.set_ylabel("RMSE on held-out cells (eV)")
    ax.legend()
    ax.set_title(title or "learning curves")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
