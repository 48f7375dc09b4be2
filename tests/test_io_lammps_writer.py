"""The one LAMMPS data writer (io.lammps) and the one type map, used by generate and deploy."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read

from bondml.io.lammps import STUDY_TYPE_MAP, format_lammps_data, read_lammps_data, type_map_string, write_lammps_data


def test_type_map_is_the_study_order() -> None:
    from bondml.md.compress import CompressionProtocol
    from bondml.md.quench import LAMMPS_TYPES

    assert STUDY_TYPE_MAP == {1: "Zr", 2: "Cu", 3: "Al"}
    assert LAMMPS_TYPES == {"Zr": 1, "Cu": 2, "Al": 3}
    assert CompressionProtocol().type_map == type_map_string() == "1=Zr,2=Cu,3=Al"


@pytest.mark.parametrize("tilt", [0.0, 0.7])
def test_write_read_roundtrip(tmp_path, run21, tilt) -> None:
    a = read(run21 / "2000" / "0" / "Zr49Cu49Al2.xyz")
    a.set_cell(np.diag(a.cell.lengths()))
    if tilt:
        c = a.cell.array.copy()
        c[1, 0] = tilt
        a.set_cell(c, scale_atoms=True)
    p = write_lammps_data(tmp_path / "x.data", a)
    f = read_lammps_data(p)  # types mapped back through the Masses section
    assert f.atoms.get_chemical_symbols() == a.get_chemical_symbols()
    np.testing.assert_allclose(f.atoms.positions, a.positions, atol=1e-6)
    np.testing.assert_allclose(f.atoms.cell.array, a.cell.array, atol=1e-8)


def test_generate_random_start_format() -> None:
    from bondml.md.quench import format_lammps_data as start_data
    from bondml.md.quench import random_start

    a = random_start("Zr49Cu49Al2", 100, seed=3)
    text = start_data(a)
    assert text.startswith("bondml random start\n") and "Masses" not in text
    assert text == format_lammps_data(a, masses=False, title="bondml random start", digits=10, box_digits=10)
    line = text.splitlines()[-1].split()
    assert len(line[2].split(".")[1]) == 10


def test_writer_refuses_unmapped_elements_and_upper_cells() -> None:
    from ase import Atoms

    from bondml.errors import BondmlError

    with pytest.raises(BondmlError, match="Ni"):
        format_lammps_data(Atoms("Ni", cell=np.eye(3) * 3, pbc=True))
    with pytest.raises(BondmlError, match="lower-triangular"):
        format_lammps_data(Atoms("Zr", cell=[[3, 1, 0], [0, 3, 0], [0, 0, 3]], pbc=True))
