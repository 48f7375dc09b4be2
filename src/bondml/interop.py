"""Structures from other libraries: a pymatgen ``Structure`` is accepted wherever bondml takes an
``ase.Atoms`` (pymatgen is optional; it is imported only when such an object is given).

Core-level module (depends on :mod:`bondml.errors` and ase only).
"""

from __future__ import annotations

from typing import Any

from ase import Atoms

from .errors import BondmlError


def is_pymatgen_structure(obj: Any) -> bool:
    """True for a ``pymatgen.core.Structure`` (checked without importing pymatgen)."""
    return any(c.__module__.startswith("pymatgen.") and c.__name__ in ("Structure", "IStructure")
               for c in type(obj).__mro__)


def as_atoms(obj: Any) -> Atoms:
    """``obj`` as ``ase.Atoms``: Atoms unchanged; a pymatgen ``Structure`` converted with
    ``pymatgen.io.ase.AseAtomsAdaptor`` (Cartesian positions in Angstrom kept as they are, periodic
    in the directions of its lattice's ``pbc``). Anything else: one-line :class:`BondmlError`."""
    if isinstance(obj, Atoms):
        return obj
    if is_pymatgen_structure(obj):
        try:
            from pymatgen.io.ase import AseAtomsAdaptor
        except ImportError:  # pragma: no cover - a Structure implies pymatgen is importable
            raise BondmlError("a pymatgen Structure was given but pymatgen.io.ase cannot be imported") from None
        atoms = AseAtomsAdaptor.get_atoms(obj)
        atoms.calc = None
        return atoms
    raise BondmlError(f"expected an ase.Atoms or a pymatgen Structure, got {type(obj).__name__}")
