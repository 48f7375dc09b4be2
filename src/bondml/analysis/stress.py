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
    from ..deploy.md import read_thermo
    from ..deploy.outputs import read_peratom

    if thermo_csv is not None and Path(thermo_csv).is_file():
        return stress_strain_from_thermo(read_thermo(thermo_csv), axis)
    col = f"s{axis}{axis}"
    first = read_peratom(run_dir, [0])
    if col not in first.column_names:
        return None
    t = read_peratom(run_dir, columns=["strain", col])
    return stress_strain_from_peratom(t["strain"].to_numpy(), t["frame"].to_numpy(), t[col].to_numpy())


def plot_stress_strain(curves: list[StressStrain], path: str | Path) -> Path:
    """Compressive stress (GPa) vs strain (%) for one or more curves."""
    fig, ax = new_figure(figsize=(5, 3.6))
    for c in curves:
        style = "-" if c.source == "thermo" else "o"
        ax.plot(100 * c.strain, c.stress_gpa, style, label=c.source, ms=4)
    if curves:
        e, s = curves[0].peak
        ax.axhline(s, color="grey", lw=0.5, ls=":")
        ax.set_title(f"peak {s:.2f} GPa at {100 * e:.1f} % strain", fontsize=9)
    ax.invert_xaxis()
    ax.set_xlabel("strain (%)")
    ax.set_ylabel("compressive stress (GPa)")
    ax.legend(fontsize=8)
    return save(fig, path)
