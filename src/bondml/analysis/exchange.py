"""Bond exchange between consecutive frames: bonds formed, broken and kept, per type.

Matching bonds across frames
----------------------------
A bond is an (i, j, shift) triple: atoms i < j (rows sorted by LAMMPS id, so rows are the same
atoms in every frame) and the lattice shift of j. The shift identifies the same *physical*
bond in two frames only if positions are continuous in time: wrapped coordinates jump by a cell
vector when an atom crosses the boundary, changing the shift of all its bonds. Therefore:

* ``match="shift"``: key (i, j, shift). Valid when positions are unwrapped (the compression
  dump of :mod:`bondml.deploy.md` writes image flags ``ix iy iz``, and the reader unwraps; a
  changing cell is fine since LAMMPS ``remap x`` maps atoms affinely and keeps image flags).
* ``match="pair"``: key (i, j). Valid whatever the wrapping when no pair has two bonds through
  different images, which holds whenever every cell width exceeds twice the largest window
  (56 A >> 2 x 4.2 A for the 10k cell); checked per frame.
* ``match="auto"`` (default): ``"shift"`` if every frame was unwrapped, else ``"pair"`` (and an
  error if a pair appears twice in a frame, where only unwrapped input can help).

A bond "breaks" when its key leaves the windowed bond list and "forms" when it enters it, so a
bond oscillating around a window edge counts each time; the strength of broken bonds is taken
in the frame before, that of formed bonds in the frame after.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import BOND_TYPES
from ..errors import BondmlError
from ..plotting import new_figure, save

_SHIFT_BITS = 4  # shift components in [-8, 7]


def bond_keys(i: np.ndarray, j: np.ndarray, n_atoms: int, shift: np.ndarray | None = None) -> np.ndarray:
    """One int64 key per bond: (i, j) or (i, j, shift) packed; shift components must lie in [-8, 7]."""
    k = np.asarray(i, np.int64) * n_atoms + np.asarray(j, np.int64)
    if shift is None:
        return k
    s = np.asarray(shift, np.int64).reshape(-1, 3)
    if s.size and (s.min() < -8 or s.max() > 7):
        raise BondmlError("bond shifts outside [-8, 7]: cannot pack keys (cell much smaller than the windows?)")
    code = ((s[:, 0] + 8) << 8) | ((s[:, 1] + 8) << 4) | (s[:, 2] + 8)
    return (k << (3 * _SHIFT_BITS)) | code


@dataclass(frozen=True)
class ExchangeStep:
    """Counts and mean -ICOHP (eV) of bonds formed, broken and kept between two frames, per type."""

    formed: dict[str, int]
    broken: dict[str, int]
    kept: dict[str, int]
    micohp_formed: dict[str, float]
    micohp_broken: dict[str, float]
    micohp_kept_change: dict[str, float]


def exchange_between(
    keys_a: np.ndarray, type_a: np.ndarray, value_a: np.ndarray,
    keys_b: np.ndarray, type_b: np.ndarray, value_b: np.ndarray,
) -> ExchangeStep:
    """Compare bond lists of frame a (before) and b (after), keys from :func:`bond_keys`."""
    ta, tb = np.asarray(type_a).astype(str), np.asarray(type_b).astype(str)
    in_b = np.isin(keys_a, keys_b)
    in_a = np.isin(keys_b, keys_a)
    ob = np.argsort(keys_b)
    kb_s = keys_b[ob]
    res: dict[str, dict[str, float]] = {k: {} for k in ("f", "b", "k", "mf", "mb", "dk")}
    for t in BOND_TYPES:
        broken = (~in_b) & (ta == t)
        formed = (~in_a) & (tb == t)
        kept_a = in_b & (ta == t)
        res["f"][t] = int(formed.sum())
        res["b"][t] = int(broken.sum())
        res["k"][t] = int(kept_a.sum())
        res["mf"][t] = float(value_b[formed].mean()) if formed.any() else float("nan")
        res["mb"][t] = float(value_a[broken].mean()) if broken.any() else float("nan")
        if kept_a.any():
            kk = keys_a[kept_a]
            vb = value_b[ob[np.searchsorted(kb_s, kk)]]
            res["dk"][t] = float(np.mean(vb - value_a[kept_a]))
        else:
            res["dk"][t] = float("nan")
    return ExchangeStep(res["f"], res["b"], res["k"], res["mf"], res["mb"], res["dk"])  # type: ignore[arg-type]


@dataclass(frozen=True)
class Exchange:
    """Bond exchange along a run: ``strain`` of the later frame of each pair, steps, key mode."""

    strain: np.ndarray
    steps: list[ExchangeStep]
    match: str

    def series(self, what: str, bond_type: str) -> np.ndarray:
        """``what`` in formed, broken, kept, micohp_formed, micohp_broken, micohp_kept_change."""
        return np.array([getattr(s, what)[bond_type] for s in self.steps], dtype=float)


def _choose_match(run_dir: Path, match: str) -> str:
    import json

    if match != "auto":
        return match
    man = json.loads((run_dir / "manifest.json").read_text())
    return "shift" if man["frames"] and all(f.get("unwrapped") for f in man["frames"]) else "pair"


def bond_exchange(run_dir: str | Path, match: str = "auto") -> Exchange:
    """Exchange between every pair of consecutive frames of a predict run (streams two frames at a time)."""
    from ..deploy.outputs import frames_available, read_bonds

    run_dir = Path(run_dir)
    mode = _choose_match(run_dir, match)
    frames = frames_available(run_dir)
    cols = ["i", "j", "shift_x", "shift_y", "shift_z", "type", "minus_icohp", "strain"]
    prev = None
    steps, strains = [], []
    n_atoms = None
    for f in frames:
        t = read_bonds(run_dir, [f], cols)
        i, j = t["i"].to_numpy().astype(np.int64), t["j"].to_numpy().astype(np.int64)
        if n_atoms is None:
            n_atoms = int(max(i.max(initial=0), j.max(initial=0))) + 1
            n_atoms = _n_atoms(run_dir, n_atoms)
        shift = np.column_stack([t[c].to_numpy() for c in ("shift_x", "shift_y", "shift_z")])
        keys = bond_keys(i, j, n_atoms, shift if mode == "shift" else None)
        if mode == "pair" and np.unique(keys).size != keys.size:
            raise BondmlError(f"frame {f}: a pair has bonds through two images; matching needs unwrapped positions")
        cur = (keys, t["type"].to_numpy(zero_copy_only=False).astype(str), t["minus_icohp"].to_numpy().astype(float))
        if prev is not None:
            steps.append(exchange_between(*prev, *cur))
            strains.append(float(t["strain"][0].as_py()) if t.num_rows else float("nan"))
        prev = cur
    return Exchange(np.array(strains), steps, mode)


def _n_atoms(run_dir: Path, fallback: int) -> int:
    import json

    man = json.loads((run_dir / "manifest.json").read_text())
    return int(man["frames"][0]["n_atoms"]) if man.get("frames") else fallback


def plot_exchange(ex: Exchange, path: str | Path) -> Path:
    """Formed / broken counts and the mean -ICOHP of broken and formed bonds vs strain, per type."""
    fig, axes = new_figure(1, 3, figsize=(14, 3.8))
    for t in BOND_TYPES:
        f, b = ex.series("formed", t), ex.series("broken", t)
        if not np.any(f + b):
            continue
        (line,) = axes[0].plot(100 * ex.strain, f, "o-", ms=3, label=f"{t} formed")
        axes[0].plot(100 * ex.strain, b, "x--", ms=3, color=line.get_color(), label=f"{t} broken")
        axes[1].plot(100 * ex.strain, ex.series("micohp_formed", t), "o-", ms=3, color=line.get_color(), label=f"{t} formed")
        axes[1].plot(100 * ex.strain, ex.series("micohp_broken", t), "x--", ms=3, color=line.get_color(), label=f"{t} broken")
        axes[2].plot(100 * ex.strain, ex.series("micohp_kept_change", t), "o-", ms=3, color=line.get_color(), label=t)
    titles = ("bonds formed / broken per frame", "mean -ICOHP of formed / broken (eV)", "mean change of kept bonds (eV)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("strain (%)")
        ax.invert_xaxis()
    axes[0].legend(fontsize=6, ncol=2)
    axes[2].legend(fontsize=6)
    return save(fig, path)
