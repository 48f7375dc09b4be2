"""OVITO export of predictions (LAMMPS data topology + dump local per-bond values) and the named
per-atom stress columns of the ext-xyz, on a real reference cell."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
from ase.io import read

from bondml.data import run21_dir
from bondml.deploy.outputs import FrameResult, ovito_files, peratom_extxyz, peratom_table, write_frame
from bondml.structure.bonds import find_bonds

XYZ = run21_dir() / "2000" / "0" / "Zr49Cu49Al2.xyz"


def _result(sheared: bool = False) -> FrameResult:
    a = read(XYZ, format="extxyz")
    if sheared:
        a.set_cell(np.array([[1.0, 0.0, 0.0], [0.3, 0.95, 0.0], [-0.2, 0.25, 0.9]]) @ a.cell.array, scale_atoms=True)
    b = find_bonds(a, (1.8, 3.75))
    rng = np.random.default_rng(0)
    pred = {"minus_icohp": rng.random(len(b)), "std": rng.random(len(b)) * 0.1,
            "fallback": np.zeros(len(b), bool), "out_of_domain": np.zeros(len(b), bool)}
    stress = rng.normal(size=(len(a), 6))
    return FrameResult(3, 300, -0.01, a, b, pred, stress)


def _dump_rows(text: str) -> tuple[list[str], np.ndarray]:
    lines = text.splitlines()
    k = next(n for n, ln in enumerate(lines) if ln.startswith("ITEM: BONDS"))
    cols = lines[k].split()[2:]
    return cols, np.loadtxt(io.StringIO("\n".join(lines[k + 1:])), ndmin=2)


def test_lammps_data_and_dump_local(tmp_path: Path) -> None:
    for sheared in (False, True):
        r = _result(sheared)
        data, dump = ovito_files(r)
        p = tmp_path / "f.data"
        p.write_text(data)
        got = read(p, format="lammps-data", atom_style="bond")
        assert len(got) == len(r.atoms)
        # same structure after LAMMPS' rotation: same distances for every bond (minimum image)
        assert "Bond Type Labels" in data and "\n1 Zr-Zr\n" in data and ("xy xz yz" in data) == sheared
        cols, rows = _dump_rows(dump)
        assert cols == ["index", "c_batom1", "c_batom2", "c_btype", "c_minus_icohp", "c_std", "c_distance"]
        keep = r.bonds.i != r.bonds.j
        assert rows.shape == (keep.sum(), 7)
        np.testing.assert_array_equal(rows[:, 1] - 1, r.bonds.i[keep])
        np.testing.assert_array_equal(rows[:, 2] - 1, r.bonds.j[keep])
        np.testing.assert_allclose(rows[:, 4], r.pred["minus_icohp"][keep], atol=5e-7)
        np.testing.assert_allclose(rows[:, 6], r.bonds.distance[keep], atol=5e-7)
        d = got.get_all_distances(mic=True)[rows[:, 1].astype(int) - 1, rows[:, 2].astype(int) - 1]
        np.testing.assert_allclose(d, r.bonds.distance[keep], atol=1e-6)
        # the Bonds section lists the same pairs as the dump, in the same order
        bsec = data.split("\nBonds\n\n", 1)[1].splitlines()
        np.testing.assert_array_equal(np.array([ln.split()[2:] for ln in bsec], int), rows[:, 1:3].astype(int))


def test_named_stress_columns_and_write_frame(tmp_path: Path) -> None:
    r = _result()
    t: pa.Table = peratom_table(r)
    a = read(io.StringIO(peratom_extxyz(r, t)), format="extxyz")
    for k, name in enumerate(("sxx", "syy", "szz", "sxy", "sxz", "syz")):
        np.testing.assert_allclose(a.arrays[f"{name}_gpa"], r.stress[:, k], atol=1e-7)  # ext-xyz keeps 8 digits
    write_frame(tmp_path, r, ovito=True)
    assert (tmp_path / "ovito" / "frame_00003.data").is_file()
    assert (tmp_path / "ovito" / "frame_00003.bonds.dump").read_text().startswith("ITEM: TIMESTEP\n300\n")
