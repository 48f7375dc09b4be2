"""QUIP's own SOAP descriptor (the ``quippy`` backend, the paper's) computed by a vectorised numpy engine.

This reproduces ``quippy.descriptors.Descriptor(settings.quip_string()).calc(atoms)["data"]``
(GAP's ``soap_calc``, radial basis ``EQUISPACED_GAUSS``, QUIP's defaults otherwise) to rounding:
the same 2101 columns for the paper's settings, in QUIP's order, with QUIP's sqrt(2) weights,
1/sqrt(2l+1) factors, normalisation and trailing zero component. It follows GAP's algorithm
step by step (``soap_initialise`` and ``soap_calc`` in GAP's ``descriptors.f95``):

* basis (once per settings): ``alpha = 1 / (2 atom_sigma^2)``; ``n_max`` Gaussian centres
  ``r_a = 0, h, ..., (n_max-1) h`` with ``h = (cutoff + atom_sigma sqrt(20 ln 10)) / n_max``;
  ``transform = K^-1 L`` with ``K_ab = exp(-alpha (r_a - r_b)^2)`` and ``L`` the lower Cholesky
  factor of the analytic overlap matrix ``S`` of the Gaussians (weight r^2);
* per neighbour j of i within the cutoff (every periodic image): the exponentially scaled
  modified spherical Bessel functions ``radial_fun(l, a) = exp(-alpha (r^2 + r_a^2)) i_l(2 alpha r r_a)``
  by QUIP's own upward recursion (the same floating-point operations, the r_a = 0 special
  case included), ``radial_coefficient = radial_fun @ transform * f_cut(r)`` with QUIP's cosine
  switch of width ``cutoff_transition_width = 0.5`` Angstrom, times ``Y_lm(r_ij)``, summed per
  neighbour species into ``X[l, m, (species, a)]``;
* the central atom: ``L[0, :] * central_weight * Y_00`` in the l = 0 channels of its own
  species only (GAP's default ``central_reference_all_species = F``; with a single species the
  one channel is always the centre's);
* the power spectrum ``P_l = X_l^T X_l / sqrt(2l+1)`` (24 x 24 for three species and
  ``n_max = 8``), unpacked for channel pairs ``ia >= jb`` to column ``l + (l_max+1) k`` (k counting
  the pairs (ia, jb) row by row), times sqrt(2) for ``ia != jb``; the last component set to 0,
  the vector normalised, the last component set to ``covariance_sigma0 = 0``.

QUIP sums ``Re X_a Re X_b + Im X_a Im X_b`` of complex spherical harmonics; that is
``Re sum_m X_a,m conj(X_b,m)``, unchanged by the unitary change to real spherical harmonics
within each l, so the engine uses the real orthonormal harmonics of
:mod:`bondml.features.fast_soap` (and its sparse per-(centre, species) summation). The tests
hold the engine to 1e-12 of quippy itself on real cells (measured: a few 1e-15; see
``docs/features.md``).

The work is organised around chunks of centres, as in :mod:`bondml.features.fast_soap`: one
neighbour list (``vesin``) for the frame, pairs sorted by (centre, neighbour species), and per
chunk the radial functions of all its pairs as whole arrays, one small matrix product with the
transform, one sparse product per l for the expansion, one batched matrix product per l for the
power spectrum and one ``take`` for QUIP's column order. Every chunk is computed in float64;
the result may be stored in float32.
"""

from __future__ import annotations

from functools import lru_cache
from math import log, pi, sqrt
from typing import TYPE_CHECKING, Any

import numpy as np

from .fast_soap import (
    QUIP_CENTRAL_WEIGHT,
    QUIP_CUTOFF_TRANSITION_WIDTH,
    _csr_accumulate,
    centre_pairs,
    spherical_harmonics_t,
)

if TYPE_CHECKING:
    from ase import Atoms

    from .soap import FeatureSettings

#: QUIP's default ``basis_error_exponent`` (sets the extent of the Gaussian radial basis).
BASIS_ERROR_EXPONENT = 10.0
#: QUIP's default ``covariance_sigma0`` (the value of the last component).
COVARIANCE_SIGMA0 = 0.0
#: Centres per chunk (their pairs' radial functions and expansions stay in cache).
CHUNK = 256


