"""BondModel: fit, fallback, predict_bonds contract, save/load round trip, bad model files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bondml.errors import FeatureMismatchError, ModelError
from bondml.evaluate.tables import LabelTable
from bondml.features.soap import FeatureSettings
from bondml.model.bondmodel import FORMAT_VERSION, BondModel
from bondml.model.distance import DistanceModel

from _model_helpers import synthetic_dataset


def _distance_model() -> DistanceModel:
    rng = np.random.default_rng(0)
    n = 400
    d = rng.uniform(2.0, 3.7, n)
    t = LabelTable(bond_type=np.array(["Al-Al", "Cu-Cu"] * (n // 2)),
                   nc=np.array(["Zr49Cu49Al2", "Zr45Cu45Al10"] * (n // 2)),
                   run=np.ones(n, int), sub_run=np.zeros(n, int), i=np.zeros(n, int), j=np.ones(n, int),
                   distance=d, y=2.5 * np.exp(-2 * (d - 2.2)), source=np.full(n, "test"))
    return DistanceModel().fit(t)


@pytest.fixture(scope="module")
def model() -> BondModel:
    ds = synthetic_dataset(seed=5)
    return BondModel.fit(ds, distance_model=_distance_model(), min_bonds=20)


def _predict(m: BondModel, types: list[str], settings: FeatureSettings | None = None):
    ds = synthetic_dataset(seed=6)
    bt = np.resize(np.array(types), len(ds))
    return m.predict_bonds(bt, ds.distance, ds.atom_soap, ds.atom_i, ds.atom_j, settings or ds.settings)


def test_predict_bonds_contract_and_fallback(model):
    out = _predict(model, ["Zr-Zr", "Al-Al", "Cu-Cu"])
    assert set(out) == {"minus_icohp", "std", "fallback", "out_of_domain"}
    assert out["fallback"].dtype == bool and out["out_of_domain"].dtype == bool
    bt = np.resize(np.array(["Zr-Zr", "Al-Al", "Cu-Cu"]), out["fallback"].size)
    assert out["fallback"][bt == "Al-Al"].all() and not out["fallback"][bt != "Al-Al"].any()
    assert np.all(np.isfinite(out["minus_icohp"])) and np.all(out["std"] > 0)
    assert model.lineage["types"]["Al-Al"]["kind"] == "fallback"
    assert "Al-Al" in model.bond_types and "Zr-Al" not in model.bond_types
    far = model.predict_bonds(np.array(["Zr-Zr"]), np.array([1.0]), np.ones((1, 24)) / np.sqrt(24),
                              np.array([0]), np.array([0]), model.settings)
    assert far["out_of_domain"][0]


def test_type_without_model_and_other_settings_are_errors(model):
    with pytest.raises(ModelError, match="no model for bond type 'Zr-Al'"):
        _predict(model, ["Zr-Al"])
    with pytest.raises(FeatureMismatchError, match="cutoff"):
        _predict(model, ["Zr-Zr"], FeatureSettings(cutoff=5.0))


def test_save_load_round_trip(model, tmp_path):
    model.save(tmp_path / "m")
    back = BondModel.load(tmp_path / "m")
    a, b = _predict(model, ["Zr-Zr", "Al-Al", "Cu-Cu", "Zr-Cu"]), _predict(back, ["Zr-Zr", "Al-Al", "Cu-Cu", "Zr-Cu"])
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert back.settings == model.settings and back.lineage["types"] == json.loads(json.dumps(model.lineage["types"]))
    assert back.std_scale == pytest.approx(model.std_scale)


def test_bad_model_files(model, tmp_path):
    d = model.save(tmp_path / "m")
    with pytest.raises(ModelError, match="not found"):
        BondModel.load(tmp_path / "nothing")
    arr = sorted((d / "arrays").glob("*.alpha.npy"))[0]
    raw = arr.read_bytes()
    arr.write_bytes(raw[:-100])
    with pytest.raises(ModelError, match="corrupt"):
        BondModel.load(d)
    arr.unlink()
    with pytest.raises(ModelError, match="not found"):
        BondModel.load(d)
    arr.write_bytes(raw)
    meta = json.loads((d / "model.json").read_text())
    (d / "model.json").write_text(json.dumps({**meta, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ModelError, match="newer"):
        BondModel.load(d)
    (d / "model.json").write_text('{"format": "bondml-bond-model", "format_ver')
    with pytest.raises(ModelError, match="corrupt model metadata"):
        BondModel.load(d)
    for e in (ModelError,):
        try:
            BondModel.load(d)
        except e as exc:
            assert "\n" not in str(exc)


def test_nan_labels_and_too_few_bonds():
    ds = synthetic_dataset(seed=7)
    y = ds.y.copy()
    y[0] = np.nan
    from dataclasses import replace

    with pytest.raises(ModelError, match="NaN"):
        BondModel.fit(replace(ds, y=y))
    m = BondModel.fit(ds, min_bonds=10_000)  # no type has enough bonds and no distance model
    assert not m.estimators
    with pytest.raises(ModelError, match="this model has: none"):
        _predict(m, ["Zr-Zr"])


def test_precision_option_at_predict_time(model):
    ds = synthetic_dataset(seed=6)
    bt = np.resize(np.array(["Zr-Zr", "Cu-Cu"]), len(ds))
    args = (bt, ds.distance, ds.atom_soap, ds.atom_i, ds.atom_j, ds.settings)
    hi = model.predict_bonds(*args, precision="float64")
    lo = model.predict_bonds(*args, precision="float32")
    assert np.max(np.abs(hi["minus_icohp"] - lo["minus_icohp"])) < 1e-3
    assert np.allclose(hi["std"], lo["std"], rtol=1e-2, atol=1e-4)
    assert not any(e.fast_soap for e in model.estimators.values())  # the call does not leak its setting
    with pytest.raises(ModelError, match="precision 'float16'"):
        model.predict_bonds(*args, precision="float16")
