"""Bond exchange between consecutive frames: bonds formed, broken and kept, per type.

Matching bonds across frames
----------------------------
A bond is an (i, j, shift) triple: atoms i < j (rows sorted by LAMMPS id, so rows are the same
atoms in every frame) and the lattice shift of j. The shift identifies the same *physical*
bond in two frames only if positions are continuous in time: wrapped coordinates jump by a cell
vector when an atom crosses the boundary, changing the shift of all its bonds. Therefore:

* ``match="shift"``: key (i, j, shift). Valid when positions are unwrapped (the compression
  dump of :mod:`bondml.md.compress` writes image flags ``ix iy iz``, and the reader unwraps; a
  changing cell is fine since LAMMPS ``remap x`` maps atoms affinely and keeps image flags).
* ``match="pair"``: key (i, j). Valid whatever the wrapping when no pair has two bonds through
  different images, which holds whenever every cell width exceeds twice the largest window
  (56 A >> 2 x 4.2 A for the 10k cell); checked per frame.
* ``match="auto"`` (default): ``"shift"`` if every frame was unwrapped, else ``"pair"`` (and an
  error if a pair appears twice in a frame, where only unwrapped input can help).

A bond "breaks" when its key leaves the windowed bond list and "forms" when it enters it, so a
bond oscillating around a window edge counts each time; the strength of broken bonds is taken
in the frame before, that of formed bonds in the frame after.

Window-edge flicker
-------------------
A bond whose length sits at the edge of its distance window leaves and re-enters the list from
frame to frame without any structural change. :func:`bond_exchange` separates it: a break
between frames k and k+1 is *flicker* when the same bond is back in frame k+2 or k+3 (it
re-forms within two frames), and a formation between k and k+1 is flicker when the bond was
there in frame k-1 or k-2 (it had broken within the two frames before). The rest is
*persistent* exchange. Breaks in the last two steps cannot be followed for two frames and are
counted as persistent (the figures say so).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
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
    broken_flicker: dict[str, int] | None = None
    formed_flicker: dict[str, int] | None = None


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
        """``what`` in formed, broken, kept, micohp_formed, micohp_broken, micohp_kept_change,
        broken_flicker, formed_flicker, broken_persistent, formed_persistent."""
        if what.endswith("_persistent"):
            base = what.split("_")[0]
            return self.series(base, bond_type) - self.series(f"{base}_flicker", bond_type)
        return np.array([(getattr(s, what) or {}).get(bond_type, 0) for s in self.steps], dtype=float)


def _choose_match(run_dir: Path, match: str) -> str:
    import json

    if match != "auto":
        return match
    man = json.loads((run_dir / "manifest.json").read_text())
    return "shift" if man["frames"] and all(f.get("unwrapped") for f in man["frames"]) else "pair"


def bond_exchange(run_dir: str | Path, match: str = "auto") -> Exchange:
    """Exchange between every pair of consecutive frames of a predict run (streams the frames,
    keeping the bond keys of at most four at a time for the flicker test)."""
    from ..deploy.outputs import frames_available, read_bonds

    run_dir = Path(run_dir)
    mode = _choose_match(run_dir, match)
    frames = frames_available(run_dir)
    cols = ["i", "j", "shift_x", "shift_y", "shift_z", "type", "minus_icohp", "strain"]

    def stream():  # noqa: ANN202
        n_atoms = None
        for f in frames:
            t = read_bonds(run_dir, [f], cols)
            i, j = t["i"].to_numpy().astype(np.int64), t["j"].to_numpy().astype(np.int64)
            if n_atoms is None:
                n_atoms = _n_atoms(run_dir, int(max(i.max(initial=0), j.max(initial=0))) + 1)
            shift = np.column_stack([t[c].to_numpy() for c in ("shift_x", "shift_y", "shift_z")])
            keys = bond_keys(i, j, n_atoms, shift if mode == "shift" else None)
            if mode == "pair" and np.unique(keys).size != keys.size:
                raise BondmlError(f"frame {f}: a pair has bonds through two images; matching needs unwrapped positions")
            yield (keys, t["type"].to_numpy(zero_copy_only=False).astype(str),
                   t["minus_icohp"].to_numpy().astype(float),
                   float(t["strain"][0].as_py()) if t.num_rows else float("nan"))

    return exchange_series(stream(), mode)


def exchange_series(frames: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, float]],
                    match: str = "pair") -> Exchange:
    """Exchange along a sequence of frames ``(keys, types, minus_icohp, strain)`` (keys from
    :func:`bond_keys`), with window-edge flicker separated (see the module docstring)."""
    prev = None
    steps, strains = [], []
    win: list[tuple[np.ndarray, np.ndarray]] = []  # (keys, types) of the last four frames
    fl_b: dict[int, dict[str, int]] = {}
    fl_f: dict[int, dict[str, int]] = {}
    n = 0
    for m, (keys, types, values, strain) in enumerate(frames):
        n = m + 1
        cur = (np.asarray(keys), np.asarray(types).astype(str), np.asarray(values, float))
        if prev is not None:
            steps.append(exchange_between(*prev, *cur))
            strains.append(strain)
        prev = cur
        win = [*win[-3:], (cur[0], cur[1])]
        if len(win) >= 2:  # formations of step m-1, flicker if present in frame m-2 or m-3
            fl_f[m - 1] = _flicker(win[-1], win[-2], win[:-2])
        if len(win) == 4:  # breaks of step m-3, flicker if back in frame m-1 or m
            fl_b[m - 3] = _flicker(win[0], win[1], win[2:])
    for k in range(max(n - 3, 0), n - 1):  # the last breaks: only what is left to see
        later = win[k - n + 2:] if k + 2 < n else []
        fl_b[k] = _flicker(win[k - n], win[k - n + 1], later)
    steps = [replace(s, broken_flicker=fl_b.get(k, {}), formed_flicker=fl_f.get(k, {})) for k, s in enumerate(steps)]
    return Exchange(np.array(strains), steps, match)


def _flicker(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
             others: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, int]:
    """Per type: bonds of frame ``a`` missing from frame ``b`` but present in one of ``others``."""
    gone = ~np.isin(a[0], b[0])
    seen = np.zeros_like(gone)
    for o in others:
        seen |= np.isin(a[0], o[0])
    hit = gone & seen
    return {t: int(np.sum(hit & (a[1] == t))) for t in BOND_TYPES}


def _n_atoms(run_dir: Path, fallback: int) -> int:
    import json

    man = json.loads((run_dir / "manifest.json").read_text())
    return int(man["frames"][0]["n_atoms"]) if man.get("frames") else fallback


def plot_exchange(ex: Exchange, path: str | Path, note: str = "") -> Path:
    """Bond exchange per strain step, one panel per bond type: persistent breaks and formations
    (solid) and window-edge flicker (dashed, bonds that break and re-form within two frames);
    bottom row: mean -ICOHP of the bonds broken (before) and formed (after) persistently."""
    types = [t for t in BOND_TYPES if np.any(ex.series("formed", t) + ex.series("broken", t))]
    if not types:
        types = list(BOND_TYPES[:1])
    fig, axes = new_figure(2, len(types), figsize=(3.0 * len(types), 5.6), squeeze=False, sharex=True)
    x = 100 * ex.strain
    d_eps = float(np.nanmedian(np.abs(np.diff(np.r_[0.0, ex.strain])))) * 100 if ex.strain.size else float("nan")
    for c, t in enumerate(types):
        ax = axes[0, c]
        ax.plot(x, ex.series("broken_persistent", t), "v-", color="C3", ms=4, label="broken (persistent)")
        ax.plot(x, ex.series("formed_persistent", t), "^-", color="C0", ms=4, label="formed (persistent)")
        ax.plot(x, ex.series("broken_flicker", t), "v--", color="C3", alpha=0.45, ms=3,
                label="broken, re-forms ≤ 2 frames")
        ax.plot(x, ex.series("formed_flicker", t), "^--", color="C0", alpha=0.45, ms=3,
                label="formed, had broken ≤ 2 frames")
        ax.set_title(t)
        if c == 0:
            ax.set_ylabel(f"bonds per frame (Δε = {d_eps:.2f} %)")
            ax.legend(fontsize=6, frameon=False)
        ax = axes[1, c]
        ax.plot(x, ex.series("micohp_broken", t), "v-", color="C3", ms=4, label="broken (value before)")
        ax.plot(x, ex.series("micohp_formed", t), "^-", color="C0", ms=4, label="formed (value after)")
        ax.set_xlabel("engineering strain (%)")
        if c == 0:
            ax.set_ylabel("mean -ICOHP of exchanged bonds (eV)")
            ax.legend(fontsize=6, frameon=False)
    axes[0, 0].invert_xaxis()
    if len(ex.strain) >= 2:
        fig.text(0.01, 0.005, "breaks in the last two steps cannot be followed for two frames: counted as persistent",
                 fontsize=6, color="#555")
    if note:
        fig.suptitle(note, fontsize=9, color="#a33")
    return save(fig, path)