@lru_cache(maxsize=8)
def quip_basis(cutoff: float, n_max: int, atom_sigma: float) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """QUIP's ``EQUISPACED_GAUSS`` radial basis: ``(alpha, r_basis, L, transform)``.

    ``alpha = 0.5 / atom_sigma^2`` (1/Angstrom^2); ``r_basis`` (n_max,) Angstrom, the Gaussian
    centres; ``L`` (n_max, n_max) the lower Cholesky factor of QUIP's overlap matrix
    (``cholesky_overlap_basis``); ``transform`` (n_max, n_max) = ``covariance^-1 @ L``
    (``transform_basis``). Arrays are read-only.
    """
    from scipy.linalg import cho_factor, cho_solve
    from scipy.special import erf

    alpha = 0.5 / atom_sigma**2
    cutoff_basis = cutoff + atom_sigma * sqrt(2.0 * BASIS_ERROR_EXPONENT * log(10.0))
    spacing = cutoff_basis / n_max
    r = np.zeros(n_max)
    for i in range(1, n_max):  # QUIP accumulates the spacing
        r[i] = r[i - 1] + spacing
    ri, rj = r[None, :], r[:, None]  # element (j, i), as QUIP's covariance_basis(j, i)
    cov = np.exp(-alpha * (ri - rj) ** 2)
    s = ri + rj
    overlap = (np.exp(-alpha * (ri**2 + rj**2)) * sqrt(2.0) * alpha**1.5 * s
               + alpha * np.exp(-0.5 * alpha * (ri - rj) ** 2) * sqrt(pi) * (1.0 + alpha * s**2)
               * (1.0 + erf(sqrt(alpha / 2.0) * s)))
    overlap = overlap / sqrt(128.0 * alpha**5)
    # QUIP's LA_Matrix_Factorise: dpotrf('L'), mirrored; soap_initialise zeroes the strict upper part
    chol = np.linalg.cholesky(overlap)
    transform = cho_solve(cho_factor(cov, lower=True), chol)
    for arr in (r, chol, transform):
        arr.setflags(write=False)
    return alpha, r, chol, transform


def coordination_function(r: np.ndarray, cutoff: float, width: float = QUIP_CUTOFF_TRANSITION_WIDTH) -> np.ndarray:
    """QUIP's ``coordination_function``: 1 below ``cutoff - width``, a cosine switch to 0 at
    ``cutoff``, 0 beyond (r in Angstrom)."""
    r = np.asarray(r, float)
    sw = 0.5 * (np.cos(pi * (r - cutoff + width) / width) + 1.0)
    return np.where(r > cutoff, 0.0, np.where(r > cutoff - width, sw, 1.0))


def radial_coefficients(dist: np.ndarray, cutoff: float, l_max: int, n_max: int, atom_sigma: float) -> np.ndarray:
    """QUIP's ``radial_coefficient`` of neighbours at ``dist`` (P,) Angstrom (``0 < dist < cutoff``)
    -> (l_max+1, P, n_max): ``radial_fun @ transform_basis * f_cut``, by QUIP's recursion."""
    alpha, rb, _chol, transform = quip_basis(float(cutoff), int(n_max), float(atom_sigma))
    d = np.ascontiguousarray(dist, dtype=float)
    P = d.size
    rf = np.empty((l_max + 1, P, n_max))
    # r_basis(1) = 0: arg_bess = 0, radial_fun(0) = exp(-alpha (r_a^2 + r^2)), higher l zero
    rf[0, :, 0] = np.exp(-alpha * (rb[0] ** 2 + d * d))
    rf[1:, :, 0] = 0.0
    if n_max > 1:
        r = d[:, None]
        ra = rb[None, 1:]
        arg = 2.0 * alpha * r * ra
        exp_p = np.exp(-alpha * (r + ra) ** 2)
        exp_m = np.exp(-alpha * (r - ra) ** 2)
        lm = 0.5 * (exp_m + exp_p) / arg  # i_{-1}, scaled
        cur = 0.5 * (exp_m - exp_p) / arg  # i_0, scaled
        rf[0, :, 1:] = cur
        for ell in range(1, l_max + 1):
            lm, cur = cur, lm - (2 * ell - 1) * cur / arg
            rf[ell, :, 1:] = cur
    out = np.empty_like(rf)
    _blocked_matmul(rf.reshape(-1, n_max), transform, out.reshape(-1, n_max))
    out *= coordination_function(d, cutoff)[None, :, None]
    return out


