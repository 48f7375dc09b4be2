"""COHP curves of chosen bonds from a ``COHPCAR.lobster``, for reports (-COHP against E - E_F)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..io.lobster import CohpCar, read_cohpcar
from ..plotting import new_figure, save


def select_pairs(car: CohpCar, pairs: Sequence[int | str]) -> list[int]:
    """Rows of ``car`` for pairs given as 1-based COHP numbers (as in ICOHPLIST) or labels
    (``'Cu1->Zr2'``); a pair that is not there is a one-line error."""
    out = []
    for p in pairs:
        if isinstance(p, str) and not p.isdigit():
            if p not in car.labels:
                raise InputFileError(car.path, f"no pair {p!r} (have e.g. {', '.join(car.labels[:3])})")
            out.append(car.labels.index(p))
        else:
            k = int(p)
            if not 1 <= k <= len(car.labels):
                raise InputFileError(car.path, f"no pair No.{k} (the file has {len(car.labels)})")
            out.append(k - 1)
    return out


def plot_cohp(cohpcar: str | Path | CohpCar, pairs: Sequence[int | str], path: str | Path,
              energy_range: tuple[float, float] | None = None) -> Path:
    """PNG of -COHP (eV, spins summed; bonding to the right) against E - E_F (eV) of ``pairs``,
    with the integrated -ICOHP at E_F in the legend."""
    car = cohpcar if isinstance(cohpcar, CohpCar) else read_cohpcar(cohpcar)
    rows = select_pairs(car, pairs)
    fig, ax = new_figure(figsize=(4.0, 5.0))
    e = car.energy
    at_ef = int(np.argmin(np.abs(e)))
    for k in rows:
        micohp = -car.icohp[k].sum(axis=0)[at_ef]
        ax.plot(car.minus_cohp(k), e, lw=1.2, label=f"{car.labels[k]} {car.distance[k]:.2f} A, -ICOHP {micohp:.2f} eV")
    ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
    ax.axvline(0.0, color="0.7", lw=0.6)
    if energy_range:
        ax.set_ylim(*energy_range)
    ax.set_xlabel("-COHP (eV)")
    ax.set_ylabel("E - E_F (eV)")
    ax.legend(fontsize=7, loc="best")
    return save(fig, path)
