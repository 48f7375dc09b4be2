"""The public API: lazy top-level names, the estimator-style BondModel, BondPredictions, and the
module example run as a doctest on the bundled data."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest

import bondml


def test_api_example_doctest() -> None:
    import bondml.api

    res = doctest.testmod(bondml.api, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted >= 15 and res.failed == 0


def test_import_is_lazy_and_names_resolve() -> None:
    code = ("import sys, bondml; heavy = [m for m in ('numpy', 'ase', 'bondml.api', 'bondml.store.db') "
            "if m in sys.modules]; print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
    from bondml.model.bondmodel import BondModel as Artifact
    from bondml.store.db import BondStore

    assert bondml.BondStore is BondStore and bondml.BondModel is bondml.api.BondModel
    assert bondml.BondModel is not Artifact
    assert {"BondModel", "BondStore", "ingest", "load_model", "predict_trajectory"} <= set(dir(bondml))
    with pytest.raises(AttributeError):
        bondml.no_such_name  # noqa: B018


def test_estimator_protocol_and_errors() -> None:
    from bondml.errors import BondmlError

    m = bondml.BondModel(hyperparameters={"Zr-Cu": {"sigma": 0.8}}, seed=3)
    assert m.get_params()["seed"] == 3 and m.set_params(seed=4) is m and m.seed == 4
    assert "BondModel(" in repr(m) and "fitted" not in repr(m)
    with pytest.raises(BondmlError, match="not fitted"):
        m.predict(None)
    with pytest.raises(ValueError, match="unknown parameter"):
        m.set_params(nope=1)


def test_predictions_and_annotate_match_the_deploy_tables(model_dir, small_cell, tmp_path) -> None:
    """model.predict / annotate on the 450-atom cut give the same bonds, -ICOHP and per-atom sums
    as ``bondml predict`` (deploy.infer) on the same cell."""
    from bondml.deploy.outputs import read_bonds, read_peratom
    from bondml.io.lammps import read_lammps_data

    model = bondml.load_model(model_dir)
    atoms = read_lammps_data(small_cell).atoms
    p = model.predict(atoms, precision="float32")
    assert len(p) > 1000 and set(p.bond_type) <= set(model.bond_types_)
    assert np.all(np.isfinite(p.minus_icohp)) and np.all(p.std > 0)
    assert set(np.unique(p.flags)) <= {"", "fallback", "out_of_domain", "fallback,out_of_domain"}
    arrow = p.to_arrow()
    assert arrow.column_names[:7] == ["i", "j", "bond_type", "distance", "minus_icohp", "std", "flags"]
    assert arrow.schema.field("std").metadata[b"unit"] == b"eV"
    model.annotate(atoms, p)
    bondml.predict_trajectory(model_dir, small_cell, out=tmp_path / "pred")
    bonds = read_bonds(tmp_path / "pred").to_pandas()
    assert len(bonds) == len(p)
    np.testing.assert_allclose(np.sort(bonds["minus_icohp"].to_numpy()), np.sort(p.minus_icohp), atol=1e-5)
    per = read_peratom(tmp_path / "pred").to_pandas().sort_values("atom")
    np.testing.assert_allclose(per["sum_micohp"].to_numpy(), atoms.arrays["sum_minus_icohp"], atol=1e-4)
    np.testing.assert_array_equal(per["coordination"].to_numpy(), atoms.arrays["coordination"])
