"""Inducing bonds of the low-rank std chosen by randomized pivoted Cholesky (``_rpc_inducing``)
on the bond-centred descriptor: fewer inducing bonds than the earlier uniform draw, the fast std
still within 2 % (p95) of the exact GP std on held-out run-21 cells, deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pytest

from bondml.model import gpr
from bondml.model.gpr import BondGPR, _rpc_inducing
from bondml.model.kernel import bond_kernel
from bondml.store.dataset import BondFeatures


def _rows(d, X):
    return BondFeatures(d, X, np.arange(d.size), np.arange(d.size))


@pytest.fixture(scope="module")
def zrcu_bond():
    """Bond-centred Zr-Cu bonds of run 21: 1,200 training bonds of 80 % of the cells, the
    bonds of the other cells held out."""
    from bondml.data import reference_root
    from bondml.features.soap import BOND_SETTINGS
    from bondml.store.extract import dataset_from_getl

    sub = dataset_from_getl(reference_root(), settings=BOND_SETTINGS).of_type("Zr-Cu")
    g = sub.groups("cell")
    cells = np.unique(g)
    te = np.isin(g, np.random.default_rng(0).choice(cells, cells.size // 5, replace=False))
    f = sub.features()
    Q = f.soap_i  # bond rows: soap_i = soap_j = q
    tr_i = np.sort(np.random.default_rng(1).choice(np.flatnonzero(~te), 1200, replace=False))
    te_i = np.flatnonzero(te)
    return f.distance, Q, sub.y, tr_i, te_i


def _rel(a, b):
    r = np.abs(a - b) / b
    return float(np.median(r)), float(np.percentile(r, 95)), float(r.max())


def test_rpc_inducing_fewer_bonds_same_fidelity(zrcu_bond, monkeypatch):
    d, Q, y, tr_i, te_i = zrcu_bond
    hp = {"sigma": 1.0, "gamma": 0.16, "zeta": 1.0}  # the default preset's Zr-Cu
    est = BondGPR(**hp).fit(_rows(d[tr_i], Q[tr_i]), y[tr_i])
    m = est.ind_d_.size
    m_max = max(500, int(np.ceil(gpr.STD_DOF_FACTOR * est.dof_)))  # the uniform draw's m: the cap
    assert 500 <= m <= m_max, (m, m_max)
    # the earlier uniform draw of as many bonds, for comparison
    monkeypatch.setattr(gpr, "_STD_SELECT", "uniform")
    monkeypatch.setattr(gpr, "STD_DOF_FACTOR", 0.0)
    old = BondGPR(**hp, std_inducing=m).fit(_rows(d[tr_i], Q[tr_i]), y[tr_i])
    monkeypatch.undo()
    assert old.ind_d_.size == m
    # the stopping rule: residual trace <= STD_RESID_TOL x the leave-one-out posterior variance trace
    K = bond_kernel(d[tr_i], Q[tr_i], d[tr_i], Q[tr_i], 1.0, 1.0)
    Ci = np.linalg.inv(K + est.lam_ * np.eye(tr_i.size))
    vloo = 1.0 / np.diag(Ci) - est.lam_
    P = K[:, est.ind_index_]
    resid = np.diag(K) - np.einsum("ij,ji->i", P, np.linalg.solve(K[np.ix_(est.ind_index_, est.ind_index_)], P.T))
    assert resid.sum() <= 1.05 * gpr.STD_RESID_TOL * vloo.sum() or m == m_max
    assert est.std_resid_ == pytest.approx(resid.sum(), rel=0.05, abs=1e-9)
    te = _rows(d[te_i], Q[te_i].astype(np.float32))
    mu0, sd0 = est.predict(_rows(d[te_i], Q[te_i]), return_std=True, exact_std=True, exact_mean=True)
    # against the uniform draw of as many bonds (both without the principal basis)
    _, p95_r, mx_r = _rel(est.predict(te, return_std=True)[1], sd0)
    _, p95_u, mx_u = _rel(old.predict(te, return_std=True)[1], sd0)
    assert p95_r < p95_u and mx_r < mx_u, ((p95_r, mx_r), (p95_u, mx_u))
    est._set_std_basis()  # as BondModel.fit does: the deployed path
    mu, sd = est.predict(te, return_std=True)
    assert np.max(np.abs(mu - mu0)) < 1e-6
    med, p95, mx = _rel(sd, sd0)
    assert p95 < 0.02 and med < 0.01 and mx < 0.05, (med, p95, mx)
    # measured (uncapped): m 512, p95 / max 0.41 / 1.3 % (uniform draw of 512: 1.3 / 5.4 %)
    # the same seed draws the same bonds; another seed others
    target = gpr.STD_RESID_TOL * vloo.sum()
    np.testing.assert_array_equal(_rpc_inducing(K, target, 500, est.seed, m_max=m_max)[0], est.ind_index_)
    assert not np.array_equal(_rpc_inducing(K, target, 500, 3, m_max=m_max)[0], est.ind_index_)


def test_rpc_inducing_duplicate_bonds(zrcu_bond):
    """Repeated bonds (a rank-deficient kernel) neither break the factor nor get drawn twice."""
    d, Q, _y, tr_i, _te = zrcu_bond
    k = np.concatenate([tr_i[:300], tr_i[:300]])
    K = bond_kernel(d[k], Q[k], d[k], Q[k], 1.0, 1.0)
    piv, resid = _rpc_inducing(K, 0.0, 0, seed=0)
    assert np.unique(k[piv]).size == piv.size  # no bond drawn twice
    assert resid <= 1e-8 * np.trace(K)
    assert piv.size < k.size


def test_deploy_bond_rows_reused_buffer_equal_fresh():
    """The frame loop's bond-centred rows (one array reused across frames) equal a fresh
    computation, frame after frame, also when the next frame has more bonds."""
    from ase.build import bulk

    from bondml.constants import INFERENCE_WINDOWS
    from bondml.deploy import infer
    from bondml.deploy.infer import _bond_rows
    from bondml.features.soap import BOND_SETTINGS, compute_bond_features
    from bondml.structure.bonds import find_bonds

    rng = np.random.default_rng(0)
    frames = []
    for reps, z in (((2, 2, 2), 29), ((3, 2, 2), 40), ((2, 2, 2), 29)):
        a = bulk("Cu", "fcc", a=3.6, cubic=True) * reps
        a.numbers[rng.choice(len(a), len(a) // 3, replace=False)] = z
        a.positions += rng.normal(0.0, 0.1, a.positions.shape)
        frames.append(a)
    infer._ROWS.buf = None  # start without the array an earlier test in this thread left
    bases = []
    for a in frames:
        bonds = find_bonds(a, windows=INFERENCE_WINDOWS)
        rows, ri, rj = _bond_rows(a, bonds, BOND_SETTINGS, np.float32)
        ref, fi, fj = compute_bond_features(a, bonds.i, bonds.j, bonds.shift, BOND_SETTINGS, dtype=np.float32)
        np.testing.assert_array_equal(rows, ref)
        np.testing.assert_array_equal(ri, fi)
        np.testing.assert_array_equal(rj, fj)
        bases.append(rows.base.__array_interface__["data"][0])
    assert bases[2] == bases[1] != bases[0]  # grown once, then reused


def test_rpc_inducing_caps():
    """m_min and m_max bound the number drawn whatever the residual target."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 40))
    X /= np.linalg.norm(X, axis=1)[:, None]
    d = rng.uniform(2.5, 3.5, 300)
    K = bond_kernel(d, X, d, X, 0.5, 1.0)
    assert _rpc_inducing(K, 0.0, 10, 0, m_max=37)[0].size == 37
    assert 50 <= _rpc_inducing(K, np.inf, 50, 0)[0].size < 50 + 16  # whole blocks of 16
    assert _rpc_inducing(K, np.inf, 50, 0, m_max=20)[0].size == 20
