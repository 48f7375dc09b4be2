"""DFT inputs of the study: the pw.x SCF input and the LOBSTER ``lobsterin``.

Defaults reproduce the shipped ``<NC>.scf.in`` and ``lobsterin`` of the reference sub-runs:
PBE PAW pseudopotentials (the functional comes from the UPF files, as in the study), ecutwfc
70 Ry, ecutrho 560 Ry, Fermi-Dirac smearing of 0.008 Ry, no symmetry, 2x2x2 shifted k-grid.

The number of bands follows the study's rule: ``nbnd = n + int(0.1 * n)`` where ``n`` is the
number of local basis functions LOBSTER projects on (Bunge basis: Al 3s 3p = 4, Cu 3s 4s 3p 3d
= 10, Zr 4s 5s 4p 4d = 10 per atom), so that pw.x computes at least as many bands as LOBSTER
needs, plus 10 %. For 49 Zr + 49 Cu + 2 Al: n = 988, nbnd = 1086 (every sub-run of run 21).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from ase import Atoms

from ..constants import ATOMIC_NUMBERS, LOBSTER_WINDOW
from ..errors import ConfigError, InputFileError
from ..structure.bonds import find_bonds
from ..types import check_element
from ..util import atomic_write_text

#: LOBSTER local basis of the study (``basisSet Bunge``), per element.
LOBSTER_BASIS: dict[str, tuple[str, ...]] = {
    "Al": ("3s", "3p"),
    "Cu": ("3s", "4s", "3p", "3d"),
    "Zr": ("4s", "5s", "4p", "4d"),
}
#: Pair window of the ``lobsterin-quippy`` reference files: QUIP's connectivity at the SOAP
#: cutoff, every pair with d <= 3.75 Angstrom, written from both atoms.
QUIPPY_WINDOW: tuple[float, float] = (0.0, 3.75)

_ORBITALS = {"s": 1, "p": 3, "d": 5, "f": 7}


@dataclass(frozen=True)
class QESettings:
    """pw.x SCF settings (energies in Ry). Defaults = the study's ``scf.in``.

    ``pseudopotentials`` and ``masses`` are ``(element, value)`` pairs; change them with
    :meth:`with_pseudopotentials`. ``nbnd=None`` applies the study's rule (see module doc).
    """

    ecutwfc: float = 70.0
    ecutrho: float = 560.0
    occupations: str = "smearing"
    smearing: str = "fd"
    degauss: float = 0.008
    nosym: bool = True
    noinv: bool = True
    electron_maxstep: int = 100
    conv_thr: float = 1.0e-6
    mixing_beta: float = 0.4
    kpoints: tuple[int, int, int] = (2, 2, 2)
    kshift: tuple[int, int, int] = (1, 1, 1)
    pseudopotentials: tuple[tuple[str, str], ...] = (
        ("Al", "Al.aryjr-1.0.0-ld1.UPF"),
        ("Cu", "Cu.aryjr-1.0.0-ld1.UPF"),
        ("Zr", "Zr.aryjr-1.0.0-ld1.UPF"),
    )
    masses: tuple[tuple[str, float], ...] = (("Al", 26.9815), ("Cu", 63.5463), ("Zr", 91.2240))
    nbnd: int | None = None
    extra_bands_fraction: float = 0.1
    verbosity: str = "high"
    tprnfor: bool = True
    wf_collect: bool = True
    input_dft: str | None = None

    def pseudopotential(self, element: str) -> str:
        """File name of ``element``'s pseudopotential (one-line error when not configured)."""
        d = dict(self.pseudopotentials)
        if element not in d:
            raise ConfigError(f"no pseudopotential configured for {element} (QESettings.pseudopotentials)")
        return d[element]

    def mass(self, element: str) -> float:
        """Atomic mass of ``element`` (amu) as written in ATOMIC_SPECIES."""
        d = dict(self.masses)
        if element not in d:
            raise ConfigError(f"no mass configured for {element} (QESettings.masses)")
        return d[element]

    def with_pseudopotentials(self, files: Mapping[str, str]) -> QESettings:
        """A copy with some pseudopotential file names replaced, e.g. ``{"Cu": "Cu.pbe-kjpaw.UPF"}``."""
        d = dict(self.pseudopotentials)
        d.update(files)
        return dataclasses.replace(self, pseudopotentials=tuple(sorted(d.items())))


