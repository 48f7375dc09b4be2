"""Benchmark: BondGPR vs the original algorithm, and prediction of a 66,000-bond frame.

Run: ``.venv/bin/python bench/bench_gpr.py [--threads 1]``. The frame section times the *exact*
paths (``exact_std=True``, float32 vs float64); the default fast paths (tabulated mean,
low-rank std) and the issue-15 targets are in ``bench/bench_frame.py``. BLAS threads are limited with
threadpoolctl (default 1 core). Data: the real run-21 bonds and per-atom SOAP (2101 components).

The original algorithm (DOMAIN.md): kernel entries by a Python loop over bond pairs (four SOAP
dot products each), alpha by an explicit matrix inverse, and prediction by a Python loop over
the training bonds for every test bond. Its pair loops are timed on a subset of pairs and scaled
linearly to the full n_train x n_train (fit) and n_test x n_train (predict) pair counts (the
cost per pair is constant); the matrix inverse is timed in full. Fit/predict comparisons use CPU
(process) time, which is robust on a shared machine; the 66k-bond frame reports wall and CPU time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bondml.constants import INFERENCE_WINDOWS
from bondml.data import reference_root
from bondml.evaluate.tune import distance_model_from_tables
from bondml.features.soap import PAPER_SETTINGS
from bondml.io.getl import discover, subrun_path
from bondml.model.bondmodel import BondModel
from bondml.model.gpr import BondGPR
from bondml.store.extract import extract_cell, extracts_to_dataset


def _pair(da, a1, b1, db, a2, b2, sigma, zeta):
    s = (np.dot(a1, a2) + np.dot(b1, b2) + np.dot(a1, b2) + np.dot(b1, a2)) / 4.0
    return np.exp(-((da - db) ** 2) / (2 * sigma * sigma)) * s**zeta


def original_pair_seconds(d, pa, pb, n_pairs: int, seed: int = 0) -> float:
    """Seconds per kernel entry of the original's Python pair loop (timed on ``n_pairs`` pairs)."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, d.size, n_pairs)
    j = rng.integers(0, d.size, n_pairs)
    t = time.process_time()
    for a, b in zip(i, j, strict=False):
        _pair(d[a], pa[a], pb[a], d[b], pa[b], pb[b], 0.5, 1.0)
    return (time.process_time() - t) / n_pairs


