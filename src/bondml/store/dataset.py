"""In-memory bond datasets: labelled bonds as columns plus the per-atom SOAP they index into.

``BondDataset`` is what training, validation and active learning consume. Per-atom SOAP is
stored once per (cell, atom) in ``atom_soap``; ``atom_i``/``atom_j`` are row indices into it, so a
bond never copies a SOAP vector. ``BondFeatures`` is the model input (distance + the two atoms'
SOAP through the same indirection).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..features.soap import FeatureSettings


@dataclass(frozen=True)
class BondFeatures:
    """Model input for n bonds: ``distance`` (n,) Angstrom, ``atom_soap`` (m, p) per-atom SOAP,
    ``atom_i``/``atom_j`` (n,) rows of ``atom_soap`` for the two atoms of each bond."""

    distance: np.ndarray
    atom_soap: np.ndarray
    atom_i: np.ndarray
    atom_j: np.ndarray

    def __len__(self) -> int:
        return int(self.distance.size)

    def take(self, idx: np.ndarray) -> BondFeatures:
        """Subset of bonds (the per-atom SOAP matrix is shared, not copied)."""
        return BondFeatures(self.distance[idx], self.atom_soap, self.atom_i[idx], self.atom_j[idx])

    @property
    def soap_i(self) -> np.ndarray:
        return self.atom_soap[self.atom_i]

    @property
    def soap_j(self) -> np.ndarray:
        return self.atom_soap[self.atom_j]


@dataclass(frozen=True)
class BondDataset:
    """Labelled bonds of many cells, as columns of equal length n.

    Columns: ``bond_type`` (paper names), ``distance`` (Angstrom), ``y`` (-ICOHP, eV),
    ``nc``/``run``/``sub_run`` (where the cell sits), ``i``/``j`` (0-based atom indices in the
    cell), ``shift`` (n, 3) lattice shift, ``label_source`` (``lobster``, ``xtb-gfn1``...),
    ``atom_i``/``atom_j`` (rows of ``atom_soap``). ``atom_soap`` (m, p) holds every atom's SOAP
    once. ``settings`` are the SOAP settings; ``lineage`` says where the data came from.
    """

    bond_type: np.ndarray
    distance: np.ndarray
    y: np.ndarray
    nc: np.ndarray
    run: np.ndarray
    sub_run: np.ndarray
    i: np.ndarray
    j: np.ndarray
    shift: np.ndarray
    label_source: np.ndarray
    atom_i: np.ndarray
    atom_j: np.ndarray
    atom_soap: np.ndarray
    settings: FeatureSettings
    lineage: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.distance.size)

    def select(self, mask: np.ndarray) -> BondDataset:
        """Subset of bonds (boolean mask or index array); ``atom_soap`` is shared."""
        cols = {k: getattr(self, k)[mask] for k in _BOND_COLUMNS}
        return replace(self, **cols)

    def of_type(self, bond_type: str) -> BondDataset:
        return self.select(self.bond_type == bond_type)

    def features(self) -> BondFeatures:
        return BondFeatures(self.distance, self.atom_soap, self.atom_i, self.atom_j)

    def groups(self, level: str = "cell") -> np.ndarray:
        """Group label per bond for grouped splits: ``cell`` (sub-run), ``run`` or ``nc``."""
        if level == "cell":
            return np.char.add(np.char.add(self.nc.astype(str), "/"),
                               np.char.add(np.char.add(self.run.astype(str), "/"), self.sub_run.astype(str)))
        if level == "run":
            return np.char.add(np.char.add(self.nc.astype(str), "/"), self.run.astype(str))
        if level == "nc":
            return self.nc.astype(str)
        raise ValueError(f"unknown group level {level!r}; use cell, run or nc")

    def counts(self) -> dict[str, int]:
        u, c = np.unique(self.bond_type.astype(str), return_counts=True)
        d = dict(zip(u.tolist(), c.tolist(), strict=True))
        from ..chemistry import types_in_order

        return {t: int(d.get(t, 0)) for t in types_in_order(d)}

    @staticmethod
    def concatenate(parts: list[BondDataset]) -> BondDataset:
        """Join datasets computed with the same SOAP settings (atom rows re-indexed)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        s = parts[0].settings
        for p in parts[1:]:
            s.require_same(p.settings, "datasets to join")
        offs = np.cumsum([0] + [p.atom_soap.shape[0] for p in parts[:-1]])
        cols = {k: np.concatenate([getattr(p, k) for p in parts]) for k in _BOND_COLUMNS
                if k not in ("atom_i", "atom_j")}
        cols["atom_i"] = np.concatenate([p.atom_i + o for p, o in zip(parts, offs, strict=True)])
        cols["atom_j"] = np.concatenate([p.atom_j + o for p, o in zip(parts, offs, strict=True)])
        soap = np.concatenate([p.atom_soap for p in parts], axis=0)
        lineage = {"parts": [p.lineage for p in parts]}
        return BondDataset(**cols, atom_soap=soap, settings=s, lineage=lineage)


_BOND_COLUMNS = (
    "bond_type", "distance", "y", "nc", "run", "sub_run", "i", "j", "shift", "label_source",
    "atom_i", "atom_j",
)
