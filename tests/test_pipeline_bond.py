"""The pipeline trains the default model: a ``[features] kind = "bond"`` config builds a
bond-centred store and a bond-centred default-preset model, validated under
leave-deformation-group-out, and the report names the protocol of every figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bondml.pipeline import run_pipeline
from bondml.pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "data" / "pipeline_bond.toml"

pytestmark = pytest.mark.slow


def test_bond_config_builds_bond_store_and_model(tmp_path: Path) -> None:
    from bondml.constants import DEFAULT_HYPERPARAMETERS
    from bondml.features.soap import BOND_SETTINGS
    from bondml.model.bondmodel import BondModel
    from bondml.store.db import BondStore

    cfg = load_config(CONFIG)
    res = run_pipeline(cfg, tmp_path, log=lambda m: None)
    st = res["stages"]
    # the store: bond-centred settings, one 2100-component vector per bond, under <out>/store-bond
    store = BondStore(st["ingest"].summary["store"])
    assert Path(st["ingest"].summary["store"]).name == "store-bond"
    assert store.settings == BOND_SETTINGS
    ds = store.load_dataset(version=st["ingest"].summary["version"], runs=[21])
    assert ds.settings.kind == "bond" and ds.atom_soap.shape == (len(ds), 2100)
    assert np.allclose(np.linalg.norm(ds.atom_soap[:50], axis=1), 1.0)
    man = json.loads((st["ingest"].dir / "manifest.json").read_text())
    assert man["config"]["features"]["kind"] == "bond"  # in the ingest's cache key
    # the model: the default preset on the bond-centred descriptor, trained on the 3 cells
    train = json.loads(st["train"].path("train.json").read_text())
    assert train["preset"] == "default" and train["descriptor"] == "bond"
    assert train["cells"] == ["Zr49Cu49Al2-21-0", "Zr49Cu49Al2-21-1", "Zr49Cu49Al2-21-10"]
    model = BondModel.load(st["train"].path("model"))
    assert model.settings == BOND_SETTINGS and model.lineage["preset"] == "default"
    zz = model.estimators["Zr-Cu"].get_params()
    assert {k: zz[k] for k in ("sigma", "gamma", "zeta")} == pytest.approx(
        {k: DEFAULT_HYPERPARAMETERS["Zr-Cu"][k] for k in ("sigma", "gamma", "zeta")})
    assert model.use_prior and model.distance_model.is_prior_for("Zr-Cu")  # the GP models the prior's residual
    assert "domain" in model.lineage["types"]["Zr-Cu"]  # the shift calibration / out-of-domain model
    # validation: the shift protocol, one fold per deformation family, every figure labelled
    v = json.loads(st["validate"].path("validation.json").read_text())
    assert v["protocol"] == "leave-deformation-group-out" and v["n_folds"] == 3
    assert v["model"]["descriptor"] == "bond" and v["model"]["preset"] == "default"
    assert v["model"]["mean"].startswith("distance prior")
    assert 0.0 < v["metrics"]["Zr-Cu"]["rmse"] < 0.2
    assert set(v["figures"]) == {"metrics", "parity.png", "calibration.png", "learning_curves.png"}
    assert v["figures"]["learning_curves.png"].startswith("hold-out")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Protocol: **leave-deformation-group-out**" in md
    assert "bond-centred SOAP" in md and "Preset **default**" in md
    assert md.count("leave-deformation-group-out") >= 3  # table, parity, calibration
