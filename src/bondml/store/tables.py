"""The original's label-only tables: ``.bnd`` (PBSSDB ``run sub i j d -ICOHP``; DB4/DB8
``nc run sub i j d -ICOHP``), ``.info`` counts, ``ND.info`` (non-done sub-runs) and ``DUB.info``
(unmatched bonds). Atoms are 1-based in these files; -ICOHP in eV, distances in Angstrom."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..constants import BOND_TYPES, STATUSES, STUDY_COMPOSITIONS
from ..errors import InputFileError
from ..util import atomic_write_text

#: ``ND.info`` status codes, read as 1-based positions in the original status vocabulary
#: (an inference: the codes seen are 2, 3 and 6; 6 = SCF_NOT_CONVERGED_AND_NO_ICOHP is the
#: most common failure, as expected).
ND_CODES: dict[int, str] = {k + 1: s for k, s in enumerate(STATUSES)}

_TYPE_RE = re.compile(r"(?:^|_)((?:Zr|Cu|Al)-(?:Zr|Cu|Al))\.bnd$")


def read_bnd(path: str | Path, nc: str | None = None,
             ncs_order: tuple[str, ...] = STUDY_COMPOSITIONS) -> pa.Table:
    """Read one ``.bnd`` file into a table (nc, run, sub_run, i, j (0-based), distance, minus_icohp).

    6-column files need ``nc`` (the PBSSDB folder's composition); 7-column files carry an nc index
    into ``ncs_order``.
    """
    from ..evaluate.tables import load_bnd_rows  # the one parser of the .bnd layout

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    with path.open() as fh:
        first = fh.readline().split()
    ncols = len(first) if first else (6 if nc is not None else 7)
    arr = load_bnd_rows(path, ncols)
    if arr.shape[1] == 6:
        if nc is None:
            raise InputFileError(path, "6-column .bnd needs the composition (PBSSDB folder name)")
        ncs = np.full(arr.shape[0], nc)
    elif arr.shape[1] == 7:
        idx = arr[:, 0].astype(int)
        if idx.size and (idx.min() < 0 or idx.max() >= len(ncs_order)):
            raise InputFileError(path, f"nc index {idx.max()} outside {list(ncs_order)}")
        ncs = np.array(ncs_order, dtype=object)[idx].astype(str)
        arr = arr[:, 1:]
    else:
        raise InputFileError(path, f"expected 6 or 7 columns, got {arr.shape[1]}")
    return pa.table({
        "nc": pa.array(ncs.astype(str)),
        "run": pa.array(arr[:, 0].astype(np.int32)),
        "sub_run": pa.array(arr[:, 1].astype(np.int32)),
        "i": pa.array(arr[:, 2].astype(np.int32) - 1),
        "j": pa.array(arr[:, 3].astype(np.int32) - 1),
        "distance": pa.array(arr[:, 4]),
        "minus_icohp": pa.array(arr[:, 5]),
    })


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
