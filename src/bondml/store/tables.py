"""The original's label-only tables in the store (readers in :mod:`bondml.io.bnd`).

``.bnd`` (PBSSDB ``run sub i j d -ICOHP``; DB4/DB8 ``nc run sub i j d -ICOHP``), ``.info``
counts, ``ND.info`` (non-done sub-runs) and ``DUB.info`` (unmatched bonds). Atoms are 1-based in
these files; -ICOHP in eV, distances in Angstrom.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..constants import BOND_TYPES, STUDY_COMPOSITIONS
from ..errors import InputFileError
from ..io import bnd
from ..io.bnd import ND_CODES, read_dub, read_info, read_nd  # noqa: F401 - re-exported (moved to io.bnd)
from ..util import atomic_write_text

_TYPE_RE = re.compile(r"(?:^|_)((?:Zr|Cu|Al)-(?:Zr|Cu|Al))\.bnd$")


def read_bnd(path: str | Path, nc: str | None = None,
             ncs_order: tuple[str, ...] = STUDY_COMPOSITIONS) -> pa.Table:
    """Read one ``.bnd`` file into a table (nc, run, sub_run, i, j (0-based), distance, minus_icohp).

    6-column files need ``nc`` (the PBSSDB folder's composition); 7-column files carry an nc index
    into ``ncs_order``. Parsing: :func:`bondml.io.bnd.read_bnd` (the one reader of the layout).
    """
    c = bnd.read_bnd(path, nc=nc, compositions=ncs_order)
    return pa.table({
        "nc": pa.array(c["nc"].astype(str)),
        "run": pa.array(c["run"].astype(np.int32)),
        "sub_run": pa.array(c["sub_run"].astype(np.int32)),
        "i": pa.array(c["i"].astype(np.int32) - 1),
        "j": pa.array(c["j"].astype(np.int32) - 1),
        "distance": pa.array(c["distance"]),
        "minus_icohp": pa.array(c["minus_icohp"]),
    })


def read_bnd_folder(folder: str | Path) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    """All ``.bnd`` tables of a folder by bond type, plus info/ND/DUB extras."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "folder not found")
    nc = folder.name.split("-PBSSDB")[0] if folder.name.endswith("-PBSSDB") else None
    tables: dict[str, pa.Table] = {}
    infos: dict[str, dict[str, int]] = {}
    for p in sorted(folder.glob("*.bnd")):
        m = _TYPE_RE.search(p.name)
        if not m or m.group(1) not in BOND_TYPES:
            continue
        tables[m.group(1)] = read_bnd(p, nc=nc)
        info = p.with_suffix(".info")
        if info.is_file():
            infos[m.group(1)] = read_info(info)
    if not tables:
        raise InputFileError(folder, "no <A-B>.bnd tables here")
    extras: dict[str, Any] = {"info": infos, "nc": nc}
    if (folder / "ND.info").is_file():
        extras["not_done"] = read_nd(folder / "ND.info")
    if (folder / "DUB.info").is_file():
        extras["unmatched"] = read_dub(folder / "DUB.info")
    return tables, extras


def write_bnd(path: str | Path, ds: Any, ncs_order: tuple[str, ...] = STUDY_COMPOSITIONS,
              swap: np.ndarray | None = None) -> Path:
    """Write a :class:`BondDataset` of one type as a 7-column ``.bnd`` (``nc run sub i j d -ICOHP``,
    1-based atoms; ``swap[k]`` puts atom j first so the type's first element leads) plus ``.info``."""
    path = Path(path)
    t = str(ds.bond_type[0])
    lines = []
    counts: dict[str, int] = {}
    for k in range(len(ds)):
        nc = str(ds.nc[k])
        if nc not in ncs_order:
            ncs_order = (*ncs_order, nc)
        i, j = int(ds.i[k]) + 1, int(ds.j[k]) + 1
        if swap is not None and swap[k]:
            i, j = j, i
        lines.append(f"{ncs_order.index(nc)} {int(ds.run[k])} {int(ds.sub_run[k])} {i} {j} "
                     f"{ds.distance[k]:.6f} {ds.y[k]:.6f}")
        counts[nc] = counts.get(nc, 0) + 1
    atomic_write_text(path, "\n".join(lines) + "\n")
    info = [f"{path.stem.split('_')[0]} {t}"] + [f"{nc} {counts.get(nc, 0)}" for nc in ncs_order]
    atomic_write_text(path.with_suffix(".info"), "\n".join(info) + "\n")
    return path
