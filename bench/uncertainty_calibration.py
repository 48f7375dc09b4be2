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

``--shape``: instead, the shape of the held-out z = error / calibrated std of the default
calibration (pooled over seeds and outer folds): excess kurtosis, coverage at 1/2/3 sigma, the
ratio r of the 95.45 % to the 68.3 % quantile of |z| (2 for any Gaussian), and what a Gaussian, a
Laplace and a Student-t with the same 1-sigma coverage would give at 2 and 3 sigma (the t's
degrees of freedom fitted to r). One Gaussian std can meet 68.3 % and 95.45 % at once only if
r <= 2 (then a larger scale can); with r > 2 raising the scale to 95.45 % at 2 sigma puts more
than 68.3 % within 1 sigma.

Run:  .venv/bin/python bench/uncertainty_calibration.py [--quick] [--seeds 0 1] [--json out.json] [--shape]
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
    ap.add_argument("--shape", action="store_true", help="shape of held-out z = error / std (default calibration)")
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
    if args.shape:
        return shape(ds, priors, n_sample, max_train, args)
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


def t_dof_for_ratio(r: float) -> float:
    """Degrees of freedom of the Student-t whose |T| has 95.45 % / 68.3 % quantile ratio ``r``
    (inf when r <= 2, the Gaussian limit; the ratio decreases with the dof)."""
    from scipy.optimize import brentq
    from scipy.stats import norm, t

    p1, p2 = 0.5 + norm.cdf(1) - 0.5, 0.5 + norm.cdf(2) - 0.5

    def ratio(nu: float) -> float:
        return float(t.ppf(p2, nu) / t.ppf(p1, nu))

    if r <= ratio(1e6):
        return float("inf")
    if r >= ratio(1.01):
        return 1.01
    return float(brentq(lambda nu: ratio(nu) - r, 1.01, 1e6))


def shape(ds, priors, n_sample: int, max_train: int, args) -> None:
    import numpy as np
    from scipy.stats import kurtosis, norm, t

    from bondml.constants import DEFAULT_COMPOSITION_TYPES, DEFAULT_HYPERPARAMETERS
    from bondml.evaluate import shift as sh

    out: dict = {"settings": {"n_sample": n_sample, "max_train": max_train, "seeds": args.seeds}, "types": {}}
    print(f"# held-out z = error / calibrated std (default calibration), nested LDGO, run 21, {n_sample}-bond "
          f"samples, <= {max_train} training bonds per fold, seeds {args.seeds} pooled")
    print("# cov_k: fraction |z| <= k; r = Q95.45(|z|) / Q68.3(|z|) (Gaussian 2.00); G/L/t: a Gaussian, Laplace,"
          " Student-t (dof fitted to r) with the same 1-sigma coverage, their 2- and 3-sigma coverage")
    print(f"{'type':7s}{'cal':>9s}{'n':>6s}{'kurt':>6s}{'cov1':>6s}{'cov2':>6s}{'cov3':>6s}{'r':>6s}"
          f"{'G:c2':>6s}{'G:c3':>6s}{'L:c2':>6s}{'L:c3':>6s}{'dof':>6s}{'t:c2':>6s}{'t:c3':>6s}"
          f"{'sc95':>6s}{'c1@95':>6s}")
    for bt in ("Zr-Zr", "Zr-Cu", "Zr-Al", "Cu-Cu", "Cu-Al"):
        mean = "distance+composition" if bt in DEFAULT_COMPOSITION_TYPES else "distance"
        z, used = [], ""
        for s in args.seeds:
            r = sh.nested_calibrated_ldgo(sh.TypeSample.of(ds, bt, n_sample, s), DEFAULT_HYPERPARAMETERS[bt], mean,
                                          priors, max_train, s, calibration="default")
            z.append(r["err"] / r["std"])
            used = r["metrics"]["calibration"]
        z = np.concatenate(z)
        a = np.abs(z)
        c = [float(np.mean(a <= k)) for k in (1, 2, 3)]
        q1, q2 = float(np.quantile(a, norm.cdf(1) - norm.cdf(-1))), float(np.quantile(a, norm.cdf(2) - norm.cdf(-2)))
        ratio = q2 / q1
        sg = 1.0 / norm.ppf(0.5 + c[0] / 2)  # Gaussian N(0, sg^2) with P(|z| <= 1) = c1
        g = [float(2 * norm.cdf(k / sg) - 1) for k in (2, 3)]
        lap = [1 - (1 - c[0]) ** k for k in (2, 3)]  # Laplace: P(|z| <= k) = 1 - exp(-k / b)
        nu = t_dof_for_ratio(ratio)
        if np.isfinite(nu):
            st = 1.0 / t.ppf(0.5 + c[0] / 2, nu)  # scaled t with P(|z| <= 1) = c1
            tt = [float(2 * t.cdf(k / st, nu) - 1) for k in (2, 3)]
        else:
            tt = g
        # the scale a single Gaussian std would need for 95.45 % at 2 sigma, and its 1-sigma coverage then
        sc95 = q2 / 2.0
        c1_at = float(np.mean(a <= sc95))
        row = {"calibration": used, "n": int(z.size), "excess_kurtosis": float(kurtosis(z)), "cov1": c[0],
               "cov2": c[1], "cov3": c[2], "ratio_q95_q68": ratio, "gauss_cov2": g[0], "gauss_cov3": g[1],
               "laplace_cov2": lap[0], "laplace_cov3": lap[1], "t_dof": nu, "t_cov2": tt[0], "t_cov3": tt[1],
               "scale_for_95_at_2sigma": sc95, "cov1_at_that_scale": c1_at}
        out["types"][bt] = row
        print(f"{bt:7s}{used:>9s}{z.size:6d}{row['excess_kurtosis']:6.2f}{c[0]:6.3f}{c[1]:6.3f}{c[2]:6.3f}"
              f"{ratio:6.2f}{g[0]:6.3f}{g[1]:6.3f}{lap[0]:6.3f}{lap[1]:6.3f}{nu:6.1f}{tt[0]:6.3f}{tt[1]:6.3f}"
              f"{sc95:6.2f}{c1_at:6.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
