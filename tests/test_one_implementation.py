"""One implementation per concept: ``bondml evaluate`` and the pipeline's validate stage give the
same numbers on the same data and settings; ``bondml train`` and the train stage share the
preset/override logic."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import copy_subruns


class _Runner:
    """The pipeline runner's interface, in-process."""

    workers = 1

    def map(self, fn, items, label=None):
        return [fn(x) for x in items]


@pytest.fixture(scope="module")
def store4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bondml.store.db import BondStore

    tmp = tmp_path_factory.mktemp("one")
    tree = copy_subruns(tmp / "tree", [0, 1, 2, 3])
    store = BondStore(tmp / "store", create=True)
    store.ingest(tree)
    return tmp / "store"


def _cfg(max_train: int):
    from bondml.pipeline.config import load_config

    cfg = load_config(Path(__file__).parents[1] / "configs" / "demo.toml")
    # the paper's model under leave-one-cell-out: what ``bondml evaluate --protocol loco`` scores
    return replace(cfg, data=replace(cfg.data, holdout_sub_runs=()), features=replace(cfg.features, kind="atom"),
                   model=replace(cfg.model, preset="paper"),
                   validation=replace(cfg.validation, protocol="leave-one-cell-out", max_train=max_train,
                                      learning_curve_sizes=()))


def test_evaluate_cli_and_validate_stage_same_numbers(store4: Path, tmp_path: Path) -> None:
    from bondml.cli.main import build_app
    from bondml.pipeline.dag import StageContext
    from bondml.pipeline.stages import validate_stage
    from bondml.store.db import BondStore

    r = CliRunner().invoke(build_app(), ["evaluate", "--store", str(store4), "--protocol", "loco",
                                         "--max-train", "80", "--out", str(tmp_path / "cli")])
    assert r.exit_code == 0, r.output
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())["soap_gp"]

    version = BondStore(store4).info()["version"]
    ingest = SimpleNamespace(summary={"store": str(store4), "version": version})
    (tmp_path / "stage").mkdir()
    ctx = StageContext("validate", tmp_path / "stage", _cfg(80), {"ingest": ingest}, tmp_path, _Runner(),
                       log=lambda m: None)
    summary = validate_stage(ctx)
    stage = json.loads((tmp_path / "stage" / "validation.json").read_text())
    assert stage["protocol"] == "leave-one-cell-out"
    types = [t for t in cli if cli[t]["n"] >= 1]
    assert types and "Zr-Cu" in types
    for t in types:  # the same pooled out-of-fold predictions -> identical metrics
        for k in ("n", "rmse", "mae", "cov1"):
            assert stage["metrics"][t][k] == pytest.approx(cli[t][k], rel=1e-12, abs=1e-12), (t, k)
        assert summary["rmse"][t] == pytest.approx(cli[t]["rmse"], rel=1e-12)
    # and the numbers are real: leave-one-cell-out on run 21 is ~0.1 eV or better for Zr-Cu
    assert 0.01 < cli["Zr-Cu"]["rmse"] < 0.2


def test_evaluate_cli_and_validate_stage_same_default_model_ldgo(store4: Path, tmp_path: Path) -> None:
    """``bondml evaluate --preset default --protocol ldgo`` and the validate stage of the default
    preset: the same figures, each fold's std calibrated as the default model's own (per type)."""
    from bondml.cli.main import build_app
    from bondml.pipeline.dag import StageContext
    from bondml.pipeline.stages import validate_stage
    from bondml.store.db import BondStore

    r = CliRunner().invoke(build_app(), ["evaluate", "--store", str(store4), "--protocol", "ldgo", "--preset",
                                         "default", "--max-train", "80", "--out", str(tmp_path / "cli")])
    assert r.exit_code == 0, r.output
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert cli["model"]["preset"] == "default" and cli["model"]["calibration"] == "shift"
    cfg = _cfg(80)
    cfg = replace(cfg, model=replace(cfg.model, preset="default"),
                  validation=replace(cfg.validation, protocol="leave-deformation-group-out"))
    version = BondStore(store4).info()["version"]
    ingest = SimpleNamespace(summary={"store": str(store4), "version": version})
    (tmp_path / "stage").mkdir()
    ctx = StageContext("validate", tmp_path / "stage", cfg, {"ingest": ingest}, tmp_path, _Runner(),
                       log=lambda m: None)
    validate_stage(ctx)
    stage = json.loads((tmp_path / "stage" / "validation.json").read_text())
    assert stage["protocol"] == "leave-deformation-group-out"
    assert stage["std_calibration"]["by_type"] == cli["model"]["calibration_by_type"]
    # sub-runs 0-3: with the shears out, sub-run 0 alone trains and, as in BondModel.fit, its std
    # stays uncalibrated (one cell: nothing to calibrate on); with sub-run 0 out, the variance model
    assert stage["std_calibration"]["by_type"]["Zr-Cu"] == "none/variance"
    for t, m in cli["soap_gp"].items():
        for k in ("n", "rmse", "cov1", "cov2", "cov95"):
            assert (k in m) == (k in stage["metrics"][t]), (t, k)
            if k in m:
                assert stage["metrics"][t][k] == pytest.approx(m[k], rel=1e-12, abs=1e-12), (t, k)


