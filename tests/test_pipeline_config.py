"""Pipeline config: the bundled configs load; bad input gives one-line ConfigErrors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bondml.errors import BondmlError, ConfigError
from bondml.pipeline.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
BASE = {"executor": {"kind": "local", "workers": 2}}


def _err(raw: dict) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(raw, "p.toml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("p.toml")
    return msg


@pytest.mark.parametrize("name", ["demo.toml", "full-study.toml", "slurm-example.toml"])
def test_bundled_configs_load(name: str) -> None:
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.executor.kind in ("local", "slurm", "pbs", "dask")


def test_demo_config_values() -> None:
    cfg = load_config(ROOT / "configs" / "demo.toml")
    assert cfg.generate.labeler == "xtb" and cfg.generate.scaled and cfg.deploy.protocol == "scaled"
    assert cfg.validation.protocol == "leave-deformation-group-out" and cfg.data.runs == (21,)
    assert cfg.resolve_path("@reference").joinpath("ML").is_dir()
    # the demo trains the default model of ``bondml train``: bond-centred SOAP, default preset
    assert cfg.features.kind == "bond" and cfg.model.preset == "default" and cfg.model.use_prior is None


def test_features_kind_and_backend() -> None:
    from bondml.features.soap import BOND_SETTINGS, PAPER_SETTINGS
    from bondml.pipeline.stages import feature_settings, store_path

    cfg = parse_config(dict(BASE), "p.toml")  # no [features]: the default model's descriptor
    assert cfg.features.kind == "bond" and feature_settings(cfg) == BOND_SETTINGS
    assert store_path(cfg, Path("/o")) == Path("/o/store-bond")
    atom = parse_config({**BASE, "features": {"kind": "atom"}}, "p.toml")
    assert feature_settings(atom) == PAPER_SETTINGS and store_path(atom, Path("/o")) == Path("/o/store")
    assert cfg.section("features") != atom.section("features")  # the kind is in ingest's cache key
    assert "did you mean 'bond'" in _err({**BASE, "features": {"kind": "bonds"}})
    msg = _err({**BASE, "features": {"kind": "bond", "backend": "quippy"}})
    assert "features.backend = 'quippy'" in msg and "featomic" in msg
    assert parse_config({**BASE, "model": {"use_prior": False}}, "p.toml").model.use_prior is False
    assert "must be true or false" in _err({**BASE, "model": {"use_prior": "yes"}})


def test_unknown_key_did_you_mean() -> None:
    assert "did you mean 'batch_size'" in _err({**BASE, "active_learning": {"batch_sise": 3}})
    assert "did you mean [validation]" in _err({**BASE, "validaton": {}}).replace("'validation'", "[validation]")


def test_wrong_types() -> None:
    assert "must be an integer" in _err({**BASE, "model": {"max_train_per_type": "600"}})
    assert "must be true or false" in _err({**BASE, "deploy": {"enabled": 1}})
    assert "must be a list" in _err({**BASE, "data": {"runs": 21}})
    assert "must be a number" in _err({**BASE, "features": {"cutoff": "3.75"}})


def test_impossible_composition() -> None:
    msg = _err({**BASE, "generate": {"compositions": ["Zr49.5Cu49Al1.5"]}})
    assert "cannot be made exactly with 100 atoms" in msg
    assert "sums to" in _err({**BASE, "generate": {"compositions": ["Zr50Cu40"]}})
    assert "unknown element" in _err({**BASE, "active_learning": {"explore_compositions": ["Zr50Ni50"]}})


def test_missing_or_incomplete_executor() -> None:
    assert "missing [executor]" in _err({"model": {}})
    assert "executor.kind is missing" in _err({"executor": {"workers": 2}})
    assert "did you mean 'slurm'" in _err({"executor": {"kind": "slurn"}})
    assert "needs executor.partition" in _err({"executor": {"kind": "slurm"}})
    assert parse_config({"executor": {"kind": "dask"}}).executor.address == ""  # a local Dask cluster


def test_other_choices() -> None:
    assert "generate.labeler" in _err({**BASE, "generate": {"labeler": "lobster"}})
    assert "unknown bond type" in _err({**BASE, "model": {"hyperparameters": {"Cu-Zr": {"sigma": 1.0}}}})
    assert "augmentation" in _err({**BASE, "active_learning": {"augmentations": ["twist-45"]}})
    assert "final_strain must be negative" in _err({**BASE, "deploy": {"final_strain": 0.1}})


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[executor\nkind=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    assert issubclass(ConfigError, BondmlError)


def test_relative_paths(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[executor]\nkind = "local"\n[data]\nroots = ["trees/a"]\n')
    cfg = load_config(p)
    assert cfg.resolve_path(cfg.data.roots[0]) == tmp_path / "trees" / "a"
