"""The fast prediction path against the exact one on real data: bond rows (the bond-centred
layout, float32, used in place), the principal basis of the std's inducing products, the fused
out-of-domain projection and the float32 similarity with its float64 re-check near the threshold."""

from __future__ import annotations

import numpy as np
import pytest

from bondml.model.bondmodel import BondModel
from bondml.model.domain import SIM_TOL, DomainInfo, similarity, training_basis
from bondml.model.gpr import BondGPR, as_bonds
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


def test_dropped_rows_of_B_raise_the_variance_by_at_most_the_bound(zrcu, cut_frame_bonds):
    """The rows of B kept at prediction (e_i > _STD_DROP lam) give, for every bond (held-out
    cells and the cut 10k frame, float64), var_full <= var_kept <= (1 + _STD_DROP) var_full; the
    row weights w_i^2 = e_i / (lam + e_i) come from B (K_mm + jitter) B^T, which is diagonal."""
    from bondml.model import gpr
    from bondml.model.kernel import bond_kernel

    ds, sub, f, Q, tr_i, te_i, est = zrcu
    w2 = est._std_w2()
    assert w2 is not None and np.all(np.diff(w2) >= -1e-9)  # eigh order: ascending e_i
    B = np.asarray(est.std_B_)
    Bk = est._std_B_kept(np.float64)
    keep = w2 > gpr._STD_DROP / (1 + gpr._STD_DROP)
    np.testing.assert_array_equal(Bk, B[keep])
    assert 0.2 * B.shape[0] < B.shape[0] - Bk.shape[0] < 0.6 * B.shape[0]  # measured 36-41 % dropped
    bonds, soap = cut_frame_bonds
    k = np.flatnonzero(bonds.type.astype(str) == "Zr-Cu")
    X = np.vstack([Q[te_i], 0.5 * (soap[bonds.i[k]] + soap[bonds.j[k]])])
    d = np.concatenate([f.distance[te_i], bonds.distance[k]])
    K = bond_kernel(d, X, est.ind_d_, est.ind_x_, est.sigma, est.zeta)
    kss = np.einsum("ij,ij->i", X, X)
    v_full = kss - np.einsum("ij,ij->i", K @ B.T, K @ B.T)
    v_kept = kss - np.einsum("ij,ij->i", K @ Bk.T, K @ Bk.T)
    tol = 1e-10 * kss
    assert np.all(v_kept >= v_full - tol)
    assert np.all(v_kept <= (1 + gpr._STD_DROP) * v_full + tol)
    assert np.median(v_kept / v_full - 1) < 1e-3  # the bound is far from reached in practice


def test_small_exact_fit_std_through_inverse_factor_on_atom_rows(cut_frame_bonds):
    """A fit at most std_inducing bonds (no factor B) predicts its exact std on per-atom rows
    through L^-1 in float64: equal to the exact solve, and the out-of-domain projection too."""
    from bondml.data import reference_root
    from bondml.store.extract import dataset_from_getl

    sub = dataset_from_getl(reference_root()).of_type("Zr-Al")
    est = BondGPR.paper("Zr-Al").fit(sub.features(), sub.y)
    assert est.std_B_ is None and est.n_train_ <= est.std_inducing
    bonds, soap = cut_frame_bonds
    k = np.flatnonzero(bonds.type.astype(str) == "Zr-Al")
    F = BondFeatures(bonds.distance[k], soap.astype(np.float32), bonds.i[k], bonds.j[k])
    b = as_bonds(F)
    V = training_basis(est, 8)[0]
    mu, sd, aux = est._predict_fast(b, True, project=V)
    assert aux is not None  # the per-atom path ran (not the per-bond exact solve)
    mu0, sd0 = est.predict(F, return_std=True, exact_std=True, exact_mean=True, fast_soap=False)
    assert np.max(np.abs(mu - mu0)) < 1e-6
    np.testing.assert_allclose(sd, sd0, rtol=1e-5)
    pb = 0.5 * (soap[bonds.i[k]] + soap[bonds.j[k]])
    np.testing.assert_allclose(aux["proj"], pb @ V, atol=1e-5)
    np.testing.assert_allclose(aux["kss"], np.einsum("ij,ij->i", pb, pb), rtol=1e-6)


