"""Single-cell validation, as the original did for a new cell: predict every LOBSTER bond of a
sub-run up to a distance limit, write ``ML_ICOHPLIST.lobster``, a parity plot and a JSON report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import LABEL_WINDOW
from ..errors import BondmlError, InputFileError
from ..io.lobster import write_icohplist
from ..model.bondmodel import BondModel
from ..model.domain import cell_out_of_domain
from ..store.extract import extract_cell
from ..types import CellId, parse_composition
from ..util import atomic_write_json
from .metrics import per_type_metrics
from .plots import parity_plot


def cell_id_of(folder: str | Path) -> CellId:
    """CellId of a sub-run folder in the original layout (composition from its ``<NC>.xyz``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "cell folder not found")
    xyz = sorted(p for p in folder.glob("*.xyz") if re.fullmatch(r"([A-Z][a-z]?\d+(\.\d+)?)+", p.stem))
    if not xyz:
        raise InputFileError(folder, "no <composition>.xyz file (e.g. Zr49Cu49Al2.xyz)")
    nc = xyz[0].stem
    parse_composition(nc)
    parts = folder.resolve().parts
    sub = int(parts[-1]) if parts[-1].isdigit() else 0
    run = int(parts[-3]) if len(parts) >= 3 and parts[-3].isdigit() else 0
    return CellId(nc, run, sub)


def _extract(model: BondModel, folder: str | Path) -> tuple[CellId, Any]:
    """The cell's id and extract: the study layout when the folder has a ``<composition>.xyz``,
    else any layout (:mod:`bondml.io.runs`), with the model's target and label source."""
    from ..errors import BondmlError
    from ..io.runs import composition_name, folder_files, read_structure

    source = str(model.lineage.get("label_source", "lobster"))
    kw: dict[str, Any] = {"target": model.target}
    if source != "lobster":
        kw.update(icohp_file="ICOHPLIST.xtb", label_source=source)
    try:
        cell = cell_id_of(folder)
    except BondmlError:
        if not Path(folder).is_dir():
            raise
        files = folder_files(folder)
        cell = CellId(composition_name(read_structure(files).get_chemical_symbols()), 0, 0)
        return cell, extract_cell(folder, cell, model.settings, window=None, files=files, **kw)
    return cell, extract_cell(folder, cell, model.settings, **kw)


def validate_cell(model: BondModel, folder: str | Path, max_distance: float = LABEL_WINDOW[1],
                  out: str | Path | None = None) -> dict[str, Any]:
    """Predict the labelled bonds (d <= ``max_distance`` Angstrom) of one cell and compare.

    The cell may be a sub-run of the study layout or a run folder of any layout (VASP, pw.x,
    ext-xyz); its labels are the model's target from the model's label source. Returns the
    report dict (``rmse``/``n`` per type, ``overall_rmse``, ``n_total`` ...); with ``out`` also
    writes ``ML_ICOHPLIST.lobster`` (LOBSTER sign) and ``parity.png`` there.
    """
    cell, ex = _extract(model, folder)
    if ex.error:
        raise InputFileError(folder, ex.error)
    if ex.minus_icohp is None or not np.isfinite(ex.minus_icohp).any():
        raise InputFileError(folder, f"no LOBSTER labels (status {ex.status.status})")
    b = ex.bonds
    keep = np.isfinite(ex.minus_icohp) & (b.distance <= max_distance)
    b = b.select(keep)
    y = ex.minus_icohp[keep]
    model.check_elements(ex.atoms.get_chemical_symbols(), str(folder))
    m = model.for_composition(cell.nc) if model.composition != cell.nc else model
    if model.settings.kind == "bond":  # ex.soap has one row per bond of ex.bonds
        rows, ri, rj = ex.soap[keep], np.arange(len(b)), np.arange(len(b))
    else:
        rows, ri, rj = ex.soap, b.i, b.j
    res = m.predict_bonds(b.type, b.distance, rows, ri, rj, model.settings)
    metrics = per_type_metrics(b.type, y, res["minus_icohp"], res["std"])
    types = [t for t in metrics if t != "all"]
    trained_cells = set()
    for c in model.lineage.get("data", {}).get("cells", []):
        try:  # the store records keys (Zr49Cu49Al2-21-14), a GETL tree str() (Zr49Cu49Al2/21/14)
            trained_cells.add(CellId.parse(c.get("cell", "")))
        except BondmlError:
            continue
    report = {
        "cell": str(cell), "folder": str(folder), "composition": cell.nc, "max_distance": max_distance,
        "in_training_data": cell in trained_cells,
        "rmse": {t: metrics[t]["rmse"] for t in types}, "n": {t: metrics[t]["n"] for t in types},
        "mae": {t: metrics[t]["mae"] for t in types}, "r2": {t: metrics[t]["r2"] for t in types},
        "coverage_1sigma": {t: metrics[t].get("cov1") for t in types},
        "fallback": {t: int(res["fallback"][b.type == t].sum()) for t in types},
        "out_of_domain": {t: int(res["out_of_domain"][b.type == t].sum()) for t in types},
        "overall_rmse": metrics["all"]["rmse"], "n_total": metrics["all"]["n"],
        "protocol": "single cell predicted whole" + (" (in the training data: optimistic)"
                                                     if str(cell) in trained_cells else " (not in the training data)"),
        "std_calibration": {t: (model.domain[t].protocol if t in model.domain else "cell-grouped 5-fold CV")
                            for t in types if t in model.estimators},
        "cell_out_of_domain": cell_out_of_domain(res["out_of_domain"], res["fallback"])[0],
        "fraction_out_of_domain": cell_out_of_domain(res["out_of_domain"], res["fallback"])[1],
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_icohplist(out / "ML_ICOHPLIST.lobster", ex.atoms.get_chemical_symbols(), b.i, b.j, b.distance,
                        -b.shift, -res["minus_icohp"])
        parity_plot({t: (y[b.type == t], res["minus_icohp"][b.type == t]) for t in types}, out / "parity.png",
                    f"{cell} (fallback types: {', '.join(t for t in types if report['fallback'][t]) or 'none'})")
        report["files"] = {"icohplist": str(out / "ML_ICOHPLIST.lobster"), "parity": str(out / "parity.png")}
    return report


def write_report(report: dict[str, Any], path: str | Path) -> None:
    atomic_write_json(path, report)