def n_basis_functions(symbols: list[str], basis: Mapping[str, tuple[str, ...]] = LOBSTER_BASIS) -> int:
    """Number of local (LOBSTER) basis functions of a structure: s=1, p=3, d=5, f=7 per shell."""
    n = 0
    for el in symbols:
        if el not in basis:
            raise ConfigError(f"no LOBSTER basis configured for {el}")
        n += sum(_ORBITALS[shell[-1]] for shell in basis[el])
    return n


def study_nbnd(
    symbols: list[str], extra_fraction: float = 0.1, basis: Mapping[str, tuple[str, ...]] = LOBSTER_BASIS
) -> int:
    """The study's band count: ``n + int(extra_fraction * n)``, n = number of LOBSTER basis functions."""
    n = n_basis_functions(symbols, basis)
    return n + int(n * extra_fraction)


def _species(atoms: Atoms) -> list[str]:
    """Elements present, in the study's ATOMIC_SPECIES order (increasing Z: Al, Cu, Zr)."""
    els = {check_element(s) for s in atoms.get_chemical_symbols()}
    return sorted(els, key=lambda e: ATOMIC_NUMBERS[e])


def _fbool(v: bool) -> str:
    return ".true." if v else ".false."


def _fnum(v: float) -> str:
    """Fortran-friendly number: integers without a dot, others in the D exponent form."""
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    s = f"{v:.10g}"
    return s.replace("e", "D") if "e" in s else s


def _namelist(name: str, items: list[tuple[str, str]]) -> list[str]:
    lines = [f" &{name}"]
    for n, (k, v) in enumerate(items):
        sep = "," if n < len(items) - 1 else ""
        lines.append(f"{k:>28} = {v}{sep}")
    lines.append(" /")
    return lines


def format_pw_input(
    atoms: Atoms,
    pseudo_dir: str | Path,
    settings: QESettings = QESettings(),
    prefix: str = "pwscf",
    outdir: str | Path = "./out",
) -> str:
    """The text of a pw.x SCF input for ``atoms`` (cell in Angstrom, positions as crystal coords)."""
    if len(atoms) == 0:
        raise ConfigError("cannot write a pw.x input for an empty structure")
    species = _species(atoms)
    symbols = atoms.get_chemical_symbols()
    nbnd = settings.nbnd if settings.nbnd is not None else study_nbnd(symbols, settings.extra_bands_fraction)
    control = [
        ("title", f"'{prefix}'"),
        ("calculation", "'scf'"),
        ("restart_mode", "'from_scratch'"),
        ("outdir", f"'{outdir}'"),
        ("wfcdir", f"'{outdir}'"),
        ("pseudo_dir", f"'{str(pseudo_dir).rstrip('/')}/'"),
        ("prefix", f"'{prefix}'"),
        ("verbosity", f"'{settings.verbosity}'"),
        ("tprnfor", _fbool(settings.tprnfor)),
        ("wf_collect", _fbool(settings.wf_collect)),
    ]
    system = [
        ("ibrav", "0"),
        ("nat", str(len(atoms))),
        ("ntyp", str(len(species))),
        ("nbnd", str(nbnd)),
        ("ecutwfc", _fnum(settings.ecutwfc)),
        ("ecutrho", _fnum(settings.ecutrho)),
        ("occupations", f"'{settings.occupations}'"),
        ("smearing", f"'{settings.smearing}'"),
        ("degauss", _fnum(settings.degauss)),
        ("nosym", _fbool(settings.nosym)),
        ("noinv", _fbool(settings.noinv)),
    ]
    if settings.input_dft:
        system.append(("input_dft", f"'{settings.input_dft}'"))
    electrons = [
        ("electron_maxstep", str(settings.electron_maxstep)),
        ("conv_thr", _fnum(settings.conv_thr)),
        ("mixing_beta", _fnum(settings.mixing_beta)),
    ]
    cell = np.asarray(atoms.cell.array, dtype=float)
    frac = np.linalg.solve(cell.T, np.asarray(atoms.positions, dtype=float).T).T
    lines = _namelist("CONTROL", control) + _namelist("SYSTEM", system) + _namelist("ELECTRONS", electrons)
    lines.append("CELL_PARAMETERS {angstrom}")
    lines += [" ".join(f"{v:14.9f}" for v in row) for row in cell]
    lines.append("ATOMIC_SPECIES")
    lines += [f"   {el}  {settings.mass(el):.4f}   {settings.pseudopotential(el)}" for el in species]
    lines.append("ATOMIC_POSITIONS {crystal}")
    lines += [f"{s:<2} {f[0]:14.10f} {f[1]:14.10f} {f[2]:14.10f}" for s, f in zip(symbols, frac, strict=True)]
    lines.append("K_POINTS automatic")
    k, s = settings.kpoints, settings.kshift
    lines.append(f"  {k[0]} {k[1]} {k[2]}   {s[0]} {s[1]} {s[2]}")
    return "\n".join(lines) + "\n"


