"""Accuracy report: per bond type, descriptor x mean function x protocol, side by side.

Protocols
* LOCO  - leave-one-cell-out inside run 21 (optimistic: the other 13 cells are the same atoms);
* LDGO  - leave-deformation-group-out inside run 21 (the four deformation families);
* LCO   - leave-composition-out on the label-only tables (distance models only: the tables have
          no structures, so no SOAP model can be scored across compositions);
* LRO   - leave-run-out (5 seeded folds of whole runs) on the tables, distance models only.

For each SOAP configuration: RMSE, bias (pred - LOBSTER), 1/2-sigma coverage of the std scaled by
an inner LDGO on the training bonds only (nested: the held-out bonds never set their own scale;
the 68.3 % quantile scale for every row, to compare descriptors; the default model's per-type
calibration is compared in bench/uncertainty_calibration.py),
Spearman rank correlation of |error| with the std under LDGO ("rank"). The cost column is the per-frame cost of the
descriptor + GP (with std) on the 10,000-atom production frame, one thread (measured here, on a
possibly loaded machine: read the ratio).

Run:  .venv/bin/python bench/accuracy_report.py [--quick] [--json out.json] [--no-cost]
      (--quick: 600-bond samples and 400 training bonds per fold, ~1-2 min; default 1,200 / 800)
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-cost", action="store_true", help="skip the 10k-frame timing")
    ap.add_argument("--json", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

    import numpy as np

    from bondml.constants import (
        ATOM_SHIFT_HYPERPARAMETERS,
        DEFAULT_COMPOSITION_TYPES,
        DEFAULT_HYPERPARAMETERS,
        DEFAULT_PRIOR_TYPES,
        PAPER_HYPERPARAMETERS,
    )
    from bondml.data import reference_root
    from bondml.evaluate import shift as sh
    from bondml.evaluate.tables import read_all_tables
    from bondml.features.soap import BOND_SETTINGS, PAPER_SETTINGS
    from bondml.store.extract import dataset_from_getl

    n_sample, max_train = (600, 400) if args.quick else (1200, 800)
    t0 = time.perf_counter()
    root = reference_root()
    data = {"atom": dataset_from_getl(root, settings=PAPER_SETTINGS),
            "bond": dataset_from_getl(root, settings=BOND_SETTINGS)}
    priors = sh.table_priors(root, exclude_runs=[("Zr49Cu49Al2", 21)])
    types = ["Zr-Zr", "Zr-Cu", "Zr-Al", "Cu-Cu", "Cu-Al"]
    table = read_all_tables(root)

    def default_mean(bt: str) -> str:
        if bt not in DEFAULT_PRIOR_TYPES:
            return "zero"
        return "distance+composition" if bt in DEFAULT_COMPOSITION_TYPES else "distance"

    configs = [("atom", "paper", PAPER_HYPERPARAMETERS, "zero")]
    for desc, hp in (("atom", ATOM_SHIFT_HYPERPARAMETERS), ("bond", DEFAULT_HYPERPARAMETERS)):
        for mean in sh.MEANS:
            configs.append((desc, "shift", hp, mean))

    cost = {}
    if not args.no_cost:
        cost = frame_cost(max_train)
    report: dict = {"settings": {"n_sample": n_sample, "max_train": max_train, "seed": args.seed}, "types": {},
                    "cost_s_per_10k_frame": cost}
    print(f"# Accuracy per bond type (eV); run 21 samples of {n_sample} bonds per type, <= {max_train} training "
          f"bonds per fold, seed {args.seed}; std scale nested (inner LDGO on the training bonds)")
    print("# LOCO = leave-one-cell-out (optimistic), LDGO = leave-deformation-group-out; * = the default model")
    for bt in types:
        samples = {k: sh.TypeSample.of(ds, bt, n_sample, args.seed) for k, ds in data.items()}
        rows = []
        for desc, hpname, hp, mean in configs:
            p = dict(hp[bt])
            r = {}
            for proto in ("loco", "ldgo"):
                r[proto] = sh.nested_calibrated_ldgo(samples[desc], p, mean, priors, max_train, args.seed,
                                                     protocol=proto, calibration="scale")["metrics"]
            star = desc == "bond" and hpname == "shift" and mean == default_mean(bt)
            rows.append({"descriptor": desc, "hyperparameters": hpname, **p, "mean": mean, "default": star, **r})
        report["types"][bt] = rows
        print(f"\n## {bt}  (n = {len(samples['atom'].data)})")
        print(f"{'descriptor':10s}{'hp':7s}{'zeta':>5s}{'sigma':>6s}{'gamma':>7s}  {'mean':22s}"
              f"{'LOCO rmse':>10s}{'bias':>7s}{'cov1':>6s}{'cov2':>6s}{'LDGO rmse':>11s}{'bias':>7s}{'cov1':>6s}"
              f"{'cov2':>6s}{'rank':>6s}{'cost':>7s}")
        for r in rows:
            c = cost.get(r["descriptor"] + ("-paper" if r["hyperparameters"] == "paper" else ""), float("nan"))
            print(f"{r['descriptor'] + ('*' if r['default'] else ''):10s}{r['hyperparameters']:7s}{r['zeta']:5g}"
                  f"{r['sigma']:6g}{r['gamma']:7g}  {r['mean']:22s}"
                  f"{r['loco']['rmse']:10.3f}{r['loco']['bias']:+7.3f}{r['loco']['cov1']:6.2f}{r['loco']['cov2']:6.2f}"
                  f"{r['ldgo']['rmse']:11.3f}{r['ldgo']['bias']:+7.3f}{r['ldgo']['cov1']:6.2f}{r['ldgo']['cov2']:6.2f}"
                  f"{r['ldgo']['spearman']:6.2f}{c:7.1f}")
    print("\n## Label-only tables (distance models; no SOAP): RMSE / bias (eV)")
    tab = {}
    for proto in ("leave-composition-out", "leave-run-out"):
        for comp in (False, True):
            tab[f"{proto}, {'distance+composition' if comp else 'distance only'}"] = sh.table_protocol(
                table, proto, comp, seed=args.seed)
    print(f"{'protocol, model':52s}" + "".join(f"{t:>15s}" for t in types + ["Al-Al"]))
    for name, r in tab.items():
        print(f"{name:52s}" + "".join(f"{r[t]['rmse']:8.3f}/{r[t]['bias']:+.3f}" if t in r else f"{'-':>15s}"
                                      for t in types + ["Al-Al"]))
    report["tables"] = tab
    by_nc = sh.table_lco_by_composition(table)
    in_run = sh.in_run_distance_rmse(data["bond"], types)
    infl = sh.composition_inflation(by_nc, in_run)
    report["composition_inflation"] = infl
    report["in_run_distance_loco_rmse"] = in_run
    print("\n## Std inflation for a new composition = max over held-out compositions of the distance-only RMSE "
          "across compositions / distance-only RMSE inside run 21 (leave-one-cell-out)")
    print("  " + ", ".join(f"{t} {infl[t]:.2f}" for t in types if t in infl))
    if cost:
        print("\n## Cost per 10,000-atom frame (descriptor + GP with std, 1 thread, s): "
              + ", ".join(f"{k} {v:.1f}" for k, v in cost.items()))
    print(f"\n(report took {time.perf_counter() - t0:.0f} s)")
    if args.json:
        def conv(o):
            if isinstance(o, dict):
                return {k: conv(v) for k, v in o.items()}
            if isinstance(o, list):
                return [conv(v) for v in o]
            return float(o) if isinstance(o, np.floating) else o

        with open(args.json, "w") as fh:
            json.dump(conv(report), fh, indent=1)


def frame_cost(max_train: int) -> dict[str, float]:
    """Descriptor + GP (mean and std, float32 dots) seconds on the 10k production frame per descriptor."""
    import ase.io
    import numpy as np

    from bondml.constants import INFERENCE_WINDOWS
    from bondml.data import production_cell, reference_root
    from bondml.evaluate.shift import train_model
    from bondml.features.bond_centred import _radial_splines
    from bondml.features.soap import BOND_SETTINGS, PAPER_SETTINGS, compute_bond_features
    from bondml.store.extract import dataset_from_getl
    from bondml.structure.bonds import find_bonds

    a = ase.io.read(production_cell(), format="lammps-data", atom_style="atomic")
    a.set_chemical_symbols(np.array(["", "Zr", "Cu", "Al"])[a.get_array("type")])
    b = find_bonds(a, windows=INFERENCE_WINDOWS)
    _radial_splines(3.75, 6, 8, 0.5)
    out = {}
    root = reference_root()
    for name, st, preset in (("atom-paper", PAPER_SETTINGS, "paper"), ("bond", BOND_SETTINGS, "default")):
        m = train_model(dataset_from_getl(root, settings=st), root, preset, max_train_per_type=max_train, seed=0)
        t = time.perf_counter()
        r, ri, rj = compute_bond_features(a, b.i, b.j, b.shift, st)
        m.predict_bonds(b.type, b.distance, r, ri, rj, st, precision="float32")
        out[name] = time.perf_counter() - t
    out["atom"] = out["atom-paper"]
    return out


if __name__ == "__main__":
    main()
