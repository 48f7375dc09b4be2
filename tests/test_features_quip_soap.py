"""The numpy engine of QUIP's SOAP (the default for ``backend="quippy"``) reproduces quippy itself:
same 2101 columns, order, sqrt(2) weights, normalisation and trailing 0, to 1e-12 absolute
(measured: <= 5e-15) on the real run-21 cells, the 10k production cell and small odd cells."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from bondml.data import production_cell, run21_dir
from bondml.errors import ConfigError
from bondml.features import soap as soap_mod
from bondml.features.quip_soap import coordination_function, n_components, quip_basis, soap_quip_numpy
from bondml.features.soap import PAPER_SETTINGS, FeatureSettings, _soap_quippy, compute_bond_features, compute_soap

TOL = 1e-12


def cell(k: int) -> Atoms:
    return ase.io.read(Path(run21_dir()) / "2000" / str(k) / "Zr49Cu49Al2.xyz")


def check_equal(atoms: Atoms, settings: FeatureSettings = PAPER_SETTINGS) -> np.ndarray:
    """The engine's vectors against quippy's (library path); returns the engine's."""
    got = compute_soap(atoms, settings, engine="numpy")
    ref = _soap_quippy(atoms, settings)
    assert got.shape == ref.shape == (len(atoms), n_components(settings)) and got.dtype == np.float64
    assert np.abs(got - ref).max() <= TOL
    assert np.all(got[:, -1] == 0.0)
    return got


# ------------------------------------------------------------------------------- real cells
@pytest.mark.parametrize("k", list(range(15)))
def test_run21_cells_equal_quippy(k: int) -> None:
    """All 15 run-21 cells: quenched (0), sheared (1-6), stretched / compressed (7-12), scaled (13, 14)."""
    got = check_equal(cell(k))
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=0, atol=1e-14)


def test_cut_of_the_production_cell_equals_quippy(small_cell: Path) -> None:
    """A 20 A periodic cut of the 10k cell (406 atoms; the full cell is the slow test below)."""
    from bondml.io.lammps import read_lammps_data

    atoms = read_lammps_data(small_cell).atoms
    assert len(atoms) > 300
    check_equal(atoms)


@pytest.mark.slow
def test_10k_production_cell_equals_quippy() -> None:
    from bondml.io.lammps import read_lammps_data

    atoms = read_lammps_data(production_cell()).atoms
    got = compute_soap(atoms)  # the default path: the engine
    ref = _soap_quippy(atoms, PAPER_SETTINGS)
    assert got.shape == (10000, 2101)
    assert np.abs(got - ref).max() <= TOL
    f32 = compute_soap(atoms, dtype=np.float32)
    assert f32.dtype == np.float32 and np.array_equal(f32, got.astype(np.float32))


# ------------------------------------------------------------------------------- odd cells
def test_small_cells_several_images() -> None:
    """fcc Cu with a < 2 x cutoff (primitive: every neighbour is an image of the one atom; cubic),
    a 2-atom triclinic cell."""
    prim = check_equal(bulk("Cu", "fcc", a=3.61))
    cub = check_equal(bulk("Cu", "fcc", a=3.61, cubic=True))
    np.testing.assert_allclose(cub, np.repeat(prim, 4, axis=0), rtol=0, atol=1e-14)  # all atoms equivalent
    tri = Atoms("CuZr", scaled_positions=[[0.1, 0.2, 0.3], [0.6, 0.4, 0.8]],
                cell=[[3.1, 0, 0], [1.2, 2.9, 0], [0.7, -0.9, 3.3]], pbc=True)
    check_equal(tri)


def test_cell_without_al_and_atoms_outside_the_cell() -> None:
    a = cell(3)
    no_al = a[[i for i, z in enumerate(a.numbers) if z != 13]]
    got = check_equal(no_al)
    assert got.shape == (98, 2101)
    moved = a.copy()
    moved.positions += moved.cell.array[1] * np.where(np.arange(len(a)) % 2, 3, -1)[:, None] + 0.3
    out = check_equal(moved)
    np.testing.assert_allclose(out, compute_soap(a), rtol=0, atol=1e-9)  # image choice: rounding only


