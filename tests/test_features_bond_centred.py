"""Bond-centred SOAP (SOAP at the bond midpoint) on the real run-21 cells: equality with featomic
on the cell with a dummy atom at the midpoint, invariances, and the dataset / store paths."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

from bondml.features.bond_centred import bond_midpoints, bond_soap, n_components, property_labels
from bondml.features.soap import BOND_SETTINGS, PAPER_SETTINGS, FeatureSettings, compute_bond_features
from bondml.structure.bonds import find_bonds

RAW = FeatureSettings(backend="featomic", kind="bond", normalise=False)


@pytest.fixture(scope="module")
def cell(run21):
    """Sheared sub-run 1 of run 21 (a triclinic cell) and some of its labelled-window bonds."""
    a = read(run21 / "2000/1/Zr49Cu49Al2.xyz")
    b = find_bonds(a, window=(1.8, 3.75))
    return a, b.select(np.arange(0, len(b), 37))


def _featomic_dummy_reference(atoms: Atoms, mids: np.ndarray) -> np.ndarray:
    """featomic's own SOAP power spectrum of dummy atoms (type 0) placed at ``mids``, with only the
    three real species as neighbours, mapped onto bond_soap's column layout."""
    from metatensor import Labels

    from bondml.features.featomic_backend import _calculator

    sysm = Atoms(numbers=np.concatenate([atoms.numbers, np.zeros(len(mids), int)]),
                 positions=np.vstack([atoms.positions, mids]), cell=atoms.cell, pbc=True)
    calc = _calculator(3.75, 6, 8, 0.5, "quip_poly")
    sp = (13, 29, 40)
    keys = Labels(["center_type", "neighbor_1_type", "neighbor_2_type"],
                  np.array([[0, p, q] for k, p in enumerate(sp) for q in sp[k:]], dtype=np.int32))
    blk = calc.compute(sysm, selected_keys=keys).keys_to_properties(["neighbor_1_type", "neighbor_2_type"]).block()
    assert blk.properties.names == ["neighbor_1_type", "neighbor_2_type", "l", "n_1", "n_2"]
    vals = np.empty(blk.values.shape)
    vals[np.asarray(blk.samples.column("atom")) - len(atoms)] = np.asarray(blk.values)
    col = {tuple(int(x) for x in r): k for k, r in enumerate(np.asarray(blk.properties.values))}
    lab = property_labels(RAW)  # (l, Z1, n1, Z2, n2), Z1 <= Z2
    idx = np.array([col[(z1, z2, ell, n1, n2)] for ell, z1, n1, z2, n2 in lab])
    # bond_soap folds the two equal (n1, n2) / (n2, n1) entries of a same-species block into one
    w = np.where((lab[:, 1] == lab[:, 3]) & (lab[:, 2] != lab[:, 4]), np.sqrt(2.0), 1.0)
    return vals[:, idx] * w


