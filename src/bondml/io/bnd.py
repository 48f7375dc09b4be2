"""The original study's label-only tables: the one reader of the ``.bnd`` layout and its
companions (``.info`` counts, ``ND.info`` non-done sub-runs, ``DUB.info`` unmatched bonds).

* PBSSDB ``<A-B>.bnd``: ``run sub i j d -ICOHP`` (6 columns; one composition, given by the
  folder name ``<NC>-PBSSDB``);
* DB4 / DB8 ``DBx_<A-B>.bnd``: ``nc run sub i j d -ICOHP`` (7 columns) with nc an index into
  the study's compositions (0 Zr49Cu49Al2, 1 Zr47Cu47Al6, 2 Zr45Cu45Al10).

Atoms are 1-based in these files (kept 1-based by :func:`read_bnd`; callers that want 0-based
indices subtract 1). Distances in Angstrom, -ICOHP in eV (positive = bonding).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import STATUSES, STUDY_COMPOSITIONS
from ..errors import InputFileError

#: ``ND.info`` status codes, read as 1-based positions in the original status vocabulary
#: (an inference: the codes seen are 2, 3 and 6; 6 = SCF_NOT_CONVERGED_AND_NO_ICOHP is the
#: most common failure, as expected).
ND_CODES: dict[int, str] = {k + 1: s for k, s in enumerate(STATUSES)}


def load_bnd_rows(path: str | Path, ncols: int) -> np.ndarray:
    """Rows of a whitespace table with exactly ``ncols`` finite numbers per line (one-line errors).

    Returns an (n, ncols) float array; (0, ncols) for an empty file.
    """
    path = Path(path)
    try:
        a = np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as exc:
        raise InputFileError(path, f"cannot read table ({exc})") from None
    if a.size == 0:
        return np.empty((0, ncols))
    if a.shape[1] != ncols:
        raise InputFileError(path, f"expected {ncols} columns, found {a.shape[1]}")
    if not np.all(np.isfinite(a)):
        raise InputFileError(path, "NaN or inf values")
    return a


def read_bnd(path: str | Path, nc: str | None = None, ncols: int | None = None,
             compositions: tuple[str, ...] = STUDY_COMPOSITIONS) -> dict[str, np.ndarray]:
    """Read one ``.bnd`` file into columns.

    Parameters
    ----------
    path : path
        The ``.bnd`` file.
    nc : str, optional
        Composition of a 6-column (PBSSDB) file (its folder's name); required for those.
    ncols : {6, 7}, optional
        Expected layout; default: from the first line (6 when the file is empty and ``nc`` is
        given, else 7).
    compositions : tuple of str
        Names of the nc indices of 7-column files.

    Returns
    -------
    dict
        ``nc`` (str), ``run``, ``sub_run``, ``i``, ``j`` (int64, atoms 1-based as in the file),
        ``distance`` (Angstrom), ``minus_icohp`` (eV); each of shape (n,).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    if ncols is None:
        with path.open() as fh:
            first = fh.readline().split()
        ncols = len(first) if first else (6 if nc is not None else 7)
    if ncols not in (6, 7):
        raise InputFileError(path, f"expected 6 or 7 columns, got {ncols}")
    a = load_bnd_rows(path, ncols)
    if ncols == 6:
        if nc is None:
            raise InputFileError(path, "6-column .bnd needs the composition (PBSSDB folder name)")
        ncs = np.full(a.shape[0], nc).astype(str)
    else:
        idx = a[:, 0].astype(int)
        if idx.size and (idx.min() < 0 or idx.max() >= len(compositions)):
            raise InputFileError(path, f"nc index {idx.max()} outside the {len(compositions)} known compositions "
                                 f"{list(compositions)}")
        ncs = np.asarray(compositions)[idx].astype(str)
        a = a[:, 1:]
    return {"nc": ncs, "run": a[:, 0].astype(np.int64), "sub_run": a[:, 1].astype(np.int64),
            "i": a[:, 2].astype(np.int64), "j": a[:, 3].astype(np.int64),
            "distance": a[:, 4].astype(float), "minus_icohp": a[:, 5].astype(float)}


def read_info(path: str | Path) -> dict[str, int]:
    """A DB4/DB8 ``.info`` file: counts per composition."""
    path = Path(path)
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    return {p[0]: int(p[1]) for p in lines[1:] if len(p) == 2}


def read_nd(path: str | Path) -> list[dict[str, Any]]:
    """``ND.info``: non-done sub-runs ``run sub code`` with the status the code stands for."""
    out = []
    for ln in Path(path).read_text().splitlines():
        p = ln.split()
        if len(p) == 3:
            code = int(p[2])
            out.append({"run": int(p[0]), "sub_run": int(p[1]), "code": code, "status": ND_CODES.get(code, "UNKNOWN")})
    return out


def read_dub(path: str | Path) -> list[dict[str, Any]]:
    """``DUB.info``: bonds the original could not match (``run sub KNF: A-B``)."""
    out = []
    for ln in Path(path).read_text().splitlines():
        m = re.match(r"\s*(\d+)\s+(\d+)\s+(\w+):\s*(\S+)", ln)
        if m:
            out.append({"run": int(m.group(1)), "sub_run": int(m.group(2)), "code": m.group(3), "pair": m.group(4)})
    return out
