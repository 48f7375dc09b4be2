"""Where the bundled reference data lives."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import BondmlError


def reference_root() -> Path:
    """Root of the reference data (the folder holding ``ML/``, ``SS-ML/``, ``TT/``...).

    Looked up in order: ``$BONDML_REFERENCE_DATA``, the project's vendored ``data/reference-data``,
    and ``../shared/reference-data`` beside the project checkout.
    """
    env = os.environ.get("BONDML_REFERENCE_DATA")
    candidates = [Path(env)] if env else []
    project = Path(__file__).resolve().parents[2]
    candidates += [project / "data" / "reference-data", project.parent / "shared" / "reference-data"]
    for c in candidates:
        if (c / "ML").is_dir():
            return c
    raise BondmlError(
        "reference data not found: set BONDML_REFERENCE_DATA or run from a clone with data/reference-data"
    )


def run21_dir() -> Path:
    """The real 100-atom run 21 of Zr49Cu49Al2 (sub-runs in ``2000/<k>``)."""
    return reference_root() / "ML/big-data-full/Zr49Cu49Al2/c/md/lammps/100/21"


def eam_potential() -> Path:
    """The study's EAM potential file (LAMMPS eam/alloy, elements Zr Cu Al)."""
    return reference_root() / "atomistic_models/ZrCuAl-2011.lammps.eam"


def production_cell() -> Path:
    """The 10,000-atom Zr49Cu49Al2 LAMMPS data file of the deployment study."""
    return reference_root() / "SS-ML/Zr49Cu49Al2/c/md/lammps/ultimate/2/Zr49Cu49Al2-10000-1-1-1.data"
