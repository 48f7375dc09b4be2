"""-ICOHP and bond-length distributions per bond type, frame by frame (i.e. vs strain)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import BOND_TYPES
from ..plotting import new_figure, save

#: Default histogram edges: -ICOHP (eV) and distance (Angstrom).
ICOHP_BINS = np.linspace(-0.2, 2.0, 56)
DISTANCE_BINS = np.linspace(2.0, 4.2, 56)


@dataclass(frozen=True)
class TypeDistributions:
    """Per type: ``hist_*[type]`` (n_frames, n_bins) densities; ``mean_*``/``std_*`` (n_frames,).

    ``strain`` (n_frames,) and ``count[type]`` (n_frames,) bonds per frame.
    """

    strain: np.ndarray
    icohp_edges: np.ndarray
    distance_edges: np.ndarray
    hist_icohp: dict[str, np.ndarray]
    hist_distance: dict[str, np.ndarray]
    mean_icohp: dict[str, np.ndarray]
    std_icohp: dict[str, np.ndarray]
    mean_distance: dict[str, np.ndarray]
    count: dict[str, np.ndarray]


def type_distributions(
    frame: np.ndarray,
    strain: np.ndarray,
    bond_type: np.ndarray,
    minus_icohp: np.ndarray,
    distance: np.ndarray,
    icohp_bins: np.ndarray = ICOHP_BINS,
    distance_bins: np.ndarray = DISTANCE_BINS,
) -> TypeDistributions:
    """Histograms (density), means and counts per (type, frame) from per-bond columns."""
    frames = np.unique(frame)
    bt = np.asarray(bond_type).astype(str)
    eps = np.array([strain[np.argmax(frame == f)] for f in frames])
    out: dict[str, dict[str, np.ndarray]] = {k: {} for k in ("hi", "hd", "mi", "si", "md", "n")}
    for t in BOND_TYPES:
        hi = np.zeros((frames.size, icohp_bins.size - 1))
        hd = np.zeros((frames.size, distance_bins.size - 1))
        mi, si, md, n = (np.full(frames.size, np.nan) for _ in range(4))
        for k, f in enumerate(frames):
            m = (frame == f) & (bt == t)
            n[k] = m.sum()
            if not m.any():
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                hi[k] = np.nan_to_num(np.histogram(minus_icohp[m], icohp_bins, density=True)[0])
                hd[k] = np.nan_to_num(np.histogram(distance[m], distance_bins, density=True)[0])
            mi[k], si[k], md[k] = minus_icohp[m].mean(), minus_icohp[m].std(), distance[m].mean()
        for key, v in zip(("hi", "hd", "mi", "si", "md", "n"), (hi, hd, mi, si, md, n), strict=True):
            out[key][t] = v
    return TypeDistributions(eps, icohp_bins, distance_bins, out["hi"], out["hd"], out["mi"], out["si"],
                             out["md"], {t: v.astype(int) for t, v in out["n"].items()})


def plot_distributions(d: TypeDistributions, path_hist: str | Path, path_trend: str | Path) -> tuple[Path, Path]:
    """Two PNGs: histograms of -ICOHP and length per type (first vs last frame), and means vs strain."""
    fig, axes = new_figure(2, 6, figsize=(16, 5))
    for c, t in enumerate(BOND_TYPES):
        for row, (h, e, lab) in enumerate(((d.hist_icohp, d.icohp_edges, "-ICOHP (eV)"),
                                           (d.hist_distance, d.distance_edges, "distance (A)"))):
            ax = axes[row, c]
            mid = 0.5 * (e[1:] + e[:-1])
            for k, name in ((0, "first"), (-1, "last")):
                ax.plot(mid, h[t][k], label=f"{name} ({100 * d.strain[k]:.1f} %)")
            ax.set_xlabel(lab)
            if row == 0:
                ax.set_title(f"{t} (n={d.count[t][0]})")
        axes[0, 0].legend(fontsize=7)
    p1 = save(fig, path_hist)
    fig, axes = new_figure(1, 2, figsize=(10, 3.6))
    for t in BOND_TYPES:
        if np.all(d.count[t] == 0):
            continue
        axes[0].plot(100 * d.strain, d.mean_icohp[t], "o-", ms=3, label=t)
        axes[1].plot(100 * d.strain, d.mean_distance[t], "o-", ms=3, label=t)
    for ax, lab in zip(axes, ("mean -ICOHP (eV)", "mean bond length (A)"), strict=True):
        ax.set_xlabel("strain (%)")
        ax.set_ylabel(lab)
        ax.invert_xaxis()
    axes[0].legend(fontsize=7)
    return p1, save(fig, path_trend)
