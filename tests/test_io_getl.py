"""The original directory convention and status classification on the real run 21."""

from __future__ import annotations

import shutil
from pathlib import Path

from bondml.io.getl import classify, classify_tree, discover, subrun_path
from bondml.types import CellId


def test_discover_reference_tree(ref_root: Path) -> None:
    cells = discover(ref_root)
    assert cells == [CellId("Zr49Cu49Al2", 21, k) for k in range(15)]
    assert subrun_path(ref_root, cells[3]).joinpath("Zr49Cu49Al2.xyz").is_file()


def test_statuses_of_all_15_subruns(ref_root: Path) -> None:
    st = classify_tree(ref_root)
    assert len(st) == 15
    for cell, rep in st.items():
        if cell.sub_run == 13:
            assert rep.status == "SCF_NOT_CONVERGED_AND_NO_ICOHP"
            assert "iteration 80" in rep.reason and "no ICOHPLIST" in rep.reason
            assert not rep.labelled
        else:
            assert rep.status == "DONE", (cell, rep.reason)
            assert rep.labelled and rep.n_icohp > 700


def test_status_from_files_not_markers(mini_tree: Path) -> None:
    """Marker files (QE_done, LOB_run) are ignored; the status follows the outputs."""
    sub0 = subrun_path(mini_tree, CellId("Zr49Cu49Al2", 21, 0))
    (sub0 / "QE_done").unlink()
    (sub0 / "LOB_run").unlink()
    assert classify(sub0).status == "DONE"
    # LOBSTER killed before the end: lobsterout without 'finished', ICOHPLIST still complete
    lo = sub0 / "lobsterout"
    lo.write_text("\n".join(line for line in lo.read_text().splitlines() if "finished in" not in line))
    assert classify(sub0).status == "SCF_CONVERGED_LOB_NOT_FINISHED_BUT_ICOHP_OK"
    # ICOHPLIST gone: converged SCF without labels
    (sub0 / "ICOHPLIST.lobster").unlink()
    rep = classify(sub0)
    assert rep.status == "SCF_CONVERGED_BUT_NO_ICOHP" and not rep.labelled


def test_truncated_icohplist_is_not_labelled(mini_tree: Path) -> None:
    sub1 = subrun_path(mini_tree, CellId("Zr49Cu49Al2", 21, 1))
    p = sub1 / "ICOHPLIST.lobster"
    text = p.read_text()
    p.write_text(text[: len(text) // 2].rsplit(" ", 3)[0])  # cut mid-line
    rep = classify(sub1)
    assert rep.status == "SCF_CONVERGED_BUT_NO_ICOHP"
    assert "ICOHPLIST unreadable" in rep.reason


def test_non_converged_scf_with_icohp_is_not_trusted(mini_tree: Path) -> None:
    sub0 = subrun_path(mini_tree, CellId("Zr49Cu49Al2", 21, 0))
    sub13 = subrun_path(mini_tree, CellId("Zr49Cu49Al2", 21, 13))
    shutil.copy(sub13 / "Zr49Cu49Al2.scf.out", sub0 / "Zr49Cu49Al2.scf.out")
    rep = classify(sub0)
    assert rep.status == "SCF_NOT_CONVERGED" and not rep.labelled


def test_new_subrun(tmp_path: Path) -> None:
    d = tmp_path / "x"
    d.mkdir()
    assert classify(d, "Zr49Cu49Al2").status == "NEW"
