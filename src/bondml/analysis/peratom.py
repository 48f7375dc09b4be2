"""Per-atom sums of -ICOHP and their correlation with per-atom stress / pressure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..deploy.outputs import per_atom_values
from ..plotting import new_figure, save


def per_atom_sums(n_atoms: int, i: np.ndarray, j: np.ndarray, minus_icohp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of -ICOHP (eV) over each atom's bonds, and its coordination (bonds in the windows)."""
    return per_atom_values(n_atoms, np.asarray(i), np.asarray(j), np.asarray(minus_icohp, float))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation coefficient (NaN if either is constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    sx, sy = x.std(), y.std()
    if sx == 0 or sy == 0 or x.size < 2:
        return float("nan")
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (ties broken by order; fine for continuous values)."""
    rx = np.argsort(np.argsort(x)).astype(float)
    ry = np.argsort(np.argsort(y)).astype(float)
    return pearson(rx, ry)


@dataclass(frozen=True)
class StressCorrelation:
    """Per frame: Pearson/Spearman r between per-atom sum -ICOHP and pressure, overall and per element."""

    strain: np.ndarray
    pearson: np.ndarray
    spearman: np.ndarray
    pearson_by_element: dict[str, np.ndarray]


def stress_correlation(
    frame: np.ndarray, strain: np.ndarray, element: np.ndarray, sum_micohp: np.ndarray, pressure: np.ndarray
) -> StressCorrelation:
    """Correlation of per-atom bond strength with per-atom pressure (GPa), frame by frame.

    Per element too, since sums scale with each element's coordination (Zr >> Al).
    """
    frames = np.unique(frame)
    el = np.asarray(element).astype(str)
    els = [e for e in ("Zr", "Cu", "Al") if np.any(el == e)]
    pr, sp = np.zeros(frames.size), np.zeros(frames.size)
    by_el = {e: np.zeros(frames.size) for e in els}
    eps = np.zeros(frames.size)
    for k, f in enumerate(frames):
        m = frame == f
        eps[k] = strain[m][0]
        pr[k] = pearson(sum_micohp[m], pressure[m])
        sp[k] = spearman(sum_micohp[m], pressure[m])
        for e in els:
            me = m & (el == e)
            by_el[e][k] = pearson(sum_micohp[me], pressure[me])
    return StressCorrelation(eps, pr, sp, by_el)


def plot_stress_correlation(
    c: StressCorrelation, element: np.ndarray, sum_micohp: np.ndarray, pressure: np.ndarray, path: str | Path,
    note: str = "",
) -> Path:
    """Scatter of the last frame (per element) and r vs strain."""
    fig, axes = new_figure(1, 2, figsize=(10, 3.8))
    el = np.asarray(element).astype(str)
    for e in ("Zr", "Cu", "Al"):
        m = el == e
        if m.any():
            axes[0].scatter(pressure[m], sum_micohp[m], s=2, alpha=0.4, label=e)
    axes[0].set_xlabel("per-atom pressure (GPa)")
    axes[0].set_ylabel("per-atom sum of -ICOHP (eV)")
    axes[0].legend(fontsize=7, markerscale=4)
    axes[0].set_title("last frame", fontsize=9)
    axes[1].plot(100 * c.strain, c.pearson, "ko-", ms=3, label="all (Pearson)")
    axes[1].plot(100 * c.strain, c.spearman, "k^:", ms=3, label="all (Spearman)")
    for e, v in c.pearson_by_element.items():
        axes[1].plot(100 * c.strain, v, "o-", ms=3, label=e)
    axes[1].set_xlabel("engineering strain (%)")
    axes[1].set_ylabel("correlation r (per-atom sum of -ICOHP, pressure)")
    axes[1].invert_xaxis()
    axes[1].legend(fontsize=7)
    if note:
        fig.suptitle(note, fontsize=8, color="#a33")
    return save(fig, path)
