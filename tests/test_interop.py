"""pymatgen ``Structure`` accepted wherever an ``ase.Atoms`` is (bonds, SOAP, model prediction,
element check), on a real reference cell."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read

from bondml.data import run21_dir
from bondml.errors import BondmlError, UnknownElementError
from bondml.features.soap import compute_soap
from bondml.interop import as_atoms
from bondml.structure.bonds import bond_vectors, find_bonds

pytest.importorskip("pymatgen")
from pymatgen.io.ase import AseAtomsAdaptor  # noqa: E402

XYZ = run21_dir() / "2000" / "0" / "Zr49Cu49Al2.xyz"


def test_structure_gives_the_same_bonds_and_soap() -> None:
    atoms = read(XYZ, format="extxyz")
    s = AseAtomsAdaptor.get_structure(atoms)
    a, b = find_bonds(atoms, (1.8, 4.2)), find_bonds(s, (1.8, 4.2))
    assert len(a) == len(b) == 738
    for f in ("i", "j", "shift", "type"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    np.testing.assert_allclose(a.distance, b.distance, atol=1e-12)
    np.testing.assert_allclose(bond_vectors(s, b), bond_vectors(atoms, a), atol=1e-12)
    np.testing.assert_allclose(compute_soap(s), compute_soap(atoms), atol=1e-12)
    assert as_atoms(atoms) is atoms


def test_other_objects_refused() -> None:
    with pytest.raises(BondmlError, match="expected an ase.Atoms or a pymatgen Structure, got str"):
        as_atoms("POSCAR")


def test_model_predicts_a_structure_and_refuses_other_elements(model_dir) -> None:
    from bondml.model.bondmodel import BondModel

    m = BondModel.load(model_dir)
    atoms = read(XYZ, format="extxyz")
    s = AseAtomsAdaptor.get_structure(atoms)
    b1, p1 = m.predict_structure(atoms, return_std=False)
    b2, p2 = m.predict_structure(s, return_std=False)
    np.testing.assert_allclose(p1["minus_icohp"], p2["minus_icohp"], atol=1e-10)  # SOAP agrees to 1e-12
    assert len(b1) > 500 and np.isfinite(p1["minus_icohp"]).all()
    s.replace(0, "Ni")
    with pytest.raises(UnknownElementError, match="element\\(s\\) Ni outside this model's elements \\(Zr, Cu, Al\\)"):
        m.predict_structure(s)
