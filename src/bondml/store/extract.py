"""Extract + Transform for one sub-run: structure, status, LOBSTER bonds matched to periodic
bonds, per-atom SOAP. Pure functions over a folder; no store involved."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from ..constants import LABEL_WINDOW, LOBSTER_WINDOW
from ..errors import InputFileError
from ..features.soap import PAPER_SETTINGS, FeatureSettings, compute_bond_features
from ..io.getl import StatusReport, SubRunFiles, classify, discover, subrun_path
from ..io.lobster import read_icohplist
from ..structure.bonds import Bonds, find_bonds, match_pairs
from ..types import CellId, check_element
from ..util import sha256_file
from .dataset import BondDataset

#: Largest accepted difference between LOBSTER's and our distance for a matched pair (Angstrom).
DISTANCE_TOLERANCE = 1e-4


def read_cell(path: str | Path) -> Atoms:
    """Read an extended XYZ cell with ase.io, with one-line errors and element checks."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        atoms = read(path, format="extxyz")
    except KeyError as exc:  # ase's way of saying it does not know a chemical symbol
        raise InputFileError(path, f"unknown element {exc.args[0]!r}: bondml models the Zr-Cu-Al system") from None
    except Exception as exc:  # noqa: BLE001 - ase raises many types
        raise InputFileError(path, f"cannot read extended XYZ ({type(exc).__name__}: {exc})") from None
    if not isinstance(atoms, Atoms) or len(atoms) == 0:
        raise InputFileError(path, "no atoms")
    for s in set(atoms.get_chemical_symbols()):
        try:
            check_element(s)
        except Exception as exc:  # noqa: BLE001
            raise InputFileError(path, str(exc)) from None
    if not atoms.pbc.all() or atoms.cell.volume < 1e-6:
        raise InputFileError(path, "no periodic cell (Lattice missing?)")
    return atoms


@dataclass
class CellExtract:
    """Everything ETL takes from one sub-run.

    ``bonds`` are all structure bonds in the LOBSTER window; ``minus_icohp`` (eV) is aligned with
    them (NaN where LOBSTER has no value); ``unmatched`` lists LOBSTER rows with no structure bond
    (the original's DUB list) as strings. ``soap`` is per atom, or per bond of ``bonds`` for
    bond-centred settings (None when not computed).
    """

    cell: CellId
    folder: Path
    status: StatusReport
    atoms: Atoms | None
    bonds: Bonds | None
    minus_icohp: np.ndarray | None
    unmatched: list[str]
    soap: np.ndarray | None
    sources: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    label_source: str = "lobster"


def _check_consistent(atoms: Atoms, icohp_path: Path, el_i: np.ndarray, el_j: np.ndarray,
                      i: np.ndarray, j: np.ndarray, xyz_path: Path) -> None:
    n = len(atoms)
    top = int(max(i.max(initial=-1), j.max(initial=-1)))
    if top >= n:
        raise InputFileError(icohp_path, f"names atom {top + 1} but {xyz_path.name} has {n} atoms")
    sym = np.array(atoms.get_chemical_symbols(), dtype=object)
    bad = np.flatnonzero((sym[i] != el_i) | (sym[j] != el_j))
    if bad.size:
        k = int(bad[0])
        a = int(i[k]) if sym[i[k]] != el_i[k] else int(j[k])
        lob = el_i[k] if sym[i[k]] != el_i[k] else el_j[k]
        raise InputFileError(
            icohp_path, f"atoms do not match {xyz_path.name}: atom {a + 1} is {sym[a]} there but {lob} here"
        )