def test_lone_atom_and_cluster() -> None:
    """No neighbour: only the central Gaussian (one non-zero component, 1 after normalisation),
    periodic box or not; a free cluster."""
    for lone in (Atoms("Zr", positions=[[1.0, 1.0, 1.0]], cell=np.eye(3) * 20.0, pbc=True),
                 Atoms("Cu", positions=[[0.0, 0.0, 0.0]], pbc=False)):
        got = check_equal(lone)
        assert np.count_nonzero(got) == 1 and got.max() == 1.0
    check_equal(Atoms("CuZrAl", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.7, 0.4]], pbc=False))


def test_other_settings_equal_quippy() -> None:
    """The engine follows every setting the quip string carries: unnormalised, other species sets,
    other cutoff, l_max, n_max, atom_sigma."""
    a = cell(5)
    no_al = a[[i for i, z in enumerate(a.numbers) if z != 13]]
    check_equal(a, FeatureSettings(normalise=False))
    check_equal(no_al, FeatureSettings(species_z=(29, 40)))
    check_equal(bulk("Cu", "fcc", a=3.61, cubic=True), FeatureSettings(species_z=(29,)))
    check_equal(a, FeatureSettings(cutoff=5.0, l_max=4, n_max=6, atom_sigma=0.4))
    check_equal(a, FeatureSettings(cutoff=3.0, l_max=8, n_max=10, atom_sigma=0.7))


def test_float32_is_float64_rounded_and_chunks_do_not_matter() -> None:
    a = cell(1)
    f64 = compute_soap(a)
    f32 = compute_soap(a, dtype=np.float32)
    assert f32.dtype == np.float32 and np.array_equal(f32, f64.astype(np.float32))
    assert np.array_equal(soap_quip_numpy(a, PAPER_SETTINGS, chunk=7), f64)
    rows, ri, rj = compute_bond_features(a, [0, 1], [2, 3], np.zeros((2, 3)), dtype=np.float32)
    assert np.array_equal(rows, f32) and list(ri) == [0, 1] and list(rj) == [2, 3]


