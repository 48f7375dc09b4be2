"""LAMMPS data/dump readers and the dump writer, on the real 10k cell and synthetic dumps."""

from __future__ import annotations

import gc

import numpy as np
import psutil
import pytest
from ase import Atoms
from ase.io import read, write

from bondml.data import production_cell
from bondml.errors import InputFileError, UnknownElementError
from bondml.io.lammps import (
    format_dump_frame,
    iter_dump,
    iter_frames,
    per_atom_stress_gpa,
    read_lammps_data,
    sniff_format,
)


@pytest.fixture(scope="module")
def cell10k():
    return read_lammps_data(production_cell())


def test_production_cell_types_by_mass(cell10k):
    a = cell10k.atoms
    assert len(a) == 10000
    assert a.symbols.formula.count() == {"Zr": 4900, "Cu": 4900, "Al": 200}
    assert np.allclose(a.cell.array, np.eye(3) * 55.969)
    assert np.all(np.diff(cell10k.ids) > 0)
    # first line of the Atoms section: "1 1 2.304983 4.097658 2.023285"
    assert a.get_chemical_symbols()[0] == "Zr"
    assert np.allclose(a.positions[0], [2.304983, 4.097658, 2.023285])
    assert sniff_format(production_cell()) == "lammps-data"


def test_explicit_type_map_overrides_masses():
    f = read_lammps_data(production_cell(), type_map="1=Cu,2=Zr,3=Al")
    assert f.atoms.symbols.formula.count() == {"Cu": 4900, "Zr": 4900, "Al": 200}


def test_unknown_mass_is_one_line_error(tmp_path):
    text = production_cell().read_text().replace("1 91.2240   # Zr", "1 58.69 # Ni")
    p = tmp_path / "ni.data"
    p.write_text(text)
    with pytest.raises(UnknownElementError, match="mass 58.69"):
        read_lammps_data(p)


def _shuffled_dump(atoms: Atoms, tmp_path, n_frames=3, origin=(1.0, -2.0, 0.5), seed=0):
    rng = np.random.default_rng(seed)
    p = tmp_path / "t.dump"
    frames = []
    with open(p, "w") as fh:
        for k in range(n_frames):
            a = atoms.copy()
            a.positions += rng.normal(0, 0.05, a.positions.shape)
            order = rng.permutation(len(a))
            ids = np.arange(1, len(a) + 1)
            sub = a[order]
            txt = format_dump_frame(sub, timestep=100 * k, ids=ids[order], origin=np.array(origin),
                                    columns={"c_spa[1]": np.arange(len(a))[order] * 1.0})
            fh.write(txt)
            frames.append(a)
    return p, frames


@pytest.mark.parametrize("tilt", [(0.0, 0.0, 0.0), (4.0, -3.0, 2.5)])
def test_dump_roundtrip_sorted_ids_and_triclinic(tmp_path, tilt):
    rng = np.random.default_rng(1)
    cell = np.array([[20.0, 0, 0], [tilt[0], 21.0, 0], [tilt[1], tilt[2], 22.0]])
    a = Atoms("Zr40Cu40Al20", scaled_positions=rng.random((100, 3)), cell=cell, pbc=True)
    p, frames = _shuffled_dump(a, tmp_path)
    got = list(iter_dump(p))
    assert [f.timestep for f in got] == [0, 100, 200]
    for f, ref in zip(got, frames, strict=True):
        assert np.all(f.ids == np.arange(1, 101))
        assert f.atoms.get_chemical_symbols() == ref.get_chemical_symbols()
        assert np.allclose(f.atoms.cell.array, cell, atol=1e-8)
        assert np.allclose(f.atoms.positions, ref.positions, atol=1e-7)
        assert np.allclose(f.origin, [1.0, -2.0, 0.5])
        assert np.allclose(f.columns["c_spa[1]"], np.arange(100))
    # independent check of the triclinic box conversion: ASE's own LAMMPS dump reader
    ase_cell = read(p, format="lammps-dump-text", index=0).cell.array
    assert np.allclose(ase_cell, cell, atol=1e-8)