def _harmonics(ut: np.ndarray, l_max: int) -> np.ndarray:
    """:func:`~bondml.features.fast_soap.spherical_harmonics_t` of unit vectors ``ut`` (3, P) ->
    ((l_max+1)^2, P), in blocks of pairs: its (2l+1, monomials) x (monomials, P) products are
    multithreaded by OpenBLAS for a large P, at many times their cost on a busy machine."""
    P = ut.shape[1]
    if P <= _MATMUL_ROWS:
        return spherical_harmonics_t(ut, l_max)
    Y = np.empty(((l_max + 1) ** 2, P))
    for s0 in range(0, P, _MATMUL_ROWS):
        s1 = min(s0 + _MATMUL_ROWS, P)
        Y[:, s0:s1] = spherical_harmonics_t(np.ascontiguousarray(ut[:, s0:s1]), l_max)
    return Y


#: Rows per block of :func:`_blocked_matmul` (1024 x 8 x 8 stays far below OpenBLAS's threading threshold).
_MATMUL_ROWS = 1024


def _blocked_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = a @ b`` for a tall, thin ``a`` (m, k) and a small ``b`` (k, n), as a stack of
    small products: a single (m, 8) x (8, 8) GEMM is multithreaded by OpenBLAS, and its threads
    cost 20-60x the product's own time on a busy machine; the small ones run on the calling thread."""
    m = a.shape[0]
    full = m - m % _MATMUL_ROWS
    if full:
        np.matmul(a[:full].reshape(-1, _MATMUL_ROWS, a.shape[1]), b,
                  out=out[:full].reshape(-1, _MATMUL_ROWS, out.shape[1]))
    if full < m:
        np.matmul(a[full:], b, out=out[full:])


