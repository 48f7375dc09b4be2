"""Fast prediction paths of BondGPR against the exact GP on the real run-21 data and a cut of
the 10k production cell: tabulated mean (1e-6 eV), low-rank std (2 % at the 95th percentile),
model format 2 (memory-mapped, atomic, digest), format-1 models, and the sparse fit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bondml.model.bondmodel import BondModel
from bondml.model.gpr import BondGPR
from bondml.store.dataset import BondFeatures


@pytest.fixture(scope="module")
def run21_ds():
    from bondml.data import reference_root
    from bondml.store.extract import dataset_from_getl

    return dataset_from_getl(reference_root())


def _split(sub, seed: int = 0):
    g = sub.groups("cell")
    cells = np.unique(g)
    te_cells = np.random.default_rng(seed).choice(cells, max(1, cells.size // 5), replace=False)
    te = np.isin(g, te_cells)
    return sub.select(np.flatnonzero(~te)), sub.select(np.flatnonzero(te))


@pytest.fixture(scope="module")
def cut_frame(small_cell):
    """Bonds and SOAP of the 20 A cut of the 10k cell (real production structure)."""
    from bondml.constants import INFERENCE_WINDOWS
    from bondml.features.soap import compute_soap
    from bondml.io.lammps import read_lammps_data
    from bondml.structure.bonds import find_bonds

    atoms = read_lammps_data(small_cell).atoms
    b = find_bonds(atoms, windows=INFERENCE_WINDOWS)
    return b, compute_soap(atoms)


def _rel(a, b):
    r = np.abs(a - b) / b
    return np.median(r), np.percentile(r, 95), r.max()


@pytest.mark.parametrize("bt", ["Zr-Cu", "Cu-Cu"])
def test_fast_mean_and_std_match_exact_on_real_data(run21_ds, cut_frame, bt):
    tr, te = _split(run21_ds.of_type(bt))
    est = BondGPR.paper(bt).fit(tr.features(), tr.y)
    assert est.cheb_ is not None and est.std_B_ is not None  # both fast paths in use
    assert est.ind_d_.size < len(tr)
    bonds, soap = cut_frame
    k = bonds.type.astype(str) == bt
    for F in (te.features(), BondFeatures(bonds.distance[k], soap, bonds.i[k], bonds.j[k])):
        mu, sd = est.predict(F, return_std=True)
        mu0, sd0 = est.predict(F, return_std=True, exact_std=True, exact_mean=True)
        assert np.max(np.abs(mu - mu0)) < 1e-6
        med, p95, mx = _rel(sd, sd0)
        assert p95 < 0.02 and med < 0.005, (med, p95, mx)
        # std alone exact, mean fast: the same mean
        mu1, sd1 = est.predict(F, return_std=True, exact_std=True)
        np.testing.assert_array_equal(sd1, sd0)
        assert np.max(np.abs(mu1 - mu0)) < 1e-6


def test_zeta_2_exact_mean_and_low_rank_std(run21_ds):
    tr, te = _split(run21_ds.of_type("Zr-Zr"), seed=1)
    est = BondGPR.paper("Zr-Zr", zeta=2.0).fit(tr.features(), tr.y)
    assert est.cheb_ is None  # the table needs zeta = 1: exact mean
    mu, sd = est.predict(te.features(), return_std=True)
    mu0, sd0 = est.predict(te.features(), return_std=True, exact_std=True)
    np.testing.assert_array_equal(mu, mu0)
    assert _rel(sd, sd0)[1] < 0.02


def test_bond_centred_layout_equals_dense(run21_ds):
    """x given per bond (atom_soap = Q, atom_i = atom_j = arange) == dense [d | q | q]."""
    sub = run21_ds.of_type("Cu-Cu")
    f = sub.features()
    Q = 0.5 * (f.soap_i + f.soap_j)
    n = len(sub)
    Fq = BondFeatures(f.distance, Q, np.arange(n), np.arange(n))
    tr, te = np.arange(0, n, 2), np.arange(1, n, 2)
    est = BondGPR.paper("Cu-Cu").fit(Fq.take(tr), sub.y[tr])
    dense = np.column_stack([f.distance, Q, Q])
    mu, sd = est.predict(Fq.take(te), return_std=True)
    mu2, sd2 = est.predict(dense[te], return_std=True)
    np.testing.assert_allclose(mu, mu2, atol=1e-9)
    np.testing.assert_allclose(sd, sd2, rtol=1e-4)
    # and the same as the pair input (pbar = q): the kernel only sees pbar
    est2 = BondGPR.paper("Cu-Cu").fit(f.take(tr), sub.y[tr])
    np.testing.assert_allclose(est2.predict(f.take(te)), mu, atol=1e-8)


def test_sparse_fit_close_to_exact_on_mid_size(run21_ds):
    tr, te = _split(run21_ds.of_type("Zr-Cu"))
    ex = BondGPR.paper("Zr-Cu").fit(tr.features(), tr.y)
    sp = BondGPR.paper("Zr-Cu", max_exact=1000, sparse_inducing=1000).fit(tr.features(), tr.y)
    assert sp.sparse_ and not ex.sparse_ and not hasattr(sp, "chol_")
    mu_e, sd_e = ex.predict(te.features(), return_std=True)
    mu_s, sd_s = sp.predict(te.features(), return_std=True)
    rmse_e = np.sqrt(np.mean((mu_e - te.y) ** 2))
    rmse_s = np.sqrt(np.mean((mu_s - te.y) ** 2))
    assert rmse_s < 1.01 * rmse_e  # measured: 67.22 vs 67.18 meV
    assert np.sqrt(np.mean((mu_s - mu_e) ** 2)) < 1e-3  # eV; measured 0.14 meV
    assert abs(np.median(sd_s / sd_e) - 1) < 0.05
    # the exact-std request on a sparse model gives its own (projected-process) std
    np.testing.assert_array_equal(sp.predict(te.features(), return_std=True, exact_std=True)[1], sd_s)


def _v1_save(model: BondModel, folder: Path) -> None:
    """Write ``model`` in format 1 (arrays.npz with the exact-fit arrays only), as bondml <= 0.1 did."""
    import io

    from bondml.util import atomic_write_bytes, atomic_write_json, sha256_bytes

    folder.mkdir(parents=True)
    arrays, types = {}, {}
    for t, est in model.estimators.items():
        meta, arr = est.state()
        params = {k: v for k, v in meta["params"].items()
                  if k in ("sigma", "gamma", "zeta", "noise", "mean", "std_includes_noise", "batch_size", "fast_soap")}
        types[t] = {k: v for k, v in meta.items() if k not in ("sparse", "cheb_error", "std_qf32")} | {"params": params}
        arrays.update({f"{t}/{k}": arr[k] for k in ("d_train", "pbar_train", "alpha", "chol")})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(folder / "arrays.npz", buf.getvalue())
    atomic_write_json(folder / "model.json", {
        "format": "bondml-bond-model", "format_version": 1, "settings": model.settings.to_dict(), "types": types,
        "distance_model": model.distance_model.to_dict() if model.distance_model else None,
        "use_prior": model.use_prior, "composition": model.composition, "std_threshold": model.std_threshold,
        "std_scale": model.std_scale, "windows": {k: list(v) for k, v in model.windows.items()},
        "lineage": model.lineage, "arrays_sha256": sha256_bytes(buf.getvalue())})


def test_save_load_round_trip_mmap_digest_and_format_1(run21_ds, cut_frame, tmp_path):
    from bondml.data import reference_root
    from bondml.model.distance import DistanceModel

    from _demo_model import _label_rows

    dm = DistanceModel().fit(_label_rows(run21_ds, reference_root()))
    model = BondModel.fit(run21_ds, distance_model=dm, max_train_per_type=1200, seed=0, calibrate=False)
    bonds, soap = cut_frame
    args = (bonds.type, bonds.distance, soap, bonds.i, bonds.j, model.settings)
    ref = model.predict_bonds(*args)
    d = model.save(tmp_path / "m")
    assert sorted(p.name for p in d.iterdir()) == ["arrays", "model.json"]
    assert not list(tmp_path.glob(".m.new-*"))  # no temporary folder left
    loaded = BondModel.load(d)
    assert loaded.digest == model.digest and len(loaded.digest) == 64
    meta = json.loads((d / "model.json").read_text())
    from bondml.util import sha256_json

    assert meta["format_version"] == 2 and sha256_json(meta["arrays"]) == loaded.digest
    est = loaded.estimators["Zr-Cu"]
    assert isinstance(est.pbar_train_.base, np.memmap) or isinstance(est.pbar_train_, np.memmap)
    assert not est.pbar_train_.flags.writeable
    got = loaded.predict_bonds(*args)
    for k in ref:  # bit-identical
        np.testing.assert_array_equal(got[k], ref[k])
    # saving again over it swaps the whole folder; a file someone put next to the model survives
    (d / "NOTES.txt").write_text("kept")
    model.save(d)
    assert (d / "NOTES.txt").read_text() == "kept" and BondModel.load(d).digest == model.digest
    # format 1 still loads (fast arrays derived at load) and predicts the same
    _v1_save(model, tmp_path / "v1")
    old = BondModel.load(tmp_path / "v1")
    assert old.digest and old.digest != model.digest
    o = old.predict_bonds(*args)
    np.testing.assert_allclose(o["minus_icohp"], ref["minus_icohp"], atol=1e-9)
    np.testing.assert_allclose(o["std"], ref["std"], rtol=1e-9)


def test_atomic_save_survives_a_crash_between_renames(run21_ds, tmp_path, monkeypatch):
    """Without renameat2 the swap is two renames; a crash between them leaves the complete new
    folder as a sibling, which load() moves into place."""
    from bondml.model import bondmodel as bm

    sub = run21_ds.select(np.flatnonzero(np.isin(run21_ds.bond_type, ["Zr-Zr", "Cu-Cu"])))
    model = BondModel.fit(sub, max_train_per_type=200, seed=0, calibrate=False)
    d = model.save(tmp_path / "m")
    monkeypatch.setattr(bm, "_rename_exchange", lambda a, b: False)
    real_rename = os.rename
    calls = []

    def crash_on_second(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real_rename(src, dst)

    monkeypatch.setattr(bm.os, "rename", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        model.save(d)
    monkeypatch.setattr(bm.os, "rename", real_rename)
    assert not d.exists()  # the old one was moved aside, the new one not yet in place
    assert BondModel.load(d).digest == model.digest  # recovered from the complete new sibling


def test_dense_and_sklearn_protocol_without_sklearn_import():
    import subprocess
    import sys

    code = ("import sys, bondml.model.gpr, bondml.model.bondmodel, bondml.deploy.infer; "
            "print(','.join(m for m in ('sklearn', 'scipy', 'pandas', 'matplotlib', 'quippy', 'parsl', 'mlflow', "
            "'lammps') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
    from sklearn.base import clone

    est = BondGPR(sigma=0.7)
    c = clone(est)
    assert c.get_params() == est.get_params() and c is not est
    with pytest.raises(Exception, match="invalid parameter"):
        est.set_params(bogus=1)
    assert "sigma=0.7" in repr(est)
