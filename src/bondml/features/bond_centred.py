"""Bond-centred SOAP: the power spectrum of the neighbour density expanded at each bond midpoint.

For a bond (i, j, shift) with midpoint ``q0 = r_i + (r_j + shift @ cell - r_i) / 2`` the
descriptor ``q`` is the SOAP power spectrum of the three-species Gaussian neighbour density
(width ``atom_sigma``) of every atom within ``cutoff`` of the midpoint, both bond atoms
included; the centre itself carries no density. With the paper's settings (cutoff 3.75 A,
n_max 8, l_max 6, atom_sigma 0.5 A) both atoms of every labelled bond (d <= 3.75 A, so at d/2 <=
1.875 A from the centre) are inside. The kernel between bonds is then the paper's with ``pbar``
replaced by ``q``: ``k = exp(-(d-d')^2 / 2 sigma^2) (q.q')^zeta``.

It is exactly what ``featomic`` gives for a dummy atom placed at the midpoint (same QUIP-like
radial basis, cosine cutoff smoothing and radial integral spline as
:mod:`bondml.features.featomic_backend`), but computed by the vectorised numpy engine of
:mod:`bondml.features.fast_soap` from the atom neighbour list: the midpoint's neighbours are found
among the neighbours of atom i within ``cutoff + |r_j - r_i| / 2`` (distance-sorted rows per
neighbour species), the spherical expansion is accumulated by sparse products per l, and the
power spectrum by batched Gram matrices per l. Layout: the upper triangles of the per-l Gram
matrices over (species, n), off-diagonal entries times sqrt(2) (2100 components for three
species, like QUIP's), so that dot products equal those of featomic's (species pair, l, n1, n2)
layout of 2688 components exactly (:func:`property_labels`). featomic with dummy atoms spends
~0.4-0.7 ms per centre in book-keeping (25-45 s for a 10,000-atom frame with 66,518 bonds); this
path is measured side by side with quippy's and featomic's per-atom SOAP of the same frame in
``bench/bench_bond_descriptor.py`` (docs/features.md). Rows may be stored in float32 (computed in
float64) and written into a caller's reused array (``out=``). Tests compare it with featomic to
1e-10.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

from .fast_soap import (
    CHUNK,
    fold_rows,
    l_weights,
    power_spectrum_chunk,
    real_spherical_harmonics,  # noqa: F401
)
from .fast_soap import cutoff_weight as _cutoff_weight  # noqa: F401  (re-exported: their earlier home)
from .fast_soap import hermite as _hermite  # noqa: F401
from .fast_soap import radial_splines as _radial_splines  # noqa: F401

if TYPE_CHECKING:
    from .soap import FeatureSettings


def n_components(settings: FeatureSettings) -> int:
    """Length of the bond-centred vector: (l_max+1) * m (m+1) / 2 with m = n_species * n_max
    (2100 for the paper's settings, like QUIP's)."""
    m = len(settings.species_z) * settings.n_max
    return (settings.l_max + 1) * m * (m + 1) // 2


@lru_cache(maxsize=8)
def _fold(ns: int, l_max: int, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of the per-l Gram matrices G_l[(a, n1), (b, n2)] = sum_m c_{a n1 l m} c_{b n2 l m}
    kept (upper triangle, l-major) and their weights ``(-1)^l / sqrt(2l+1)`` (featomic's
    power-spectrum normalisation) times sqrt(2) off the diagonal, so that dot products equal
    those of featomic's full (species pair, l, n1, n2) layout exactly."""
    m = ns * n_max
    A, B = np.triu_indices(m)
    idx, w = [], []
    lw = l_weights(l_max)
    for ell in range(l_max + 1):
        idx.append(ell * m * m + A * m + B)
        w.append(np.where(A == B, 1.0, np.sqrt(2.0)) * lw[ell])
    return np.concatenate(idx), np.concatenate(w)