@lru_cache(maxsize=8)
def quip_layout(n_species: int, l_max: int, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """QUIP's column order as indices into the per-centre Gram matrices ``G[l, ia, jb]`` (flat),
    and the weight of each column (sqrt(2) for ``ia != jb``); the trailing component excluded.

    Column ``l + (l_max+1) k`` holds ``(l, ia, jb)`` for the k-th pair of channels in the order
    ``ia = 0..K-1, jb = 0..ia`` (``K = n_species * n_max``, channel = species * n_max + a).
    """
    K = n_species * n_max
    ia, jb = np.tril_indices(K)
    n_pairs = ia.size
    index = np.empty(n_pairs * (l_max + 1), np.int64)
    weight = np.empty(index.size)
    w = np.where(ia != jb, sqrt(2.0), 1.0)
    for ell in range(l_max + 1):
        index[ell::l_max + 1] = ell * K * K + ia * K + jb
        weight[ell::l_max + 1] = w
    index.setflags(write=False)
    weight.setflags(write=False)
    return index, weight


def n_components(settings: FeatureSettings) -> int:
    """Length of QUIP's SOAP vector: ``(l_max+1) K (K+1) / 2 + 1`` with ``K = n_species n_max``."""
    K = len(settings.species_z) * int(settings.n_max)
    return (int(settings.l_max) + 1) * K * (K + 1) // 2 + 1


def supports(atoms: Atoms, settings: FeatureSettings) -> str | None:
    """None when the engine computes these atoms and settings exactly as quippy does, else the
    reason it does not (the caller then uses the library)."""
    pbc = np.asarray(atoms.pbc, bool)
    if pbc.any() and not pbc.all():
        return "a cell periodic in some directions only"
    if settings.kind != "atom":
        return "bond-centred settings"
    if int(settings.l_max) < 0 or int(settings.n_max) < 1 or not settings.species_z:
        return "l_max < 0, n_max < 1 or no species"
    if not (float(settings.cutoff) > 0.0 and float(settings.atom_sigma) > 0.0):
        return "a cutoff or atom_sigma that is not positive"
    return None


def soap_quip_numpy(atoms: Atoms, settings: FeatureSettings, dtype: Any = np.float64,
                    chunk: int = CHUNK) -> np.ndarray:
    """QUIP's per-atom SOAP (the quippy backend's vectors) from the numpy engine.

    Parameters
    ----------
    atoms : ase.Atoms, periodic in all three directions or in none; positions need not be
        wrapped; the cell may be smaller than twice the cutoff (every periodic image within the
        cutoff is a neighbour). Every element must be among ``settings.species_z`` (checked by
        :func:`bondml.features.soap.compute_soap`).
    settings : FeatureSettings with ``backend="quippy"`` (cutoff and atom_sigma in Angstrom).
    dtype : float64 (default) or float32 (each chunk computed in float64, then rounded).
    chunk : centres per block.

    Returns
    -------
    (n_atoms, (l_max+1) K (K+1)/2 + 1) array, rows in atom order, QUIP's columns (2101 for the
    paper's settings), equal to quippy's ``Descriptor.calc`` to rounding.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype={dtype}: SOAP vectors are float64 or float32")
    why = supports(atoms, settings)
    if why is not None:
        raise ValueError(f"the numpy QUIP SOAP engine does not handle {why}")
    species = tuple(int(z) for z in settings.species_z)
    ns = len(species)
    rc = float(settings.cutoff)
    l_max, n_max, sigma = int(settings.l_max), int(settings.n_max), float(settings.atom_sigma)
    K = ns * n_max
    index, weight = quip_layout(ns, l_max, n_max)
    p = index.size + 1
    n_at = len(atoms)
    out = np.empty((n_at, p), dtype=dtype)
    if n_at == 0:
        return out
    zmap = {z: k for k, z in enumerate(species)}
    spec = np.array([zmap[int(z)] for z in atoms.numbers], dtype=np.int64)
    a, nspec, D, d, start = centre_pairs(atoms, rc, spec)
    _alpha, _rb, chol, _t = quip_basis(rc, n_max, sigma)
    # the central atom's own Gaussian: radial_fun(0, :) = e_1, times L, central_weight and Y_00
    self_coef = QUIP_CENTRAL_WEIGHT * chol[0, :] * sqrt(1.0 / (4.0 * pi))
    tlpo = 1.0 / np.sqrt(2.0 * np.arange(l_max + 1) + 1.0)
    n_lm = (l_max + 1) ** 2
    buf = np.empty((min(chunk, n_at), p))
    for s0 in range(0, n_at, chunk):
        s1 = min(s0 + chunk, n_at)
        c = s1 - s0
        p0, p1 = start[s0], start[s1]
        P = p1 - p0
        n_groups = c * ns
        C = np.zeros((n_lm, n_groups, n_max))  # expansion X[lm, (centre, species), a]
        if P:
            rows = (a[p0:p1] - s0) * ns + nspec[p0:p1]
            dist = d[p0:p1]
            ut = np.ascontiguousarray(D[p0:p1].T)
            ut /= dist
            Y = _harmonics(ut, l_max)  # (n_lm, P)
            R = radial_coefficients(dist, rc, l_max, n_max, sigma)  # (l_max+1, P, n_max)
            group_ptr = np.searchsorted(rows, np.arange(n_groups + 1))
            cols = np.tile(np.arange(P, dtype=np.int64), 2 * l_max + 1)
            for ell in range(l_max + 1):
                k = 2 * ell + 1
                # rows (m, group) of one CSR matrix whose data are Y_lm of the group's pairs
                ip = np.empty(k * n_groups + 1, np.int64)
                ip[:-1] = (P * np.arange(k, dtype=np.int64)[:, None] + group_ptr[None, :-1]).reshape(-1)
                ip[-1] = k * P
                blk = C[ell * ell:(ell + 1) ** 2].reshape(k * n_groups, n_max)
                _csr_accumulate(k * n_groups, P, ip, cols[:k * P], Y[ell * ell:(ell + 1) ** 2].reshape(-1),
                                R[ell], blk)
        C[0, np.arange(c) * ns + spec[s0:s1]] += self_coef
        G = np.empty((c, l_max + 1, K, K))
        for ell in range(l_max + 1):
            k = 2 * ell + 1
            X = C[ell * ell:(ell + 1) ** 2].reshape(k, c, K).transpose(1, 2, 0)  # (c, K, 2l+1), no copy
            np.matmul(X * tlpo[ell], X.transpose(0, 2, 1), out=G[:, ell])
        v = buf[:c]
        np.take(G.reshape(c, -1), index, axis=1, out=v[:, :-1])
        v[:, :-1] *= weight
        v[:, -1] = 0.0
        if settings.normalise:
            norm = np.sqrt(np.einsum("ij,ij->i", v, v))
            np.divide(v, norm[:, None], out=v)
        v[:, -1] = COVARIANCE_SIGMA0
        out[s0:s1] = v
    return out
