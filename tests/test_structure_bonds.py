"""Periodic bond finder vs LOBSTER's own pair lists (run 21) and vs independent brute force."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms

from bondml.constants import INFERENCE_WINDOWS
from bondml.data import production_cell, run21_dir
from bondml.io.lobster import read_icohplist, read_lobsterin
from bondml.structure.bonds import bond_vectors, find_bonds, match_pairs

LABELLED = [k for k in range(15) if k != 13]


def sub(k: int) -> Path:
    return run21_dir() / "2000" / str(k)


def read_cell(k: int) -> Atoms:
    return ase.io.read(sub(k) / "Zr49Cu49Al2.xyz")


def brute_force(atoms: Atoms, lo: float, hi: float) -> dict[tuple[int, int, int, int, int], float]:
    """Every pair (i, j, shift) with lo <= |r_j + shift.cell - r_i| <= hi, by explicit images.

    The image range per lattice direction is ceil(hi / layer spacing) + 1, enough for any cell
    shape and unwrapped positions. Each unordered pair is kept once: i < j, or i == j with the
    first non-zero shift component positive (zero shift for i == j is the atom itself).
    """
    cell = atoms.cell.array
    pos = atoms.positions
    frac = np.linalg.solve(cell.T, pos.T).T
    spread = np.ceil(frac.max(0) - frac.min(0)).astype(int)  # unwrapped positions widen the range
    heights = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)
    nmax = np.ceil(hi / heights).astype(int) + 1 + spread
    out: dict[tuple[int, int, int, int, int], float] = {}
    n = len(atoms)
    for s in itertools.product(*(range(-m, m + 1) for m in nmax)):
        sv = np.array(s)
        d = np.linalg.norm(pos[None, :, :] + sv @ cell - pos[:, None, :], axis=2)  # d[i, j]
        ii, jj = np.nonzero((d >= lo) & (d <= hi))
        for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
            if i > j:
                continue
            if i == j:
                nz = sv[sv != 0]
                if nz.size == 0 or nz[0] < 0:
                    continue
            out[(i, j, *s)] = float(d[i, j])
    assert n == len(pos)
    return out


def assert_same_as_brute(atoms: Atoms, lo: float, hi: float) -> None:
    b = find_bonds(atoms, (lo, hi))
    ref = brute_force(atoms, lo, hi)
    got = {tuple(k): float(d) for k, d in zip(b.keys().tolist(), b.distance, strict=True)}
    assert len(got) == len(b), "duplicate bonds"
    assert set(got) == set(ref)
    for k, d in ref.items():
        assert got[k] == pytest.approx(d, abs=1e-9)
    np.testing.assert_allclose(np.linalg.norm(bond_vectors(atoms, b), axis=1), b.distance, atol=1e-9)


# --------------------------------------------------------------------------- LOBSTER ground truth
@pytest.mark.parametrize("k", LABELLED)
def test_pairs_equal_lobster_icohplist(k: int) -> None:
    atoms = read_cell(k)
    ic = read_icohplist(sub(k) / "ICOHPLIST.lobster")
    bonds = find_bonds(atoms, (1.80, 4.20))
    m = match_pairs(bonds, ic.i, ic.j, -ic.translation, ic.distance)
    assert m.unmatched.size == 0, f"LOBSTER pairs without a structure bond: {m.unmatched[:5]}"
    assert m.extra.size == 0, f"structure bonds LOBSTER does not list: {m.extra[:5]}"
    assert len(bonds) == len(ic)
    assert np.unique(m.index).size == len(ic)  # one-to-one
    assert m.max_distance_error < 1e-4
    # the translation convention on every line: d = |r_NU - t.cell - r_MU| with positions as given
    pos, cell = atoms.positions, atoms.cell.array
    d = np.linalg.norm(pos[ic.j] - ic.translation @ cell - pos[ic.i], axis=1)
    np.testing.assert_allclose(d, ic.distance, atol=1e-4)
    # the element labels of LOBSTER agree with the structure
    sym = np.array(atoms.get_chemical_symbols())
    assert np.array_equal(sym[ic.i], ic.element_i.astype(str))
    assert np.array_equal(sym[ic.j], ic.element_j.astype(str))


@pytest.mark.parametrize("k", range(15))
def test_pairs_equal_lobsterin_quippy(k: int) -> None:
    """``lobsterin-quippy`` lists every pair within QUIP's 3.75 A cutoff, in both orientations."""
    atoms = read_cell(k)
    p = read_lobsterin(sub(k) / "lobsterin-quippy").pairs
    bonds = find_bonds(atoms, (0.0, 3.75))
    m = match_pairs(bonds, p[:, 0], p[:, 1], p[:, 2:])
    assert m.unmatched.size == 0 and m.extra.size == 0
    # each bond appears exactly twice: (i, j, o) and (j, i, -o)
    assert len(p) == 2 * len(bonds)
    assert np.array_equal(np.bincount(m.index, minlength=len(bonds)), np.full(len(bonds), 2))
    fwd = {tuple(r) for r in p.tolist()}
    assert all((j, i, -a, -b, -c) in fwd for i, j, a, b, c in p.tolist())


