"""The study's cell augmentations ("exploit"): new cells from a quenched glass, no relaxation.

Each transform is a :class:`CellTransform`: a 3x3 matrix ``M`` that mixes the lattice vectors,
``new_cell = M @ cell`` (rows of ``cell`` are the lattice vectors a1, a2, a3, Angstrom), with the
fractional coordinates kept exactly (positions are *not* wrapped into the cell, as in the
original files). For the study's cubic/orthorhombic cells this is the same as a homogeneous
deformation in the lab frame; for a general cell it is the original's convention (the shear
``xy`` adds ``gamma * a2`` to ``a1``).

:data:`AUGMENTATIONS` lists the study's 14 transforms in the original numbering (sub-run k is
``AUGMENTATIONS[k - 1]``; sub-run 0 is the cell itself), checked against the 15 real cells of
Zr49Cu49Al2 run 21 to 1e-5 Angstrom:

====  ==============  =========================================
k     name            matrix
====  ==============  =========================================
1-6   shear_xy ...    identity + 0.5 at (0,1), (0,2), (1,0), (1,2), (2,0), (2,1)
7     tension_x       diag(1.02, 1, 1)
8     compression_x   diag(0.80, 1, 1)
9-12  y, z likewise   tension_y, compression_y, tension_z, compression_z
13    iso_1.01        1.01 * identity
14    iso_0.90        0.90 * identity
====  ==============  =========================================

Extend it by concatenation, e.g. ``augment(atoms, (*AUGMENTATIONS, shear("xy", 0.25)))``; the
numbering of the first 14 sub-runs stays the study's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from ..errors import BondmlError, ConfigError, InputFileError
from ..io.xyz import format_xyz, write_xyz

_AXES = {"x": 0, "y": 1, "z": 2}
_EXISTS = "exists with different content; pass overwrite=True to replace it"


@dataclass(frozen=True)
class CellTransform:
    """A named cell deformation: ``new_cell = matrix @ cell``, fractional coordinates kept."""

    name: str
    matrix: tuple[tuple[float, float, float], ...]
    description: str = ""

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=float)
        if m.shape != (3, 3) or not np.all(np.isfinite(m)):
            raise BondmlError(f"transform {self.name!r}: matrix must be a finite 3x3 array")
        if np.linalg.det(m) <= 0:
            raise BondmlError(f"transform {self.name!r}: matrix must have a positive determinant")

    def cell(self, cell: np.ndarray) -> np.ndarray:
        """The transformed 3x3 cell (rows = lattice vectors, Angstrom)."""
        return np.asarray(self.matrix, dtype=float) @ np.asarray(cell, dtype=float)

    def __call__(self, atoms: Atoms) -> Atoms:
        """A new ``Atoms`` with the transformed cell and the same fractional coordinates."""
        cell = np.asarray(atoms.cell.array, dtype=float)
        frac = np.linalg.solve(cell.T, np.asarray(atoms.positions, dtype=float).T).T
        new_cell = self.cell(cell)
        out = Atoms(symbols=atoms.get_chemical_symbols(), positions=frac @ new_cell, cell=new_cell, pbc=True)
        out.info["transform"] = self.name
        return out


def shear(plane: str, gamma: float) -> CellTransform:
    """Simple shear ``plane`` (e.g. ``"xy"``: ``a1 += gamma * a2``) of amount ``gamma``."""
    if len(plane) != 2 or plane[0] not in _AXES or plane[1] not in _AXES or plane[0] == plane[1]:
        raise BondmlError(f"shear plane {plane!r} must be two different axes out of x, y, z (e.g. 'xy')")
    m = np.eye(3)
    m[_AXES[plane[0]], _AXES[plane[1]]] = gamma
    return CellTransform(
        f"shear_{plane}", _tuple(m), f"simple shear {plane}, gamma {gamma:g} (a{_AXES[plane[0]] + 1} += "
        f"{gamma:g} a{_AXES[plane[1]] + 1})"
    )


def axial(axis: str, factor: float, name: str | None = None) -> CellTransform:
    """Stretch (factor > 1) or compress (factor < 1) lattice vector ``axis`` (x, y or z)."""
    if axis not in _AXES:
        raise BondmlError(f"axis {axis!r} must be x, y or z")
    m = np.eye(3)
    m[_AXES[axis], _AXES[axis]] = factor
    kind = "tension" if factor >= 1 else "compression"
    desc = f"{abs(factor - 1) * 100:g}% {kind} along {axis}"
    return CellTransform(name or f"{kind}_{axis}", _tuple(m), desc)


def isotropic(factor: float) -> CellTransform:
    """Isotropic scaling of the cell by ``factor``."""
    return CellTransform(f"iso_{factor:.2f}", _tuple(np.eye(3) * factor), f"isotropic scaling x{factor:g}")


_AUG_RE = re.compile(r"^(shear)-([xyz]{2})-([0-9.]+)$|^(axial)-([xyz])-([0-9.]+)$|^(iso)-([0-9.]+)$")


def parse_augmentation(name: str) -> CellTransform:
    """A transform from its name: ``shear-xy-0.25`` (gamma), ``axial-x-0.9`` (factor),
    ``iso-0.95`` (factor); :class:`~bondml.errors.ConfigError` (one line) otherwise."""
    m = _AUG_RE.match(name)
    if not m:
        raise ConfigError(f"augmentation {name!r} is not like shear-xy-0.25, axial-x-0.9 or iso-0.95")
    try:
        if m.group(1):
            t = shear(m.group(2), float(m.group(3)))
        elif m.group(4):
            t = axial(m.group(5), float(m.group(6)))
        else:
            t = isotropic(float(m.group(8)))
    except (BondmlError, ValueError) as exc:
        raise ConfigError(f"augmentation {name!r}: {exc}") from None
    return t


def _tuple(m: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    return tuple(tuple(float(v) for v in row) for row in m)  # type: ignore[return-value]


#: The study's 14 augmentations, in the original numbering (sub-run k = AUGMENTATIONS[k - 1]).
AUGMENTATIONS: tuple[CellTransform, ...] = (
    *(shear(p, 0.5) for p in ("xy", "xz", "yx", "yz", "zx", "zy")),
    *(t for ax in "xyz" for t in (axial(ax, 1.02), axial(ax, 0.80))),
    isotropic(1.01),
    isotropic(0.90),
)


def augment(atoms: Atoms, transforms: Sequence[CellTransform] = AUGMENTATIONS) -> list[Atoms]:
    """``[atoms, t1(atoms), t2(atoms), ...]``: index k = sub-run k (0 = a copy of the input)."""
    if not all(atoms.pbc):
        raise BondmlError("augment needs a periodic cell (pbc = T T T)")
    first = Atoms(symbols=atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=True)
    return [first, *(t(atoms) for t in transforms)]


def write_augmented(
    atoms: Atoms,
    out_dir: str | Path,
    nc: str,
    transforms: Sequence[CellTransform] = AUGMENTATIONS,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``<out_dir>/<k>/<nc>.xyz`` for k = 0..len(transforms) and return the paths.

    Nothing is written if any target exists with different content (unless ``overwrite``).
    """
    cells = augment(atoms, transforms)
    paths = [Path(out_dir) / str(k) / f"{nc}.xyz" for k in range(len(cells))]
    if not overwrite:
        for cell, p in zip(cells, paths, strict=True):
            if p.exists() and p.read_text(errors="replace") != format_xyz(cell):
                raise InputFileError(p, _EXISTS)
    for cell, p in zip(cells, paths, strict=True):
        write_xyz(cell, p, overwrite=overwrite)
    return paths