def original_inverse_seconds(n: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    k = a @ a.T / n + np.eye(n)
    t = time.process_time()
    np.linalg.inv(k)
    return time.process_time() - t


def load_cells():
    root = reference_root()
    exs = [extract_cell(subrun_path(root, c), c) for c in discover(root)]
    return [e for e in exs if e.error is None and e.soap is not None], exs


def synth_frame(exs, n_atoms: int = 10_000, n_bonds: int = 66_000, seed: int = 0):
    """A 10k-atom, 66k-bond frame resampled from run-21 atoms and bonds (element-consistent)."""
    rng = np.random.default_rng(seed)
    sym = np.concatenate([np.array(e.atoms.get_chemical_symbols()) for e in exs])
    soap = np.concatenate([e.soap for e in exs])
    pick = rng.integers(0, sym.size, n_atoms)
    fsym, fsoap = sym[pick], soap[pick]
    types, dists = [], []
    for e in exs:
        b = e.bonds
        lo = np.array([INFERENCE_WINDOWS[t][0] for t in b.type])
        hi = np.array([INFERENCE_WINDOWS[t][1] for t in b.type])
        k = (b.distance >= lo) & (b.distance <= hi)
        types.append(b.type[k].astype(str))
        dists.append(b.distance[k])
    types, dists = np.concatenate(types), np.concatenate(dists)
    s = rng.integers(0, types.size, n_bonds)
    bt, d = types[s], dists[s]
    by_el = {el: np.flatnonzero(fsym == el) for el in ("Zr", "Cu", "Al")}
    ai = np.empty(n_bonds, np.int64)
    aj = np.empty(n_bonds, np.int64)
    for t in np.unique(bt):
        m = np.flatnonzero(bt == t)
        a, b = t.split("-")
        ai[m] = rng.choice(by_el[a], m.size)
        aj[m] = rng.choice(by_el[b], m.size)
    return bt, d, fsoap, ai, aj


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default="600,2000,5000")
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=20000, help="pairs timed for the original's loop")
    args = ap.parse_args()
    exs, _ = load_cells()
    ds = extracts_to_dataset(exs, PAPER_SETTINGS)
    f = ds.features()
    pa, pb = f.soap_i, f.soap_j
    rng = np.random.default_rng(0)
    with threadpool_limits(args.threads):
        per_pair = original_pair_seconds(ds.distance, pa, pb, args.pairs)
        print(f"threads={args.threads}; data: {len(ds)} run-21 bonds, SOAP length {ds.atom_soap.shape[1]}")
        print(f"original pair loop: {per_pair * 1e6:.2f} us per kernel entry (timed on {args.pairs} pairs)")
        print(f"{'n_train':>8s} {'ours fit':>9s} {'ours pred':>9s} {'orig fit':>10s} {'orig pred':>10s} "
              f"{'ratio fit':>9s} {'ratio pred':>10s} {'ratio all':>9s}")
        for n in [int(x) for x in args.sizes.split(",")]:
            perm = rng.permutation(len(ds))
            tr, te = perm[:n], perm[n:n + args.n_test]
            t = time.process_time()
            est = BondGPR(sigma=0.5, gamma=0.01).fit(f.take(tr), ds.y[tr])
            t_fit = time.process_time() - t
            t = time.process_time()
            est.predict(f.take(te), return_std=True)
            t_pred = time.process_time() - t
            o_fit = per_pair * n * n + original_inverse_seconds(n)
            o_pred = per_pair * args.n_test * n
            print(f"{n:8d} {t_fit:9.3f} {t_pred:9.3f} {o_fit:10.1f} {o_pred:10.1f} {o_fit / t_fit:9.0f} "
                  f"{o_pred / t_pred:10.0f} {(o_fit + o_pred) / (t_fit + t_pred):9.0f}")
        dm = distance_model_from_tables(reference_root(), exclude=[("Zr49Cu49Al2", 21)])
        bt, d, soap, ai, aj = synth_frame(exs)
        print(f"frame: {d.size} bonds, {soap.shape[0]} atoms; model: <= 600 bonds per type (Al-Al: fallback); "
              "times: wall / CPU (process) seconds, best of 2")
        outs = {}
        for fast in (False, True):
            model = BondModel.fit(ds, distance_model=dm, max_train_per_type=600, seed=0, calibrate=False,
                                  estimator_options={"fast_soap": fast})
            for rs in (False, True):
                best, cpu = np.inf, np.inf
                for _ in range(2):
                    t, c = time.perf_counter(), time.process_time()
                    out = model.predict_bonds(bt, d, soap, ai, aj, model.settings, return_std=rs, exact_std=True)
                    best, cpu = min(best, time.perf_counter() - t), min(cpu, time.process_time() - c)
                print(f"predict 66k bonds, fast_soap={fast}, return_std={rs}: {best:.2f} s wall, {cpu:.2f} s CPU; "
                      f"out_of_domain {int(out['out_of_domain'].sum())}")
            outs[fast] = out
        dm_ = np.max(np.abs(outs[True]["minus_icohp"] - outs[False]["minus_icohp"]))
        ds_ = np.nanmax(np.abs(outs[True]["std"] - outs[False]["std"]) / outs[False]["std"])
        print(f"float32 vs float64 on the frame: max |d mean| {dm_:.1e} eV, max relative d std {ds_:.1e}")
        o66 = per_pair * d.size * 600
        print(f"original loop for the same frame (66k x 600 pairs, scaled): {o66:.0f} s -> ratio {o66 / best:.0f}")


if __name__ == "__main__":
    main()
