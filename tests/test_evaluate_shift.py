"""Model selection under shift on the real run-21 data: the Gram-matrix GP of the sweep equals
BondGPR, the bond-centred descriptor beats the atom-averaged one under leave-deformation-group-out,
the shift-calibrated std covers ~68 % of held-out errors, and the out-of-domain flag flags cells
that are clearly outside (small, seeded configurations)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read

from bondml.constants import DEFAULT_HYPERPARAMETERS, DEFAULT_PRIOR_TYPES, LABEL_WINDOW
from bondml.evaluate import shift as sh
from bondml.features.soap import BOND_SETTINGS, PAPER_SETTINGS, compute_bond_features
from bondml.model.domain import CELL_OOD_FRACTION, cell_out_of_domain
from bondml.model.gpr import BondGPR
from bondml.structure.bonds import find_bonds

from _model_helpers import synthetic_dataset


def test_gram_gp_equals_bondgpr():
    ds = synthetic_dataset(n_cells=4, seed=2)
    s = sh.TypeSample.of(ds, "Zr-Zr", None)
    tr, te = np.arange(0, len(s.data), 2), np.arange(1, len(s.data), 2)
    for zeta in (1.0, 2.0):
        mu, sd, rho = sh.gp_fold(s, tr, te, s.data.y, 0.7, zeta, 0.02)
        est = BondGPR(sigma=0.7, zeta=zeta, gamma=0.02).fit(s.data.select(tr).features(), s.data.y[tr])
        m2, s2 = est.predict(s.data.select(te).features(), return_std=True)
        np.testing.assert_allclose(mu, m2, atol=1e-9)
        np.testing.assert_allclose(sd, s2, atol=1e-9)
        assert np.all((rho >= 0) & (rho <= 1))


@pytest.fixture(scope="module")
def data(ref_root):
    from bondml.store.extract import dataset_from_getl

    return {"atom": dataset_from_getl(ref_root, settings=PAPER_SETTINGS),
            "bond": dataset_from_getl(ref_root, settings=BOND_SETTINGS)}


@pytest.fixture(scope="module")
def priors(ref_root):
    return sh.table_priors(ref_root, exclude_runs=[("Zr49Cu49Al2", 21)])


@pytest.mark.slow
def test_bond_centred_beats_atom_averaged_under_ldgo(data, priors):
    """Pinned on 600-bond samples (seed 0), 400 training bonds per fold, zeta 1, the distance prior."""
    p = {"zeta": 1.0, "sigma": 0.5, "gamma": 0.04}
    for bt in ("Zr-Zr", "Zr-Cu", "Cu-Cu"):
        r = {k: sh.evaluate_config(sh.TypeSample.of(ds, bt, 600, 0), p, "distance", priors, "ldgo", 400, 0)
             for k, ds in data.items()}
        assert r["bond"].metrics["rmse"] < 0.85 * r["atom"].metrics["rmse"], (bt, r["bond"].metrics, r["atom"].metrics)
        assert r["bond"].metrics["rmse"] < 0.09  # 0.081 Zr-Zr, 0.064 Zr-Cu, 0.045 Cu-Cu measured


@pytest.mark.slow
def test_shift_calibrated_std_covers_held_out_groups(data, priors):
    """Std scale learnt by an inner LDGO without the held-out group: 58-78 % of held-out errors
    within 1 sigma per type, |error| rank-correlated with the std."""
    for bt in ("Zr-Zr", "Zr-Cu", "Cu-Cu", "Zr-Al"):
        s = sh.TypeSample.of(data["bond"], bt, 800, 0)
        mean = "distance" if bt in DEFAULT_PRIOR_TYPES else "zero"
        m = sh.nested_calibrated_ldgo(s, DEFAULT_HYPERPARAMETERS[bt], mean, priors, 500, 0)["metrics"]
        assert 0.58 <= m["cov1"] <= 0.78, (bt, m)
        assert m["cov2"] >= 0.80, (bt, m)  # heavy tails: 2-sigma coverage 0.84-0.9, below 0.95

        assert m["spearman"] > (0.1 if bt != "Cu-Cu" else -0.05), (bt, m)  # Cu-Cu: std nearly flat


@pytest.fixture(scope="module")
def model(data, ref_root):
    """Default-preset model on run 21 without the shears (300 bonds per type, seeded)."""
    ds = data["bond"]
    return sh.train_model(ds.select(~np.isin(ds.sub_run, (1, 2, 3, 4, 5, 6))), ref_root, "default",
                          max_train_per_type=300, seed=0)


def _flagged(model, atoms):
    """Fraction of the GP bonds in the label window (1.8-3.75 A, the lengths trained on) flagged."""
    b = find_bonds(atoms, window=LABEL_WINDOW)
    rows, ri, rj = compute_bond_features(atoms, b.i, b.j, b.shift, BOND_SETTINGS)
    out = model.predict_bonds(b.type, b.distance, rows, ri, rj, BOND_SETTINGS)
    flag, frac = cell_out_of_domain(out["out_of_domain"], out["fallback"])
    assert flag == (frac > CELL_OOD_FRACTION)
    return frac, out, b


@pytest.mark.slow
def test_out_of_domain_flags_cells_clearly_outside(model, run21):
    assert model.domain and all(0 < d.sim_min < 1 for d in model.domain.values())
    shear, out, b = _flagged(model, read(run21 / "2000/1/Zr49Cu49Al2.xyz"))  # held-out run-21 cell
    fcc = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    f_fcc = _flagged(model, fcc)[0]
    ref = read(run21 / "2000/0/Zr49Cu49Al2.xyz")
    zr = ref.copy()
    cu = np.flatnonzero(np.array(zr.get_chemical_symbols()) == "Cu")
    sym = np.array(zr.get_chemical_symbols(), dtype=object)
    sym[np.random.default_rng(0).choice(cu, int(0.8 * cu.size), replace=False)] = "Zr"
    zr.set_chemical_symbols(sym.tolist())
    f_zr = _flagged(model, zr)[0]
    small = ref.copy()
    small.set_cell(ref.cell.array * 0.8, scale_atoms=True)
    f_small = _flagged(model, small)[0]
    # measured: 0.12, 1.00, 0.30, 0.35 (0.10, 1.00, 0.30, 0.29 with the single quantile scale)
    assert shear < 0.15, shear  # most bonds of the held-out cell are in domain; the cell is not flagged
    assert f_fcc > 0.9, f_fcc
    assert f_zr > CELL_OOD_FRACTION and f_small > CELL_OOD_FRACTION, (f_zr, f_small)


def test_variance_model_recovers_known_coefficients():
    """The Gaussian-likelihood fit of log var = c0 + c1 log s^2 + c2 (d - d0)/s_d on errors drawn
    from that model (20,000 draws, seeded) recovers the coefficients."""
    from bondml.model.domain import fit_variance_model, variance_model_std

    rng = np.random.default_rng(3)
    s = rng.uniform(0.01, 0.08, 20000)
    d = rng.uniform(2.6, 3.7, 20000)
    true = (-4.0, 0.5, -0.7)
    zd = (d - d.mean()) / d.std()
    e = rng.normal(size=s.size) * np.sqrt(np.exp(true[0] + true[1] * np.log(s * s) + true[2] * zd))
    coef = fit_variance_model(e, s, d)
    np.testing.assert_allclose(coef[:3], true, atol=0.05)
    assert coef[3] == pytest.approx(d.mean()) and coef[4] == pytest.approx(d.std())
    np.testing.assert_allclose(variance_model_std(coef, s, d) ** 2,
                               np.exp(true[0] + true[1] * np.log(s * s) + true[2] * zd), rtol=0.1)


def test_interval_factor_weights_groups_equally():
    from bondml.model.domain import TWO_SIGMA, interval_factor

    z = np.concatenate([np.linspace(0, 1, 1000), np.linspace(0, 4, 10)])
    g = np.r_[np.zeros(1000), np.ones(10)]
    assert interval_factor(z) == pytest.approx(np.quantile(z, TWO_SIGMA), abs=1e-12)  # < 1: the big group wins
    assert interval_factor(z, g) > 2.0  # each group half the weight: the small group's tail counts


@pytest.mark.slow
def test_calibration_brings_coverage_closer_to_gaussian(data, priors):
    """Nested LDGO (600-bond samples, 400 training bonds, seed 0): on the types where the model
    uses it (the variance model for Zr-Zr and Zr-Cu, the ML scale for Cu-Cu), the calibration
    brings both the 1- and the 2-sigma coverage closer to 0.683 / 0.954 than the quantile scale,
    without lowering the rank correlation; the 95 % interval (q95_factor * std, learnt on the
    inner held-out groups) holds 0.90-0.99 of the outer errors."""
    from bondml.model.domain import CALIBRATION_BY_TYPE

    assert CALIBRATION_BY_TYPE == {"Zr-Zr": "variance", "Zr-Cu": "variance", "Cu-Cu": "ml-scale"}
    for bt in ("Zr-Zr", "Zr-Cu", "Cu-Cu", "Zr-Al"):
        s = sh.TypeSample.of(data["bond"], bt, 600, 0)
        r = {cal: sh.nested_calibrated_ldgo(s, DEFAULT_HYPERPARAMETERS[bt], "distance", priors, 400, 0,
                                            calibration=cal)["metrics"] for cal in ("scale", "default")}
        old, new = r["scale"], r["default"]
        assert new["calibration"] == CALIBRATION_BY_TYPE.get(bt, "scale")
        assert 0.58 <= new["cov1"] <= 0.78, (bt, new)
        assert 0.90 <= new["cov95"] <= 0.99 and new["q95"] > 1.8, (bt, new)  # measured 0.92-0.97
        if bt in CALIBRATION_BY_TYPE:
            assert abs(new["cov2"] - 0.954) < abs(old["cov2"] - 0.954) - 0.015, (bt, old, new)  # 0.88-0.90 -> 0.90-0.95
            assert abs(new["cov1"] - 0.683) <= abs(old["cov1"] - 0.683) + 0.02, (bt, old, new)
            assert new["spearman"] >= old["spearman"] - 0.01, (bt, old, new)
        else:
            assert new == old  # Zr-Al: the quantile scale
        if CALIBRATION_BY_TYPE.get(bt) == "variance":
            assert new["spearman"] > old["spearman"] + 0.05, (bt, old, new)  # 0.2 -> 0.35


def test_model_stores_the_calibration(model, run21):
    """The default model carries the variance model (Zr-Zr, Zr-Cu) or a scale, and a 95 % factor
    per type, saved and loaded with the domain info; its std is the variance model's."""
    from bondml.model.domain import DomainInfo, variance_model_std
    from bondml.store.dataset import BondFeatures

    for bt, info in model.domain.items():
        assert (len(info.variance_model) == 5) == (bt in ("Zr-Zr", "Zr-Cu")), (bt, info)
        assert info.calibration == {"Zr-Zr": "variance", "Zr-Cu": "variance", "Cu-Cu": "ml-scale"}.get(bt, "scale")
        assert 1.8 < info.q95_factor < 4.0, (bt, info)
        assert DomainInfo.from_dict(info.to_dict()) == info
    old = {k: v for k, v in model.domain["Cu-Cu"].to_dict().items() if k not in ("variance_model", "q95_factor")}
    assert DomainInfo.from_dict(old).calibrated_std(np.array([0.01]), np.array([2.6]))[0] == pytest.approx(
        0.01 * old["std_scale"])  # a model of an earlier version: the single scale
    atoms = read(run21 / "2000/0/Zr49Cu49Al2.xyz")
    b = find_bonds(atoms, window=LABEL_WINDOW)
    rows, ri, rj = compute_bond_features(atoms, b.i, b.j, b.shift, BOND_SETTINGS)
    out = model.predict_bonds(b.type, b.distance, rows, ri, rj, BOND_SETTINGS)
    m = b.type == "Zr-Zr"
    est = model.estimators["Zr-Zr"]
    raw = est.predict(BondFeatures(b.distance[m], rows, ri[m], rj[m]), return_std=True)[1]
    np.testing.assert_allclose(out["std"][m], variance_model_std(model.domain["Zr-Zr"].variance_model, raw,
                                                                   b.distance[m]), rtol=1e-3)
