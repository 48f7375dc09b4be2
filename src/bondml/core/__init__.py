"""The core layer: the data model every other layer shares (and nothing else).

* ids and vocabularies: :class:`CellId` (where a cell sits in the study), bond types,
  compositions, the sub-run statuses of the original GETL scripts;
* :class:`FeatureSettings`: SOAP settings that travel with features, datasets and models;
* :class:`BondTable`: one columnar bond table with units in its schema (:data:`BOND_SCHEMA`),
  and :class:`BondColumns`, the one implementation of select / of_type / counts / groups that
  every bond container uses;
* :class:`BondDataset` / :class:`BondFeatures`: labelled bonds + per-atom SOAP, the training
  and model input type (``model`` sees these and arrays, never the store).

Layer rule (enforced by import-linter, see ``docs/architecture.md``): core imports only
``bondml.constants``, ``bondml.errors``, ``bondml.types`` and ``bondml.util``.
"""

from __future__ import annotations

from ..constants import BOND_TYPES, ELEMENTS, LABELLED_STATUSES, STATUSES
from ..types import CellId, bond_type, check_element, composition_counts, parse_composition, split_bond_type
from .dataset import BondDataset, BondFeatures
from .settings import PAPER_SETTINGS, FeatureSettings
from .table import BOND_SCHEMA, BondColumns, BondTable, Column, unit_of

__all__ = [
    "BOND_SCHEMA", "BOND_TYPES", "ELEMENTS", "LABELLED_STATUSES", "PAPER_SETTINGS", "STATUSES",
    "BondColumns", "BondDataset", "BondFeatures", "BondTable", "CellId", "Column", "FeatureSettings",
    "bond_type", "check_element", "composition_counts", "parse_composition", "split_bond_type", "unit_of",
]
