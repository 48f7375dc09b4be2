"""The sweep behind constants.DEFAULT_HYPERPARAMETERS / ATOM_SHIFT_HYPERPARAMETERS.

Per bond type with a GP on run 21: descriptor (atom-averaged paper SOAP, bond-centred SOAP) x
zeta (1, 2) x sigma x gamma x mean function (zero, distance prior, distance+composition prior
from the label tables without run 21), scored by leave-deformation-group-out on a seeded sample
of bonds (<= max-train training bonds per fold). Prints the best configuration per descriptor
and zeta, and the choice (:func:`bondml.evaluate.shift.choose`: zeta 2 only if it gains > 5 %,
the composition term only for constants.DEFAULT_COMPOSITION_TYPES, decided on the label tables
under leave-composition-out; see bench/accuracy_report.py).

Run:  .venv/bin/python bench/accuracy_sweep.py [--quick] [--json rows.json]
      (default: 1,600-bond samples, 1,200 training bonds per fold, ~3-5 min; --quick 600 / 400)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

    from bondml.constants import DEFAULT_COMPOSITION_TYPES
    from bondml.data import reference_root
    from bondml.evaluate import shift as sh
    from bondml.features.soap import BOND_SETTINGS, PAPER_SETTINGS
    from bondml.store.extract import dataset_from_getl

    n_sample, max_train = (600, 400) if args.quick else (1600, 1200)
    grid = [{"zeta": z, "sigma": s, "gamma": g} for z, s, g in itertools.product(
        (1.0, 2.0), (0.25, 0.5, 1.0, 2.0), (0.005, 0.01, 0.04, 0.08, 0.16, 0.32))]
    if args.quick:
        grid = [p for p in grid if p["sigma"] in (0.5, 1.0) and p["gamma"] in (0.01, 0.04, 0.16)]
    t0 = time.perf_counter()
    root = reference_root()
    data = {"atom": dataset_from_getl(root, settings=PAPER_SETTINGS),
            "bond": dataset_from_getl(root, settings=BOND_SETTINGS)}
    priors = sh.table_priors(root, exclude_runs=[("Zr49Cu49Al2", 21)])
    rows = []
    print(f"# LDGO sweep, run 21, {n_sample}-bond samples, <= {max_train} training bonds per fold, "
          f"seed {args.seed}, {len(grid)} points x {len(sh.MEANS)} means x 2 descriptors per type")
    for bt in ("Zr-Zr", "Zr-Cu", "Zr-Al", "Cu-Cu", "Cu-Al"):
        samples = {k: sh.TypeSample.of(ds, bt, n_sample, args.seed) for k, ds in data.items()}
        r = sh.summarise(sh.sweep_type(samples, priors, grid=grid, protocol="ldgo", max_train=max_train,
                                       seed=args.seed))
        rows += r
        print(f"\n## {bt}")
        for desc in ("atom", "bond"):
            for z in (1.0, 2.0):
                b = min((x for x in r if x["descriptor"] == desc and x["zeta"] == z), key=lambda x: x["rmse"])
                print(f"  best {desc} zeta {z:g}: sigma {b['sigma']:g} gamma {b['gamma']:g} {b['mean']:22s} "
                      f"RMSE {b['rmse']:.4f} bias {b['bias']:+.4f}")
            c = sh.choose(r, bt, desc, DEFAULT_COMPOSITION_TYPES)
            print(f"  chosen {desc}: zeta {c['zeta']:g} sigma {c['sigma']:g} gamma {c['gamma']:g} {c['mean']} "
                  f"(RMSE {c['rmse']:.4f})")
    print(f"\n(sweep took {time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
