"""Other bond indicators as targets: ICOBI / ICOOP stored with their own target, unit and label
source, never mixed with -ICOHP (store refuses, training on a mix is an error)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_io_runs import vasp_copy

from bondml.errors import ModelError, StoreError
from bondml.io.lobster import read_icohplist
from bondml.model.bondmodel import BondModel
from bondml.store.dataset import BondDataset
from bondml.store.db import BondStore


def _icobilist_from(icohp: Path, out: Path) -> np.ndarray:
    """An ICOBILIST of the same pairs (LOBSTER 3.x layout; values -ICOHP/4, made up)."""
    ic = read_icohplist(icohp)
    v = np.round(-ic.icohp / 4.0, 5)
    lines = ["  COBI#  atomMU  atomNU     distance     translation      ICOBI (at) eF   for spin  1"]
    for k in range(len(ic)):
        a, b, t = f"{ic.element_i[k]}{ic.i[k] + 1}", f"{ic.element_j[k]}{ic.j[k] + 1}", ic.translation[k]
        lines.append(f"{k + 1:7d} {a:>7s} {b:>7s} {ic.distance[k]:12.5f} {t[0]:7d} {t[1]:3d} {t[2]:3d} {v[k]:18.5f} ")
    out.write_text("\n".join(lines) + "\n")
    return v


def test_icobi_store_and_model(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    d = vasp_copy(root / "cell-0", 0)
    v = _icobilist_from(d / "ICOHPLIST.lobster", d / "ICOBILIST.lobster")
    s = BondStore(tmp_path / "icobi", create=True, target="icobi")
    rep = s.ingest(root)
    assert not rep.errors, rep.errors
    ds = s.load_dataset(label_window=(1.8, 4.2))
    assert ds.lineage["target"] == "icobi" and ds.lineage["unit"] == "1"
    np.testing.assert_allclose(np.sort(ds.y), np.sort(v))  # ICOBI as LOBSTER writes it (positive = bonding)
    assert BondStore(tmp_path / "icobi").target == "icobi"
    with pytest.raises(StoreError, match="never mixed"):
        BondStore(tmp_path / "icobi", target="icohp")
    # the -ICOHP store of the same folder
    h = BondStore(tmp_path / "icohp", create=True)
    h.ingest(root)
    dh = h.load_dataset(label_window=(1.8, 4.2))
    assert "target" not in dh.lineage  # the study's lineage, unchanged
    m = BondModel.fit(ds.of_type("Zr-Cu").select(np.arange(40)), calibrate=False, min_bonds=10)
    assert m.target == "icobi"
    mixed = BondDataset.concatenate([ds, dh])
    with pytest.raises(ModelError, match="mixes targets"):
        BondModel.fit(mixed, calibrate=False)


def test_unknown_target(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unknown target"):
        BondStore(tmp_path / "x", create=True, target="cohp")
