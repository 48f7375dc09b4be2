"""The bond database: ingest of the real tree, idempotence, resume, bad input, selections, tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bondml.errors import InputFileError, StoreError
from bondml.io.getl import subrun_path
from bondml.store import db as dbmod
from bondml.store.db import BondStore
from bondml.store.tables import read_bnd
from bondml.types import CellId

from conftest import copy_subruns

RUN21_COUNTS = {"Zr-Zr": 2246, "Zr-Cu": 4931, "Zr-Al": 222, "Cu-Cu": 1652, "Cu-Al": 136, "Al-Al": 0}


def _snapshot(path: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(path)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in path.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def full_store(tmp_path_factory: pytest.TempPathFactory, ref_root: Path) -> BondStore:
    s = BondStore(tmp_path_factory.mktemp("store") / "db", create=True)
    rep = s.ingest(ref_root)
    assert len(rep.added) == 15 and not rep.errors
    return s


def test_info_of_reference_tree(full_store: BondStore) -> None:
    info = full_store.info()
    assert info["bonds"] == RUN21_COUNTS
    statuses = {(c["run"], c["sub_run"]): c["status"] for c in info["cells"]}
    assert statuses[(21, 13)] == "SCF_NOT_CONVERGED_AND_NO_ICOHP"
    assert sum(s == "DONE" for s in statuses.values()) == 14
    # the DBI per-type tables hold every bond 1.80-4.20 A, labelled or not
    zc = full_store.bond_table("Zr-Cu")
    assert set(zc.column_names) >= {"nc", "run", "sub_run", "i", "j", "sx", "sy", "sz", "distance",
                                    "minus_icohp", "label_source", "status"}
    rows = full_store.query("SELECT count(*) FROM bonds WHERE minus_icohp IS NOT NULL AND distance <= 3.75")
    assert rows[0][0] == sum(RUN21_COUNTS.values())


def test_reingest_changes_nothing(full_store: BondStore, ref_root: Path) -> None:
    before = _snapshot(full_store.path)
    v = full_store.current_version()
    rep = full_store.ingest(ref_root)
    assert rep.added == [] and len(rep.unchanged) == 15
    assert rep.version == v and not rep.version_changed
    assert _snapshot(full_store.path) == before


def test_dataset_and_lineage(full_store: BondStore) -> None:
    ds = full_store.load_dataset()
    assert ds.counts() == RUN21_COUNTS
    assert ds.atom_soap.shape == (14 * 100, 2101)
    assert np.allclose(np.linalg.norm(ds.atom_soap, axis=1), 1.0)
    ver = full_store.read_version()
    assert ver["settings"]["cutoff"] == 3.75 and ver["lineage"]["code"]["bondml"]
    meta = json.loads(next((full_store.path / "cells").rglob("cell.json")).read_text())
    assert len(meta["sources"]["Zr49Cu49Al2.xyz"]) == 64  # SHA-256 of each source file


def test_selection_is_seeded_and_stratified(full_store: BondStore) -> None:
    a = full_store.make_selection("a", 300, seed=7, stratify="cell")
    b = full_store.make_selection("b", 300, seed=7, stratify="cell")
    c = full_store.make_selection("c", 300, seed=8, stratify="cell")
    assert a["bonds"] == b["bonds"] and a["hash"] == b["hash"] and a["bonds"] != c["bonds"]
    zz = a["counts"]["Zr-Zr"]
    assert sum(zz.values()) == 300 and max(zz.values()) - min(zz.values()) <= 1  # equal shares over 14 cells
    assert sum(a["counts"]["Cu-Al"].values()) == 136  # scarce type: everything there is
    ds = full_store.load_dataset(selection="a")
    assert ds.counts()["Zr-Cu"] == 300 and ds.counts()["Cu-Al"] == 136


def test_export_bnd_round_trip(full_store: BondStore, tmp_path: Path) -> None:
    full_store.make_selection("mix", 50, seed=1, stratify="cell")
    files = full_store.export_bnd(tmp_path, selection="mix")
    tab = read_bnd(files["Zr-Al"])
    assert tab.num_rows == 50
    ds = full_store.load_dataset(selection="mix").of_type("Zr-Al")
    assert sorted(np.round(tab["minus_icohp"].to_numpy(), 6)) == sorted(np.round(ds.y, 6))
    info = (tmp_path / "mix_Zr-Al.info").read_text().split()
    assert info[:2] == ["mix", "Zr-Al"] and "Zr49Cu49Al2" in info


def test_import_original_tables(tmp_path: Path, ref_root: Path) -> None:
    s = BondStore(tmp_path / "db", create=True)
    counts = s.import_tables(ref_root / "ML/big-data-full/DB4")
    assert counts["Zr-Cu"] == 593  # 200 + 200 + 193 per DB4_Zr-Cu.info
    meta = json.loads((s.path / "labels/DB4/meta.json").read_text())
    assert meta["info"]["Zr-Cu"] == {"Zr49Cu49Al2": 200, "Zr47Cu47Al6": 200, "Zr45Cu45Al10": 193}
    zc = s.label_table("DB4", "Zr-Cu")
    assert set(zc["nc"].to_pylist()) == {"Zr49Cu49Al2", "Zr47Cu47Al6", "Zr45Cu45Al10"}
    pb = s.import_tables(ref_root / "ML/big-data-full/Zr49Cu49Al2-PBSSDB")
    assert pb == {"Al-Al": 27, "Cu-Al": 5080, "Cu-Cu": 57230, "Zr-Al": 7011, "Zr-Zr": 76919}
    meta = json.loads((s.path / "labels/Zr49Cu49Al2-PBSSDB/meta.json").read_text())
    assert len(meta["not_done"]) == 286 and len(meta["unmatched"]) == 14


def test_interrupted_ingest_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_subruns(tmp_path / "tree", [0, 1, 2])
    s = BondStore(tmp_path / "db", create=True)
    real = dbmod.extract_cell
    calls = {"n": 0}

    def dying(*a, **k):  # the second cell kills the process mid-ingest
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(dbmod, "extract_cell", dying)
    with pytest.raises(KeyboardInterrupt):
        s.ingest(root)
    assert s.current_version(required=False) is None  # no half-made version
    assert not list(s.path.rglob("*.tmp"))
    import fcntl  # the lock file stays (flock); the lock itself is free again
    with open(s.path / ".lock") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    monkeypatch.setattr(dbmod, "extract_cell", real)
    rep = s.ingest(root)
    assert len(rep.unchanged) == 1 and len(rep.added) == 2
    fresh = BondStore(tmp_path / "db2", create=True)
    assert fresh.ingest(root).version == rep.version


@pytest.mark.parametrize("damage, expect", [
    ("truncate", "ICOHPLIST"),
    ("mismatch", "atoms do not match"),
    ("unknown_element", "unknown element 'Xx'"),
    ("missing_xyz", "Zr49Cu49Al2.xyz: file not found"),
    ("not_converged", None),
])
def test_bad_input_keeps_store(tmp_path: Path, damage: str, expect: str | None) -> None:
    root = copy_subruns(tmp_path / "tree", [0, 1, 13])
    s = BondStore(tmp_path / "db", create=True)
    v1 = s.ingest(root).version
    before = s.load_dataset()
    sub1 = subrun_path(root, CellId("Zr49Cu49Al2", 21, 1))
    xyz = sub1 / "Zr49Cu49Al2.xyz"
    if damage == "truncate":
        p = sub1 / "ICOHPLIST.lobster"
        p.write_text(p.read_text()[:5000])
    elif damage == "mismatch":
        lines = xyz.read_text().splitlines()
        a, b = lines[2].split(None, 1), lines[3].split(None, 1)
        assert a[0] != b[0]
        lines[2], lines[3] = f"{b[0]} {a[1]}", f"{a[0]} {b[1]}"  # swap two elements
        xyz.write_text("\n".join(lines) + "\n")
    elif damage == "unknown_element":
        lines = xyz.read_text().splitlines()
        lines[2] = "Xx " + lines[2].split(None, 1)[1]
        xyz.write_text("\n".join(lines) + "\n")
    elif damage == "missing_xyz":
        xyz.unlink()
    elif damage == "not_converged":
        sub13 = subrun_path(root, CellId("Zr49Cu49Al2", 21, 13))
        (sub1 / "Zr49Cu49Al2.scf.out").write_text((sub13 / "Zr49Cu49Al2.scf.out").read_text())
    rep = s.ingest(root)
    key = "Zr49Cu49Al2/21/1"
    cells = {f"{c['nc']}/{c['run']}/{c['sub_run']}": c for c in s.info()["cells"]}
    if expect is None:
        assert cells[key]["status"] == "SCF_NOT_CONVERGED"
    else:
        assert key in rep.errors and expect in rep.errors[key]
        assert "\n" not in rep.errors[key]
    assert rep.version != v1
    # the damaged cell leaves the labelled set; the earlier version is intact and loadable
    assert len(s.load_dataset()) < len(before)
    again = s.load_dataset(version=v1)
    assert len(again) == len(before) and np.array_equal(again.y, before.y)


def test_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a bondml store"):
        BondStore(tmp_path / "nothing")
    s = BondStore(tmp_path / "db", create=True)
    with pytest.raises(StoreError, match="no version yet"):
        s.info()
    with pytest.raises(StoreError, match="no selection named 'x'"):
        s.read_selection("x")
    import fcntl
    import os

    with pytest.raises(InputFileError, match="holds no LOBSTER run"):
        s.ingest(tmp_path / "db")  # a folder without runs is refused before the lock
    tree = copy_subruns(tmp_path / "tree", [0])
    fd = os.open(s.path / ".lock", os.O_RDWR | os.O_CREAT)  # another holder of the store lock
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.environ["BONDML_LOCK_WAIT"] = "0.2"
    try:
        with pytest.raises(StoreError, match="locked by another bondml process"):
            s.ingest(tree)
    finally:
        del os.environ["BONDML_LOCK_WAIT"]
        os.close(fd)
