"""Discovery of LOBSTER runs in any folder layout, and the files of one run.

A *run* is a folder holding a LOBSTER pair list (``ICOHPLIST.lobster``, or ``ICOOPLIST`` /
``ICOBILIST`` for the other targets, plain or ``.gz``), approximate xTB labels
(``ICOHPLIST.xtb``) or a ``lobsterin``/``lobsterout``, next to
the structure the run was made on:

* **study** layout ``ML/big-data-full/<NC>/c/md/lammps/100/<run>/2000/<sub>/`` (``<NC>.xyz``,
  ``<NC>.scf.in/.scf.out``): ids ``(NC, run, sub)`` exactly as in the original study; when the
  root is such a tree, every sub-run folder is a run (also those where nothing ran yet).
* **VASP**: ``POSCAR`` (else ``CONTCAR``), convergence and energies from ``vasprun.xml`` or
  ``OUTCAR`` (plain or ``.gz``).
* **Quantum ESPRESSO**: ``*.scf.in`` (structure) and ``*.scf.out`` (convergence), or an extended
  XYZ (``*.xyz``/``*.extxyz``) for the structure.

Ids of other folders (documented in docs/formats.md): a ``cells.csv`` in the root with columns
``path,composition,run,sub_run`` (any of the last three may be empty) maps folders (relative
paths, shell patterns allowed) to ids; otherwise the composition is the structure's in atomic
percent (``Cu50Ni50``), the run is the folder's parent (its trailing integer when the parents'
integers are distinct, else their sorted position, from 1) and the sub-run the folder's own
trailing integer (else its sorted position among siblings, from 0).
"""

from __future__ import annotations

import csv
import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ase import Atoms

from ..errors import InputFileError
from ..types import CellId
from .lobster import find_list
from .vasp import VASP_STRUCTURES, find_vasp_output

#: Pair list file of each target.
TARGET_FILES: dict[str, str] = {"icohp": "ICOHPLIST.lobster", "icoop": "ICOOPLIST.lobster",
                                "icobi": "ICOBILIST.lobster"}
MANIFEST = "cells.csv"


@dataclass(frozen=True)
class RunFiles:
    """Files of one LOBSTER run (``None`` where absent).

    ``code`` is ``espresso``, ``vasp`` or ``none`` (no DFT output); ``structure_format`` an
    ase.io format name (``extxyz``, ``vasp``, ``espresso-in``).
    """

    folder: Path
    structure: Path | None
    structure_format: str | None
    code: str
    dft_output: Path | None
    lobsterout: Path | None
    lobsterin: Path | None
    lists: dict[str, Path] = field(default_factory=dict)

    def pair_list(self, target: str = "icohp") -> Path | None:
        """The pair list of ``target`` (plain or .gz), None if the run has none."""
        return self.lists.get(target)

    def fingerprint_files(self, target: str = "icohp") -> list[Path]:
        """Inputs whose content decides what is extracted."""
        out = [p for p in (self.structure, self.pair_list(target), self.dft_output, self.lobsterout) if p]
        return out


def _lists(folder: Path) -> dict[str, Path]:
    out = {}
    for t, name in TARGET_FILES.items():
        p = find_list(folder, name)
        if p is not None:
            out[t] = p
    return out


def _maybe(p: Path) -> Path | None:
    return p if p.is_file() else None


def study_files(folder: str | Path, nc: str) -> RunFiles:
    """Files of a sub-run of the study layout (``<nc>.xyz``, ``<nc>.scf.out``)."""
    folder = Path(folder)
    xyz = folder / f"{nc}.xyz"
    return RunFiles(folder, xyz, "extxyz", "espresso", _maybe(folder / f"{nc}.scf.out"),
                    find_list(folder, "lobsterout"), _maybe(folder / "lobsterin"), _lists(folder))


