"""xTB (GFN1, tblite) labeler: per-bond mapping, label files, agreement with LOBSTER, grow driver."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

from bondml.data import run21_dir
from bondml.errors import ConfigError
from bondml.generate.xtb import (
    LABEL_SOURCE,
    XTB_ICOHPLIST,
    XTB_MARKER,
    XtbSettings,
    compare_with_lobster,
    has_xtb_labels,
    label_subrun,
    read_xtb_marker,
    split_over_images,
    write_xtb_labels,
    xtb_labels,
    xtb_labels_cached,
)
from bondml.io.getl import classify, subrun_path
from bondml.io.lobster import read_icohplist
from bondml.structure.bonds import Bonds
from bondml.types import CellId

os.environ.setdefault("OMP_NUM_THREADS", "2")
NC = "Zr49Cu49Al2"


def _small_cell() -> Atoms:
    """8 atoms (Cu6 Al1 Zr1), 7.22 x 3.61 x 3.61 Angstrom: pairs with several images in the window,
    and atoms bonded to their own image along the short edges."""
    from ase.build import bulk

    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
    sym = a.get_chemical_symbols()
    sym[1], sym[6] = "Al", "Zr"
    a.set_chemical_symbols(sym)
    a.positions[3] += (0.05, -0.03, 0.02)  # break the symmetry a little
    return a


def test_split_over_images_sums_and_weights():
    bonds = Bonds(i=np.array([0, 0, 0, 1]), j=np.array([1, 1, 2, 1]),
                  shift=np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]]),
                  distance=np.array([2.5, 3.0, 2.7, 3.6]), type=np.array(["Cu-Cu"] * 4, dtype=object))
    pair = np.array([[0.0, 1.0, 0.4], [1.0, 7.0, 0.0], [0.4, 0.0, 0.0]])
    v = split_over_images(bonds, pair, image_decay=0.5)
    assert v[0] + v[1] == pytest.approx(1.0)  # the pair total is kept
    assert v[0] / v[1] == pytest.approx(np.exp(0.5 / 0.5))  # closer image gets more
    assert v[2] == pytest.approx(0.4)  # single image: whole value
    assert np.isnan(v[3])  # own image: not separable


@pytest.mark.slow
def test_small_cell_labels_files_and_resume(tmp_path):
    atoms = _small_cell()
    lab = xtb_labels(atoms)
    assert lab.quantity == "cohp" and len(lab.bonds) == len(lab.strength)
    self_img = lab.bonds.i == lab.bonds.j
    assert self_img.any() and np.isnan(lab.strength[self_img]).all()
    assert np.isfinite(lab.strength[~self_img]).all()
    # bonds of one pair over several images add up to the Gamma-point pair value
    pairs = {}
    for k in np.flatnonzero(~self_img):
        pairs.setdefault((lab.bonds.i[k], lab.bonds.j[k]), []).append(k)
    assert any(len(v) > 1 for v in pairs.values())
    # nearest-neighbour Cu-Cu bonds are bonding and stronger than second neighbours
    d = lab.bonds.distance
    cucu = (lab.bonds.type == "Cu-Cu") & ~self_img
    assert lab.strength[cucu & (d < 2.7)].mean() > 0
    # files: ICOHPLIST.xtb in LOBSTER format with its own label source, never ICOHPLIST.lobster
    from bondml.generate.augment import write_xyz

    folder = tmp_path / "0"
    write_xyz(atoms, folder / "Cu6AlZr.xyz")
    write_xtb_labels(folder, atoms, lab)
    lst = read_icohplist(folder / XTB_ICOHPLIST)
    np.testing.assert_allclose(lst.minus_icohp, lab.strength[~self_img], atol=1e-5)
    np.testing.assert_array_equal(lst.shift, lab.bonds.shift[~self_img])
    marker = read_xtb_marker(folder)
    assert marker["label_source"] == LABEL_SOURCE and marker["approximate"] is True
    assert marker["n_self_image_dropped"] == int(self_img.sum())
    assert not (folder / "ICOHPLIST.lobster").exists()
    assert classify(folder, "Cu6AlZr").status == "NEW"  # xTB labels are not DFT results
    assert has_xtb_labels(folder, "Cu6AlZr")
    with pytest.raises(Exception, match="never overwritten"):
        write_xtb_labels(folder, atoms, lab)
    before = (folder / XTB_ICOHPLIST).read_text()
    assert label_subrun(folder, "Cu6AlZr") == "skipped"
    assert (folder / XTB_ICOHPLIST).read_text() == before
    # a changed structure makes the labels stale: set aside, relabelled
    atoms2 = atoms.copy()
    atoms2.positions[0] += 0.1
    write_xyz(atoms2, folder / "Cu6AlZr.xyz", overwrite=True)
    assert not has_xtb_labels(folder, "Cu6AlZr")
    assert label_subrun(folder, "Cu6AlZr") == "done"
    assert (folder / f"{XTB_ICOHPLIST}.stale-1").read_text() == before
    assert has_xtb_labels(folder, "Cu6AlZr")


def test_mayer_quantity_and_cache(tmp_path):
    atoms = _small_cell()
    s = XtbSettings(quantity="mayer")
    a = xtb_labels_cached(atoms, s, tmp_path)
    assert len(list(tmp_path.glob("xtb-*.npz"))) == 1
    t0 = time.perf_counter()
    b = xtb_labels_cached(atoms, s, tmp_path)
    assert time.perf_counter() - t0 < 0.5
    np.testing.assert_allclose(a.strength, b.strength, equal_nan=True)
    ok = np.isfinite(a.strength)
    assert a.strength[ok].mean() > 0.05  # bond indices of a metal: small and positive on average
    with pytest.raises(Exception, match="quantity"):
        xtb_labels(atoms, XtbSettings(quantity="wiberg?"))


@pytest.mark.slow
def test_agreement_with_lobster_on_reference_subrun0(request, tmp_path_factory):
    """Real GFN1-xTB on the 100-atom reference cell (~1.5 min once; cached by content hash in
    pytest's cache folder when the cache plugin is on)."""
    cfg_cache = getattr(request.config, "cache", None)
    cache = cfg_cache.mkdir("bondml-xtb") if cfg_cache is not None else tmp_path_factory.mktemp("xtb")
    folder = run21_dir() / "2000" / "0"
    atoms = read(folder / f"{NC}.xyz")
    lab = xtb_labels_cached(atoms, XtbSettings(), cache)
    assert lab.wall_time_s > 1.0  # really computed (at least once)
    agree = compare_with_lobster(lab, folder / "ICOHPLIST.lobster")
    for t, a in agree.items():
        print(f"{t:18s} n={a.n:4d} r={a.pearson_r:.3f} rmse={a.rmse_ev:.3f} eV (std {a.std_ev:.3f})")
    # measured on this cell: r = 0.89 Zr-Zr, 0.84 Zr-Cu, 0.96 Zr-Al, 0.91 Cu-Cu, 0.94 Cu-Al;
    # 0.93 over all bonds after per-type fits (RMSE 0.18 eV vs label std 0.51 eV)
    for t in ("Zr-Zr", "Zr-Cu", "Cu-Cu", "Zr-Al", "Cu-Al"):
        assert agree[t].pearson_r > 0.8, t
        assert agree[t].rmse_ev < 0.6 * agree[t].std_ev, t
        assert agree[t].slope > 0, t
    assert agree["all_per_type_fit"].pearson_r > 0.9
    assert agree["all_per_type_fit"].rmse_ev < 0.22
    assert agree["all_per_type_fit"].n == sum(agree[t].n for t in agree if "all" not in t)
    assert agree["all"].n > 600


@pytest.mark.slow
def test_grow_with_xtb_from_nothing_and_resume(tmp_path):
    """MD -> augment -> xTB labels on a small (8-atom) composition, then resume after loss."""
    from bondml.generate.grow import GrowOptions, grow, parse_subruns
    from bondml.generate.jobs import tree_status
    from bondml.md.quench import QuenchProtocol

    opts = GrowOptions(nc="Zr25Cu50Al25", root=tmp_path, runs=1, n_atoms=8, seed=7,
                       protocol=QuenchProtocol.scaled(0.05), subruns=parse_subruns("0,7"))
    rep = grow(opts)
    assert rep.done == {"md": 1, "augment": 1, "xtb": 2}
    rows = tree_status(tmp_path)
    assert len(rows) == 15  # all 15 cells written in the original layout
    labelled = {r.cell.sub_run for r in rows if "xtb-gfn1" in r.labels}
    assert labelled == {0, 7}
    assert all(r.status == "NEW" for r in rows)  # no DFT labels claimed
    first = subrun_path(tmp_path, CellId("Zr25Cu50Al25", 1, 0))
    xyz0 = (first / "Zr25Cu50Al25.xyz").read_text()
    # interruption: sub-run 7's labels lost -> only they are redone
    (subrun_path(tmp_path, CellId("Zr25Cu50Al25", 1, 7)) / XTB_MARKER).unlink()
    rep = grow(opts)
    assert rep.done == {"xtb": 1} and rep.skipped == {"md": 1, "augment": 1, "xtb": 1}
    assert (first / "Zr25Cu50Al25.xyz").read_text() == xyz0
    with pytest.raises(ConfigError, match="cannot be made exactly"):
        grow(GrowOptions(nc="Zr47Cu47Al6", root=tmp_path, n_atoms=8))


def test_grow_dft_dry_run_writes_inputs_and_scripts(tmp_path):
    """DFT path without running anything (MD replaced by an existing quenched cell)."""
    import shutil

    from bondml.generate.dft import QESettings
    from bondml.generate.grow import GrowOptions, grow
    from bondml.generate.jobs import JOB_SCRIPT, ExecutorConfig, tree_status
    from bondml.io.getl import run_path

    rd = run_path(tmp_path, NC, 21)
    rd.mkdir(parents=True)
    shutil.copy(run21_dir() / "2000" / "0" / f"{NC}.xyz", rd / f"{NC}.xyz")
    (rd / "result.json").write_text("{}")  # a finished melt-quench
    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    for _el, f in QESettings().pseudopotentials:
        (pseudo / f).write_text("placeholder: dry run only checks the files exist\n")
    rep = grow(GrowOptions(nc=NC, root=tmp_path, first_run=21, labeler="dft", dry_run=True,
                           executor=ExecutorConfig(kind="slurm", partition="cpu", cores_per_node=16, cores_per_task=16),
                           pseudo_dir=pseudo, cores=16))
    assert rep.skipped.get("md") == 1 and rep.done.get("dft-inputs") == 15
    assert rep.submit_script is not None and rep.submit_script.read_text().count("sbatch") == 15
    rows = tree_status(tmp_path)
    assert len(rows) == 15 and all(r.status == "NEW" for r in rows)
    ref_in = (run21_dir() / "2000" / "3" / f"{NC}.scf.in").read_text()
    sub3 = subrun_path(tmp_path, CellId(NC, 21, 3))
    mine = (sub3 / f"{NC}.scf.in").read_text()
    for key in ("ecutwfc", "ecutrho", "nbnd", "degauss"):
        ref_line = next(ln for ln in ref_in.splitlines() if key in ln).split("=")[1].strip(" ,")
        assert ref_line.replace(".0", "").replace("d0", "") in mine or key == "degauss"
    assert "#SBATCH --ntasks=16" in (sub3 / JOB_SCRIPT).read_text()
    # running it again changes nothing and writes nothing new
    rep = grow(GrowOptions(nc=NC, root=tmp_path, first_run=21, labeler="dft", dry_run=True,
                           executor=ExecutorConfig(kind="slurm", partition="cpu"), pseudo_dir=pseudo))
    assert rep.done.get("dft-inputs") is None and rep.skipped.get("dft-inputs") == 15
