"""Benchmark of the xTB labeler (GFN1-xTB, tblite): wall time per cell, by atom count.

Usage::

    OMP_NUM_THREADS=2 python bench/bench_xtb.py [--sizes 32,100] [--repeat 1] [--json out.json]

Size 100 is the real reference cell (Zr49Cu49Al2 run 21, sub-run 0). Other sizes are
fcc-based Zr-Cu-Al cells at the glass's density with species drawn at random (seed 0) in
Zr49Cu49Al2 proportions (n = 4 k^3 or 4 k^2 m atoms). Times include tblite's SCC, the
matrices, the per-pair reduction and the bond search (1.8-4.2 Angstrom).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def _cell(n: int, seed: int = 0):
    """The reference cell for n = 100, else a random-alloy fcc cell of about n atoms."""
    from ase.build import bulk
    from ase.io import read

    if n == 100:
        from bondml.data import run21_dir

        return read(run21_dir() / "2000" / "0" / "Zr49Cu49Al2.xyz")
    k = max(1, round((n / 4) ** (1 / 3)))
    reps = [k, k, k]
    while 4 * np.prod(reps) < n:
        reps[int(np.argmin(reps))] += 1
    a = bulk("Cu", "fcc", a=4.05, cubic=True).repeat(reps)  # ~ glass density (6.8 g/cm^3 region)
    rng = np.random.default_rng(seed)
    sym = rng.choice(["Zr", "Cu", "Al"], size=len(a), p=[0.49, 0.49, 0.02])
    a.set_chemical_symbols(sym.tolist())
    a.positions += rng.normal(scale=0.1, size=a.positions.shape)
    return a


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="32,100", help="atom counts, comma separated (100 = reference cell)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    from bondml.generate.xtb import XtbSettings, xtb_labels

    rows = []
    for n in [int(s) for s in args.sizes.split(",") if s]:
        atoms = _cell(n)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            lab = xtb_labels(atoms, XtbSettings())
            times.append(time.perf_counter() - t0)
        row = {"n_atoms": len(atoms), "wall_s": min(times), "tblite_s": lab.wall_time_s,
               "n_bonds": int(np.isfinite(lab.strength).sum()),
               "s_per_bond_ms": 1000 * min(times) / max(1, len(lab.bonds))}
        rows.append(row)
        print(f"{row['n_atoms']:5d} atoms  {row['wall_s']:8.1f} s  (tblite {row['tblite_s']:.1f} s)  "
              f"{row['n_bonds']:5d} bonds  {row['s_per_bond_ms']:.1f} ms/bond", flush=True)
    out = {"bench": "xtb-gfn1 labelling", "omp_threads": os.environ.get("OMP_NUM_THREADS"),
           "cpu_count": os.cpu_count(), "machine": platform.machine(), "results": rows}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