def property_labels(settings: FeatureSettings) -> np.ndarray:
    """(p, 5) int array naming each column: (l, neighbour 1 Z, n1, neighbour 2 Z, n2).

    A column with ``(Z1, n1) != (Z2, n2)`` holds sqrt(2) times featomic's (equal) values of both
    orders, so dot products between vectors are featomic's exactly.
    """
    sp = np.asarray(settings.species_z, dtype=np.int64)
    n_max = int(settings.n_max)
    m = sp.size * n_max
    A, B = np.triu_indices(m)
    rows = [np.column_stack([np.full(A.size, ell), sp[A // n_max], A % n_max, sp[B // n_max], B % n_max])
            for ell in range(settings.l_max + 1)]
    return np.concatenate(rows).astype(np.int64)


def bond_midpoints(atoms: Atoms, i: np.ndarray, j: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Midpoints ``r_i + (r_j + shift @ cell - r_i) / 2`` (Angstrom), shape (n, 3)."""
    pos = np.asarray(atoms.positions, float)
    return 0.5 * (pos[i] + pos[j] + np.asarray(shift, float).reshape(-1, 3) @ atoms.cell.array)


def bond_soap(atoms: Atoms, i: np.ndarray, j: np.ndarray, shift: np.ndarray,
              settings: FeatureSettings, chunk: int = CHUNK, dtype: type | np.dtype = np.float64,
              out: np.ndarray | None = None) -> np.ndarray:
    """Bond-centred SOAP of the bonds (i, j, shift) of ``atoms``, shape (n_bonds, p).

    ``shift`` (n, 3) integer lattice translations with bond vector ``r_j + shift @ cell - r_i``
    (:mod:`bondml.structure.bonds` convention). Rows have unit norm when ``settings.normalise``.
    Exact for any periodic cell, sheared or smaller than the cutoff (all images are searched).
    ``dtype`` of the result: float64 (default, what datasets and stores hold) or float32 (half
    the memory; every chunk is still computed in float64, so the float32 rows are the float64
    ones rounded). ``out``: an array (n_bonds, p) of that dtype to write into (reused across
    frames it saves the page faults of a fresh ~1 GB array per 10,000-atom frame). Species must
    have been checked by the caller.
    """
    from vesin import NeighborList

    i = np.asarray(i, np.int64).ravel()
    j = np.asarray(j, np.int64).ravel()
    shift = np.asarray(shift, np.int64).reshape(-1, 3)
    nb = i.size
    p = n_components(settings)
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype={dtype}: bond-centred SOAP is float64 or float32")
    if out is None:
        out = np.empty((nb, p), dtype=dtype)
    elif out.shape != (nb, p) or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"out: expected a C-contiguous {dtype} array of shape {(nb, p)}, "
                         f"got {out.dtype} {out.shape}")
    if nb == 0:
        return out
    rc = float(settings.cutoff)
    l_max, n_max, sigma = int(settings.l_max), int(settings.n_max), float(settings.atom_sigma)
    pos = np.asarray(atoms.positions, float)
    cell = np.asarray(atoms.cell.array, float)
    half = 0.5 * (pos[j] + shift @ cell - pos[i])  # midpoint - r_i
    reach = rc + float(np.sqrt(np.einsum("ij,ij->i", half, half)).max()) + 1e-6
    # full neighbour list of every atom within cutoff + d_max/2, in CSR form by first atom
    nl = NeighborList(cutoff=reach, full_list=True)
    a, b, D = nl.compute(points=pos, box=cell, periodic=True, quantities="ijD")
    n_at = len(atoms)
    first = np.concatenate([np.asarray(a, np.int64), np.arange(n_at)])  # the atom itself (vector 0)
    zmap = {int(z): k for k, z in enumerate(settings.species_z)}
    spec_of_atom = np.array([zmap[int(z)] for z in atoms.numbers], dtype=np.int64)
    ns = len(settings.species_z)
    nbr_spec = spec_of_atom[np.concatenate([np.asarray(b, np.int64), np.arange(n_at)])]
    vec = np.concatenate([np.asarray(D, float).reshape(-1, 3), np.zeros((n_at, 3))])
    d_nb = np.sqrt(np.einsum("ij,ij->i", vec, vec))
    # rows (first atom, neighbour species), each by distance: a bond's candidates are a prefix of
    # each of its atom i's species rows (|r_k - r_i| <= cutoff + |half|), in species order
    grp = first * ns + nbr_spec
    span = 2.0 * reach + 1.0
    key = grp * span + d_nb  # increasing in (group, distance): one float sort
    order = np.argsort(key)
    key, grp, nbr_spec, vec = key[order], grp[order], nbr_spec[order], vec[order]
    gstart = np.searchsorted(grp, np.arange(n_at * ns))
    h_len = np.sqrt(np.einsum("ij,ij->i", half, half))
    sp_range = np.arange(ns)
    fold_index, _ = _fold(ns, l_max, n_max)
    l_scale = np.sqrt(2.0) * l_weights(l_max)
    for s0 in range(0, nb, chunk):
        s1 = min(s0 + chunk, nb)
        c = s1 - s0
        g = i[s0:s1, None] * ns + sp_range  # (c, ns) species rows of each bond's atom i
        st = gstart[g]
        en = np.searchsorted(key, g * span + (rc + h_len[s0:s1, None] + 1e-6), side="right")
        cnt = (en - st).reshape(-1)
        owner = np.repeat(np.repeat(np.arange(c), ns), cnt)
        idx = np.arange(owner.size) + np.repeat(st.reshape(-1) - (np.cumsum(cnt) - cnt), cnt)
        r = vec[idx]
        r -= half[s0:s1][owner]
        dist = np.sqrt(np.einsum("ij,ij->i", r, r))
        keep = np.flatnonzero(dist < rc)
        G = power_spectrum_chunk(owner[keep], nbr_spec[idx[keep]], r[keep], dist[keep], c, ns, rc, l_max,
                                 n_max, sigma, l_scale=l_scale)
        # G_l came out times sqrt(2) (-1)^l / sqrt(2l+1); the diagonals take (-1)^l / sqrt(2l+1)
        G.reshape(c, l_max + 1, -1)[:, :, ::ns * n_max + 1] *= np.sqrt(0.5)
        fold_rows(G, fold_index, out[s0:s1], settings.normalise, "bond-centred")
    return out
