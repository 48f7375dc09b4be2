"""A bond-centred (``kind="bond"``, the default preset's) model through the notebook API and the
active-learning scoring: both compute the bonds' descriptor rows, not per-atom SOAP."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read

import bondml
from bondml.data import reference_root, run21_dir
from bondml.evaluate.active import cell_bonds, score_cell
from bondml.features.soap import BOND_SETTINGS, compute_bond_features
from bondml.structure.bonds import find_bonds
from bondml.types import CellId

HELD_OUT = run21_dir() / "2000" / "2" / "Zr49Cu49Al2.xyz"


@pytest.fixture(scope="module")
def bond_model():
    from bondml.model.bondmodel import BondModel
    from bondml.store.extract import dataset_from_getl

    ds = dataset_from_getl(reference_root(), cells=[CellId("Zr49Cu49Al2", 21, 0), CellId("Zr49Cu49Al2", 21, 1)],
                           settings=BOND_SETTINGS)
    return BondModel.fit(ds, max_train_per_type=100, seed=0, min_bonds=5)


def test_api_predict_with_a_bond_centred_model(bond_model) -> None:
    from bondml.store.extract import dataset_from_getl

    assert bond_model.settings.kind == "bond"
    atoms = read(HELD_OUT)
    p = bondml.predict(bond_model, atoms)
    b = find_bonds(atoms, windows=bond_model.windows)
    rows, ri, rj = compute_bond_features(atoms, b.i, b.j, b.shift, bond_model.settings)
    assert rows.shape[0] == len(b) == len(p) and np.array_equal(ri, np.arange(len(b)))
    ref = bond_model.predict_bonds(b.type, b.distance, rows, ri, rj, bond_model.settings)
    np.testing.assert_array_equal(p.minus_icohp, ref["minus_icohp"])
    # against the LOBSTER labels of this held-out cell (bonds matched by i, j, shift)
    lab = dataset_from_getl(reference_root(), cells=[CellId("Zr49Cu49Al2", 21, 2)], settings=BOND_SETTINGS)
    key = {(int(i), int(j), *map(int, s)): k for k, (i, j, s) in enumerate(zip(p.i, p.j, p.shift, strict=True))}
    k = np.array([key.get((int(i), int(j), *map(int, s)), -1) for i, j, s in zip(lab.i, lab.j, lab.shift, strict=True)])
    ok = (k >= 0) & np.isin(lab.bond_type, list(bond_model.estimators))
    rmse = float(np.sqrt(np.mean((p.minus_icohp[k[ok]] - lab.y[ok]) ** 2)))
    assert ok.sum() >= 0.9 * len(lab) and rmse < 0.15, (int(ok.sum()), len(lab), rmse)  # measured: 587/623, 0.113 eV


def test_al_scoring_with_a_bond_centred_model(bond_model) -> None:
    cb = cell_bonds(HELD_OUT, bond_model.settings)
    assert cb.atom_soap.shape[0] == len(cb) and np.array_equal(cb.atom_i, np.arange(len(cb)))
    s, per, desc = score_cell(bond_model, cb)
    assert np.isfinite(s) and s > 0 and set(per) <= set(bond_model.estimators)
    assert desc.shape == (cb.atom_soap.shape[1],)


def test_predict_structure_with_a_bond_centred_model(bond_model) -> None:
    atoms = read(HELD_OUT)
    bonds, pred = bond_model.predict_structure(atoms)
    rows, ri, rj = compute_bond_features(atoms, bonds.i, bonds.j, bonds.shift, bond_model.settings)
    ref = bond_model.predict_bonds(bonds.type, bonds.distance, rows, ri, rj, bond_model.settings)
    assert len(pred["minus_icohp"]) == len(bonds) > 500
    np.testing.assert_array_equal(pred["minus_icohp"], ref["minus_icohp"])
    np.testing.assert_array_equal(pred["std"], ref["std"])