def extract_cell(
    folder: str | Path,
    cell: CellId,
    settings: FeatureSettings | None = PAPER_SETTINGS,
    window: tuple[float, float] = LOBSTER_WINDOW,
    icohp_file: str = "ICOHPLIST.lobster",
    label_source: str = "lobster",
) -> CellExtract:
    """Read, classify, match and featurise one sub-run.

    Never raises for a bad sub-run: problems end in ``error`` (one line naming the file) and
    the status. ``settings=None`` skips SOAP.
    """
    folder = Path(folder)
    files = SubRunFiles(folder, cell.nc)
    status = classify(folder, cell.nc)
    ex = CellExtract(cell, folder, status, None, None, None, [], None, label_source=label_source)
    try:
        atoms = read_cell(files.xyz)
        ex.atoms = atoms
        ex.sources[files.xyz.name] = sha256_file(files.xyz)
        bonds = find_bonds(atoms, window=window)
        ex.bonds = bonds
        labels = np.full(len(bonds), np.nan)
        icohp_path = folder / icohp_file
        usable = status.labelled if label_source == "lobster" else icohp_path.is_file()
        if usable:
            lst = read_icohplist(icohp_path)
            ex.sources[icohp_path.name] = sha256_file(icohp_path)
            _check_consistent(atoms, icohp_path, lst.element_i, lst.element_j, lst.i, lst.j, files.xyz)
            m = match_pairs(bonds, lst.i, lst.j, lst.shift, lst.distance)
            ok = m.index >= 0
            if ok.any():
                err = np.abs(bonds.distance[m.index[ok]] - lst.distance[ok])
                if err.max() > DISTANCE_TOLERANCE:
                    k = int(np.flatnonzero(ok)[np.argmax(err)])
                    raise InputFileError(
                        icohp_path,
                        f"COHP# {lst.index[k]} distance {lst.distance[k]:.5f} A differs from the structure's "
                        f"{bonds.distance[m.index[k]]:.5f} A (xyz and ICOHPLIST from different cells?)",
                    )
            labels[m.index[ok]] = lst.minus_icohp[ok]
            ex.unmatched = [
                f"{lst.element_i[k]}{lst.i[k] + 1}-{lst.element_j[k]}{lst.j[k] + 1} t={tuple(lst.translation[k])}"
                for k in m.unmatched
            ]
        ex.minus_icohp = labels
        if "icohp_error" in status.details:
            ex.error = str(status.details["icohp_error"])
        for name in (files.scf_out, files.lobsterout):
            if name.is_file():
                ex.sources[name.name] = sha256_file(name)
        if settings is not None:
            # per atom (kind "atom") or one row per bond of ``bonds`` (kind "bond")
            ex.soap = compute_bond_features(atoms, bonds.i, bonds.j, bonds.shift, settings)[0]
    except InputFileError as exc:
        ex.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad cell must not stop a whole ingest
        ex.error = f"{folder}: {type(exc).__name__}: {exc}"
    return ex


def extracts_to_dataset(
    extracts: Iterable[CellExtract],
    settings: FeatureSettings,
    label_window: tuple[float, float] = LABEL_WINDOW,
) -> BondDataset:
    """Labelled bonds (``label_window``, Angstrom) of the given extracts as one :class:`BondDataset`."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "bond_type", "distance", "y", "nc", "run", "sub_run", "i", "j", "shift", "label_source",
        "atom_i", "atom_j")}
    soaps: list[np.ndarray] = []
    offset = 0
    lineage_cells = []
    for ex in extracts:
        if ex.error or ex.bonds is None or ex.minus_icohp is None or ex.soap is None:
            continue
        b = ex.bonds
        keep = (~np.isnan(ex.minus_icohp)) & (b.distance >= label_window[0]) & (b.distance <= label_window[1])
        n = int(keep.sum())
        if n == 0:
            continue
        cols["bond_type"].append(b.type[keep].astype(str))
        cols["distance"].append(b.distance[keep])
        cols["y"].append(ex.minus_icohp[keep])
        cols["nc"].append(np.full(n, ex.cell.nc, dtype=object).astype(str))
        cols["run"].append(np.full(n, ex.cell.run, dtype=np.int64))
        cols["sub_run"].append(np.full(n, ex.cell.sub_run, dtype=np.int64))
        cols["i"].append(b.i[keep])
        cols["j"].append(b.j[keep])
        cols["shift"].append(b.shift[keep])
        cols["label_source"].append(np.full(n, ex.label_source, dtype=object).astype(str))
        if settings.kind == "bond":  # one descriptor row per bond: keep the labelled ones
            rows = ex.soap[keep]
            cols["atom_i"].append(np.arange(n) + offset)
            cols["atom_j"].append(np.arange(n) + offset)
        else:
            rows = ex.soap
            cols["atom_i"].append(b.i[keep] + offset)
            cols["atom_j"].append(b.j[keep] + offset)
        soaps.append(rows)
        offset += rows.shape[0]
        lineage_cells.append({"cell": str(ex.cell), "sources": ex.sources})
    if not soaps:
        raise InputFileError("<dataset>", "no labelled bonds found")
    arrays = {k: np.concatenate(v) for k, v in cols.items()}
    arrays["shift"] = arrays["shift"].reshape(-1, 3)
    return BondDataset(
        **arrays,
        atom_soap=np.concatenate(soaps, axis=0),
        settings=settings,
        lineage={"cells": lineage_cells, "label_window": list(label_window)},
    )


def dataset_from_getl(
    root: str | Path,
    settings: FeatureSettings = PAPER_SETTINGS,
    cells: Iterable[CellId] | None = None,
    label_window: tuple[float, float] = LABEL_WINDOW,
    progress: Callable[[CellId], None] | None = None,
) -> BondDataset:
    """Shortcut without a store: labelled bonds of every (or the given) sub-run of a GETL tree."""
    from ..io.getl import tree_root

    top = tree_root(root)
    todo = list(cells) if cells is not None else discover(root)
    out = []
    for c in todo:
        out.append(extract_cell(subrun_path(top, c), c, settings))
        if progress:
            progress(c)
    return extracts_to_dataset(out, settings, label_window)