def folder_files(folder: str | Path) -> RunFiles:
    """Files of a run in any layout (VASP, Quantum ESPRESSO, extended XYZ); see the module doc."""
    folder = Path(folder)
    lists = _lists(folder)
    lobsterout = find_list(folder, "lobsterout")
    lobsterin = _maybe(folder / "lobsterin")
    vasp_struct = next((folder / n for n in VASP_STRUCTURES if (folder / n).is_file()), None)
    vasp_out = find_vasp_output(folder)
    scf_in = sorted(folder.glob("*.scf.in")) or sorted(folder.glob("*.pwi"))
    scf_out = sorted(folder.glob("*.scf.out")) or sorted(folder.glob("*.pwo"))
    xyz = sorted(p for p in folder.iterdir() if p.suffix in (".xyz", ".extxyz") and p.is_file())
    if vasp_struct is not None or vasp_out is not None:
        return RunFiles(folder, vasp_struct, "vasp" if vasp_struct else None, "vasp", vasp_out, lobsterout,
                        lobsterin, lists)
    if scf_in or scf_out:
        stem = (scf_in or scf_out)[0].name.split(".")[0]
        same_xyz = [p for p in xyz if p.stem == stem]
        struct: Path | None
        fmt: str | None
        if same_xyz or xyz:
            struct, fmt = (same_xyz or xyz)[0], "extxyz"
        else:
            struct, fmt = (scf_in[0], "espresso-in") if scf_in else (None, None)
        return RunFiles(folder, struct, fmt, "espresso", scf_out[0] if scf_out else None, lobsterout, lobsterin,
                        lists)
    if xyz:
        return RunFiles(folder, xyz[0], "extxyz", "none", None, lobsterout, lobsterin, lists)
    return RunFiles(folder, None, None, "none", None, lobsterout, lobsterin, lists)


@dataclass(frozen=True)
class Run:
    """One discovered run: its id, files, layout (``study``/``vasp``/``espresso``/``extxyz``) and
    path relative to the discovery root."""

    cell: CellId
    files: RunFiles
    layout: str
    relpath: str


def _is_run_folder(folder: Path, names: set[str]) -> bool:
    if any(n in names or f"{n}.gz" in names for n in TARGET_FILES.values()) or "ICOHPLIST.xtb" in names:
        return True
    return "lobsterin" in names or "lobsterout" in names or "lobsterout.gz" in names


_TRAIL = re.compile(r"(\d+)$")


def _trailing_int(name: str) -> int | None:
    m = _TRAIL.search(name)
    return int(m.group(1)) if m else None


def composition_name(symbols: list[str]) -> str:
    """Composition in atomic percent, heaviest element first: ``Cu50Ni50``, ``Zr49Cu49Al2``
    (one decimal when a percentage is not an integer)."""
    from ase.data import atomic_numbers

    n = len(symbols)
    counts: dict[str, int] = {}
    for s in symbols:
        counts[s] = counts.get(s, 0) + 1
    parts = []
    for el in sorted(counts, key=lambda e: -atomic_numbers[e]):
        p = 100.0 * counts[el] / n
        parts.append(f"{el}{int(round(p))}" if abs(p - round(p)) < 1e-9 else f"{el}{p:.1f}")
    return "".join(parts)


def read_manifest(root: Path) -> list[dict[str, str]]:
    """Rows of ``<root>/cells.csv`` (``path,composition,run,sub_run``), [] when there is none."""
    p = root / MANIFEST
    if not p.is_file():
        return []
    try:
        with p.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InputFileError(p, f"cannot read the manifest ({exc})") from None
    if rows and "path" not in rows[0]:
        raise InputFileError(p, "manifest needs a 'path' column (path,composition,run,sub_run)")
    for k, r in enumerate(rows, start=2):
        for col in ("run", "sub_run"):
            v = (r.get(col) or "").strip()
            if v and not v.lstrip("-").isdigit():
                raise InputFileError(p, f"line {k}: {col} {v!r} is not an integer")
    return rows


def _manifest_entry(rows: list[dict[str, str]], rel: str) -> dict[str, str]:
    for r in rows:
        pat = (r.get("path") or "").strip().strip("/")
        if pat and (rel == pat or fnmatch.fnmatchcase(rel, pat)):
            return r
    return {}


def is_study_tree(root: str | Path) -> bool:
    """True when ``root`` holds (or is) the study's ``ML/big-data-full`` tree."""
    from .getl import _base

    try:
        _base(Path(root))
    except InputFileError:
        return False
    return True