def write_pw_input(
    atoms: Atoms,
    path: str | Path,
    pseudo_dir: str | Path,
    settings: QESettings = QESettings(),
    prefix: str = "pwscf",
    outdir: str | Path = "./out",
    check: bool = True,
) -> Path:
    """Write a pw.x SCF input atomically.

    With ``check``, every pseudopotential must exist in ``pseudo_dir`` (one-line error naming the
    missing file; nothing is written then).
    """
    text = format_pw_input(atoms, pseudo_dir, settings, prefix, outdir)
    if check:
        for el in _species(atoms):
            f = Path(pseudo_dir) / settings.pseudopotential(el)
            if not f.is_file():
                raise InputFileError(f, f"pseudopotential for {el} not found")
    path = Path(path)
    atomic_write_text(path, text)
    return path


def format_lobsterin(
    atoms: Atoms,
    window: tuple[float, float] = LOBSTER_WINDOW,
    style: Literal["generator", "pairs"] = "generator",
    basis: Mapping[str, tuple[str, ...]] = LOBSTER_BASIS,
    both_directions: bool = False,
) -> str:
    """``lobsterin`` text: the study's keywords and basis, then the pairs to compute.

    ``style="generator"`` writes ``cohpGenerator from <lo> to <hi>`` (what the study ran);
    ``style="pairs"`` writes one ``cohpbetween atom i atom j offset ox oy oz`` line per pair with
    ``lo <= d <= hi`` (1-based atoms, periodic images included, offset = lattice shift of atom j);
    ``both_directions`` also writes each pair from its second atom, like ``lobsterin-quippy``.
    """
    lines = [
        "skipDOS",
        "skipCOOP",
        "skipPopulationAnalysis",
        "COHPstartEnergy -100.0",
        "COHPendEnergy 40.0",
        "basisSet Bunge",
    ]
    for el in _species(atoms):
        if el not in basis:
            raise ConfigError(f"no LOBSTER basis configured for {el}")
        lines.append(f"basisfunctions {el} {' '.join(basis[el])}")
    lo, hi = window
    if not 0 <= lo < hi:
        raise ConfigError(f"pair window {window} must satisfy 0 <= lo < hi (Angstrom)")
    if style == "generator":
        lines.append(f"cohpGenerator from {lo:.2f} to {hi:.2f}")
    elif style == "pairs":
        b = find_bonds(atoms, window=window)
        rows = [(int(i), int(j), tuple(int(x) for x in s)) for i, j, s in zip(b.i, b.j, b.shift, strict=True)]
        if both_directions:
            rows += [(j, i, tuple(-x for x in s)) for i, j, s in rows]
            rows.sort(key=lambda r: (r[0], r[1], r[2]))
        lines += [f"cohpbetween atom {i + 1} atom {j + 1} offset {s[0]} {s[1]} {s[2]}" for i, j, s in rows]
    else:
        raise ConfigError(f"lobsterin style {style!r} must be 'generator' or 'pairs'")
    return "\n".join(lines) + "\n"


def write_lobsterin(
    atoms: Atoms,
    path: str | Path,
    window: tuple[float, float] = LOBSTER_WINDOW,
    style: Literal["generator", "pairs"] = "generator",
    basis: Mapping[str, tuple[str, ...]] = LOBSTER_BASIS,
    both_directions: bool = False,
) -> Path:
    """Write a ``lobsterin`` atomically (see :func:`format_lobsterin`)."""
    path = Path(path)
    atomic_write_text(path, format_lobsterin(atoms, window, style, basis, both_directions))
    return path
