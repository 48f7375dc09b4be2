"""The strongest and weakest bonds of a frame, shown in the context of all bonds of their type.

No COHP curves are predicted (the model gives the integrated -ICOHP, not COHP(E)), so the
"COHP-style" picture is the -ICOHP vs bond length cloud of each type (the relation a COHP
analysis would show bond by bond), with the ``n`` strongest and weakest bonds marked with their
predictive standard deviation and their atom indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import BOND_TYPES
from ..plotting import new_figure, save


@dataclass(frozen=True)
class ExtremeBond:
    """One bond: atoms ``i``, ``j`` (0-based rows = LAMMPS id - 1), type, length (A), -ICOHP and std (eV)."""

    i: int
    j: int
    bond_type: str
    distance: float
    minus_icohp: float
    std: float

    def to_dict(self) -> dict:
        return {"i": self.i, "j": self.j, "type": self.bond_type, "distance_A": self.distance,
                "minus_icohp_eV": self.minus_icohp, "std_eV": self.std}


def extreme_bonds(i: np.ndarray, j: np.ndarray, bond_type: np.ndarray, distance: np.ndarray,
                  minus_icohp: np.ndarray, std: np.ndarray, n: int = 5) -> dict[str, dict[str, list[ExtremeBond]]]:
    """Per type: the ``n`` bonds of largest (``strongest``) and smallest (``weakest``) -ICOHP."""
    bt = np.asarray(bond_type).astype(str)
    v = np.asarray(minus_icohp, float)
    out: dict[str, dict[str, list[ExtremeBond]]] = {}

    def pick(rows: np.ndarray, t: str) -> list[ExtremeBond]:
        return [ExtremeBond(int(i[r]), int(j[r]), t, float(distance[r]), float(v[r]), float(std[r])) for r in rows]

    for t in BOND_TYPES:
        idx = np.nonzero(bt == t)[0]
        if not idx.size:
            continue
        order = idx[np.argsort(v[idx], kind="stable")]
        out[t] = {"strongest": pick(order[::-1][:n], t), "weakest": pick(order[:n], t)}
    return out


def plot_extreme_bonds(bond_type: np.ndarray, distance: np.ndarray, minus_icohp: np.ndarray,
                       extremes: dict[str, dict[str, list[ExtremeBond]]], path: str | Path, title: str = "",
                       note: str = "") -> Path:
    """Per type: -ICOHP vs length of every bond (grey points), the mean per length bin (orange),
    the strongest (red) and weakest (blue) bonds with +-1 predicted sigma, the two extreme pairs named."""
    types = [t for t in BOND_TYPES if t in extremes]
    fig, axes = new_figure(1, len(types), figsize=(3.0 * len(types), 3.6), squeeze=False, layout="constrained")
    bt = np.asarray(bond_type).astype(str)
    d, v = np.asarray(distance, float), np.asarray(minus_icohp, float)
    for ax, t in zip(axes[0], types, strict=True):
        m = bt == t
        ax.scatter(d[m], v[m], s=3, color="0.55", alpha=0.35, lw=0, rasterized=True, label="all bonds")
        edges = np.linspace(d[m].min(), d[m].max(), 16)
        k = np.clip(np.digitize(d[m], edges) - 1, 0, edges.size - 2)
        means = np.array([v[m][k == b].mean() if np.any(k == b) else np.nan for b in range(edges.size - 1)])
        ax.plot(0.5 * (edges[1:] + edges[:-1]), means, color="#d80", lw=1.2, label="mean per length bin")
        for kind, col in (("strongest", "C3"), ("weakest", "C0")):
            bs = extremes[t][kind]
            ax.errorbar([b.distance for b in bs], [b.minus_icohp for b in bs], yerr=[b.std for b in bs], fmt="o",
                        color=col, ms=4, capsize=2, label=f"{len(bs)} {kind}")
            for q, b in enumerate(bs[:2]):
                ax.annotate(f"{b.i}-{b.j}", (b.distance, b.minus_icohp), fontsize=6, color=col,
                            xytext=(6, -8 - 8 * q if kind == "strongest" else 6 + 8 * q), textcoords="offset points")
        ax.set_title(f"{t} (n = {int(m.sum())})")
        ax.set_xlabel("bond length (Å)")
        ax.set_ylabel("-ICOHP (eV)")
        ax.legend(fontsize=6, frameon=False, loc="upper right", markerscale=1.5)
        lo, hi = d[m].min(), d[m].max()
        ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.12 * (hi - lo))
    head = title + (f"  |  {note}" if note else "")
    if head:
        fig.suptitle(head, fontsize=9, color="#a33" if note else "black")
    return save(fig, path, tight=False)