def find_runs(root: str | Path, composition_of: object = None) -> list[Run]:
    """Every LOBSTER run under ``root``, sorted by id.

    A study tree (``ML/big-data-full``) is discovered exactly as the study did (every sub-run
    folder). Any other folder is walked (hidden folders skipped) for run folders; ids follow the
    manifest or the naming rule of the module docstring. ``composition_of(files) -> str`` may
    replace the composition rule (default: read the structure).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputFileError(root, "not a folder")
    if is_study_tree(root):
        from .getl import discover, subrun_path, tree_root

        top = tree_root(root)
        return [Run(c, study_files(subrun_path(top, c), c.nc), "study",
                    str(subrun_path(top, c).relative_to(top))) for c in discover(root)]
    folders: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if _is_run_folder(Path(dirpath), set(filenames)):
            folders.append(Path(dirpath))
    rows = read_manifest(root)
    comp = composition_of or _structure_composition
    # the naming rule: parents -> runs, folders -> sub-runs
    by_parent: dict[Path, list[Path]] = {}
    for f in folders:
        by_parent.setdefault(f.parent, []).append(f)
    parents = sorted(by_parent)
    p_ints = [_trailing_int(p.name) for p in parents]
    use_p_int = None not in p_ints and len(set(p_ints)) == len(p_ints)
    runs: list[Run] = []
    for pk, parent in enumerate(parents):
        kids = sorted(by_parent[parent], key=lambda p: (_trailing_int(p.name) is None, _trailing_int(p.name) or 0,
                                                         p.name))
        k_ints = [_trailing_int(k.name) for k in kids]
        use_k_int = None not in k_ints and len(set(k_ints)) == len(k_ints)
        for kk, f in enumerate(kids):
            files = folder_files(f)
            rel = f.relative_to(root).as_posix() if f != root else "."
            entry = _manifest_entry(rows, rel)
            nc = (entry.get("composition") or "").strip() or comp(files)  # type: ignore[operator]
            run = (entry.get("run") or "").strip()
            sub = (entry.get("sub_run") or "").strip()
            run_i = int(run) if run else (int(p_ints[pk] or 0) if use_p_int else pk + 1)
            sub_i = int(sub) if sub else (int(k_ints[kk] or 0) if use_k_int else kk)
            layout = files.code if files.code != "none" else ("extxyz" if files.structure else "none")
            runs.append(Run(CellId(str(nc), int(run_i), int(sub_i)), files, layout, rel))
    seen: dict[CellId, str] = {}
    for r in runs:
        if r.cell in seen:
            raise InputFileError(root, f"folders {seen[r.cell]!r} and {r.relpath!r} get the same id {r.cell}; "
                                       f"give them distinct run/sub_run in {MANIFEST}")
        seen[r.cell] = r.relpath
    return sorted(runs, key=lambda r: r.cell)


def read_structure(files: RunFiles) -> Atoms:
    """The structure of a run as ``ase.Atoms`` (ase.io: extxyz, VASP POSCAR, pw.x input), with
    one-line errors; positions exactly as in the file (LOBSTER's translations refer to them)."""
    from ase.io import read

    p = files.structure
    if p is None:
        raise InputFileError(files.folder, "no structure (POSCAR/CONTCAR, *.scf.in or *.xyz)")
    if not p.is_file():
        raise InputFileError(p, "file not found")
    try:
        if p.suffix == ".gz":
            import gzip
            import io

            atoms = read(io.StringIO(gzip.decompress(p.read_bytes()).decode()), format=files.structure_format)
        else:
            atoms = read(p, format=files.structure_format)
    except KeyError as exc:
        raise InputFileError(p, f"unknown element {exc.args[0]!r}") from None
    except Exception as exc:  # noqa: BLE001 - ase raises many types
        raise InputFileError(p, f"cannot read {files.structure_format} ({type(exc).__name__}: {exc})") from None
    if not isinstance(atoms, Atoms) or len(atoms) == 0:
        raise InputFileError(p, "no atoms")
    if not atoms.pbc.all() or atoms.cell.volume < 1e-6:
        raise InputFileError(p, "no periodic cell")
    return atoms


def _structure_composition(files: RunFiles) -> str:
    try:
        atoms = read_structure(files)
    except InputFileError:
        return "unknown"
    return composition_name(atoms.get_chemical_symbols())
