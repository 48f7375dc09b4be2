"""Benchmark: per-frame cost of the bond-centred SOAP model vs the paper's atom-averaged one.

One 10,000-atom frame (the shipped production cell, ~66,500 bonds in the inference windows), one
thread. Steps: bond search, descriptor (per-atom SOAP through quippy / featomic, or the
bond-centred SOAP at every bond midpoint), GP prediction with std and out-of-domain flags through
``BondModel.predict_bonds`` (float32 dot products, the deployment default). Models: 600 bonds per
type of run 21 (seed 0); the atom model with the paper's hyper-parameters, the bond model with the
default preset. ``--naive`` also times featomic with one dummy atom per midpoint (the route the
bond-centred path replaces; ~0.5 ms per bond).

Run:  .venv/bin/python bench/bench_bond_descriptor.py [--naive] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2, help="timed repetitions (best kept)")
    ap.add_argument("--naive", action="store_true", help="also time featomic with dummy atoms at the midpoints")
    ap.add_argument("--max-train", type=int, default=600)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"

    import ase.io
    import numpy as np

    from bondml.constants import INFERENCE_WINDOWS
    from bondml.data import production_cell, reference_root
    from bondml.evaluate.shift import train_model
    from bondml.features.bond_centred import _radial_splines
    from bondml.features.soap import BOND_SETTINGS, PAPER_SETTINGS, FeatureSettings, compute_bond_features
    from bondml.store.extract import dataset_from_getl
    from bondml.structure.bonds import find_bonds

    def best(fn):
        ts, out = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = fn()
            ts.append(time.perf_counter() - t)
        return min(ts), out

    a = ase.io.read(production_cell(), format="lammps-data", atom_style="atomic")
    a.set_chemical_symbols(np.array(["", "Zr", "Cu", "Al"])[a.get_array("type")])
    root = reference_root()
    t = time.perf_counter()
    models = {}
    for name, st in (("atom", PAPER_SETTINGS), ("bond", BOND_SETTINGS)):
        ds = dataset_from_getl(root, settings=st)
        models[name] = train_model(ds, root, "paper" if name == "atom" else "default",
                                   max_train_per_type=args.max_train, seed=0)
    print(f"(set-up: two models on {args.max_train} bonds per type in {time.perf_counter() - t:.0f} s; "
          "one-off spline of the radial integral included)")
    _radial_splines(3.75, 6, 8, 0.5)

    tb, bonds = best(lambda: find_bonds(a, windows=INFERENCE_WINDOWS))
    print(f"\n10,000-atom frame, {len(bonds)} bonds, 1 thread; seconds (best of {args.repeat})")
    rows = []
    variants = [("atom-averaged, quippy SOAP (paper)", PAPER_SETTINGS, models["atom"]),
                ("atom-averaged, featomic SOAP", FeatureSettings(backend="featomic"), None),
                ("bond-centred SOAP (default)", BOND_SETTINGS, models["bond"])]
    for name, st, model in variants:
        td, feats = best(lambda st=st: compute_bond_features(a, bonds.i, bonds.j, bonds.shift, st))
        tp = float("nan")
        if model is not None:
            r, ri, rj = feats
            tp, out = best(lambda m=model, r=r, ri=ri, rj=rj, st=st: m.predict_bonds(
                bonds.type, bonds.distance, r, ri, rj, st, precision="float32"))
            nood = int(out["out_of_domain"].sum())
        else:
            nood = -1
        rows.append((name, td, tp, nood, feats[0].shape))
    print(f"{'descriptor':38s}{'bonds':>7s}{'descriptor':>11s}{'GP+std+OOD':>11s}{'total':>8s}  rows x p, flagged")
    for name, td, tp, nood, shape in rows:
        tot = tb + td + (tp if tp == tp else 0.0)
        print(f"{name:38s}{tb:7.2f}{td:11.2f}{tp:11.2f}{tot:8.2f}  {shape[0]} x {shape[1]}, "
              f"{nood if nood >= 0 else '-'} out of domain")
    base = rows[0][1] + rows[0][2]
    print(f"ratio bond-centred / paper (descriptor + GP): {(rows[2][1] + rows[2][2]) / base:.2f}")
    if args.naive:
        from ase import Atoms
        from metatensor import Labels

        from bondml.features.bond_centred import bond_midpoints
        from bondml.features.featomic_backend import _calculator

        mids = bond_midpoints(a, bonds.i, bonds.j, bonds.shift)
        sysm = Atoms(numbers=np.concatenate([a.numbers, np.zeros(len(mids), int)]),
                     positions=np.vstack([a.positions, mids]), cell=a.cell, pbc=True)
        sp = (13, 29, 40)
        keys = Labels(["center_type", "neighbor_1_type", "neighbor_2_type"],
                      np.array([[0, p, q] for k, p in enumerate(sp) for q in sp[k:]], dtype=np.int32))
        calc = _calculator(3.75, 6, 8, 0.5, "quip_poly")
        t = time.perf_counter()
        calc.compute(sysm, selected_keys=keys)
        tn = time.perf_counter() - t
        print(f"naive featomic with {len(mids)} dummy atoms: {tn:.1f} s  "
              f"({tn / rows[2][1]:.0f}x the bond-centred path)")


if __name__ == "__main__":
    main()
