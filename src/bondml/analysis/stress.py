"""Stress-strain curve, from the MD thermo table or from the per-atom stresses of the frames.

Sign convention of the curve: strain (L - L0)/L0 is negative in compression; the *compressive*
stress along the loading axis is reported positive (GPa), i.e. LAMMPS' ``pxx`` (a pressure) or
minus the mean per-atom stress ``sxx``. The original's 10k run peaks at about 2.47 GPa near
-6 % strain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..plotting import new_figure, save


@dataclass(frozen=True)
class StressStrain:
    """A stress-strain curve: ``strain`` (-), ``stress_gpa`` (compressive positive, GPa), source."""

    strain: np.ndarray
    stress_gpa: np.ndarray
    source: str

    @property
    def peak(self) -> tuple[float, float]:
        """(strain, stress GPa) at the largest compressive stress."""
        k = int(np.nanargmax(self.stress_gpa))
        return float(self.strain[k]), float(self.stress_gpa[k])


def stress_strain_from_thermo(thermo: dict[str, np.ndarray], axis: str = "x") -> StressStrain:
    """Curve from ``thermo.csv`` columns (``strain``, ``p<axis><axis>_gpa`` = compressive stress)."""
    return StressStrain(np.asarray(thermo["strain"]), np.asarray(thermo[f"p{axis}{axis}_gpa"]), "thermo")


def stress_strain_from_peratom(strain: np.ndarray, frame: np.ndarray, s_axis: np.ndarray) -> StressStrain:
    """Curve from per-atom stresses: compressive stress = -mean over atoms of s_aa (GPa) per frame.

    With per-atom stress = stress*volume / (V/N) the mean over atoms is the global stress.
    """
    frames = np.unique(frame)
    st = np.array([-np.mean(s_axis[frame == f]) for f in frames])
    eps = np.array([strain[frame == f][0] for f in frames])
    return StressStrain(eps, st, "per-atom")


def stress_strain(run_dir: str | Path, thermo_csv: str | Path | None = None, axis: str = "x") -> StressStrain | None:
    """The curve of a run: from ``thermo_csv`` if given/found beside the input, else per-atom stresses."""
    from ..deploy.outputs import read_peratom
    from ..md.compress import read_thermo

    if thermo_csv is not None and Path(thermo_csv).is_file():
        return stress_strain_from_thermo(read_thermo(thermo_csv), axis)
    col = f"s{axis}{axis}"
    first = read_peratom(run_dir, [0])
    if col not in first.column_names:
        return None
    t = read_peratom(run_dir, columns=["strain", col])
    return stress_strain_from_peratom(t["strain"].to_numpy(), t["frame"].to_numpy(), t[col].to_numpy())


def running_mean(y: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean over ``window`` points (shorter at the ends), NaN-free input."""
    y = np.asarray(y, float)
    if window <= 1 or y.size < 3:
        return y.copy()
    w = min(window, y.size)
    c = np.cumsum(np.r_[0.0, y])
    out = np.empty_like(y)
    for k in range(y.size):
        lo, hi = max(0, k - w // 2), min(y.size, k + w // 2 + 1)
        out[k] = (c[hi] - c[lo]) / (hi - lo)
    return out


def plot_stress_strain(curves: list[StressStrain], path: str | Path, note: str = "", smooth_window: int = 0) -> Path:
    """Compressive stress (GPa) vs engineering strain (%). A dense curve (thermo) is drawn raw
    (thin) and as a centred running mean over ``smooth_window`` points (default: 1/15 of the
    curve) with a +-1 sigma band of the raw points around it; per-frame points as markers."""
    fig, ax = new_figure(figsize=(5.6, 4.0))
    for c in curves:
        x = 100 * c.strain
        if c.source == "thermo" and c.strain.size >= 8:
            w = smooth_window or max(3, c.strain.size // 15)
            sm = running_mean(c.stress_gpa, w)
            sd = np.sqrt(np.maximum(running_mean((c.stress_gpa - sm) ** 2, w), 0))
            ax.plot(x, c.stress_gpa, "-", color="C0", lw=0.5, alpha=0.35, label="thermo (raw)")
            ax.fill_between(x, sm - sd, sm + sd, color="C0", alpha=0.2, lw=0)
            ax.plot(x, sm, "-", color="C0", lw=1.8, label=f"thermo, running mean ({w} points) ± 1σ")
        else:
            ax.plot(x, c.stress_gpa, "o", color="C1", ms=4, label=f"{c.source} (per frame)")
    if curves:
        ref = curves[0]
        smoothed = ref.source == "thermo" and ref.strain.size >= 8
        window = smooth_window or max(3, ref.strain.size // 15)
        sm = running_mean(ref.stress_gpa, window) if smoothed else ref.stress_gpa
        k = int(np.nanargmax(sm))
        ax.axhline(sm[k], color="grey", lw=0.5, ls=":")
        ax.set_title(f"peak{' (smoothed)' if smoothed else ''} {sm[k]:.2f} GPa at {100 * ref.strain[k]:.1f} % strain",
                     fontsize=9)
    ax.invert_xaxis()
    ax.set_xlabel("engineering strain along x (%)")
    ax.set_ylabel("compressive stress σ_xx (GPa)")
    ax.legend(fontsize=7, frameon=False)
    if note:
        ax.text(0.02, 0.98, note, transform=ax.transAxes, fontsize=7, color="#a33", va="top", wrap=True)
    return save(fig, path)
