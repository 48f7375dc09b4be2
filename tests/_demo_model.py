"""Test/benchmark helper (moved out of ``src/``): a small real model trained on the shipped
reference data.

GPs on run 21 of Zr49Cu49Al2 (``max_per_type`` bonds per type, seeded draw), plus the
distance-only model fitted on those bonds and the original's PBSSDB Al-Al table (run 21 has no
Al-Al bond, so Al-Al uses the flagged distance-only fallback).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bondml.data import reference_root

_PBSSDB = "ML/big-data-full/Zr49Cu49Al2-PBSSDB"


def _label_rows(ds: object, root: Path) -> SimpleNamespace:
    """Distance/label rows: the dataset's bonds plus the PBSSDB Al-Al table (nc Zr49Cu49Al2)."""
    bt = [np.asarray(ds.bond_type).astype(str)]  # type: ignore[attr-defined]
    nc = [np.asarray(ds.nc).astype(str)]  # type: ignore[attr-defined]
    d = [np.asarray(ds.distance, float)]  # type: ignore[attr-defined]
    y = [np.asarray(ds.y, float)]  # type: ignore[attr-defined]
    from bondml.evaluate.tables import read_pbssdb

    table = read_pbssdb(root / _PBSSDB).of_type("Al-Al")
    bt.append(table.bond_type)
    nc.append(table.nc)
    d.append(table.distance)
    y.append(table.y)
    return SimpleNamespace(bond_type=np.concatenate(bt), nc=np.concatenate(nc), distance=np.concatenate(d),
                           y=np.concatenate(y))


def train_demo_model(out_dir: str | Path, max_per_type: int = 300, seed: int = 0,
                     settings: object | None = None) -> Path:
    """Train and save the demo model into ``out_dir``; returns the folder. ``settings``: SOAP
    settings (default: the paper's, QUIP)."""
    from bondml.model.bondmodel import BondModel
    from bondml.model.distance import DistanceModel
    from bondml.store.extract import dataset_from_getl

    root = reference_root()
    ds = dataset_from_getl(root) if settings is None else dataset_from_getl(root, settings)  # type: ignore[arg-type]
    dm = DistanceModel().fit(_label_rows(ds, root))
    model = BondModel.fit(ds, distance_model=dm, max_train_per_type=max_per_type, seed=seed)
    return model.save(out_dir)