# ------------------------------------------------------------------------------- building blocks
def test_basis_and_cutoff_function_as_quip() -> None:
    alpha, r, chol, transform = quip_basis(3.75, 8, 0.5)
    assert alpha == 2.0 and r[0] == 0.0 and r.size == 8
    np.testing.assert_allclose(np.diff(r), (3.75 + 0.5 * np.sqrt(20 * np.log(10))) / 8, rtol=1e-14)
    assert np.all(np.triu(chol, 1) == 0.0) and np.all(np.diag(chol) > 0)  # lower Cholesky factor
    cov = np.exp(-alpha * (r[:, None] - r[None, :]) ** 2)
    np.testing.assert_allclose(cov @ transform, chol, rtol=0, atol=1e-13)
    f = coordination_function(np.array([1.0, 3.25, 3.5, 3.75, 3.8]), 3.75)
    np.testing.assert_allclose(f, [1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-15)


def test_real_harmonics_give_quips_complex_sums() -> None:
    """sum_m Re Y_a Re Y_b + Im Y_a Im Y_b of QUIP's complex harmonics (its SolidRCartesian formula)
    equals sum_m Y_a Y_b of the engine's real ones: the invariance the engine relies on."""
    from math import factorial, pi

    from bondml.features.fast_soap import spherical_harmonics_t

    rng = np.random.default_rng(0)
    u = rng.normal(size=(2, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]

    def quip_y(x: np.ndarray, ell: int) -> np.ndarray:
        cm, cp = complex(-0.5 * x[0], -0.5 * x[1]), complex(0.5 * x[0], -0.5 * x[1])
        out = []
        for m in range(-ell, ell + 1):
            s = sum(cm**p * cp**(p - m) * x[2] ** (ell - 2 * p + m) / (factorial(p) * factorial(p - m)
                    * factorial(ell - 2 * p + m)) for p in range(ell + 1) if p - m >= 0 and ell - 2 * p + m >= 0)
            out.append(s * np.sqrt(factorial(ell + m) * factorial(ell - m)) * np.sqrt((2 * ell + 1) / (4 * pi)))
        return np.array(out)

    Y = spherical_harmonics_t(np.ascontiguousarray(u.T), 6)
    for ell in range(7):
        qa, qb = quip_y(u[0], ell), quip_y(u[1], ell)
        quip = float(np.sum(qa.real * qb.real + qa.imag * qb.imag))
        real = float(Y[ell * ell:(ell + 1) ** 2, 0] @ Y[ell * ell:(ell + 1) ** 2, 1])
        assert abs(quip - real) < 1e-14


# ------------------------------------------------------------------------------- engine choice
def test_engine_choice_keyword_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    a = cell(0)
    calls = []
    real = soap_mod._soap_quippy

    def spy(atoms: Atoms, settings: FeatureSettings) -> np.ndarray:
        calls.append(len(atoms))
        return real(atoms, settings)

    monkeypatch.setattr(soap_mod, "_soap_quippy", spy)
    compute_soap(a)
    assert calls == []  # the default: the engine
    lib = compute_soap(a, engine="library")
    assert calls == [100]
    monkeypatch.setenv("BONDML_QUIP_ENGINE", "library")
    assert np.array_equal(compute_soap(a), lib) and calls == [100, 100]
    compute_soap(a, engine="numpy")  # the keyword wins
    assert calls == [100, 100]
    monkeypatch.setenv("BONDML_QUIP_ENGINE", "fortran")
    with pytest.raises(ConfigError, match="BONDML_QUIP_ENGINE"):
        compute_soap(a)
    monkeypatch.delenv("BONDML_QUIP_ENGINE")
    with pytest.raises(ValueError, match="engine"):
        compute_soap(a, engine="fortran")
    # a slab (periodic in two directions) is not the engine's: quippy computes it
    slab = a.copy()
    slab.pbc = (True, True, False)
    got = compute_soap(slab)
    assert calls[-1] == 100 and got.shape == (100, 2101)
    assert PAPER_SETTINGS.digest == FeatureSettings().digest  # the engine is not part of the settings


def test_default_path_does_not_import_quippy() -> None:
    code = ("import sys\nfrom bondml.data import run21_dir\nimport ase.io\n"
            "from bondml.features.soap import compute_soap\n"
            "a = ase.io.read(run21_dir() / '2000' / '0' / 'Zr49Cu49Al2.xyz')\n"
            "x = compute_soap(a)\nassert x.shape == (100, 2101)\n"
            "print(any(m.split('.')[0] == 'quippy' for m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "False"


def test_predict_command_does_not_import_quippy(model_dir: Path, small_cell: Path, tmp_path: Path) -> None:
    """``bondml predict`` on a frame with a quippy-backend model: quippy is never loaded."""
    out = tmp_path / "pred"
    args = ["predict", "--model", str(model_dir), "--structure", str(small_cell), "--out", str(out), "--quiet",
            "--workers", "1"]
    code = (f"import sys\nfrom bondml.cli.main import run\nrc = run({args!r})\n"
            "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\nsys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    mods = {m.split(".")[0] for m in r.stderr.rsplit("MODULES ", 1)[1].split()}
    assert "bondml" in mods and "quippy" not in mods
    assert (out / "manifest.json").is_file()


def test_without_quippy_the_engine_works_and_the_library_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from bondml.errors import BondmlError

    for name in ("quippy", "quippy.descriptors"):
        monkeypatch.setitem(sys.modules, name, None)  # as if quippy-ase were not installed
    settings = FeatureSettings(cutoff=3.6)  # not in the descriptor cache of this process
    a = cell(2)
    assert compute_soap(a, settings).shape == (100, 2101)
    with pytest.raises(BondmlError, match="quippy is not importable"):
        compute_soap(a, settings, engine="library")
