"""Periodic bond finder: every pair within a distance window, all periodic images, any cell shape.

Bonds are columns, not objects. Convention: the bond vector is
``r_j + shift @ cell - r_i`` with positions exactly as stored in the ``Atoms`` (not wrapped),
``shift`` integer lattice translations; each unordered pair appears once, with ``i < j``
(for ``i == j`` self-image bonds, the first non-zero shift component is positive).
LOBSTER's ``translation`` column is ``-shift``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from ase import Atoms

from ..constants import ATOMIC_NUMBERS, LOBSTER_WINDOW
from ..core.table import BondColumns
from ..errors import BondmlError
from ..types import bond_type, check_element


@dataclass(frozen=True)
class Bonds(BondColumns):
    """Bonds of one structure as arrays of equal length (Angstrom for ``distance``)."""

    i: np.ndarray
    j: np.ndarray
    shift: np.ndarray
    distance: np.ndarray
    type: np.ndarray

    _columns: ClassVar[tuple[str, ...]] = ("i", "j", "shift", "distance", "type")
    _type_column: ClassVar[str] = "type"
    # select / of_type / counts: bondml.core.table.BondColumns (shared by every container)

    def keys(self) -> np.ndarray:
        """Structured keys (i, j, sx, sy, sz) as an (n, 5) int64 array, for matching."""
        return np.column_stack([self.i, self.j, self.shift]).astype(np.int64)


def _canonical(i: np.ndarray, j: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orient each pair so that i < j (or i == j with a positive first non-zero shift)."""
    swap = i > j
    same = i == j
    if same.any():
        ss = s[same]
        nz = ss != 0
        first = np.argmax(nz, axis=1)
        sign = ss[np.arange(len(ss)), first]
        neg = np.zeros_like(swap)
        neg[np.flatnonzero(same)] = sign < 0
        swap = swap | neg
    i2 = np.where(swap, j, i)
    j2 = np.where(swap, i, j)
    s2 = np.where(swap[:, None], -s, s)
    return i2, j2, s2


