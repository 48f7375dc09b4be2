"""The core data model: one bond table with units, one implementation of the container
operations, the layer contract (import-linter)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bondml.core import BOND_SCHEMA, BondColumns, BondDataset, BondFeatures, BondTable, FeatureSettings


def test_containers_share_one_implementation() -> None:
    from bondml.evaluate.tables import LabelTable
    from bondml.features import soap
    from bondml.store import dataset
    from bondml.structure.bonds import Bonds

    assert dataset.BondDataset is BondDataset and dataset.BondFeatures is BondFeatures  # old names kept
    assert soap.FeatureSettings is FeatureSettings
    for cls in (BondDataset, LabelTable, Bonds, BondTable):
        assert issubclass(cls, BondColumns)
        assert "counts" not in vars(cls) and "of_type" not in vars(cls)


def test_bond_table_units_in_schema(ref_root: Path) -> None:
    from bondml.evaluate.tables import read_pbssdb

    lab = read_pbssdb(ref_root / "ML/big-data-full/Zr49Cu49Al2-PBSSDB")
    t = BondTable({"i": lab.i - 1, "j": lab.j - 1, "bond_type": lab.bond_type, "distance": lab.distance,
                   "minus_icohp": lab.y})
    assert len(t) == len(lab) and t.counts() == lab.counts()
    assert t.unit("distance") == "Angstrom" and t.unit("minus_icohp") == "eV"
    zr = t.of_type("Zr-Zr")  # (this table has no Zr-Cu file)
    assert len(zr) == lab.counts()["Zr-Zr"] == 76919
    arrow = t.to_arrow()
    assert arrow.schema.field("distance").metadata[b"unit"] == b"Angstrom"
    assert arrow.schema.field("minus_icohp").metadata[b"unit"] == b"eV"
    df = t.to_pandas()
    assert list(df.columns) == ["i", "j", "bond_type", "distance", "minus_icohp"]
    assert df.attrs["units"] == {"distance": "Angstrom", "minus_icohp": "eV"}
    np.testing.assert_array_equal(df["distance"].to_numpy(), lab.distance)
    # PBSSDB Zr-Zr labels are real -ICOHP values: bonding, ~0.1..2 eV
    assert 0 < np.median(zr.minus_icohp) < 2
    with pytest.raises(ValueError, match="unequal length"):
        BondTable({"i": np.arange(2), "j": np.arange(3)})
    assert set(BOND_SCHEMA) >= {"i", "j", "bond_type", "distance", "minus_icohp", "std", "flags"}


def test_layer_contract() -> None:
    """import-linter's layers contract in pyproject.toml (model never imports store, store never
    imports evaluate, core imports nothing above it...)."""
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.skip("import-linter not installed (pip install -e .[dev])")
    root = Path(__file__).resolve().parents[1]
    import bondml

    env = {**os.environ, "PYTHONPATH": str(Path(bondml.__file__).parents[1])}  # the bondml under test
    r = subprocess.run([exe, "--config", str(root / "pyproject.toml")], cwd=root, capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "broken" in r.stdout and "0 broken" in r.stdout


def test_every_container_converts_to_the_bond_table(ref_root: Path, run21: Path) -> None:
    from ase.io import read

    from bondml.evaluate.tables import read_pbssdb
    from bondml.structure.bonds import find_bonds

    b = find_bonds(read(run21 / "2000" / "0" / "Zr49Cu49Al2.xyz"))
    t = b.to_table()
    assert isinstance(t, BondTable) and len(t) == len(b) and t.counts() == b.counts()
    assert t.columns["shift"].shape == (len(b), 3)
    df = t.to_pandas()
    assert {"bond_type", "distance", "shift_x", "shift_y", "shift_z"} <= set(df.columns)
    lab = read_pbssdb(ref_root / "ML/big-data-full/Zr49Cu49Al2-PBSSDB").to_table()
    assert lab.unit("minus_icohp") == "eV" and len(lab.of_type("Al-Al")) == 27
