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
    for t in BOND_TYPES:
        idx = np.nonzero(bt == t)[0]
        if not idx.size:
            continue
        order = idx[np.argsort(v[idx], kind="stable")]

        def pick(rows: np.ndarray) -> list[ExtremeBond]:
            return [ExtremeBond(int(i[r]), int(j[r]), t, float(distance[r]), float(v[r]), float(std[r])) for r in rows]

        out[t] = {"strongest": pick(order[::-1][:n]), "weakest": pick(order[:n])}
    return out


def plot_extreme_bonds(bond_type: np.ndarray, distance: np.ndarray, minus_icohp: np.ndarray,
                       extremes: dict[str, dict[str, list[ExtremeBond]]], path: str | Path, title: str = "",
                       note: str = "") -> Path:
    """Per type: -ICOHP vs length of every bond (2-D histogram, log counts), the strongest (red)
    and weakest (blue) bonds with +-1 predicted sigma and their atom pairs, the mean per length bin."""
    from matplotlib.colors import LogNorm

    types = [t for t in BOND_TYPES if t in extremes]
    fig, axes = new_figure(1, len(types), figsize=(3.2 * len(types), 3.8), squeeze=False, layout="constrained")
    bt = np.asarray(bond_type).astype(str)
    d, v = np.asarray(distance, float), np.asarray(minus_icohp, float)
    for ax, t in zip(axes[0], types, strict=True):
        m = bt == t
        h = ax.hist2d(d[m], v[m], bins=(40, 40), cmap="Greys", norm=LogNorm(), rasterized=True)
        edges = np.linspace(d[m].min(), d[m].max(), 16)
        k = np.clip(np.digitize(d[m], edges) - 1, 0, edges.size - 2)
        means = np.array([v[m][k == b].mean() if np.any(k == b) else np.nan for b in range(edges.size - 1)])
        ax.plot(0.5 * (edges[1:] + edges[:-1]), means, color="#d80", lw=1.2, label="mean per length bin")
        for kind, col in (("strongest", "C3"), ("weakest", "C0")):
            bs = extremes[t][kind]
            ax.errorbar([b.distance for b in bs], [b.minus_icohp for b in bs], yerr=[b.std for b in bs], fmt="o",
                        color=col, ms=4, capsize=2, label=f"{len(bs)} {kind}")
            for b in bs[:3]:
                ax.annotate(f"{b.i}-{b.j}", (b.distance, b.minus_icohp), fontsize=5, color=col,
                            xytext=(3, 2), textcoords="offset points")
        ax.set_title(f"{t} (n = {int(m.sum())})")
        ax.set_xlabel("bond length (Å)")
        ax.set_ylabel("-ICOHP (eV)")
        ax.legend(fontsize=5, frameon=False, loc="upper right")
        fig.colorbar(h[3], ax=ax, label="bonds per bin", shrink=0.7, pad=0.01)
    head = title + (f"  |  {note}" if note else "")
    if head:
        fig.suptitle(head, fontsize=9, color="#a33" if note else "black")
    return save(fig, path, tight=False)