def test_lobster_window_edges_subrun0() -> None:
    """LOBSTER's list is exactly the 1.80-4.20 A window: nothing just outside is missing."""
    atoms = read_cell(0)
    wide = find_bonds(atoms, (1.0, 4.6))
    inside = (wide.distance >= 1.80) & (wide.distance <= 4.20)
    assert inside.sum() == len(read_icohplist(sub(0) / "ICOHPLIST.lobster"))
    assert (~inside).sum() > 0


# --------------------------------------------------------------------------- brute force
def test_sheared_triclinic_cell_vs_brute_force() -> None:
    atoms = read_cell(0)
    cell = atoms.cell.array
    # strongly sheared, non-orthogonal cell; positions follow the fractional coordinates
    m = np.array([[1.0, 0.0, 0.0], [0.9, 0.8, 0.0], [-0.6, 0.7, 0.75]])
    atoms.set_cell(m @ cell, scale_atoms=True)
    # unwrap a few atoms by lattice vectors: the bonds must not depend on it
    atoms.positions[:10] += np.array([[1, -2, 0]]) @ atoms.cell.array
    assert_same_as_brute(atoms, 1.80, 4.20)


def test_small_cell_self_images_vs_brute_force() -> None:
    # 2 atoms in a small triclinic cell: each atom bonds to many of its own images
    cell = np.array([[3.1, 0.0, 0.0], [1.2, 2.9, 0.0], [0.7, -0.5, 3.3]])
    atoms = Atoms("ZrCu", scaled_positions=[[0.1, 0.2, 0.3], [0.6, 0.55, 0.8]], cell=cell, pbc=True)
    b = find_bonds(atoms, (1.80, 6.0))
    assert np.any(b.i == b.j), "self-image bonds expected"
    assert_same_as_brute(atoms, 1.80, 6.0)
    one = Atoms("Al", positions=[[0.2, 0.3, 0.1]], cell=cell, pbc=True)
    assert_same_as_brute(one, 1.0, 7.0)


def test_window_bounds_are_inclusive() -> None:
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=np.diag([20.0, 20.0, 20.0]), pbc=True)
    assert len(find_bonds(atoms, (2.5, 3.0))) == 1
    assert len(find_bonds(atoms, (2.0, 2.5))) == 1
    assert len(find_bonds(atoms, (2.0, 2.4999))) == 0


# --------------------------------------------------------------------------- 10k production cell
def read_production() -> Atoms:
    a = ase.io.read(production_cell(), format="lammps-data", atom_style="atomic")
    a.set_chemical_symbols(np.array(["", "Zr", "Cu", "Al"])[a.get_array("type")])
    return a


def test_production_cell_inference_windows_vs_minimum_image() -> None:
    atoms = read_production()
    assert len(atoms) == 10_000
    L = atoms.cell.array
    assert np.allclose(L, np.diag([L[0, 0]] * 3)) and L[0, 0] == pytest.approx(55.969, abs=1e-3)
    t0 = time.perf_counter()
    bonds = find_bonds(atoms, windows=INFERENCE_WINDOWS)
    assert time.perf_counter() - t0 < 2.0
    # brute force: chunked minimum image (exact here, cutoff 4.2 A << half the 56 A box); atoms
    # sorted by wrapped x so each chunk is only compared with the slab |dx| <= 4.2 A around it
    box = L[0, 0]
    pos = atoms.positions
    z = atoms.numbers
    zpair = {"Zr": 40, "Cu": 29, "Al": 13}
    counts = dict.fromkeys(INFERENCE_WINDOWS, 0)
    ref_keys = []
    xw = np.mod(pos[:, 0], box)
    order = np.argsort(xw)
    for start in range(0, len(pos), 500):
        rows = order[start:start + 500]
        x0, x1 = xw[rows].min(), xw[rows].max()
        gap = np.minimum(np.abs(np.mod(xw - x0 + box / 2, box) - box / 2),
                         np.abs(np.mod(xw - x1 + box / 2, box) - box / 2))
        cols = np.flatnonzero(((xw >= x0) & (xw <= x1)) | (gap <= 4.2 + 1e-9))
        dv = pos[None, cols, :] - pos[rows, None, :]
        dv -= box * np.round(dv / box)
        d = np.sqrt(np.einsum("ijk,ijk->ij", dv, dv))
        a_, b_ = np.nonzero(d <= 4.2)
        ii, jj, dd = rows[a_], cols[b_], d[a_, b_]
        keep = ii < jj
        ii, jj, dd = ii[keep], jj[keep], dd[keep]
        for t, (lo, hi) in INFERENCE_WINDOWS.items():
            a, b = (zpair[e] for e in t.split("-"))
            same_type = ((z[ii] == a) & (z[jj] == b)) | ((z[ii] == b) & (z[jj] == a))
            sel = same_type & (dd >= lo) & (dd <= hi)
            counts[t] += int(sel.sum())
            ref_keys.append(np.column_stack([ii[sel], jj[sel]]))
    assert bonds.counts() == counts
    assert len(bonds) == sum(counts.values()) == 66_518  # DOMAIN: the shipped data file has 66,518
    ref = np.concatenate(ref_keys)
    ref = ref[np.lexsort((ref[:, 1], ref[:, 0]))]
    got = np.column_stack([bonds.i, bonds.j])
    assert np.array_equal(got[np.lexsort((got[:, 1], got[:, 0]))], ref)
