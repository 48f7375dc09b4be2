"""Accuracy bounds on the real run-21 data (grouped splits; see DOMAIN.md for the paper figures)."""

from __future__ import annotations

import numpy as np
import pytest

from bondml.constants import PAPER_RMSE
from bondml.evaluate.splits import group_kfold
from bondml.evaluate.tune import (
    TUNED_HYPERPARAMETERS,
    cross_validate_type,
    distance_model_from_tables,
    paper_protocol,
)
from bondml.model.bondmodel import BondModel


@pytest.fixture(scope="module")
def ds(ref_root):
    from bondml.store.extract import dataset_from_getl

    return dataset_from_getl(ref_root)


@pytest.fixture(scope="module")
def prior(ref_root):
    return distance_model_from_tables(ref_root, exclude=[("Zr49Cu49Al2", 21)])  # run 21 never in the prior


@pytest.mark.slow
def test_paper_protocol_at_least_as_good_as_the_paper(ds, prior):
    """Types with >= 1000 training bonds in run 21 must match the paper (which had 2000 from many
    runs); Zr-Al (148) and Cu-Al (90 training bonds) are data-limited and get a 30% margin."""
    res = paper_protocol(ds, seed=0, prior=prior, params=TUNED_HYPERPARAMETERS)
    assert set(res) == set(PAPER_RMSE)
    for bt, r in res.items():
        assert "leaky" in r.protocol
        limit = PAPER_RMSE[bt] if bt in ("Zr-Zr", "Zr-Cu", "Cu-Cu") else 1.3 * PAPER_RMSE[bt]
        assert r.metrics["rmse"] <= limit, (bt, r.metrics["rmse"])


@pytest.mark.slow
def test_held_out_cells_accuracy_and_calibration(ds, prior):
    for bt in ("Zr-Zr", "Zr-Cu", "Zr-Al", "Cu-Cu", "Cu-Al"):
        sub = ds.of_type(bt)
        splits = group_kfold(sub.groups("cell"), 4, seed=0)
        r = cross_validate_type(ds, bt, splits, TUNED_HYPERPARAMETERS.get(bt), prior, max_train=600, seed=0,
                                calibrate=True)
        assert r.metrics["n"] == len(sub)
        assert r.metrics["rmse"] < 1.6 * PAPER_RMSE[bt], (bt, r.metrics)
        assert 0.55 <= r.metrics["cov1"] <= 0.80, (bt, r.metrics)


@pytest.mark.slow
def test_fitted_model_is_calibrated_and_beats_distance_only(ds, prior):
    train = ds.select(ds.sub_run <= 9)
    test = ds.select(ds.sub_run > 9)
    m = BondModel.fit(train, hyperparameters=TUNED_HYPERPARAMETERS, distance_model=prior, use_prior=True,
                      max_train_per_type=600, seed=1)
    out = m.predict_dataset(test)
    assert not out["fallback"].any()
    for bt in ("Zr-Zr", "Zr-Cu", "Cu-Cu"):
        k = test.bond_type == bt
        e = out["minus_icohp"][k] - test.y[k]
        dist = prior.predict(bt, test.distance[k])[0] - test.y[k]
        assert np.sqrt(np.mean(e**2)) < 0.85 * np.sqrt(np.mean(dist**2))  # SOAP adds >= 15%
        assert 0.5 <= np.mean(np.abs(e) <= out["std"][k]) <= 0.85
