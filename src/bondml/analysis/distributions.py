"""-ICOHP and bond-length distributions per bond type, frame by frame (i.e. vs strain).

Histograms are *counts* on edges chosen from the data (:func:`data_edges`: the full range of
every frame, nothing clipped, nothing renormalised away); plots show them as densities
(1/eV, 1/Angstrom) smoothed by a Gaussian kernel on the fine histogram (a binned KDE) with the
Poisson error band of the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import BOND_TYPES
from ..plotting import new_figure, save

#: Fallback histogram edges (used only when no range is given): -ICOHP (eV) and distance (Angstrom).
ICOHP_BINS = np.linspace(-0.5, 3.0, 141)
DISTANCE_BINS = np.linspace(1.8, 4.4, 131)


def data_edges(lo: float, hi: float, n_bins: int = 120, pad: float = 0.02) -> np.ndarray:
    """``n_bins`` equal bins covering [lo, hi] with a ``pad`` fraction of margin on each side."""
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ValueError("data range is not finite")
    if hi <= lo:
        hi = lo + 1e-6
    m = pad * (hi - lo)
    return np.linspace(lo - m, hi + m, n_bins + 1)


@dataclass(frozen=True)
class TypeDistributions:
    """Per type: ``hist_*[type]`` (n_frames, n_bins) bond *counts*; ``mean_*``/``std_*`` (n_frames,).

    ``strain`` (n_frames,) and ``count[type]`` (n_frames,) bonds per frame; ``*_edges`` the bin
    edges (eV, Angstrom). Every bond of every frame is in a bin (edges from the data).
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

    def density(self, which: str, bond_type: str, k: int) -> np.ndarray:
        """Frame ``k``'s histogram of ``which`` (icohp|distance) as a density (1/unit)."""
        h = (self.hist_icohp if which == "icohp" else self.hist_distance)[bond_type][k]
        e = self.icohp_edges if which == "icohp" else self.distance_edges
        n = h.sum()
        return h / (n * np.diff(e)) if n else np.zeros_like(h, dtype=float)


def type_distributions(
    frame: np.ndarray,
    strain: np.ndarray,
    bond_type: np.ndarray,
    minus_icohp: np.ndarray,
    distance: np.ndarray,
    icohp_bins: np.ndarray | None = None,
    distance_bins: np.ndarray | None = None,
) -> TypeDistributions:
    """Histograms (counts), means and counts per (type, frame) from per-bond columns.

    Without edges, the range of these bonds is used (:func:`data_edges`). Values outside given
    edges are put in the first/last bin, so no bond is ever dropped.
    """
    minus_icohp = np.asarray(minus_icohp, float)
    distance = np.asarray(distance, float)
    if icohp_bins is None:
        icohp_bins = data_edges(*(np.nanmin(minus_icohp), np.nanmax(minus_icohp))) if minus_icohp.size else ICOHP_BINS
    if distance_bins is None:
        distance_bins = data_edges(*(np.nanmin(distance), np.nanmax(distance))) if distance.size else DISTANCE_BINS
    frames = np.unique(frame)
    bt = np.asarray(bond_type).astype(str)
    eps = np.array([strain[np.argmax(frame == f)] for f in frames])
    out: dict[str, dict[str, np.ndarray]] = {k: {} for k in ("hi", "hd", "mi", "si", "md", "n")}
    ci = np.clip(minus_icohp, icohp_bins[0], icohp_bins[-1])
    cd = np.clip(distance, distance_bins[0], distance_bins[-1])
    for t in BOND_TYPES:
        hi = np.zeros((frames.size, icohp_bins.size - 1), dtype=np.int64)
        hd = np.zeros((frames.size, distance_bins.size - 1), dtype=np.int64)
        mi, si, md, n = (np.full(frames.size, np.nan) for _ in range(4))
        for k, f in enumerate(frames):
            m = (frame == f) & (bt == t)
            n[k] = m.sum()
            if not m.any():
                continue
            hi[k] = np.histogram(ci[m], icohp_bins)[0]
            hd[k] = np.histogram(cd[m], distance_bins)[0]
            mi[k], si[k], md[k] = minus_icohp[m].mean(), minus_icohp[m].std(), distance[m].mean()
        for key, v in zip(("hi", "hd", "mi", "si", "md", "n"), (hi, hd, mi, si, md, n), strict=True):
            out[key][t] = v
    return TypeDistributions(eps, icohp_bins, distance_bins, out["hi"], out["hd"], out["mi"], out["si"],
                             out["md"], {t: v.astype(int) for t, v in out["n"].items()})


