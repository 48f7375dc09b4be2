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
from ..core.dataset import BondDataset
from ..errors import InputFileError
from ..features.soap import PAPER_SETTINGS, FeatureSettings, compute_bond_features
from ..io.getl import StatusReport, classify_files, discover, subrun_path
from ..io.lobster import IcohpList, read_icohplist, read_lobsterin
from ..io.runs import RunFiles, read_structure, study_files
from ..structure.bonds import Bonds, find_bonds, infer_shifts, match_pairs
from ..types import CellId, check_element
from ..util import sha256_file

#: Largest accepted difference between LOBSTER's and our distance for a matched pair (Angstrom).
DISTANCE_TOLERANCE = 1e-4
#: Structure bonds this close to an edge of LOBSTER's window may fall either side of it after
#: LOBSTER's own rounding; they are not required in the list (Angstrom).
WINDOW_EDGE_TOLERANCE = 1e-4
#: Sign that makes each target positive for bonding: -ICOHP (eV), ICOOP (e), ICOBI (1).
TARGET_SIGN = {"icohp": -1.0, "icoop": 1.0, "icobi": 1.0}
TARGET_UNITS = {"icohp": "eV", "icoop": "e", "icobi": "1"}
TARGET_LABELS = {"icohp": "-ICOHP", "icoop": "ICOOP", "icobi": "ICOBI"}


def lobster_window(files: RunFiles) -> tuple[float, float] | None:
    """LOBSTER's pair window of a run, from its lobsterin: one ``cohpGenerator from a to b``
    without type restrictions and no ``cohpbetween`` pairs; None when unknown."""
    if files.lobsterin is None:
        return None
    try:
        li = read_lobsterin(files.lobsterin)
    except InputFileError:
        return None
    gens = [ln.lower().split() for ln in files.lobsterin.read_text(errors="replace").splitlines()
            if ln.strip().lower().startswith("cohpgenerator")]
    if len(li.generator) != 1 or li.pairs.size or len(gens) != 1 or "type" in gens[0]:
        return None
    return li.generator[0]