def test_scaled_coordinates_and_image_flags_unwrap(tmp_path):
    text = """ITEM: TIMESTEP
7
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS xy xz yz pp pp pp
-1.0 11.0 2.0
0.0 10.0 0.0
0.0 10.0 0.0
ITEM: ATOMS id type xs ys zs ix iy iz c_s[1] c_s[2] c_s[3] c_s[4] c_s[5] c_s[6]
2 2 0.5 0.5 0.5 1 0 -1 6e4 0 0 0 0 0
1 1 0.1 0.2 0.3 0 0 0 -3e4 0 0 0 0 0
"""
    p = tmp_path / "s.dump"
    p.write_text(text)
    (f,) = list(iter_dump(p))
    # box: xlo_bound=-1 -> xlo = -1 - min(0, xy=2, xz=0, 2) = -1; xhi = 11 - max(0,2,0,2) = 9 -> lx = 10
    cell = np.array([[10.0, 0, 0], [2.0, 10.0, 0], [0, 0, 10.0]])
    assert np.allclose(f.atoms.cell.array, cell)
    assert f.unwrapped
    assert np.allclose(f.atoms.positions[0], np.array([0.1, 0.2, 0.3]) @ cell)
    assert np.allclose(f.atoms.positions[1], np.array([0.5, 0.5, 0.5]) @ cell + np.array([1, 0, -1]) @ cell)
    # stress*volume (bar A^3) / (V/N = 500 A^3) / 1e4 -> GPa
    s = per_atom_stress_gpa(f)
    assert np.allclose(s[:, 0], [-3e4 / 500 / 1e4, 6e4 / 500 / 1e4])


def _minimal_dump(n=3, names="id type x y z", rows=None, step=0):
    rows = rows or [f"{k + 1} 1 {k}.0 0.0 0.0" for k in range(n)]
    return (f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{len(rows)}\nITEM: BOX BOUNDS pp pp pp\n"
            f"0 10\n0 10\n0 10\nITEM: ATOMS {names}\n" + "\n".join(rows) + "\n")


def test_bad_dumps_give_one_line_errors(tmp_path):
    p = tmp_path / "bad.dump"
    p.write_text(_minimal_dump(rows=["1 1 0 0", "2 1 1 0"], names="id type x y"))
    with pytest.raises(InputFileError, match="no position columns"):
        list(iter_dump(p))
    p.write_text(_minimal_dump(rows=["1 0 0 0"], names="id x y z"))
    with pytest.raises(InputFileError, match="neither 'type' nor 'element'"):
        list(iter_dump(p))
    p.write_text(_minimal_dump(3) + _minimal_dump(2, step=10))
    with pytest.raises(InputFileError, match="frame 1 .* has 2 atoms, expected 3"):
        list(iter_dump(p))
    p.write_text(_minimal_dump(3)[:-10])
    with pytest.raises(InputFileError, match="truncated|values for"):
        list(iter_dump(p))
    for exc in (InputFileError,):
        with pytest.raises(exc):
            list(iter_dump(tmp_path / "missing.dump"))


def test_ext_xyz_through_ase(tmp_path):
    rng = np.random.default_rng(2)
    frames = [Atoms("Zr2Cu2", positions=rng.random((4, 3)) * 5, cell=[6, 6, 6], pbc=True) for _ in range(3)]
    write(tmp_path / "t.xyz", frames, format="extxyz")
    got = list(iter_frames(tmp_path / "t.xyz"))
    assert len(got) == 3
    assert np.allclose(got[2].atoms.positions, frames[2].positions)


def test_dump_streaming_memory_is_flat(tmp_path, cell10k):
    """Peak RSS while streaming 40 frames of 10k atoms grows far less than the file (~18 MB)."""
    a = cell10k.atoms
    p = tmp_path / "big.dump"
    txt = format_dump_frame(a, columns={"v_sxx": np.zeros(len(a))})
    with open(p, "w") as fh:
        for _ in range(40):
            fh.write(txt)
    size_mb = p.stat().st_size / 2**20
    proc = psutil.Process()
    rss = []
    for k, f in enumerate(iter_dump(p)):
        assert len(f) == 10000
        del f
        if k in (4, 39):
            gc.collect()
            rss.append(proc.memory_info().rss / 2**20)
    assert size_mb > 15
    assert rss[1] - rss[0] < 10, (rss, size_mb)
