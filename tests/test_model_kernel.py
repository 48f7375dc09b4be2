"""The bond kernel against a direct per-pair implementation, and the pbar fast path."""

from __future__ import annotations

import numpy as np
import pytest

from bondml.model.kernel import bond_kernel, bond_kernel_diag, bond_kernel_paper, mean_soap


def _direct(d1, a1, b1, d2, a2, b2, sigma, zeta):
    out = np.empty((d1.size, d2.size))
    for x in range(d1.size):
        for y in range(d2.size):
            s = (a1[x] @ a2[y] + b1[x] @ b2[y] + a1[x] @ b2[y] + b1[x] @ a2[y]) / 4.0
            out[x, y] = np.exp(-((d1[x] - d2[y]) ** 2) / (2 * sigma**2)) * s**zeta
    return out


def _data(n, p, seed):
    rng = np.random.default_rng(seed)
    a = np.abs(rng.normal(size=(n, p)))
    b = np.abs(rng.normal(size=(n, p)))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return rng.uniform(1.8, 3.75, n), a, b


@pytest.mark.parametrize("zeta", [1.0, 2.0, 3.0, 1.5])
@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_kernel_matches_direct_per_pair(zeta, sigma):
    d1, a1, b1 = _data(13, 40, 1)
    d2, a2, b2 = _data(9, 40, 2)
    ref = _direct(d1, a1, b1, d2, a2, b2, sigma, zeta)
    np.testing.assert_allclose(bond_kernel_paper(d1, a1, b1, d2, a2, b2, sigma, zeta), ref, atol=1e-10, rtol=0)
    np.testing.assert_allclose(bond_kernel(d1, mean_soap(a1, b1), d2, mean_soap(a2, b2), sigma, zeta), ref,
                               atol=1e-10, rtol=0)


@pytest.mark.parametrize("zeta", [1.0, 2.0, 4.0])
def test_pbar_fast_path_equals_four_dot_products(zeta):
    d1, a1, b1 = _data(50, 2101, 3)
    fast = bond_kernel(d1, mean_soap(a1, b1), d1, mean_soap(a1, b1), 0.5, zeta)
    general = bond_kernel_paper(d1, a1, b1, d1, a1, b1, 0.5, zeta)
    assert np.max(np.abs(fast - general)) < 1e-12
    np.testing.assert_allclose(bond_kernel_diag(mean_soap(a1, b1), zeta), np.diag(general), atol=1e-12)


def test_kernel_symmetric_in_the_two_atoms():
    d1, a1, b1 = _data(7, 30, 4)
    d2, a2, b2 = _data(5, 30, 5)
    k1 = bond_kernel_paper(d1, a1, b1, d2, a2, b2, 0.5, 2.0)
    k2 = bond_kernel_paper(d1, b1, a1, d2, b2, a2, 0.5, 2.0)
    np.testing.assert_allclose(k1, k2, atol=1e-14)
