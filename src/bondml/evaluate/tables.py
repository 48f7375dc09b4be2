"""The original label-only tables as :class:`LabelTable` (no structures, no SOAP); the
``.bnd`` parsing itself is :mod:`bondml.io.bnd`.

* PBSSDB ``<A-B>.bnd``: ``run sub i j d icohp`` (one composition, given by the folder name);
* DB4 / DB8 ``DBx_<A-B>.bnd``: ``nc run sub i j d icohp`` with nc index 0 Zr49Cu49Al2,
  1 Zr47Cu47Al6, 2 Zr45Cu45Al10;
* TT ``*.info``: the paper's test results (model, LOBSTER) and its RMSE line.

Distances in Angstrom, ``y`` = -ICOHP in eV (the tables store -ICOHP, positive = bonding).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..constants import BOND_TYPES, STUDY_COMPOSITIONS
from ..core.table import BondColumns
from ..errors import InputFileError
from ..io.bnd import load_bnd_rows, read_bnd  # noqa: F401 - load_bnd_rows re-exported (moved to io.bnd)

_DB_RE = re.compile(r"^(DB\d+)_([A-Z][a-z]?-[A-Z][a-z]?)\.bnd$")


@dataclass(frozen=True)
class LabelTable(BondColumns):
    """Label-only bonds as columns: bond_type, nc (composition name), run, sub_run, i, j,
    distance (Angstrom), y (-ICOHP, eV), source (table name)."""

    bond_type: np.ndarray
    nc: np.ndarray
    run: np.ndarray
    sub_run: np.ndarray
    i: np.ndarray
    j: np.ndarray
    distance: np.ndarray
    y: np.ndarray
    source: np.ndarray

    _columns: ClassVar[tuple[str, ...]] = ("bond_type", "nc", "run", "sub_run", "i", "j", "distance", "y", "source")
    # select / of_type / counts / groups: bondml.core.table.BondColumns (shared by every container)

    def keys(self) -> np.ndarray:
        """One string per bond identifying it across tables (nc/run/sub/i/j)."""
        g = self.groups("cell")
        return np.char.add(np.char.add(np.char.add(g, ":"), self.i.astype(str)), np.char.add("-", self.j.astype(str)))

    @staticmethod
    def concatenate(parts: list[LabelTable], dedupe: bool = True) -> LabelTable:
        """Join tables; with ``dedupe`` a bond present in several tables is kept once."""
        t = LabelTable(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in _COLS})
        if dedupe and len(t):
            _, first = np.unique(t.keys(), return_index=True)
            t = t.select(np.sort(first))
        return t


_COLS = LabelTable._columns


def _table(bt: str, c: dict[str, np.ndarray], source: str) -> LabelTable:
    """A LabelTable from the columns of :func:`bondml.io.bnd.read_bnd` (atoms stay 1-based)."""
    n = c["distance"].size
    return LabelTable(
        bond_type=np.full(n, bt).astype(str), nc=c["nc"].astype(str), run=c["run"], sub_run=c["sub_run"],
        i=c["i"], j=c["j"], distance=c["distance"], y=c["minus_icohp"], source=np.full(n, source).astype(str),
    )


def read_pbssdb(folder: str | Path, nc: str | None = None) -> LabelTable:
    """All ``<A-B>.bnd`` tables of a PBSSDB folder (e.g. ``Zr49Cu49Al2-PBSSDB``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "PBSSDB folder not found")
    nc = nc or folder.name.split("-")[0]
    parts = []
    for bt in BOND_TYPES:
        p = folder / f"{bt}.bnd"
        if p.is_file():
            parts.append(_table(bt, read_bnd(p, nc=nc, ncols=6), "PBSSDB"))
    if not parts:
        raise InputFileError(folder, "no <A-B>.bnd tables")
    return LabelTable.concatenate(parts, dedupe=False)


def read_db(folder: str | Path, compositions: tuple[str, ...] = STUDY_COMPOSITIONS) -> LabelTable:
    """All ``DBx_<A-B>.bnd`` tables of a DB4 / DB8 folder; nc indices mapped to names."""
    folder = Path(folder)
    parts = []
    for p in sorted(folder.glob("DB*_*.bnd")):
        m = _DB_RE.match(p.name)
        if not m:
            continue
        parts.append(_table(m.group(2), read_bnd(p, ncols=7, compositions=compositions), m.group(1)))
    if not parts:
        raise InputFileError(folder, "no DBx_<A-B>.bnd tables")
    return LabelTable.concatenate(parts, dedupe=False)


def read_all_tables(root: str | Path) -> LabelTable:
    """PBSSDB + DB8 + DB4 under ``<root>/ML/big-data-full``, duplicates removed."""
    base = Path(root) / "ML" / "big-data-full"
    parts = [read_pbssdb(p) for p in sorted(base.glob("*-PBSSDB"))]
    parts += [read_db(base / name) for name in ("DB8", "DB4") if (base / name).is_dir()]
    return LabelTable.concatenate(parts, dedupe=True)


@dataclass(frozen=True)
class PaperTest:
    """One TT result file: bond type, training size, hyper-parameters, predicted / true -ICOHP."""

    nc: str
    bond_type: str
    n_train: int
    zeta: float
    sigma: float
    gamma: float
    predicted: np.ndarray
    true: np.ndarray
    rmse: float


def read_tt_info(path: str | Path) -> PaperTest:
    """Parse ``NC-A-B-ntrain-zeta-sigma-gamma-ntest.info``."""
    path = Path(path)
    parts = path.stem.split("-")
    if len(parts) != 8:
        raise InputFileError(path, "file name is not NC-A-B-ntrain-zeta-sigma-gamma-ntest.info")
    pred, true, rmse = [], [], None
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) == 4:
            pred.append(float(f[2]))
            true.append(float(f[3]))
        elif line.startswith("RMSE"):
            rmse = float(line.split("=")[1])
    if rmse is None or not pred:
        raise InputFileError(path, "no result lines or no RMSE line")
    return PaperTest(parts[0], f"{parts[1]}-{parts[2]}", int(parts[3]), float(parts[4]), float(parts[5]),
                     float(parts[6]), np.array(pred), np.array(true), rmse)
