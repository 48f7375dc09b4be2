"""The quippy SOAP library path (``Descriptor.calc_array``, one neighbour list, minimal atoms) is
bit-identical to quippy's documented ``Descriptor.calc(atoms)["data"]`` route, on real cells.

(The default numpy engine of the quippy backend is held to this path in test_features_quip_soap.py.)"""

from __future__ import annotations

from pathlib import Path

import ase.io
import numpy as np
import pytest

from bondml.data import production_cell, run21_dir
from bondml.features.soap import PAPER_SETTINGS, _soap_quippy, compute_soap
from bondml.io.lammps import read_lammps_data


def reference_soap(atoms):
    """What bondml computed before: quippy's high-level Descriptor.calc on the wrapped atoms."""
    from quippy.descriptors import Descriptor

    a = atoms.copy()
    a.wrap(eps=0.0)
    r = Descriptor(PAPER_SETTINGS.quip_string()).calc(a)
    data = np.asarray(r["data"], dtype=float)
    out = np.empty((len(atoms), data.shape[1]))
    out[np.asarray(r["ci"], dtype=np.int64).ravel() - 1] = data
    return out


@pytest.mark.parametrize("k", [0, 7])
def test_run21_cells_bit_identical(k: int) -> None:
    atoms = ase.io.read(Path(run21_dir()) / "2000" / str(k) / "Zr49Cu49Al2.xyz")  # carries extra arrays
    new = compute_soap(atoms, engine="library")
    assert new.shape == (len(atoms), 2101) and new.dtype == np.float64 and new.flags.c_contiguous
    assert np.array_equal(new, reference_soap(atoms))
    # unwrapped positions (a trajectory frame with image flags): bit-identical to the reference too,
    # and equal to the wrapped cell's rows up to the rounding of the wrap
    moved = atoms.copy()
    moved.positions += moved.cell.array[0] * np.where(np.arange(len(atoms)) % 3 == 0, 1, -2)[:, None]
    soap_moved = compute_soap(moved, engine="library")
    assert np.array_equal(soap_moved, reference_soap(moved))
    assert np.allclose(soap_moved, new, atol=1e-9)


def test_10k_cell_bit_identical() -> None:
    atoms = read_lammps_data(production_cell()).atoms
    new = _soap_quippy(atoms, PAPER_SETTINGS)
    assert np.array_equal(new, reference_soap(atoms))
    assert np.allclose(np.linalg.norm(new, axis=1), 1.0)  # normalised, as the paper
