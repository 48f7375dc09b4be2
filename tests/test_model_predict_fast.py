"""The fast prediction path against the exact one on real data: bond rows (the bond-centred
layout, float32, used in place), the principal basis of the std's inducing products, the fused
out-of-domain projection and the float32 similarity with its float64 re-check near the threshold."""

from __future__ import annotations

import numpy as np
import pytest

from bondml.model.bondmodel import BondModel
from bondml.model.domain import SIM_TOL, DomainInfo, similarity
from bondml.model.gpr import BondGPR
from bondml.store.dataset import BondFeatures


@pytest.fixture(scope="module")
def zrcu():
    """Run-21 Zr-Cu bonds split by cell, as bond rows x = pbar (float64 and float32), and a GP
    fitted on the training cells with the principal basis of its std."""
    from bondml.data import reference_root
    from bondml.store.extract import dataset_from_getl

    ds = dataset_from_getl(reference_root())
    sub = ds.of_type("Zr-Cu")
    g = sub.groups("cell")
    cells = np.unique(g)
    te = np.isin(g, np.random.default_rng(0).choice(cells, cells.size // 5, replace=False))
    f = sub.features()
    Q = 0.5 * (f.soap_i + f.soap_j)
    tr_i, te_i = np.flatnonzero(~te), np.flatnonzero(te)
    est = BondGPR.paper("Zr-Cu").fit(BondFeatures(f.distance[tr_i], Q[tr_i], np.arange(tr_i.size),
                                                  np.arange(tr_i.size)), sub.y[tr_i])
    return ds, sub, f, Q, tr_i, te_i, est


def _rel(a, b):
    r = np.abs(a - b) / b
    return float(np.median(r)), float(np.percentile(r, 95)), float(r.max())


def test_bond_rows_float32_and_basis_match_exact(zrcu, cut_frame_bonds):
    ds, sub, f, Q, tr_i, te_i, est = zrcu
    assert est.std_B_ is not None and getattr(est, "std_V_", None) is None
    Qte = Q[te_i]
    # held-out cells as bond rows (float64 and float32, in place) and the cut 10k frame as atom rows
    bonds, soap = cut_frame_bonds
    k = np.flatnonzero(bonds.type.astype(str) == "Zr-Cu")
    inputs = [BondFeatures(f.distance[te_i], Qte, np.arange(te_i.size), np.arange(te_i.size)),
              BondFeatures(f.distance[te_i], Qte.astype(np.float32), np.arange(te_i.size), np.arange(te_i.size)),
              BondFeatures(bonds.distance[k], soap, bonds.i[k], bonds.j[k])]
    ref = [est.predict(F, return_std=True, exact_std=True, exact_mean=True, fast_soap=False) for F in inputs]
    plain = [est.predict(F, return_std=True) for F in inputs]
    assert est._set_std_basis()  # 2,101 features, 654 inducing bonds: a rank-~250 basis pays
    r = est.std_V_.shape[1]
    assert 100 < r < 0.8 * 2101 * est.ind_d_.size / (2101 + est.ind_d_.size)
    np.testing.assert_allclose(est.std_V_.T @ est.std_V_, np.eye(r), atol=1e-9)
    for F, (mu0, sd0), (_mu1, sd1) in zip(inputs, ref, plain, strict=True):
        mu, sd = est.predict(F, return_std=True)
        assert np.max(np.abs(mu - mu0)) < 1e-6  # float32 rows included (block sums in float64)
        med, p95, mx = _rel(sd, sd0)
        assert p95 < 0.02 and med < 0.005, (med, p95, mx)
        # the basis changes the low-rank std by far less than the low-rank form itself
        med_b, p95_b, _ = _rel(sd, sd1)
        assert p95_b < 5e-3 and med_b < 1e-3, (med_b, p95_b)  # measured <= 0.21 % / 0.07 %
        # the exact std request still takes the exact path
        np.testing.assert_allclose(est.predict(F, return_std=True, exact_std=True, fast_soap=False)[1], sd0,
                                   rtol=1e-10)


def test_ood_flags_fused_projection_superset_of_float64(zrcu):
    """Flags of the fast path (float32 similarity from the GP's fused product, float64 near the
    threshold) contain those of a float64 similarity, and differ from them only within SIM_TOL;
    the exact-std path gives the same similarity flags."""
    ds, sub, f, Q, tr_i, te_i, est = zrcu
    est._set_std_basis()
    Q32 = Q[te_i].astype(np.float32)
    n = te_i.size
    idx = np.arange(n)
    s64 = similarity(est, Q[te_i], idx, idx)  # float64 reference
    # a threshold in the middle of the held-out similarities, placed on one bond's value
    sim_min = float(np.sort(s64)[n // 3])
    info = DomainInfo(std_scale=1.0, sim_min=sim_min, std_max=np.inf, train_composition="Zr49Cu49Al2")
    model = BondModel(ds.settings, {"Zr-Cu": est}, domain={"Zr-Cu": info})
    bt = np.full(n, "Zr-Cu")
    d = f.distance[te_i]
    fast = model.predict_bonds(bt, d, Q32, idx, idx, ds.settings)
    exact = model.predict_bonds(bt, d, Q32, idx, idx, ds.settings, exact_std=True)
    lo, hi = est.distance_range_
    out_d = (d < lo) | (d > hi)
    want = out_d | (s64 < sim_min)
    assert want.sum() > n // 4
    assert np.all(fast["out_of_domain"][want]) and np.all(exact["out_of_domain"][want])
    extra = fast["out_of_domain"] & ~want
    assert np.all(s64[extra] < sim_min + 2 * SIM_TOL)  # only at the threshold itself
    np.testing.assert_array_equal(fast["out_of_domain"], exact["out_of_domain"])


def test_basis_saved_and_memory_mapped(zrcu, tmp_path):
    ds, sub, f, Q, tr_i, te_i, est = zrcu
    est._set_std_basis()
    model = BondModel(ds.settings, {"Zr-Cu": est})
    model.save(tmp_path / "m")
    m2 = BondModel.load(tmp_path / "m")
    e2 = m2.estimators["Zr-Cu"]
    np.testing.assert_array_equal(e2.std_V_, est.std_V_)
    np.testing.assert_array_equal(e2.std_M_, est.std_M_)
    F = BondFeatures(f.distance[te_i], Q[te_i].astype(np.float32), np.arange(te_i.size), np.arange(te_i.size))
    np.testing.assert_array_equal(e2.predict(F, return_std=True)[1], est.predict(F, return_std=True)[1])


@pytest.fixture(scope="module")
def cut_frame_bonds(small_cell):
    from bondml.constants import INFERENCE_WINDOWS
    from bondml.features.soap import compute_soap
    from bondml.io.lammps import read_lammps_data
    from bondml.structure.bonds import find_bonds

    atoms = read_lammps_data(small_cell).atoms
    return find_bonds(atoms, windows=INFERENCE_WINDOWS), compute_soap(atoms)