def test_equals_featomic_with_one_dummy_atom_at_the_midpoint(cell):
    atoms, b = cell
    q = bond_soap(atoms, b.i, b.j, b.shift, RAW)
    assert q.shape == (len(b), n_components(RAW)) == (len(b), 2100)
    mids = bond_midpoints(atoms, b.i, b.j, b.shift)
    for k in range(3):  # one dummy atom per reference calculation, computed independently
        ref = _featomic_dummy_reference(atoms, mids[k:k + 1])
        np.testing.assert_allclose(q[k], ref[0], rtol=0, atol=1e-10 * np.abs(ref).max())
    ref = _featomic_dummy_reference(atoms, mids)  # all at once: dummies never see each other
    np.testing.assert_allclose(q, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    # the kernel (what the model sees) equals featomic's full 2688-component layout's
    qn = bond_soap(atoms, b.i, b.j, b.shift, BOND_SETTINGS)
    np.testing.assert_allclose(np.linalg.norm(qn, axis=1), 1.0, atol=1e-12)


def test_invariant_under_rotation_permutation_image_and_swap(cell):
    atoms, b = cell
    q = bond_soap(atoms, b.i, b.j, b.shift, BOND_SETTINGS)
    # rotation of atoms and cell
    rot = atoms.copy()
    rot.rotate(37.0, (1.0, 2.0, -0.5), rotate_cell=True)
    np.testing.assert_allclose(bond_soap(rot, b.i, b.j, b.shift, BOND_SETTINGS), q, atol=1e-10)
    # permutation of the atoms (bond indices mapped)
    perm = np.random.default_rng(3).permutation(len(atoms))
    inv = np.argsort(perm)
    pa = atoms[perm]
    np.testing.assert_allclose(bond_soap(pa, inv[b.i], inv[b.j], b.shift, BOND_SETTINGS), q, atol=1e-10)
    # swap of the two bond atoms: (j, i, -shift) is the same bond
    np.testing.assert_allclose(bond_soap(atoms, b.j, b.i, -b.shift, BOND_SETTINGS), q, atol=1e-10)
    # the same bond seen through another periodic image: move atom j by a lattice vector
    # (positions not wrapped) and compensate in the shift; and translate the bond as a whole
    moved = atoms.copy()
    t = np.array([1, -2, 1])
    pos = moved.positions.copy()
    pos[b.j[0]] += t @ atoms.cell.array
    moved.positions = pos
    sh = b.shift.copy()
    sh[0] -= t
    np.testing.assert_allclose(bond_soap(moved, b.i[:1], b.j[:1], sh[:1], BOND_SETTINGS), q[:1], atol=1e-10)
    np.testing.assert_allclose(bond_soap(atoms, b.i, b.j, b.shift, BOND_SETTINGS, chunk=5), q, atol=1e-12)


def test_describes_more_than_the_two_atoms(cell):
    """The midpoint vector is not a function of the bond's atom SOAPs: bonds sharing atom i differ."""
    atoms, b = cell
    allb = find_bonds(atoms, window=(1.8, 3.75))
    k = np.flatnonzero(allb.i == allb.i[0])[:2]
    q = bond_soap(atoms, allb.i[k], allb.j[k], allb.shift[k], BOND_SETTINGS)
    assert q[0] @ q[1] < 0.99


def test_compute_bond_features_rows(cell):
    atoms, b = cell
    rows, ri, rj = compute_bond_features(atoms, b.i, b.j, b.shift, BOND_SETTINGS)
    assert rows.shape[0] == len(b) and np.array_equal(ri, rj) and np.array_equal(ri, np.arange(len(b)))
    assert BOND_SETTINGS.digest != PAPER_SETTINGS.digest
    assert FeatureSettings.from_dict(BOND_SETTINGS.to_dict()) == BOND_SETTINGS
    assert "kind" not in PAPER_SETTINGS.to_dict()  # atom-centred digests unchanged
    with pytest.raises(ValueError):
        FeatureSettings(kind="bond")  # bond-centred SOAP needs the featomic radial basis


def test_dataset_and_store_hold_bond_centred_descriptors(mini_tree, tmp_path):
    from bondml.store.db import BondStore
    from bondml.store.extract import dataset_from_getl

    ds = dataset_from_getl(mini_tree, settings=BOND_SETTINGS)
    assert ds.settings.kind == "bond"
    assert np.array_equal(ds.atom_i, ds.atom_j) and ds.atom_soap.shape == (len(ds), 2100)
    st = BondStore(tmp_path / "store", create=True, settings=BOND_SETTINGS)
    st.ingest(mini_tree)
    ds2 = st.load_dataset()
    assert ds2.settings == BOND_SETTINGS and len(ds2) == len(ds)
    o1 = np.lexsort((ds.j, ds.i, ds.sub_run))
    o2 = np.lexsort((ds2.j, ds2.i, ds2.sub_run))
    np.testing.assert_allclose(ds2.atom_soap[ds2.atom_i[o2]], ds.atom_soap[ds.atom_i[o1]], atol=1e-12)


def test_train_cli_rejects_an_unknown_descriptor(tmp_path, mini_tree):
    from typer.testing import CliRunner

    from bondml.cli.main import build_app

    r = CliRunner().invoke(build_app(), ["train", "--getl", str(mini_tree), "--out", str(tmp_path / "m"),
                                         "--descriptor", "nope"])
    assert r.exit_code != 0 and "unknown descriptor" in str(r.exception or r.output)


@pytest.mark.slow
def test_bond_centred_model_deploys(mini_tree, small_cell, tmp_path, ref_root):
    """A default (bond-centred) model predicts a LAMMPS cell through the deployment path."""
    import pandas as pd

    from bondml.deploy.infer import PredictConfig, predict_trajectory
    from bondml.evaluate.shift import train_model
    from bondml.store.extract import dataset_from_getl

    ds = dataset_from_getl(mini_tree, settings=BOND_SETTINGS)
    m = train_model(ds, ref_root, "default", max_train_per_type=100, seed=0, min_bonds=20)
    assert m.settings.kind == "bond" and m.domain
    m.save(tmp_path / "m")
    predict_trajectory(tmp_path / "m", small_cell, tmp_path / "out", PredictConfig(progress=False, in_process=True))

    files = sorted((tmp_path / "out").rglob("*.parquet"))
    assert files
    df = pd.read_parquet(files[0])
    assert np.isfinite(df.filter(like="icohp").to_numpy(dtype=float)).any()


def test_float32_rows_and_reused_output(cell):
    atoms, b = cell
    q = bond_soap(atoms, b.i, b.j, b.shift, BOND_SETTINGS)
    q32 = bond_soap(atoms, b.i, b.j, b.shift, BOND_SETTINGS, dtype=np.float32)
    assert q32.dtype == np.float32 and np.array_equal(q32, q.astype(np.float32))  # float64 inside, rounded
    buf = np.full((len(b), n_components(BOND_SETTINGS)), np.nan, dtype=np.float32)
    assert bond_soap(atoms, b.i, b.j, b.shift, BOND_SETTINGS, dtype=np.float32, out=buf) is buf
    np.testing.assert_array_equal(buf, q32)
    rows, _, _ = compute_bond_features(atoms, b.i, b.j, b.shift, BOND_SETTINGS, dtype=np.float32)
    np.testing.assert_array_equal(rows, q32)
    with pytest.raises(ValueError, match="out"):
        bond_soap(atoms, b.i, b.j, b.shift, BOND_SETTINGS, out=np.empty((len(b), 3)))
    with pytest.raises(ValueError, match="dtype"):
        bond_soap(atoms, b.i, b.j, b.shift, BOND_SETTINGS, dtype=np.float16)


def test_small_cells_and_a_missing_element_equal_featomic():
    """A cell smaller than the cutoff (fcc Cu, a = 3.61 A: every image within 3.75 A of the
    midpoint counts, the bond atoms' own images included), a 2-atom triclinic cell, and a binary
    cell without Al: equal to featomic with dummy atoms at the midpoints."""
    fcc = Atoms("Cu4", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
                cell=np.eye(3) * 3.61, pbc=True)
    tiny = Atoms("ZrCu", scaled_positions=[[0.1, 0.2, 0.3], [0.6, 0.55, 0.7]],
                 cell=[[2.9, 0.0, 0.0], [0.6, 2.8, 0.0], [0.3, -0.4, 3.1]], pbc=True)
    from bondml.data import run21_dir

    binary = read(run21_dir() / "2000/3/Zr49Cu49Al2.xyz")
    binary.numbers[binary.numbers == 13] = 29
    for atoms in (fcc, tiny, binary):
        b = find_bonds(atoms, window=(1.8, 3.75))
        if len(b) > 40:
            b = b.select(np.arange(0, len(b), len(b) // 40))
        q = bond_soap(atoms, b.i, b.j, b.shift, RAW)
        ref = _featomic_dummy_reference(atoms, bond_midpoints(atoms, b.i, b.j, b.shift))
        np.testing.assert_allclose(q, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    # fcc: every nearest-neighbour bond is equivalent; the supercell gives the same vectors
    b = find_bonds(fcc, window=(1.8, 2.7))
    q = bond_soap(fcc, b.i, b.j, b.shift, BOND_SETTINGS)
    assert len(b) == 24 and np.abs(q - q[0]).max() < 1e-10
    sup = fcc.repeat((2, 2, 1))
    bs = find_bonds(sup, window=(1.8, 2.7))
    np.testing.assert_allclose(bond_soap(sup, bs.i, bs.j, bs.shift, BOND_SETTINGS), q[:1].repeat(len(bs), 0),
                               atol=1e-10)


def test_radial_spline_disk_cache(tmp_path, monkeypatch):
    """featomic's spline set-up (seconds) is kept on disk: a later process loads the same table;
    an unreadable cache entry is recomputed and replaced; an empty BONDML_CACHE_DIR disables it."""
    from bondml.features import fast_soap

    monkeypatch.setenv("BONDML_CACHE_DIR", str(tmp_path / "cache"))
    fast_soap.radial_splines.cache_clear()
    try:
        dx, v, dv = fast_soap.radial_splines(3.75, 6, 8, 0.5)
        (entry,) = (tmp_path / "cache").glob("soap-radial-spline-*.npz")
        fast_soap.radial_splines.cache_clear()
        dx2, v2, dv2 = fast_soap.radial_splines(3.75, 6, 8, 0.5)  # from disk
        assert dx2 == dx and np.array_equal(v2, v) and np.array_equal(dv2, dv)
        entry.write_bytes(b"not an npz")
        fast_soap.radial_splines.cache_clear()
        _, v3, _ = fast_soap.radial_splines(3.75, 6, 8, 0.5)
        assert np.array_equal(v3, v) and np.load(entry)["values"].shape == v.shape
        monkeypatch.setenv("BONDML_CACHE_DIR", "")
        assert fast_soap.spline_cache_dir() is None
    finally:
        fast_soap.radial_splines.cache_clear()


def test_engine_harmonics_and_radial_equal_their_references():
    """The engine's monomial spherical harmonics and its sparse cubic spline evaluation equal the
    Legendre recursion and featomic's Hermite formula (plus the cosine cutoff)."""
    from bondml.features import fast_soap

    u = np.random.default_rng(0).normal(size=(500, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    u[:3] = [[0, 0, 1], [0, 0, -1], [1, 0, 0]]  # the poles and the equator
    ref = fast_soap.real_spherical_harmonics(u, 6)
    np.testing.assert_allclose(fast_soap.spherical_harmonics_t(np.ascontiguousarray(u.T), 6).T, ref,
                               rtol=0, atol=1e-13)
    r = np.concatenate([[0.0, 1e-9, 3.25, 3.7499999], np.random.default_rng(1).uniform(0, 3.75, 300)])
    spl = fast_soap.radial_splines(3.75, 6, 8, 0.5)
    want = fast_soap.hermite(r, spl) * fast_soap.cutoff_weight(r, 3.75)[:, None]
    got = fast_soap.radial(r, 3.75, 6, 8, 0.5)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * np.abs(want).max())
