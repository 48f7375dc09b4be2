"""The paper's bond kernel, exact and batched.

For bonds b = (d, pA, pB) and b' = (d', pA', pB') (d in Angstrom, p unit-normalised SOAP):

    k(b, b') = exp(-(d - d')^2 / (2 sigma^2)) * [(pA.pA' + pB.pB' + pA.pB' + pB.pA') / 4]^zeta

The bracket is a sum of four dot products that factorises exactly: it equals
``pbar . pbar'`` with ``pbar = (pA + pB) / 2`` for *every* zeta (the power is applied after the
sum). :func:`soap_term_paper` evaluates the four dot products literally (reference path);
:func:`soap_term` uses ``pbar`` (fast path: one matrix product instead of four). Both are
exact; tests compare them to 1e-12.
"""

from __future__ import annotations

import numpy as np


def mean_soap(p_a: np.ndarray, p_b: np.ndarray) -> np.ndarray:
    """pbar = (pA + pB) / 2, shape (n, p)."""
    return 0.5 * (np.asarray(p_a, dtype=float) + np.asarray(p_b, dtype=float))


def _power(dots: np.ndarray, zeta: float) -> np.ndarray:
    """dots**zeta; for non-integer zeta negative dot products (rare for SOAP) are clipped to 0."""
    if zeta == 1.0:
        return dots
    if float(zeta).is_integer():
        return dots ** int(zeta)
    return np.power(np.clip(dots, 0.0, None), zeta)


def distance_term(d1: np.ndarray, d2: np.ndarray, sigma: float) -> np.ndarray:
    """exp(-(d1_i - d2_j)^2 / (2 sigma^2)), shape (n1, n2); distances and sigma in Angstrom."""
    diff = np.asarray(d1, dtype=float)[:, None] - np.asarray(d2, dtype=float)[None, :]
    return np.exp(-(diff * diff) / (2.0 * sigma * sigma))


def soap_term(pbar1: np.ndarray, pbar2: np.ndarray, zeta: float) -> np.ndarray:
    """(pbar1 . pbar2)^zeta, shape (n1, n2) (fast path, exact for any zeta)."""
    return _power(pbar1 @ pbar2.T, zeta)


def soap_term_paper(
    pa1: np.ndarray, pb1: np.ndarray, pa2: np.ndarray, pb2: np.ndarray, zeta: float
) -> np.ndarray:
    """[(pA.pA' + pB.pB' + pA.pB' + pB.pA') / 4]^zeta with the four products evaluated literally."""
    s = pa1 @ pa2.T + pb1 @ pb2.T + pa1 @ pb2.T + pb1 @ pa2.T
    return _power(0.25 * s, zeta)


def bond_kernel(
    d1: np.ndarray, pbar1: np.ndarray, d2: np.ndarray, pbar2: np.ndarray, sigma: float, zeta: float
) -> np.ndarray:
    """Kernel matrix (n1, n2) from distances (Angstrom) and mean SOAP vectors of the bonds."""
    return distance_term(d1, d2, sigma) * soap_term(pbar1, pbar2, zeta)


def bond_kernel_paper(
    d1: np.ndarray, pa1: np.ndarray, pb1: np.ndarray,
    d2: np.ndarray, pa2: np.ndarray, pb2: np.ndarray, sigma: float, zeta: float,
) -> np.ndarray:
    """Kernel matrix (n1, n2) through the four dot products (general reference path)."""
    return distance_term(d1, d2, sigma) * soap_term_paper(pa1, pb1, pa2, pb2, zeta)


def bond_kernel_diag(pbar: np.ndarray, zeta: float) -> np.ndarray:
    """k(b, b) for each bond: (pbar . pbar)^zeta (the distance factor is 1), shape (n,)."""
    return _power(np.einsum("ij,ij->i", pbar, pbar), zeta)
