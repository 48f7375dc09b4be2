"""bondml: machine-learned DFT bond strengths (-ICOHP) for metallic glasses at MD scale.

Rebuilds and extends the Generate+ETL pipeline of the Zr-Cu-Al metallic-glass study
(Phys. Rev. Materials 4, 113603, 2020). Units: Angstrom, eV, GPa, ps.

The public API (imported lazily, so ``import bondml`` stays fast)::

    import bondml
    store = bondml.ingest(root, store="db")             # or bondml.BondStore("db")
    model = bondml.BondModel(hyperparameters="paper").fit(store.load_dataset())
    model.save("model"); model = bondml.load_model("model")
    table = model.predict(atoms)                        # ase.Atoms -> BondPredictions
    df = table.to_pandas()                              # i, j, bond_type, distance, minus_icohp, std, flags
    model.annotate(atoms)                               # per-atom sum of -ICOHP, coordination
    bondml.predict_trajectory(model, "traj.dump", out="pred")

See :mod:`bondml.api` (a runnable example) and ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: public name -> module defining it (imported on first use)
_LAZY: dict[str, str] = {
    "BondModel": "bondml.api",
    "BondPredictions": "bondml.api",
    "load_model": "bondml.api",
    "ingest": "bondml.api",
    "predict": "bondml.api",
    "annotate": "bondml.api",
    "predict_trajectory": "bondml.api",
    "BondStore": "bondml.store.db",
    "BondDataset": "bondml.core.dataset",
    "BondFeatures": "bondml.core.dataset",
    "BondTable": "bondml.core.table",
    "FeatureSettings": "bondml.core.settings",
    "CellId": "bondml.types",
    "find_bonds": "bondml.structure.bonds",
    "compute_soap": "bondml.features.soap",
    "BondmlError": "bondml.errors",
}

__all__ = [
    "BondDataset", "BondFeatures", "BondModel", "BondPredictions", "BondStore", "BondTable", "BondmlError", "CellId",
    "FeatureSettings", "__version__", "annotate", "compute_soap", "find_bonds", "ingest", "load_model", "predict",
    "predict_trajectory",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .api import BondModel, BondPredictions, annotate, ingest, load_model, predict, predict_trajectory
    from .core.dataset import BondDataset, BondFeatures
    from .core.settings import FeatureSettings
    from .core.table import BondTable
    from .errors import BondmlError
    from .features.soap import compute_soap
    from .store.db import BondStore
    from .structure.bonds import find_bonds
    from .types import CellId


def __getattr__(name: str) -> Any:
    """Import a public name on first use (keeps ``import bondml`` fast)."""
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'bondml' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Public names, including the ones not imported yet."""
    return sorted({*globals(), *_LAZY})