def check_pair_list(lst: IcohpList, bonds: Bonds, index: np.ndarray, window: tuple[float, float]) -> None:
    """The list must hold every structure bond inside LOBSTER's ``window`` (Angstrom): bondml
    reproduces LOBSTER's pair search exactly, so a missing pair means a truncated list or
    another structure. One-line :class:`InputFileError` naming the first missing pair."""
    used = np.zeros(len(bonds), dtype=bool)
    used[index[index >= 0]] = True
    lo, hi = window
    inner = (bonds.distance >= lo + WINDOW_EDGE_TOLERANCE) & (bonds.distance <= hi - WINDOW_EDGE_TOLERANCE)
    missing = np.flatnonzero(inner & ~used)
    if missing.size:
        k = int(missing[0])
        raise InputFileError(
            lst.path, f"lacks {missing.size} of the structure's pairs in LOBSTER's {lo:g}-{hi:g} A window, e.g. "
                      f"atoms {bonds.i[k] + 1}-{bonds.j[k] + 1} at {bonds.distance[k]:.5f} A (truncated, or "
                      "another structure?)")


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
    window: tuple[float, float] | None = LOBSTER_WINDOW,
    icohp_file: str = "ICOHPLIST.lobster",
    label_source: str = "lobster",
    files: RunFiles | None = None,
    target: str = "icohp",
) -> CellExtract:
    """Read, classify, match and featurise one run (study layout unless ``files`` are given).

    Never raises for a bad run: problems end in ``error`` (one line naming the file) and the
    status. ``settings=None`` skips SOAP. ``window`` is LOBSTER's pair window (Angstrom); with
    ``files`` of another layout it comes from the run's lobsterin (``None``: from there, else the
    list's own distance range). LOBSTER lists must agree with the structure's pair search in
    that window (:func:`check_pair_list`); lists without translations (LOBSTER 2.x) get them
    from the structure. ``target`` picks ICOHPLIST/ICOOPLIST/ICOBILIST; labels are stored with
    the bonding-positive sign (-ICOHP, ICOOP, ICOBI).
    """
    folder = Path(folder)
    study = files is None
    if files is None:
        files = study_files(folder, cell.nc)
    status = classify_files(files, target)
    ex = CellExtract(cell, folder, status, None, None, None, [], None, label_source=label_source)
    try:
        assert files.structure is not None
        atoms = read_cell(files.structure) if study else read_structure(files)
        if settings is not None:
            from ..chemistry import Chemistry

            chem = Chemistry.from_species_z(settings.species_z)
            extra = sorted(set(atoms.get_chemical_symbols()) - set(chem.elements))
            if extra:
                raise InputFileError(files.structure, f"has element(s) {', '.join(extra)} outside the SOAP species "
                                                      f"of these settings ({', '.join(chem.elements)}); a store "
                                                      "holds one element set: use a new store")
        ex.atoms = atoms
        ex.sources[files.structure.name] = sha256_file(files.structure)
        if label_source == "lobster":
            icohp_path = files.pair_list(target)
        else:
            icohp_path = folder / icohp_file
        usable = status.labelled if label_source == "lobster" else icohp_path is not None and icohp_path.is_file()
        lst = read_icohplist(icohp_path) if usable and icohp_path is not None else None
        lob_window = window if (study or window is not None) else lobster_window(files)
        if lob_window is None:
            lob_window = ((float(lst.distance.min()) - 1e-4, float(lst.distance.max()) + 1e-4)
                          if lst is not None and len(lst) else LOBSTER_WINDOW)
        bonds = find_bonds(atoms, window=lob_window)
        ex.bonds = bonds
        labels = np.full(len(bonds), np.nan)
        if lst is not None and icohp_path is not None:
            ex.sources[icohp_path.name] = sha256_file(icohp_path)
            _check_consistent(atoms, icohp_path, lst.element_i, lst.element_j, lst.i, lst.j, files.structure)
            if not lst.has_translation:
                if (lst.n_bonds is not None) and (lst.n_bonds > 1).any():
                    k = int(np.flatnonzero(lst.n_bonds > 1)[0])
                    raise InputFileError(icohp_path, f"COHP# {lst.index[k]} averages {lst.n_bonds[k]} symmetry-"
                                                     "equivalent bonds (LOBSTER 2.x with symmetry): per-bond labels "
                                                     "need a run without symmetry (ISYM = -1)")
                lst = lst.with_translation(-infer_shifts(bonds, lst.i, lst.j, lst.distance, icohp_path))
            m = match_pairs(bonds, lst.i, lst.j, lst.shift, lst.distance)
            ok = m.index >= 0
            if ok.any():
                err = np.abs(bonds.distance[m.index[ok]] - lst.distance[ok])
                if err.max() > DISTANCE_TOLERANCE:
                    k = int(np.flatnonzero(ok)[np.argmax(err)])
                    raise InputFileError(
                        icohp_path,
                        f"COHP# {lst.index[k]} distance {lst.distance[k]:.5f} A differs from the structure's "
                        f"{bonds.distance[m.index[k]]:.5f} A (structure and pair list from different cells?)",
                    )
            if label_source == "lobster":
                check_pair_list(lst, bonds, m.index, lob_window)
            labels[m.index[ok]] = TARGET_SIGN[target] * lst.icohp[ok]
            ex.unmatched = [
                f"{lst.element_i[k]}{lst.i[k] + 1}-{lst.element_j[k]}{lst.j[k] + 1} t={tuple(lst.translation[k])}"
                for k in m.unmatched
            ]
        ex.minus_icohp = labels
        if "icohp_error" in status.details:
            ex.error = str(status.details["icohp_error"])
        for name in (files.dft_output, files.lobsterout):
            if name is not None and name.is_file():
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
