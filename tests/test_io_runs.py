"""Discovery of LOBSTER runs in any layout (VASP, Quantum ESPRESSO, extended XYZ), VASP status
from vasprun.xml/OUTCAR, strict pair lists against the structure, and the VASP-style copy of a
real reference cell giving exactly the bonds and labels of the original layout."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase.io import read, write

from bondml.data import run21_dir
from bondml.errors import InputFileError
from bondml.io.getl import classify_files
from bondml.io.runs import composition_name, find_runs, folder_files
from bondml.io.vasp import read_vasp_output
from bondml.store.db import BondStore
from bondml.store.extract import extract_cell
from bondml.types import CellId

VASP = Path(__file__).parent / "data" / "vasp"
NC = "Zr49Cu49Al2"


def sub(k: int) -> Path:
    return run21_dir() / "2000" / str(k)


def vasp_copy(dst: Path, k: int, vasp_out: str = "vasprun_converged.xml", icohp: str = "plain") -> Path:
    """A VASP-style folder of reference sub-run ``k``: POSCAR written from its xyz with ase, its
    real ICOHPLIST/lobsterout/lobsterin, a VASP output."""
    dst.mkdir(parents=True)
    atoms = read(sub(k) / f"{NC}.xyz", format="extxyz")
    write(dst / "POSCAR", atoms, format="vasp")
    src = sub(k) / "ICOHPLIST.lobster"
    if icohp == "gz":
        (dst / "ICOHPLIST.lobster.gz").write_bytes(gzip.compress(src.read_bytes()))
    elif icohp == "plain":
        shutil.copy(src, dst / "ICOHPLIST.lobster")
    for f in ("lobsterout", "lobsterin"):
        shutil.copy(sub(k) / f, dst / f)
    if vasp_out:
        target = "vasprun.xml" if vasp_out.startswith("vasprun") else "OUTCAR"
        shutil.copy(VASP / vasp_out, dst / target)
    return dst


@pytest.fixture(scope="module")
def original0():
    return extract_cell(sub(0), CellId(NC, 21, 0), settings=None)


@pytest.mark.parametrize("icohp", ["plain", "gz"])
def test_vasp_copy_gives_the_original_bonds_and_labels(tmp_path: Path, original0, icohp: str) -> None:
    root = tmp_path / "group runs"
    vasp_copy(root / "glass A" / "sample-x", 0, icohp=icohp)
    runs = find_runs(root)
    assert len(runs) == 1 and runs[0].layout == "vasp" and runs[0].relpath == "glass A/sample-x"
    r = runs[0]
    assert r.cell == CellId(NC, 1, 0)  # composition from the structure, run/sub by the naming rule
    ex = extract_cell(r.files.folder, r.cell, settings=None, window=None, files=r.files)
    assert ex.error is None and ex.status.status == "DONE", ex.error or ex.status.reason
    assert "SCF converged in 18" in ex.status.reason
    for f in ("i", "j", "shift", "distance", "type"):
        np.testing.assert_array_equal(getattr(ex.bonds, f), getattr(original0.bonds, f))
    np.testing.assert_array_equal(ex.minus_icohp, original0.minus_icohp)
    assert np.isfinite(ex.minus_icohp).sum() == 738


def test_six_column_list_gets_translations_from_the_structure(tmp_path: Path, original0) -> None:
    """A LOBSTER 2.x list (no translation) of the same pairs gives the same labels."""
    d = vasp_copy(tmp_path / "r" / "old", 0, icohp="none")
    from bondml.io.lobster import read_icohplist

    ic = read_icohplist(sub(0) / "ICOHPLIST.lobster")
    lines = ["  COHP#  atomMU  atomNU     distance          ICOHP(eF) avg. over # bonds  for spin  1"]
    for k in range(len(ic)):
        a = f"{ic.element_i[k]}{ic.i[k] + 1}"
        b = f"{ic.element_j[k]}{ic.j[k] + 1}"
        lines.append(f"{k + 1:7d} {a:>7s} {b:>7s} {ic.distance[k]:12.5f} {ic.icohp[k]:18.5f} {1:17d}")
    (d / "ICOHPLIST.lobster").write_text("\n".join(lines) + "\n")
    r = find_runs(tmp_path / "r")[0]
    ex = extract_cell(r.files.folder, r.cell, settings=None, window=None, files=r.files)
    assert ex.error is None, ex.error
    np.testing.assert_array_equal(ex.minus_icohp, original0.minus_icohp)


def test_line_boundary_cut_is_refused_by_the_pair_search(tmp_path: Path) -> None:
    """Without lobsterout, a list cut after a complete line still lacks pairs of the structure."""
    d = vasp_copy(tmp_path / "r" / "x", 0)
    (d / "lobsterout").unlink()
    lines = (d / "ICOHPLIST.lobster").read_text().splitlines(keepends=True)
    (d / "ICOHPLIST.lobster").write_text("".join(lines[:-5]))
    r = find_runs(tmp_path / "r")[0]
    ex = extract_cell(r.files.folder, r.cell, settings=None, window=None, files=r.files)
    assert ex.error is not None and "lacks 5 of the structure's pairs" in ex.error
    assert "ICOHPLIST.lobster" in ex.error and "\n" not in ex.error


@pytest.mark.parametrize(("out", "status"), [
    ("vasprun_converged.xml", "DONE"), ("vasprun_nelm.xml", "SCF_NOT_CONVERGED"),
    ("vasprun_killed.xml", "SCF_NOT_CONVERGED"), ("OUTCAR_converged", "DONE"),
    ("OUTCAR_unconverged", "SCF_NOT_CONVERGED"), ("OUTCAR_killed", "SCF_NOT_CONVERGED"), ("", "DONE")])
def test_vasp_status_vocabulary(tmp_path: Path, out: str, status: str) -> None:
    d = vasp_copy(tmp_path / "r", 0, vasp_out=out)
    rep = classify_files(folder_files(d))
    assert rep.status == status, rep.reason
    if out:
        assert rep.details["total_energy_ev"] == pytest.approx(-612.34567)
    (d / "ICOHPLIST.lobster").unlink()
    rep = classify_files(folder_files(d))
    no_list = {"DONE": "SCF_CONVERGED_BUT_NO_ICOHP", "SCF_NOT_CONVERGED": "SCF_NOT_CONVERGED_AND_NO_ICOHP"}
    assert rep.status == no_list[status]


def test_vasp_outputs_gzip(tmp_path: Path) -> None:
    p = tmp_path / "OUTCAR.gz"
    p.write_bytes(gzip.compress((VASP / "OUTCAR_converged").read_bytes()))
    o = read_vasp_output(p)
    assert o.converged and o.wall_time_s == pytest.approx(123.456) and o.n_atoms == 100


def test_espresso_layout_without_xyz(tmp_path: Path, original0) -> None:
    """A pw.x folder with its own names: the structure comes from the *.scf.in."""
    d = tmp_path / "qe" / "cellA"
    shutil.copytree(sub(0), d)
    (d / f"{NC}.xyz").unlink()
    for p in d.glob(f"{NC}.*"):
        p.rename(d / p.name.replace(NC, "mycell"))
    r = find_runs(tmp_path / "qe")[0]
    assert r.layout == "espresso" and r.files.structure_format == "espresso-in"
    ex = extract_cell(r.files.folder, r.cell, settings=None, window=None, files=r.files)
    assert ex.error is None and ex.status.status == "DONE", ex.error
    np.testing.assert_allclose(ex.minus_icohp[np.isfinite(ex.minus_icohp)],
                               original0.minus_icohp[np.isfinite(original0.minus_icohp)])


def test_manifest_and_naming_rule(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for name in ("a/s1", "a/s2", "b/s1"):
        vasp_copy(root / name, 0, icohp="gz")
    ids = {r.relpath: r.cell for r in find_runs(root)}
    assert ids == {"a/s1": CellId(NC, 1, 1), "a/s2": CellId(NC, 1, 2), "b/s1": CellId(NC, 2, 1)}
    (root / "cells.csv").write_text("path,composition,run,sub_run\na/*,GlassA,7,\nb/s1,GlassB,3,0\n")
    ids = {r.relpath: r.cell for r in find_runs(root)}
    assert ids == {"a/s1": CellId("GlassA", 7, 1), "a/s2": CellId("GlassA", 7, 2), "b/s1": CellId("GlassB", 3, 0)}
    (root / "cells.csv").write_text("path,composition,run,sub_run\n*,G,1,0\n")
    with pytest.raises(InputFileError, match="same id"):
        find_runs(root)
    (root / "cells.csv").write_text("path,composition,run,sub_run\n*,G,x,0\n")
    with pytest.raises(InputFileError, match="not an integer"):
        find_runs(root)


def test_composition_name() -> None:
    assert composition_name(["Cu"] * 16 + ["Ni"] * 16) == "Cu50Ni50"
    assert composition_name(["Al"] * 2 + ["Cu"] * 49 + ["Zr"] * 49) == "Zr49Cu49Al2"
    assert composition_name(["Cu"] * 2 + ["Ni"]) == "Cu66.7Ni33.3"


def test_ingest_vasp_folders_same_dataset_as_study(tmp_path: Path, ref_root: Path) -> None:
    """`ingest` of VASP-style copies of sub-runs 0 and 1 stores the labels of the study layout."""
    root = tmp_path / "vasp runs"
    for k in (0, 1):
        vasp_copy(root / f"run-{k}", k)
    (root / "cells.csv").write_text("path,composition,run,sub_run\nrun-0,Zr49Cu49Al2,21,0\nrun-1,Zr49Cu49Al2,21,1\n")
    s = BondStore(tmp_path / "db", create=True)
    rep = s.ingest(root)
    assert sorted(rep.added) == [f"{NC}/21/0", f"{NC}/21/1"] and not rep.errors
    ds = s.load_dataset()
    study = BondStore(tmp_path / "db2", create=True)
    study.ingest(_tree_with(tmp_path / "tree", [0, 1]))
    ref = study.load_dataset()
    for f in ("bond_type", "distance", "y", "i", "j", "shift"):
        np.testing.assert_array_equal(getattr(ds, f), getattr(ref, f))
    np.testing.assert_array_equal(ds.atom_soap, ref.atom_soap)
    cells = {c["key"]: c for c in s.cells()}
    assert cells[f"{NC}-21-0"]["layout"] == "vasp" and cells[f"{NC}-21-0"]["path"] == "run-0"
    assert s.ingest(root).added == []  # idempotent


def _tree_with(dst: Path, subs: list[int]) -> Path:
    from conftest import copy_subruns

    return copy_subruns(dst, subs)


def test_study_layout_cut_at_line_boundary_without_lobsterout(mini_tree: Path) -> None:
    """Issue 11: with lobsterout missing, a list cut after a complete line was accepted; the
    structure's pair search now refuses it (and a cut inside the last number is refused too)."""
    from bondml.io.getl import subrun_path

    d = subrun_path(mini_tree, CellId(NC, 21, 0))
    (d / "lobsterout").unlink()
    p = d / "ICOHPLIST.lobster"
    full = p.read_text()
    lines = full.splitlines(keepends=True)
    p.write_text("".join(lines[:-1]))
    ex = extract_cell(d, CellId(NC, 21, 0), settings=None)
    assert ex.error is not None and "lacks 1 of the structure's pairs" in ex.error
    p.write_text(full.rstrip().rstrip("0123456789") + "\n")  # '-1.62844' -> '-1.'
    ex = extract_cell(d, CellId(NC, 21, 0), settings=None)
    assert ex.status.status == "SCF_CONVERGED_BUT_NO_ICOHP" and "decimals" in ex.status.reason
    p.write_text(full)
    ex = extract_cell(d, CellId(NC, 21, 0), settings=None)
    assert ex.error is None and np.isfinite(ex.minus_icohp).sum() == 738


def test_cli_ingest_vasp_folder_any_names(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from bondml.cli.main import build_app

    root = tmp_path / "Some group's data"
    vasp_copy(root / "2024-05 glass" / "cell #7", 0, icohp="gz")
    vasp_copy(root / "2024-05 glass" / "cell #8", 1, vasp_out="OUTCAR_unconverged")
    r = CliRunner().invoke(build_app(), ["ingest", str(root), "--store", str(tmp_path / "db"), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output[r.output.index("{"):])
    assert sorted(rep["added"]) == [f"{NC}/1/7", f"{NC}/1/8"]
    cells = {c["sub_run"]: c for c in BondStore(tmp_path / "db").cells()}
    assert cells[7]["status"] == "DONE" and cells[7]["labelled"]
    assert cells[8]["status"] == "SCF_NOT_CONVERGED" and not cells[8]["labelled"]
    assert "EDIFF not reached" in cells[8]["reason"]
