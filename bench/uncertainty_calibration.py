"""Std calibrations side by side, nested under leave-deformation-group-out on run 21.

For the default model (bond-centred SOAP, DEFAULT_HYPERPARAMETERS, the distance prior) and each
bond type: the single scale (68.3 % quantile of |e|/std), the maximum-likelihood scale (root
mean square of |e|/std), the log-linear variance model
log var = c0 + c1 log var_GP + c2 (d - d0)/s_d fitted by Gaussian likelihood
(bondml.model.domain.fit_variance_model), and the default (bondml.model.domain.CALIBRATION_BY_TYPE).
Every calibration is learnt on an inner LDGO of the training bonds only: the held-out group
never sets its own parameters. Columns: 1/2-sigma coverage, Spearman rank of
|error| vs std, the 95 % interval factor q95 (group-weighted 95.45 % quantile of |e|/std on the
inner held-out groups) and cov95, the fraction of outer held-out errors within q95 * std.

Run:  .venv/bin/python bench/uncertainty_calibration.py [--quick] [--seeds 0 1] [--json out.json]
      (default 1,200-bond samples, <= 800 training bonds per fold, ~1-2 min; --quick 600 / 400)
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import numpy as np

    from bondml.constants import DEFAULT_COMPOSITION_TYPES, DEFAULT_HYPERPARAMETERS
    from bondml.data import reference_root
    from bondml.evaluate import shift as sh
    from bondml.features.soap import BOND_SETTINGS
    from bondml.store.extract import dataset_from_getl

    n_sample, max_train = (600, 400) if args.quick else (1200, 800)
    t0 = time.perf_counter()
    root = reference_root()
    ds = dataset_from_getl(root, settings=BOND_SETTINGS)
    priors = sh.table_priors(root, exclude_runs=[("Zr49Cu49Al2", 21)])
    keys = ("cov1", "cov2", "spearman", "q95", "cov95")
    out: dict = {"settings": {"n_sample": n_sample, "max_train": max_train, "seeds": args.seeds}, "types": {}}
    print(f"# nested LDGO, run 21, default model, {n_sample}-bond samples, <= {max_train} training bonds per fold, "
          f"seeds {args.seeds} (mean over seeds); ideal cov1 0.683, cov2 0.954, cov95 0.954")
    print(f"{'type':7s}{'calibration':26s}{'cov1':>6s}{'cov2':>6s}{'rank':>6s}{'q95':>6s}{'cov95':>7s}")
    for bt in ("Zr-Zr", "Zr-Cu", "Zr-Al", "Cu-Cu", "Cu-Al"):
        mean = "distance+composition" if bt in DEFAULT_COMPOSITION_TYPES else "distance"
        rows = {}
        for cal in ("scale", "ml-scale", "variance", "default"):
            ms = [sh.nested_calibrated_ldgo(sh.TypeSample.of(ds, bt, n_sample, s), DEFAULT_HYPERPARAMETERS[bt], mean,
                                            priors, max_train, s, calibration=cal)["metrics"] for s in args.seeds]
            rows[cal] = {k: float(np.mean([m[k] for m in ms])) for k in keys} | {"used": ms[0]["calibration"]}
            r = rows[cal]
            label = cal + (f" ({r['used']})" if cal == "default" else "")
            print(f"{bt:7s}{label:26s}{r['cov1']:6.2f}{r['cov2']:6.2f}{r['spearman']:6.2f}{r['q95']:6.2f}"
                  f"{r['cov95']:7.2f}")
        out["types"][bt] = rows
    print(f"\n(took {time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