def test_presets_and_overrides() -> None:
    from bondml.errors import ConfigError
    from bondml.model.presets import TUNED_HYPERPARAMETERS, resolve_hyperparameters

    assert resolve_hyperparameters() == {}
    hp = resolve_hyperparameters("tuned", {"Zr-Cu": {"sigma": 0.8}}, None, {"Zr-Cu": {"zeta": 2}}, use_prior=True)
    assert hp["Zr-Cu"] == {"sigma": 0.8, "gamma": 0.04, "zeta": 2.0}
    assert hp["Cu-Al"] == TUNED_HYPERPARAMETERS["Cu-Al"]
    with pytest.raises(ConfigError, match="prior"):
        resolve_hyperparameters("tuned")
    with pytest.raises(ConfigError, match="unknown hyper-parameter preset"):
        resolve_hyperparameters("best")
    with pytest.raises(ConfigError, match="Zr-Xx"):
        resolve_hyperparameters("paper", {"Zr-Xx": {"sigma": 1}})
    # the old import place still works (re-export)
    from bondml.evaluate.tune import TUNED_HYPERPARAMETERS as T2

    assert T2 is TUNED_HYPERPARAMETERS


def test_train_cli_and_train_stage_same_model(store4: Path, tmp_path: Path) -> None:
    """Same data, preset and cap: the CLI's model and the stage's model predict identically."""
    from bondml.cli.main import build_app
    from bondml.evaluate.shift import train_model
    from bondml.model.bondmodel import BondModel
    from bondml.store.db import BondStore

    ds = BondStore(store4).load_dataset()
    hyper = tmp_path / "hp.json"
    hyper.write_text(json.dumps({"Zr-Cu": {"sigma": 0.8}}))
    r = CliRunner().invoke(build_app(), ["train", "--store", str(store4), "--out", str(tmp_path / "m"),
                                         "--max-train", "100", "--hyper", str(hyper), "--preset", "paper"])
    assert r.exit_code == 0, r.output
    cli = BondModel.load(tmp_path / "m")
    lib = train_model(ds, None, "paper", {"Zr-Cu": {"sigma": 0.8}}, max_train_per_type=100, seed=0)
    assert cli.estimators["Zr-Cu"].get_params()["sigma"] == 0.8
    a, b = cli.predict_dataset(ds), lib.predict_dataset(ds)
    np.testing.assert_array_equal(a["minus_icohp"], b["minus_icohp"])


def test_label_source_comparison(store4: Path, model_dir: Path) -> None:
    """The xtb_check stage's comparison as a library function: on LOBSTER labels of cells the
    demo model was trained on, the model correlates strongly with the labels."""
    from bondml.evaluate.label_sources import compare_with_labels
    from bondml.model.bondmodel import BondModel
    from bondml.store.db import BondStore

    rows = compare_with_labels(BondModel.load(model_dir), BondStore(store4).load_dataset())
    assert {"Zr-Zr", "Zr-Cu", "Cu-Cu"} <= set(rows)
    assert rows["Zr-Cu"]["n"] > 1000 and rows["Zr-Cu"]["pearson_r"] > 0.9
    assert 0.5 < rows["Zr-Cu"]["slope"] < 1.5 and rows["Zr-Cu"]["rmse_after_linear_fit"] < 0.15  # 0.102 eV measured
