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
    # measured: 0.10, 1.00, 0.30, 0.29
    assert shear < 0.15, shear  # most bonds of the held-out cell are in domain; the cell is not flagged
    assert f_fcc > 0.9, f_fcc
    assert f_zr > CELL_OOD_FRACTION and f_small > CELL_OOD_FRACTION, (f_zr, f_small)
