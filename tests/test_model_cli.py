"""``bondml train --getl`` then ``bondml validate`` on a real cell the model has not seen."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bondml.cli.main import build_app

from conftest import copy_subruns


@pytest.mark.slow
def test_train_then_validate_unseen_cell(tmp_path, run21):
    tree = copy_subruns(tmp_path / "tree", [0, 3, 7])
    app = build_app()
    r = CliRunner().invoke(app, ["train", "--getl", str(tree), "--out", str(tmp_path / "model"), "--max-train", "300"])
    assert r.exit_code == 0, r.output
    assert "fallback" in r.output  # Al-Al (no labelled bonds) uses the distance-only model
    r = CliRunner().invoke(app, ["validate", "--model", str(tmp_path / "model"), "--cell", str(run21 / "2000" / "5"),
                                 "--json", str(tmp_path / "v.json"), "--out", str(tmp_path / "v")])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "v.json").read_text())
    assert rep["cell"] == "Zr49Cu49Al2/21/5" and not rep["in_training_data"]
    assert set(rep["rmse"]) == set(rep["n"]) and rep["n_total"] == sum(rep["n"].values())
    assert rep["overall_rmse"] < 0.2 and rep["rmse"]["Zr-Cu"] < 0.2
    assert (tmp_path / "v" / "parity.png").stat().st_size > 10_000
    lines = (tmp_path / "v" / "ML_ICOHPLIST.lobster").read_text().splitlines()
    assert len(lines) == rep["n_total"] + 1 and float(lines[1].split()[-1]) < 0  # LOBSTER sign


def test_train_needs_one_source(tmp_path):
    r = CliRunner().invoke(build_app(), ["train", "--out", str(tmp_path / "m")])
    assert r.exit_code != 0
