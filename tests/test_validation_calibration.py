"""Validation reports the calibration the model ships: each fold's std is calibrated on that
fold's training bonds exactly as ``BondModel.fit`` (``bondml train``'s default preset) calibrates
the model (each type's own method and 95 % interval factor, learnt on an inner
leave-deformation-group-out), on the real run-21 data."""

from __future__ import annotations

import numpy as np
import pytest

from bondml.constants import DEFAULT_HYPERPARAMETERS
from bondml.evaluate import shift as sh
from bondml.evaluate import tune as tn
from bondml.evaluate.splits import leave_deformation_group_out
from bondml.features.soap import BOND_SETTINGS
from bondml.model.bondmodel import BondModel
from bondml.model.domain import CALIBRATION_BY_TYPE


@pytest.fixture(scope="module")
def bond_ds(ref_root):
    """Run 21 with the bond-centred descriptor, without sub-runs 13 (no labels) and 14 (the demo's
    held-out cell): three deformation groups, as the demo validates."""
    from bondml.store.extract import dataset_from_getl

    ds = dataset_from_getl(ref_root, settings=BOND_SETTINGS)
    return ds.select(~np.isin(ds.sub_run, (13, 14)))


@pytest.fixture(scope="module")
def prior(bond_ds, ref_root):
    return sh.mean_function(bond_ds, ref_root, "default")[0]


@pytest.mark.parametrize("bt,cap", [("Zr-Al", None), ("Zr-Cu", 240)])
def test_fold_calibration_is_the_trainers(bond_ds, prior, bt, cap):
    """One LDGO fold: the validation std and q95 equal those of the model BondModel.fit trains on
    the fold's training bonds (same subset, same calibration method: scale / variance model)."""
    sub = bond_ds.of_type(bt)
    sp = next(iter(leave_deformation_group_out(sub.sub_run)))
    tr, te = sub.select(sp.train), sub.select(sp.test)
    hp = DEFAULT_HYPERPARAMETERS[bt]
    mu, sd, q95, method, est = tn.fit_predict_calibrated(tr, te, bt, hp, prior, cap, 3, calibrate=True,
                                                         calibration="shift")
    _, raw, _, none, _ = tn.fit_predict_calibrated(tr, te, bt, hp, prior, cap, 3)
    assert none == "none" and method == CALIBRATION_BY_TYPE.get(bt, "scale")
    model = BondModel.fit(tr, {bt: hp}, prior, use_prior=True, max_train_per_type=cap, seed=3, calibration="shift")
    info = model.domain[bt]
    assert info.calibration == method and info.protocol == "leave-deformation-group-out"
    assert q95 == pytest.approx(info.q95_factor, rel=1e-12)
    np.testing.assert_allclose(sd, info.calibrated_std(raw, te.distance), rtol=1e-9)
    assert not np.allclose(sd, raw)  # it did calibrate
    # the model predicts the same mean and std for the held-out bonds (up to its fast std path)
    out = model.predict_dataset(te)
    np.testing.assert_allclose(out["minus_icohp"], mu, atol=1e-6)
    np.testing.assert_allclose(out["std"], sd, rtol=0.03)


def test_validation_of_the_default_model_reports_its_own_calibration(bond_ds, ref_root):
    """LDGO of the default model (the demo's data): per-type calibration named, 1-sigma coverage
    of the shipped std, and the 95 % interval's coverage. Measured: Cu-Al 0.683 / q95 0.927,
    Zr-Al 0.573 / 0.951 (the quantile scale learnt on two inner groups under-covers the shears)."""
    res, info = sh.validate_preset(bond_ds, "ldgo", "default", ref_root, max_train=600, seed=0,
                                   types=["Zr-Al", "Cu-Al"])
    assert info["calibration"] == "shift" and info["calibration_by_type"] == {"Zr-Al": "scale", "Cu-Al": "scale"}
    for bt, r in res.items():
        assert r.protocol == "leave-deformation-group-out" and r.metrics["n"] == len(bond_ds.of_type(bt))
        lo = 0.55 if bt == "Zr-Al" else 0.58
        assert lo <= r.metrics["cov1"] <= 0.78, (bt, r.metrics)
        assert 0.90 <= r.metrics["cov95"] <= 0.99 and r.metrics["q95"] > 1.8, (bt, r.metrics)
        assert r.metrics["cov95"] > r.metrics["cov2"] - 0.005  # the q95 interval is wider than 2 sigma


def test_unknown_calibration_is_refused(bond_ds):
    from bondml.errors import ConfigError

    with pytest.raises(ConfigError, match="magic"):
        tn.grouped_validation(bond_ds, "ldgo", calibration="magic")