def bond_types_of(symbols: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Paper-style bond type (``'Zr-Cu'``...) for each pair, vectorised over a lookup table.

    Any chemical elements (heavier first); unknown symbols raise :class:`UnknownElementError`."""
    present = set(symbols.tolist())
    for e in present:
        if e not in ATOMIC_NUMBERS:
            check_element(e, any_element=True)
    els = sorted(set(ATOMIC_NUMBERS) | present)
    code = {e: k for k, e in enumerate(els)}
    table = np.empty((len(els), len(els)), dtype=object)
    for a in els:
        for b in els:
            table[code[a], code[b]] = bond_type(a, b)
    c = np.array([code[e] for e in symbols], dtype=np.int64)
    return table[c[i], c[j]]


def find_bonds(
    atoms: Atoms,
    window: tuple[float, float] = LOBSTER_WINDOW,
    windows: dict[str, tuple[float, float]] | None = None,
    tol: float = 0.0,
) -> Bonds:
    """All bonds of a periodic structure with ``window[0] <= d <= window[1]`` (Angstrom).

    ``windows`` (per bond type) replaces the single window when given: each type keeps only its
    own range. ``tol`` widens every window symmetrically (useful when matching rounded files).
    Uses vesin's cell-list neighbour search, correct for triclinic cells and every periodic
    image (including images of an atom with itself). Bonds are sorted by (i, j, shift).
    """
    from vesin import NeighborList

    from ..interop import as_atoms

    atoms = as_atoms(atoms)
    symbols = np.array(atoms.get_chemical_symbols(), dtype=object)
    cell = np.asarray(atoms.cell.array, dtype=float)
    if not all(atoms.pbc):
        raise BondmlError("find_bonds needs a fully periodic structure (pbc = T T T)")
    if abs(np.linalg.det(cell)) < 1e-9:
        raise BondmlError("find_bonds: the cell has zero volume")
    if windows:
        r_max = max(hi for _, hi in windows.values())
    else:
        r_max = window[1]
    r_max = r_max + tol
    # vesin keeps d < cutoff; search slightly wider so that d == upper bound is kept (windows are
    # inclusive), the exact window is applied below
    nl = NeighborList(cutoff=r_max + 1e-6, full_list=False)
    i, j, s, d = nl.compute(
        points=np.asarray(atoms.positions, dtype=float), box=cell, periodic=True, quantities="ijSd"
    )
    i = i.astype(np.int64)
    j = j.astype(np.int64)
    s = s.astype(np.int64).reshape(-1, 3)
    d = d.astype(float)
    i, j, s = _canonical(i, j, s)
    types = bond_types_of(symbols, i, j)
    if windows:
        lo = np.full(d.size, np.inf)
        hi = np.full(d.size, -np.inf)
        for t, (a, b) in windows.items():
            m = types == t
            lo[m] = a
            hi[m] = b
    else:
        lo = np.full(d.size, window[0])
        hi = np.full(d.size, window[1])
    keep = (d >= lo - tol) & (d <= hi + tol)
    i, j, s, d, types = i[keep], j[keep], s[keep], d[keep], types[keep]
    order = np.lexsort((s[:, 2], s[:, 1], s[:, 0], j, i))
    return Bonds(i[order], j[order], s[order], d[order], types[order])


def bond_vectors(atoms: Atoms, bonds: Bonds) -> np.ndarray:
    """Bond vectors ``r_j + shift @ cell - r_i`` (Angstrom), shape (n, 3)."""
    from ..interop import as_atoms

    atoms = as_atoms(atoms)
    pos = atoms.positions
    return pos[bonds.j] + bonds.shift @ atoms.cell.array - pos[bonds.i]


@dataclass(frozen=True)
class PairMatch:
    """Result of matching a reference pair list (e.g. LOBSTER's) to the bonds of a structure.

    ``index[k]`` is the row in ``bonds`` matched by reference row ``k`` (-1 if unmatched);
    ``unmatched`` lists reference rows without a structure bond (the original's DUB list);
    ``extra`` lists structure bonds absent from the reference; ``max_distance_error`` in Angstrom.
    """

    index: np.ndarray
    unmatched: np.ndarray
    extra: np.ndarray
    max_distance_error: float


def match_pairs(
    bonds: Bonds, i: np.ndarray, j: np.ndarray, shift: np.ndarray, distance: np.ndarray | None = None
) -> PairMatch:
    """Match reference pairs ``(i, j, shift)`` to ``bonds`` exactly (pair orientation-independent)."""
    ri, rj, rs = _canonical(np.asarray(i, np.int64), np.asarray(j, np.int64),
                            np.asarray(shift, np.int64).reshape(-1, 3))
    bk = bonds.keys()
    rk = np.column_stack([ri, rj, rs]).astype(np.int64)
    lookup = {tuple(k): n for n, k in enumerate(bk.tolist())}
    index = np.array([lookup.get(tuple(k), -1) for k in rk.tolist()], dtype=np.int64)
    unmatched = np.flatnonzero(index < 0)
    used = np.zeros(len(bonds), dtype=bool)
    used[index[index >= 0]] = True
    extra = np.flatnonzero(~used)
    err = 0.0
    if distance is not None and (index >= 0).any():
        ok = index >= 0
        err = float(np.max(np.abs(bonds.distance[index[ok]] - np.asarray(distance)[ok])))
    return PairMatch(index=index, unmatched=unmatched, extra=extra, max_distance_error=err)


def infer_shifts(bonds: Bonds, i: np.ndarray, j: np.ndarray, distance: np.ndarray, source: object = "pairs",
                 tol: float = 1e-4) -> np.ndarray:
    """Lattice shifts of pairs given without them (LOBSTER 2.x lists): for each ``(i, j, d)`` the
    shift of the one structure bond between ``i`` and ``j`` whose length is ``d`` within ``tol``
    (Angstrom; LOBSTER's distances differ from a recomputation by up to ~1e-5). Shape (n, 3),
    oriented ``r_j + shift @ cell - r_i`` for the pair as given. A pair with no such bond keeps a
    zero shift (it stays unmatched); a pair with several (equal-length images) is ambiguous:
    :class:`InputFileError` naming ``source``.
    """
    from ..errors import InputFileError

    i = np.asarray(i, np.int64)
    j = np.asarray(j, np.int64)
    d = np.asarray(distance, float)
    by_pair: dict[tuple[int, int], list[int]] = {}
    for n, (a, b) in enumerate(zip(bonds.i.tolist(), bonds.j.tolist(), strict=True)):
        by_pair.setdefault((a, b), []).append(n)
    out = np.zeros((i.size, 3), dtype=np.int64)
    for k in range(i.size):
        a, b = int(i[k]), int(j[k])
        key, flip = ((a, b), 1) if a <= b else ((b, a), -1)
        cand = [n for n in by_pair.get(key, []) if abs(bonds.distance[n] - d[k]) <= tol]
        if len(cand) > 1:
            raise InputFileError(source, f"pair {k + 1} (atoms {a + 1}-{b + 1}, {d[k]:.5f} A) matches "
                                         f"{len(cand)} periodic images of equal length: the translation cannot be "
                                         "inferred (use LOBSTER >= 3, which writes it)")
        if cand:
            s = bonds.shift[cand[0]] * flip
            if a == b and flip == 1:
                s = bonds.shift[cand[0]]
            out[k] = s
    return out
