"""In-memory bond datasets: moved to the core layer (:mod:`bondml.core.dataset`) so that the model
never imports the store; re-exported here under the old names."""

from __future__ import annotations

from ..core.dataset import _BOND_COLUMNS, BondDataset, BondFeatures  # noqa: F401

__all__ = ["BondDataset", "BondFeatures"]
