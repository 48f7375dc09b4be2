"""Data bondml needs at run time, shipped inside the package, and where the (larger) reference
data of the study lives.

Package data (found through :mod:`importlib.resources`, so an installed wheel works outside any
checkout): the study's EAM potential (:func:`eam_potential`), the 10,000-atom production cell
(:func:`production_cell`) and the original label-only tables PBSSDB/DB4/DB8 that train the
distance-only fallback (:func:`label_tables_root`, laid out as ``ML/big-data-full/...``). In a
clone, ``data/reference-data`` links to these same files.

The full reference data (run 21's DFT/LOBSTER cells, the paper's test files) is only in a clone
or at ``$BONDML_REFERENCE_DATA`` (:func:`reference_root`).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ..errors import BondmlError

#: Package-data file names (inside ``bondml/data``).
EAM_FILE = "ZrCuAl-2011.lammps.eam"
PRODUCTION_CELL_FILE = "Zr49Cu49Al2-10000-1-1-1.data"
TABLES_DIR = "tables"


def package_file(name: str) -> Path:
    """A file or folder of the package data as a real path (installed wheel or source tree)."""
    p = resources.files(__name__).joinpath(name)
    path = Path(str(p))
    if not path.exists():
        raise BondmlError(f"bondml package data {name!r} not found at {path} (broken installation?)")
    return path


def reference_root() -> Path:
    """Root of the reference data (the folder holding ``ML/``, ``SS-ML/``, ``TT/``...).

    Looked up in order: ``$BONDML_REFERENCE_DATA``, the project's vendored ``data/reference-data``,
    and ``../shared/reference-data`` beside the project checkout.
    """
    env = os.environ.get("BONDML_REFERENCE_DATA")
    candidates = [Path(env)] if env else []
    project = Path(__file__).resolve().parents[3]
    candidates += [project / "data" / "reference-data", project.parent / "shared" / "reference-data"]
    for c in candidates:
        if (c / "ML").is_dir():
            return c
    raise BondmlError(
        "reference data not found: set BONDML_REFERENCE_DATA or run from a clone with data/reference-data"
    )


def run21_dir() -> Path:
    """The real 100-atom run 21 of Zr49Cu49Al2 (sub-runs in ``2000/<k>``; reference data)."""
    return reference_root() / "ML/big-data-full/Zr49Cu49Al2/c/md/lammps/100/21"


def eam_potential() -> Path:
    """The study's EAM potential file (LAMMPS eam/alloy, elements Zr Cu Al; package data)."""
    return package_file(EAM_FILE)


def production_cell() -> Path:
    """The 10,000-atom Zr49Cu49Al2 LAMMPS data file of the deployment study (package data)."""
    return package_file(PRODUCTION_CELL_FILE)


def label_tables_root() -> Path:
    """Root holding ``ML/big-data-full/{Zr49Cu49Al2-PBSSDB,DB4,DB8}``, the original label-only
    tables (package data; the default source of the distance-only fallback model)."""
    return package_file(TABLES_DIR)