def smooth(y: np.ndarray, sigma_bins: float) -> np.ndarray:
    """Gaussian smoothing of a histogram along its last axis (sigma in bins; edges reflected)."""
    if sigma_bins <= 0:
        return np.asarray(y, float)
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(np.asarray(y, float), sigma_bins, mode="constant")


def _kde_band(h: np.ndarray, edges: np.ndarray, sigma_bins: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed density and its +-1 sigma Poisson band (1/unit) from a count histogram."""
    n = max(int(h.sum()), 1)
    w = np.diff(edges)
    dens = smooth(h, sigma_bins) / (n * w)
    # variance of a Gaussian-smoothed Poisson histogram: counts smoothed by the squared kernel
    var = smooth(h, sigma_bins / np.sqrt(2.0)) / (2.0 * np.sqrt(np.pi) * max(sigma_bins, 1e-9))
    err = np.sqrt(np.maximum(var, 0)) / (n * w)
    return dens, np.maximum(dens - err, 0), dens + err


def plot_distributions(d: TypeDistributions, path_hist: str | Path, path_trend: str | Path,
                       note: str = "") -> tuple[Path, Path]:
    """Two PNGs. ``path_hist``: per type (columns), -ICOHP (top) and bond length (bottom) densities,
    first vs last frame, Gaussian-smoothed (sigma 1.5 bins) with the Poisson +-1 sigma band.
    ``path_trend``: mean -ICOHP and mean length vs strain per type, +-1 standard error. ``note``
    (e.g. "scaled-down demo") is printed on both figures."""
    types = [t for t in BOND_TYPES if d.count[t].max(initial=0) > 0]
    fig, axes = new_figure(2, len(types), figsize=(3.0 * len(types), 5.6), squeeze=False)
    for c, t in enumerate(types):
        for row, (h, e, lab) in enumerate(((d.hist_icohp, d.icohp_edges, "-ICOHP (eV)"),
                                           (d.hist_distance, d.distance_edges, "bond length (Å)"))):
            ax = axes[row, c]
            mid = 0.5 * (e[1:] + e[:-1])
            for k, name, col in ((0, "first", "C0"), (-1, "last", "C3")):
                if d.count[t][k] == 0:
                    continue
                dens, lo, hi = _kde_band(h[t][k], e, 1.5)
                ax.fill_between(mid, lo, hi, color=col, alpha=0.25, lw=0)
                ax.plot(mid, dens, color=col, lw=1.3,
                        label=f"{name}: strain {100 * d.strain[k]:.1f} %, n = {d.count[t][k]}")
            ax.set_xlabel(lab)
            vals = h[t][[0, -1]].sum(axis=0)
            nz = np.nonzero(vals)[0]
            if nz.size:  # the data's own range (every bond shown)
                ax.set_xlim(e[max(nz[0] - 2, 0)], e[min(nz[-1] + 3, e.size - 1)])
            if c == 0:
                ax.set_ylabel("density (1/eV)" if row == 0 else "density (1/Å)")
            if row == 0:
                ax.set_title(t)
            ax.legend(fontsize=6, loc="upper right", frameon=False)
    if note:
        fig.suptitle(note, fontsize=9, color="#a33")
    p1 = save(fig, path_hist)
    fig, axes = new_figure(1, 2, figsize=(10, 3.8))
    for t in types:
        se_i = d.std_icohp[t] / np.sqrt(np.maximum(d.count[t], 1))
        (ln,) = axes[0].plot(100 * d.strain, d.mean_icohp[t], "o-", ms=3, label=t)
        axes[0].fill_between(100 * d.strain, d.mean_icohp[t] - se_i, d.mean_icohp[t] + se_i,
                             color=ln.get_color(), alpha=0.25, lw=0)
        axes[1].plot(100 * d.strain, d.mean_distance[t], "o-", ms=3, color=ln.get_color(), label=t)
    for ax, lab in zip(axes, ("mean -ICOHP (eV)", "mean bond length (Å)"), strict=True):
        ax.set_xlabel("engineering strain (%)")
        ax.set_ylabel(lab)
        ax.invert_xaxis()
    axes[0].legend(fontsize=7, ncol=2)
    axes[0].set_title("mean ± standard error per frame", fontsize=9)
    if note:
        fig.suptitle(note, fontsize=9, color="#a33")
    return p1, save(fig, path_trend)