def test_similarity_cover_gives_the_same_flags(zrcu, cut_frame_bonds):
    """bound_ok: bonds shown in domain by the few covering training bonds keep a lower bound above
    threshold + SIM_RECHECK; every other value is the full maximum; the flags are unchanged."""
    from bondml.model import domain

    ds, sub, f, Q, tr_i, te_i, est = zrcu
    bonds, soap = cut_frame_bonds
    k = np.flatnonzero(bonds.type.astype(str) == "Zr-Cu")
    s32 = soap.astype(np.float32)
    full64 = similarity(est, soap, bonds.i[k], bonds.j[k])
    for q in (0.01, 0.2, 0.5):
        thr = float(np.quantile(full64, q))
        s_all = similarity(est, s32, bonds.i[k], bonds.j[k], threshold=thr)
        s_cov = similarity(est, s32, bonds.i[k], bonds.j[k], threshold=thr, bound_ok=True)
        np.testing.assert_array_equal(s_cov < thr + SIM_TOL, s_all < thr + SIM_TOL)
        V, Z = domain.training_basis(est)
        Zc = domain._cover(est, domain._basis32(est, V, Z)[1], thr)
        assert 0 < Zc.shape[1] <= domain._COVER_MAX
        zb = 0.5 * (s32[bonds.i[k]] + s32[bonds.j[k]]) @ V.astype(np.float32)
        passed = (zb @ Zc).max(axis=1) >= thr + domain.SIM_RECHECK + domain._COVER_MARGIN
        possible = s_all >= thr + domain.SIM_RECHECK + domain._COVER_MARGIN
        assert passed.sum() >= 0.9 * possible.sum()  # most are decided by the few covering training bonds
        assert np.all(s_cov[passed] >= thr + domain.SIM_RECHECK) and np.all(s_cov[passed] <= s_all[passed] + 1e-5)
        np.testing.assert_array_equal(s_cov[~passed], s_all[~passed])
        assert np.all((s_cov < thr + SIM_TOL)[full64 < thr])  # a superset of the float64 flags


def test_row_weights_saved_and_derived_when_absent(zrcu, tmp_path):
    """std_w2 is saved with the model and read back (memory-mapped); a state without it (older
    models) derives it at the first prediction: the same std."""
    ds, sub, f, Q, tr_i, te_i, est = zrcu
    meta, arrays = est.state()
    assert "std_w2" in arrays and arrays["std_w2"].shape == (est.std_B_.shape[0],)
    model = BondModel(ds.settings, {"Zr-Cu": est})
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "arrays" / "Zr-Cu.std_w2.npy").is_file()
    e2 = BondModel.load(tmp_path / "m").estimators["Zr-Cu"]
    np.testing.assert_array_equal(e2._std_w2(), est._std_w2())
    arrays.pop("std_w2")
    e3 = BondGPR.from_state(meta, arrays)
    F = BondFeatures(f.distance[te_i], Q[te_i].astype(np.float32), np.arange(te_i.size), np.arange(te_i.size))
    sd = est.predict(F, return_std=True)[1]
    np.testing.assert_array_equal(e2.predict(F, return_std=True)[1], sd)
    np.testing.assert_allclose(e3.predict(F, return_std=True)[1], sd, rtol=1e-12)


def test_refit_never_serves_the_previous_fits_domain_basis():
    """The out-of-domain basis and its float32 copies and cover are derived per fit: refitting an
    estimator on other bonds gives the basis a fresh estimator computes on them."""
    rng = np.random.default_rng(3)

    def bonds(n, shift):
        X = rng.normal(size=(n, 30)) + shift
        X /= np.linalg.norm(X, axis=1)[:, None]
        k = np.arange(n)
        return BondFeatures(rng.uniform(2.5, 3.5, n), X, k, k.copy()), rng.normal(size=n)

    (f1, y1), (f2, y2) = bonds(80, 0.0), bonds(90, np.linspace(-2.0, 2.0, 30))
    est = BondGPR.paper("Zr-Cu").fit(f1, y1)
    V1, _ = training_basis(est, 8)
    similarity(est, f1.atom_soap, f1.atom_i, f1.atom_j, 8, threshold=0.5)
    est.fit(f2, y2)
    V2, Z2 = training_basis(est, 8)
    Vf, Zf = training_basis(BondGPR.paper("Zr-Cu").fit(f2, y2), 8)
    assert V2.shape == V1.shape and not np.allclose(np.abs(V2), np.abs(V1))
    np.testing.assert_allclose(Z2 @ Z2.T, Zf @ Zf.T, atol=1e-10)  # the same subspace (basis up to rotation)
