"""A predicted frame is one BondTable: FrameResult.table (bonds + predictions, units in the schema)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from bondml.core.table import BondTable
from bondml.data import run21_dir
from bondml.deploy.outputs import FrameResult, bonds_table, write_frame
from bondml.structure.bonds import find_bonds


def _frame(n_pred: int | None = None) -> FrameResult:
    a = read(run21_dir() / "2000" / "0" / "Zr49Cu49Al2.xyz")
    b = find_bonds(a, (1.8, 3.75))
    n = len(b) if n_pred is None else n_pred
    rng = np.random.default_rng(1)
    pred = {"minus_icohp": rng.random(n), "std": rng.random(n) * 0.1,
            "fallback": rng.random(n) < 0.2, "out_of_domain": rng.random(n) < 0.1}
    return FrameResult(2, 200, -0.02, a, b, pred, None)


def test_frame_table_columns_units_counts() -> None:
    r = _frame()
    t = r.table
    assert isinstance(t, BondTable) and len(t) == len(r) == len(r.bonds) == 642  # run 21 cell 0, 1.8-3.75 A
    assert list(t.columns) == ["i", "j", "bond_type", "shift", "distance", "minus_icohp", "std", "fallback",
                               "out_of_domain"]
    assert t.unit("distance") == "Angstrom" and t.unit("minus_icohp") == t.unit("std") == "eV"
    assert t.meta == {"frame": 2, "timestep": 200, "strain": -0.02}
    assert r.counts() == r.bonds.counts() == {"Zr-Zr": 169, "Zr-Cu": 347, "Zr-Al": 16, "Cu-Cu": 102,
                                              "Cu-Al": 8, "Al-Al": 0}
    sub = t.of_type("Cu-Cu")
    assert len(sub) == 102 and np.array_equal(sub.minus_icohp, r.pred["minus_icohp"][r.bonds.type == "Cu-Cu"])
    at = bonds_table(r)
    np.testing.assert_allclose(at.column("minus_icohp").to_numpy(), r.pred["minus_icohp"], rtol=1e-7)
    assert at.column("fallback").to_pylist() == r.pred["fallback"].tolist()


def test_predictions_of_another_length_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unequal length"):
        write_frame(tmp_path, _frame(n_pred=10))
    assert not (tmp_path / "bonds").exists()
