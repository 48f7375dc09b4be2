"""Vectorised SOAP power spectra in numpy: featomic's QUIP-polynomial SOAP at arbitrary centres.

One engine serves both descriptors that use featomic's settings (QUIP's radial basis
``(r_c - r)^(n+2)`` orthonormalised, radial integrals of a Gaussian density of width
``atom_sigma`` splined by featomic to 1e-6, cosine cutoff smoothing of width 0.5 A):

* the bond-centred SOAP (:mod:`bondml.features.bond_centred`): centres at bond midpoints, no
  central Gaussian;
* the per-atom featomic backend (:mod:`bondml.features.featomic_backend`): centres at the atoms,
  the central atom's own Gaussian with weight 1 (QUIP's ``central_weight``).

It reproduces featomic's values to rounding (tests hold it to 1e-10 of featomic's own output) by
evaluating featomic's own splines (re-expressed on one grid, in Horner form), real spherical
harmonics and the same power-spectrum normalisation, but organised around whole blocks of
centres: for a chunk of centres the per-pair products ``R_ln(r) Y_lm(r_hat)`` are summed per
(centre, neighbour species) with one ``np.add.reduceat``, the Gram matrices per ``l`` are one
batched ``matmul``, and the requested columns (upper triangles, or featomic's 2688-column
layout) are gathered with one ``take`` per chunk. Every chunk is computed in float64; the output
may be stored in float32.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from functools import lru_cache
from math import factorial, pi, sqrt
from pathlib import Path

import numpy as np

from ..util import atomic_write_bytes, sha256_json

#: QUIP's default ``cutoff_transition_width`` (Angstrom).
QUIP_CUTOFF_TRANSITION_WIDTH = 0.5
#: QUIP's default ``central_weight`` (weight of the central atom's own Gaussian).
QUIP_CENTRAL_WEIGHT = 1.0
#: Accuracy requested from featomic's radial-integral spline.
SPLINE_ACCURACY = 1e-6

#: Centres per chunk: the per-pair products of a chunk (~20 pairs per bond centre x 392 floats)
#: and its Gram matrices stay in the 2 MB L2 / 32 MB L3 caches of the development machine.
CHUNK = 256


def quip_polynomial_basis_class() -> type:
    """featomic ``RadialBasis`` subclass for QUIP's radial basis ``(r_c - r)^(n+2)``."""
    from featomic.basis import RadialBasis

    class QuipPolynomialBasis(RadialBasis):
        """QUIP's SOAP radial basis: ``(r_c - r)^(n+2)`` on ``[0, r_c]`` (r in Angstrom).

        featomic orthonormalises it (Loewdin, weight ``r^2``) as QUIP does (``S^-1/2``).
        """

        def compute_primitive(self, positions: np.ndarray, n: int, *, derivative: bool) -> np.ndarray:
            x = np.clip(self.radius - np.asarray(positions, dtype=float), 0.0, None)
            if derivative:
                return -(n + 2) * x ** (n + 1)
            return x ** (n + 2)

    return QuipPolynomialBasis


def hermite(r: np.ndarray, spline: tuple[float, np.ndarray, np.ndarray], derivative: bool = False) -> np.ndarray:
    """Evaluate a uniform cubic Hermite spline at r (P,) -> (P, columns) (featomic's formula)."""
    dx, v, dv = spline
    k = np.minimum(np.floor(r / dx).astype(np.int64), v.shape[0] - 2)
    t = (r - k * dx) / dx
    t2 = t * t
    t3 = t2 * t
    if derivative:
        a = (6.0 * (t2 - t))[:, None]
        return (a * (v[k] - v[k + 1]) / dx + (3 * t2 - 4 * t + 1)[:, None] * dv[k]
                + (3 * t2 - 2 * t)[:, None] * dv[k + 1])
    h00 = (2 * t3 - 3 * t2 + 1)[:, None]
    h10 = (t3 - 2 * t2 + t)[:, None]
    h01 = (-2 * t3 + 3 * t2)[:, None]
    h11 = (t3 - t2)[:, None]
    return h00 * v[k] + h10 * dx * dv[k] + h01 * v[k + 1] + h11 * dx * dv[k + 1]


