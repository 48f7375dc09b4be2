"""Extended XYZ in the study's layout (the quenched and augmented cells of the reference data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from ..errors import InputFileError
from ..util import atomic_write_text

_EXISTS = "exists with different content; pass overwrite=True to replace it"


def format_xyz(atoms: Atoms) -> str:
    """Extended XYZ text in the original's layout (Lattice rows = a1 a2 a3, 6 decimals, Angstrom)."""
    c = np.asarray(atoms.cell.array, dtype=float)
    lat = "  ".join(" ".join(f"{v:10f}" for v in row) for row in c)
    lines = [f"{len(atoms)}", f'Lattice="{lat}" Properties=species:S:1:pos:R:3 pbc="T T T"']
    for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True):
        lines.append(f"{s} {p[0]:10f} {p[1]:10f} {p[2]:10f}")
    return "\n".join(lines) + "\n"


def write_xyz(atoms: Atoms, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``atoms`` as extended XYZ atomically; an existing *different* file needs ``overwrite``."""
    path = Path(path)
    text = format_xyz(atoms)
    if path.exists() and not overwrite:
        if path.read_text(errors="replace") == text:
            return path
        raise InputFileError(path, _EXISTS)
    atomic_write_text(path, text)
    return path
