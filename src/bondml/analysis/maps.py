"""Spatial maps: per-atom bond strength averaged on a grid within a slab (slice) of the cell."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..plotting import new_figure, save

_AXES = {"x": 0, "y": 1, "z": 2}


@dataclass(frozen=True)
class SliceMap:
    """Mean of a per-atom value on a ``bins x bins`` grid of fractional coordinates (NaN = empty).

    ``grid[a, b]``: a along the first in-plane axis, b along the second; ``extent`` (Angstrom)
    the in-plane cell lengths; ``n_atoms`` atoms inside the slab.
    """

    grid: np.ndarray
    counts: np.ndarray
    axes: tuple[str, str]
    extent: tuple[float, float]
    n_atoms: int


def slice_map(
    positions: np.ndarray,
    cell: np.ndarray,
    values: np.ndarray,
    normal: str = "z",
    center: float = 0.5,
    thickness: float = 5.0,
    bins: int = 40,
    smooth: float | None = None,
) -> SliceMap:
    """Average ``values`` of atoms in the slab ``|s_normal - center| * h <= thickness/2`` (Angstrom).

    Positions are mapped to fractional coordinates (wrapped), so any cell shape works; ``h`` is
    the cell height along the normal (volume / area of the in-plane face); ``center`` fractional.
    ``smooth`` (Angstrom): instead of plain bin means, a Gaussian-weighted periodic average of the
    slab atoms at each grid point (NaN where the summed weight is below 0.05).
    """
    cell = np.asarray(cell, float)
    n = _AXES[normal]
    a, b = (k for k in range(3) if k != n)
    s = np.linalg.solve(cell.T, np.asarray(positions, float).T).T % 1.0
    height = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[a], cell[b]))
    ds = s[:, n] - center
    ds -= np.round(ds)
    m = np.abs(ds) * height <= thickness / 2.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    tot = np.histogram2d(s[m, a], s[m, b], [edges, edges], weights=np.asarray(values, float)[m])[0]
    cnt = np.histogram2d(s[m, a], s[m, b], [edges, edges])[0]
    if smooth:
        centers = (edges[1:] + edges[:-1]) / 2
        du = s[m, a][:, None] - centers[None, :]
        dv = s[m, b][:, None] - centers[None, :]
        du -= np.round(du)
        dv -= np.round(dv)
        va, vb = cell[a], cell[b]
        # |du*va + dv*vb|^2 for every (atom, u, v)
        r2 = (du[:, :, None] ** 2 * (va @ va) + dv[:, None, :] ** 2 * (vb @ vb)
              + 2 * du[:, :, None] * dv[:, None, :] * (va @ vb))
        w = np.exp(-r2 / (2 * smooth**2))
        tot = np.einsum("nuv,n->uv", w, np.asarray(values, float)[m])
        cnt_w = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            grid = np.where(cnt_w > 0.05, tot / cnt_w, np.nan)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            grid = np.where(cnt > 0, tot / cnt, np.nan)
    names = ("x", "y", "z")
    extent = (float(np.linalg.norm(cell[a])), float(np.linalg.norm(cell[b])))
    return SliceMap(grid, cnt, (names[a], names[b]), extent, int(m.sum()))


def plot_slice_maps(maps: list[tuple[str, SliceMap]], path: str | Path, label: str = "sum of -ICOHP (eV)",
                    cmap: str = "viridis", note: str = "") -> Path:
    """Side-by-side slice maps (e.g. first and last frame) on one colour scale."""
    fig, axes = new_figure(1, len(maps), figsize=(4.4 * len(maps) + 1.0, 3.8), squeeze=False,
                           layout="constrained")
    vals = np.concatenate([m.grid[np.isfinite(m.grid)].ravel() for _, m in maps]) if maps else np.zeros(1)
    vmin, vmax = np.percentile(vals, [2, 98]) if vals.size else (0, 1)
    if cmap == "RdBu_r":  # a diverging map centred on zero
        vmax = max(abs(vmin), abs(vmax))
        vmin = -vmax
    im = None
    for ax, (title, m) in zip(axes[0], maps, strict=True):
        im = ax.imshow(m.grid.T, origin="lower", extent=(0, m.extent[0], 0, m.extent[1]), vmin=vmin, vmax=vmax,
                       cmap=cmap, interpolation="nearest")
        ax.set_xlabel(f"{m.axes[0]} (Å)")
        ax.set_ylabel(f"{m.axes[1]} (Å)")
        ax.set_title(title, fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=list(axes[0]), label=label, shrink=0.8)
    if note:
        fig.suptitle(note, fontsize=8, color="#a33")
    return save(fig, path, tight=False)