def spline_cache_dir() -> Path | None:
    """Folder of the on-disk radial-spline cache: ``$BONDML_CACHE_DIR`` (empty: no cache), else
    ``$XDG_CACHE_HOME/bondml`` or ``~/.cache/bondml``."""
    env = os.environ.get("BONDML_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bondml"


@lru_cache(maxsize=1)
def _spline_code_digest() -> str:
    """SHA-256 of the source of the modules that build the splines (this one and the featomic
    backend's basis), so that a code change can never be served an old cache entry."""
    from . import featomic_backend

    h = hashlib.sha256()
    for mod_file in (__file__, featomic_backend.__file__):
        with open(mod_file, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


@lru_cache(maxsize=4)
def radial_splines(cutoff: float, l_max: int, n_max: int, atom_sigma: float) -> tuple[float, np.ndarray, np.ndarray]:
    """featomic's splined radial integrals (Gaussian density on QUIP's polynomial basis).

    featomic splines each l on its own uniform grid (cubic Hermite); every grid here divides the
    finest one, so the coarser splines are re-expressed exactly on the finest grid (a cubic
    Hermite spline reproduces a cubic exactly). Returns (dx, values (k, (l_max+1) * n_max),
    derivatives), columns l-major. featomic's spline set-up takes seconds (numerical radial
    integrals); the result is kept per process and in :func:`spline_cache_dir` (one small .npz
    per settings and featomic version, written atomically), so later processes load it in
    milliseconds.
    """
    from importlib.metadata import version

    tag = sha256_json({"featomic": version("featomic"), "cutoff": cutoff, "l_max": l_max, "n_max": n_max,
                       "atom_sigma": atom_sigma, "accuracy": SPLINE_ACCURACY, "central_weight": QUIP_CENTRAL_WEIGHT,
                       "width": QUIP_CUTOFF_TRANSITION_WIDTH, "basis": "quip_poly", "layout": 1,
                       "code": _spline_code_digest()})[:16]
    folder = spline_cache_dir()
    path = None if folder is None else folder / f"soap-radial-spline-{tag}.npz"
    if path is not None and path.is_file():
        try:
            with np.load(path) as z:
                dx, v, dv = float(z["dx"]), np.array(z["values"]), np.array(z["derivatives"])
            if v.shape == dv.shape and v.ndim == 2 and v.shape[1] == (l_max + 1) * n_max:
                return dx, v, dv
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache entry: recompute and replace it
    dx, v, dv = _featomic_radial_splines(cutoff, l_max, n_max, atom_sigma)
    if path is not None:
        buf = io.BytesIO()
        np.savez(buf, dx=dx, values=v, derivatives=dv)
        with contextlib.suppress(OSError):  # a read-only home only costs the set-up next time
            atomic_write_bytes(path, buf.getvalue())
    return dx, v, dv


def _featomic_radial_splines(cutoff: float, l_max: int, n_max: int, atom_sigma: float
                             ) -> tuple[float, np.ndarray, np.ndarray]:
    from featomic.basis import TensorProduct
    from featomic.cutoff import Cutoff, ShiftedCosine
    from featomic.density import Gaussian
    from featomic.splines import SoapSpliner

    cut = Cutoff(radius=cutoff, smoothing=ShiftedCosine(width=QUIP_CUTOFF_TRANSITION_WIDTH))
    density = Gaussian(width=atom_sigma, center_atom_weight=QUIP_CENTRAL_WEIGHT)
    poly = quip_polynomial_basis_class()(max_radial=n_max - 1, radius=cutoff)
    basis = TensorProduct(max_angular=l_max, radial=poly, spline_accuracy=SPLINE_ACCURACY)
    hypers = SoapSpliner(cutoff=cut, density=density, basis=basis).get_hypers()
    splines = [hypers["basis"].by_angular[ell].spline for ell in range(l_max + 1)]
    fine = min(float(sp.positions[1] - sp.positions[0]) for sp in splines)
    grid = np.arange(int(round(cutoff / fine)) + 1) * fine
    vals, ders = [], []
    for sp in splines:
        dx = float(sp.positions[1] - sp.positions[0])
        ratio = dx / fine
        if abs(ratio - round(ratio)) > 1e-9:
            raise RuntimeError(f"featomic spline grids {dx} and {fine} are not nested")
        coarse = (dx, np.asarray(sp.values, float), np.asarray(sp.derivatives, float))
        vals.append(hermite(grid, coarse))
        ders.append(hermite(grid, coarse, derivative=True))
    return fine, np.hstack(vals), np.hstack(ders)


@lru_cache(maxsize=4)
def _cubic_tables(cutoff: float, l_max: int, n_max: int, atom_sigma: float) -> tuple[float, tuple[np.ndarray, ...]]:
    """The spline of :func:`radial_splines` as one cubic ``d t^3 + c t^2 + b t + a`` per interval:
    for each l a table (4 * intervals, n_max), rows (interval, power) with powers (3, 2, 1, 0)."""
    dx, v, dv = radial_splines(cutoff, l_max, n_max, atom_sigma)
    v0, v1, d0, d1 = v[:-1], v[1:], dx * dv[:-1], dx * dv[1:]
    d = 2.0 * v0 + d0 - 2.0 * v1 + d1
    c = -3.0 * v0 - 2.0 * d0 + 3.0 * v1 - d1
    tab = np.stack([d, c, d0, v0], axis=1)  # (intervals, 4, (l_max+1) n_max)
    k = tab.shape[0]
    return dx, tuple(np.ascontiguousarray(tab[:, :, ell * n_max:(ell + 1) * n_max].reshape(4 * k, n_max))
                     for ell in range(l_max + 1))


try:  # the compiled kernel behind ``csr_matrix @ dense``, without its ~25 us of checks per call
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - other scipy layouts: the public operator
    _csr_matvecs = None


def centre_pairs(atoms, cutoff: float, spec: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (centre i, neighbour j, image) pair with 0 < r_ij < ``cutoff`` (Angstrom), sorted by
    centre then neighbour species (``spec``: species index of every atom), so that each
    (centre, species) group is contiguous: ``(centre, neighbour species, vector r_j - r_i (P, 3),
    distance (P,), start)`` with ``start`` (n_atoms + 1,) the first pair of each centre. One
    ``vesin`` list, every periodic image (the cell may be smaller than the cutoff); the cell
    must be periodic in all three directions or in none (ValueError otherwise)."""
    from vesin import NeighborList

    periodic = bool(np.all(atoms.pbc))
    if not periodic and np.any(atoms.pbc):
        raise ValueError("SOAP needs a cell periodic in all three directions or in none")
    pos = np.asarray(atoms.positions, float)
    box = np.asarray(atoms.cell.array, float) if periodic else np.zeros((3, 3))
    nl = NeighborList(cutoff=cutoff, full_list=True)
    a, b, D, d = nl.compute(points=pos, box=box, periodic=periodic, quantities="ijDd")
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    d = np.asarray(d, float)
    keep = (d < cutoff) & (d > 0.0)
    a, d = a[keep], d[keep]
    D = np.asarray(D, float).reshape(-1, 3)[keep]
    nspec = np.asarray(spec, np.int64)[b[keep]]
    order = np.lexsort((nspec, a))  # by centre, then neighbour species: groups come out contiguous
    a, nspec, D, d = a[order], nspec[order], D[order], d[order]
    return a, nspec, D, d, np.searchsorted(a, np.arange(len(atoms) + 1))


def _csr_accumulate(n_row: int, n_col: int, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                    x: np.ndarray, y: np.ndarray) -> None:
    """``y += A @ x`` for the CSR matrix ``A = (data, indices, indptr)`` of shape (n_row, n_col);
    x (n_col, v) and y (n_row, v) C-contiguous float64, y updated in place."""
    if _csr_matvecs is not None:
        _csr_matvecs(n_row, n_col, x.shape[1], indptr, indices, data, x.reshape(-1), y.reshape(-1))
    else:  # pragma: no cover
        from scipy.sparse import csr_matrix

        y += csr_matrix((data, indices, indptr), shape=(n_row, n_col)) @ x


def _radial_matrix(dist: np.ndarray, cutoff: float, dx: float,
                   n_intervals: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR rows (indptr, indices, data) of ``[t^3, t^2, t, 1] * f_cut(r)`` in each pair's interval,
    so that ``rows @ table_l`` is the splined radial integral times the cutoff smoothing."""
    k = np.minimum((dist / dx).astype(np.int64), n_intervals - 1)
    t = (dist - k * dx) / dx
    f = cutoff_weight(dist, cutoff)
    data = np.empty((dist.size, 4))
    data[:, 3] = f
    np.multiply(t, f, out=data[:, 2])
    np.multiply(data[:, 2], t, out=data[:, 1])
    np.multiply(data[:, 1], t, out=data[:, 0])
    indices = (4 * k)[:, None] + np.arange(4)
    indptr = np.arange(0, 4 * dist.size + 1, 4, dtype=np.int64)
    return indptr, indices.reshape(-1), data.reshape(-1)


def radial(dist: np.ndarray, cutoff: float, l_max: int, n_max: int, atom_sigma: float) -> np.ndarray:
    """featomic's radial integrals times the cutoff smoothing at ``dist`` (P,) Angstrom ->
    (P, (l_max+1) * n_max), columns l-major (``dist < cutoff``)."""
    dx, tabs = _cubic_tables(cutoff, l_max, n_max, atom_sigma)
    dist = np.ascontiguousarray(dist, dtype=float)
    ip, ind, data = _radial_matrix(dist, cutoff, dx, tabs[0].shape[0] // 4)
    out = []
    for tab in tabs:
        r = np.zeros((dist.size, n_max))
        _csr_accumulate(dist.size, tab.shape[0], ip, ind, data, tab, r)
        out.append(r)
    return np.hstack(out)


def cutoff_weight(r: np.ndarray, cutoff: float) -> np.ndarray:
    """featomic's ShiftedCosine smoothing (width 0.5 A, QUIP's cutoff transition)."""
    w = QUIP_CUTOFF_TRANSITION_WIDTH
    s = np.clip((r - (cutoff - w)) / w, 0.0, 1.0)
    return np.where(r < cutoff, 0.5 * (1.0 + np.cos(np.pi * s)), 0.0)


def real_spherical_harmonics(u: np.ndarray, l_max: int) -> np.ndarray:
    """Orthonormal real spherical harmonics of unit vectors u (P, 3) -> (P, (l_max+1)^2), l-major.

    Reference implementation (associated Legendre recursion). Any orthonormal real basis within
    each l gives the same power spectrum (sum over m).
    """
    x, y, z = u[:, 0], u[:, 1], u[:, 2]
    P = u.shape[0]
    out = np.empty((P, (l_max + 1) ** 2))
    # (x + i y)^m
    cm = [np.ones(P)]
    sm = [np.zeros(P)]
    for _m in range(1, l_max + 1):
        c, s = cm[-1], sm[-1]
        cm.append(c * x - s * y)
        sm.append(c * y + s * x)
    for m in range(l_max + 1):
        # Q_l^m = P_l^m / sin^m theta (no Condon-Shortley sign: it cancels in the power spectrum)
        q_prev = np.full(P, float(np.prod(np.arange(1, 2 * m, 2))) if m else 1.0)
        q_prev2 = np.zeros(P)  # Q_{l-2}^m: first read at ell = m + 2, after the ell = m + 1 step sets it
        for ell in range(m, l_max + 1):
            if ell == m:
                q = q_prev
            elif ell == m + 1:
                q = (2 * m + 1) * z * q_prev
                q_prev2, q_prev = q_prev, q
            else:
                q = ((2 * ell - 1) * z * q_prev - (ell + m - 1) * q_prev2) / (ell - m)
                q_prev2, q_prev = q_prev, q
            norm = sqrt((2 * ell + 1) / (4 * pi) * factorial(ell - m) / factorial(ell + m))
            base = ell * ell + ell
            if m == 0:
                out[:, base] = norm * q
            else:
                out[:, base + m] = sqrt(2.0) * norm * q * cm[m]
                out[:, base - m] = sqrt(2.0) * norm * q * sm[m]
    return out


@lru_cache(maxsize=4)
def _monomial_harmonics(l_max: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Real spherical harmonics of degree l as homogeneous degree-l polynomials of (x, y, z).

    For each l: (parent column in the degree l-1 monomials, axis multiplied in, coefficient
    matrix (monomials, 2l+1)). A degree-l homogeneous polynomial is fixed by its values on the
    unit sphere, so the coefficients are the exact least-squares fit of
    :func:`real_spherical_harmonics` on a deterministic spherical point set (checked to 1e-12).
    """
    n_pts = 8 * (l_max + 1) ** 2 + 64
    k = np.arange(n_pts) + 0.5  # Fibonacci sphere: deterministic, well spread
    zc = 1.0 - 2.0 * k / n_pts
    phi = np.pi * (1.0 + sqrt(5.0)) * k
    rho = np.sqrt(1.0 - zc * zc)
    u = np.column_stack([rho * np.cos(phi), rho * np.sin(phi), zc])
    ref = real_spherical_harmonics(u, l_max)
    table = []
    prev_exps: list[tuple[int, int, int]] = [(0, 0, 0)]
    mono_prev = np.ones((n_pts, 1))
    for ell in range(l_max + 1):
        if ell == 0:
            exps, parent, axis = [(0, 0, 0)], np.zeros(1, np.int64), np.full(1, -1, np.int64)
            mono = np.ones((n_pts, 1))
        else:
            exps = [(a, b, ell - a - b) for a in range(ell, -1, -1) for b in range(ell - a, -1, -1)]
            where = {e: q for q, e in enumerate(prev_exps)}
            par, ax = [], []
            for e in exps:
                d = next(q for q in range(3) if e[q] > 0)
                pe = (e[0] - (d == 0), e[1] - (d == 1), e[2] - (d == 2))
                par.append(where[pe])
                ax.append(d)
            parent, axis = np.array(par, np.int64), np.array(ax, np.int64)
            n_prev = len(prev_exps)  # the structure spherical_harmonics_t relies on
            want = np.concatenate([np.arange(n_prev), np.arange(n_prev - ell, n_prev), [n_prev - 1]])
            if not (np.array_equal(parent, want) and np.array_equal(axis, np.repeat([0, 1, 2], [n_prev, ell, 1]))):
                raise RuntimeError("unexpected monomial order")
            mono = mono_prev[:, parent] * u[:, axis]
        target = ref[:, ell * ell:(ell + 1) ** 2]
        coef, *_ = np.linalg.lstsq(mono, target, rcond=None)
        err = np.abs(mono @ coef - target).max()
        if err > 1e-12:
            raise RuntimeError(f"spherical harmonics of degree {ell}: monomial fit error {err:.1e}")
        table.append((parent, axis, np.ascontiguousarray(coef)))
        prev_exps, mono_prev = exps, mono
    return table


def spherical_harmonics_t(ut: np.ndarray, l_max: int, out: np.ndarray | None = None) -> np.ndarray:
    """Real spherical harmonics of unit vectors given as rows ``ut`` (3, P) -> ((l_max+1)^2, P).

    The values of :func:`real_spherical_harmonics` (to ~1e-15), transposed, computed as one small
    matrix product per l on the degree-l monomials of u. In the monomial order of
    :func:`_monomial_harmonics` the degree-l monomials are x times all degree l-1 ones, then y
    times the last l of them (no x), then z times the last one (z^(l-1)).
    """
    P = ut.shape[1]
    if out is None:
        out = np.empty(((l_max + 1) ** 2, P))
    mono = np.ones((1, P))
    for ell, (_parent, _axis, coef) in enumerate(_monomial_harmonics(l_max)):
        if ell:
            prev, n_prev = mono, mono.shape[0]
            mono = np.empty((n_prev + ell + 1, P))
            np.multiply(prev, ut[0], out=mono[:n_prev])
            np.multiply(prev[n_prev - ell:], ut[1], out=mono[n_prev:n_prev + ell])
            np.multiply(prev[n_prev - 1:], ut[2], out=mono[n_prev + ell:])
        np.matmul(coef.T, mono, out=out[ell * ell:(ell + 1) ** 2])
    return out


@lru_cache(maxsize=16)
def _self_radial(cutoff: float, l_max: int, n_max: int, atom_sigma: float) -> np.ndarray:
    """The central atom's own Gaussian: l = 0 radial integrals at r = 0 times Y_00 (n_max,)."""
    return radial(np.zeros(1), cutoff, l_max, n_max, atom_sigma)[0, :n_max] / sqrt(4.0 * pi)


def power_spectrum_chunk(
    owner: np.ndarray, species: np.ndarray, vec: np.ndarray, dist: np.ndarray, n_centres: int,
    n_species: int, cutoff: float, l_max: int, n_max: int, atom_sigma: float,
    centre_species: np.ndarray | None = None, central_weight: float = 0.0,
    l_scale: np.ndarray | None = None,
) -> np.ndarray:
    """Per-l Gram matrices of the spherical expansions of a chunk of centres.

    Parameters
    ----------
    owner : (P,) int, centre (0..n_centres-1) of each neighbour pair.
    species : (P,) int, neighbour species index (0..n_species-1).
    vec, dist : (P, 3), (P,) Angstrom, neighbour minus centre (``0 < dist < cutoff``).
    centre_species : (n_centres,) int or None; with ``central_weight`` the centre's own Gaussian
        is added to its species' density (featomic's ``center_atom_weight``).
    l_scale : (l_max+1,) factor applied to each G_l (one operand of its product is scaled).

    Returns
    -------
    G : (n_centres, l_max+1, n_species*n_max, n_species*n_max) float64,
        ``G[c, l, (a, n1), (b, n2)] = l_scale[l] sum_m C[c, a, n1, l, m] C[c, b, n2, l, m]``,
        with ``C`` the expansion of the neighbour density on featomic's basis.
    """
    c, ns = n_centres, n_species
    m = ns * n_max
    n_groups = c * ns
    n_lm = (l_max + 1) ** 2
    rows = np.asarray(owner, np.int64) * ns + np.asarray(species, np.int64)
    if rows.size > 1 and bool(np.any(rows[1:] < rows[:-1])):
        order = np.argsort(rows, kind="stable")
        rows, vec, dist = rows[order], vec[order], dist[order]
    dist = np.ascontiguousarray(dist)
    P = rows.size
    # expansion C[lm, (centre, species), n] = sum over the group's pairs of Y_lm R_ln
    C = np.zeros((n_lm, n_groups, n_max))
    if P:
        ut = np.ascontiguousarray(vec.T)
        ut /= np.maximum(dist, 1e-12)
        Y = spherical_harmonics_t(ut, l_max)  # (n_lm, P)
        dx, tabs = _cubic_tables(cutoff, l_max, n_max, atom_sigma)
        r_ip, r_ind, r_data = _radial_matrix(dist, cutoff, dx, tabs[0].shape[0] // 4)
        group_ptr = np.searchsorted(rows, np.arange(n_groups + 1))
        cols = np.tile(np.arange(P, dtype=np.int64), 2 * l_max + 1)
        R = np.empty((P, n_max))
        for ell in range(l_max + 1):
            k = 2 * ell + 1
            R[...] = 0.0
            _csr_accumulate(P, tabs[ell].shape[0], r_ip, r_ind, r_data, tabs[ell], R)
            # rows (m, group) of one CSR matrix whose data are Y_lm of the group's pairs
            ip = np.empty(k * n_groups + 1, np.int64)
            ip[:-1] = (P * np.arange(k, dtype=np.int64)[:, None] + group_ptr[None, :-1]).reshape(-1)
            ip[-1] = k * P
            blk = C[ell * ell:(ell + 1) ** 2].reshape(k * n_groups, n_max)
            _csr_accumulate(k * n_groups, P, ip, cols[:k * P], Y[ell * ell:(ell + 1) ** 2].reshape(-1), R, blk)
    if central_weight and centre_species is not None:
        self_r = central_weight * _self_radial(cutoff, l_max, n_max, atom_sigma)
        C[0, np.arange(c) * ns + np.asarray(centre_species, np.int64)] += self_r
    G = np.empty((c, l_max + 1, m, m))
    for ell in range(l_max + 1):
        k = 2 * ell + 1
        X = C[ell * ell:(ell + 1) ** 2].reshape(k, c, m).transpose(1, 2, 0)  # (c, m, k), no copy
        Xs = X if l_scale is None else X * l_scale[ell]
        np.matmul(Xs, X.transpose(0, 2, 1), out=G[:, ell])
    return G


def l_weights(l_max: int) -> np.ndarray:
    """featomic's power-spectrum normalisation per l, ``(-1)^l / sqrt(2l+1)``."""
    ell = np.arange(l_max + 1)
    return (-1.0) ** ell / np.sqrt(2 * ell + 1)


def fold_rows(G: np.ndarray, index: np.ndarray, out: np.ndarray, normalise: bool, what: str) -> None:
    """``out[:] = G.reshape(c, -1)[:, index]``, rows scaled to unit norm if asked.

    ``out`` (c, p) may be float32: the gather and norms are float64.
    """
    c = G.shape[0]
    flat = G.reshape(c, -1)
    buf = out if out.dtype == np.float64 and out.flags.c_contiguous else np.empty(out.shape)
    np.take(flat, index, axis=1, out=buf, mode="clip")
    if normalise:
        norm = np.sqrt(np.einsum("ij,ij->i", buf, buf))
        if np.any(norm == 0.0):
            raise RuntimeError(f"all-zero {what} SOAP vector (no neighbour within the cutoff?)")
        np.divide(buf, norm[:, None], out=out, casting="same_kind")
    elif buf is not out:
        out[...] = buf
