"""Benchmark: SOAP per 1,000 atoms, quippy (QUIP, the paper's descriptors) vs featomic.

quippy rows: quippy itself (the library engine, ``engine="library"``) and the quippy backend as
bondml computes it by default (the numpy QUIP engine of ``bondml.features.quip_soap``, float64
and float32 rows; its max |difference| to quippy on every run-21 cell and the 10k cell is
printed). featomic rows: featomic itself with the QUIP polynomial basis (``soap_featomic_library``), the
featomic backend as bondml computes it (the numpy engine of ``bondml.features.fast_soap``, equal
to featomic to rounding; its difference to the library is printed), and featomic's GTO basis.
Also measures what matters to the model, the SOAP kernel k(A, B) = pA . pB between atoms,
quippy vs featomic: max and mean absolute difference over all atom pairs of each run-21 cell
and (chunked) of the 10,000-atom production cell.

Run:  .venv/bin/python bench/bench_soap.py [--threads N]   (default 1 thread where controllable)
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _set_threads(n: int) -> None:
    # must happen before quippy (OpenMP) and featomic (rayon) are loaded
    for var in ("OMP_NUM_THREADS", "RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def _f(x: float) -> str:
    """A kernel difference: 4 decimals, or 1 significant digit below 1e-4 (the numpy QUIP engine)."""
    return f"{x:8.4f}" if x >= 1e-4 or x == 0.0 else f"{x:8.1e}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions (best is kept)")
    args = ap.parse_args()
    _set_threads(args.threads)

    import ase.io
    import numpy as np

    from bondml.data import production_cell, run21_dir
    from bondml.features.featomic_backend import soap_featomic_library
    from bondml.features.soap import FeatureSettings, compute_soap

    def read_big():
        a = ase.io.read(production_cell(), format="lammps-data", atom_style="atomic")
        a.set_chemical_symbols(np.array(["", "Zr", "Cu", "Al"])[a.get_array("type")])
        return a

    quip = FeatureSettings(backend="quippy")
    feat = FeatureSettings(backend="featomic")
    feat_gto = FeatureSettings(backend="featomic", extra=(("featomic_radial", "gto"),))
    backends = {
        "quippy": lambda a: compute_soap(a, quip, engine="library"),
        "quippy backend (numpy QUIP)": lambda a: compute_soap(a, quip, engine="numpy"),
        "  the same, float32 rows": lambda a: compute_soap(a, quip, engine="numpy", dtype=np.float32),
        "featomic library (QUIP basis)": lambda a: soap_featomic_library(a, feat),
        "featomic backend (numpy)": lambda a: compute_soap(a, feat),
        "featomic (GTO basis)": lambda a: compute_soap(a, feat_gto),
    }

    small = ase.io.read(run21_dir() / "2000/0/Zr49Cu49Al2.xyz")
    big = read_big()

    # set-up cost (spline of the radial integral, descriptor parsing) paid once per process
    print(f"threads={args.threads}  python={sys.version.split()[0]}")
    print("\n# one-off set-up (first call on a 100-atom cell, s)")
    for name, fn in backends.items():
        t = time.perf_counter()
        fn(small)
        print(f"  {name:30s} {time.perf_counter() - t:8.2f}")

    def best(fn, n):
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            out = fn()
            ts.append(time.perf_counter() - t)
        return min(ts), out

    print("\n# time per 1,000 atoms (s), best of repeats")
    print(f"  {'backend':30s} {'100-atom cell':>14s} {'10k-atom cell':>14s} {'ratio to quippy (10k)':>22s}")
    res = {}
    for name, fn in backends.items():
        t_small, _ = best(lambda fn=fn: fn(small), args.repeat * 3)
        t_big, v = best(lambda fn=fn: fn(big), args.repeat)
        res[name] = (t_small / len(small) * 1000, t_big / len(big) * 1000, v)
    q_big = res["quippy"][1]
    for name, (ts, tb, _) in res.items():
        print(f"  {name:30s} {ts:14.3f} {tb:14.3f} {q_big / tb:21.2f}x")
    lib, eng = res["featomic library (QUIP basis)"][2], res["featomic backend (numpy)"][2]
    print(f"  featomic backend (numpy) vs featomic library, 10k cell: max |difference| {np.abs(lib - eng).max():.1e}")
    qe = res["quippy backend (numpy QUIP)"][2]
    print(f"  numpy QUIP engine vs quippy, 10k cell: max |difference| {np.abs(qe - res['quippy'][2]).max():.1e}")
    worst = max(float(np.abs(compute_soap(a, quip, engine="numpy") - compute_soap(a, quip, engine="library")).max())
                for a in (ase.io.read(run21_dir() / f"2000/{k}/Zr49Cu49Al2.xyz") for k in range(15)))
    print(f"  numpy QUIP engine vs quippy, all 15 run-21 cells: max |difference| {worst:.1e}")

    print("\n# SOAP kernel pA.pB, |quippy - featomic| over all atom pairs")
    print(f"  {'cell':18s} {'backend':30s} {'max':>8s} {'mean':>8s}")
    cells = []
    for k in range(15):
        cells.append((f"run21/{k}", ase.io.read(run21_dir() / f"2000/{k}/Zr49Cu49Al2.xyz")))
    overall = {n: [0.0, 0.0, 0] for n in backends if n != "quippy"}
    for label, a in cells:
        q = compute_soap(a, quip, engine="library")
        kq = q @ q.T
        for name, fn in backends.items():
            if name == "quippy":
                continue
            f = fn(a)
            d = np.abs(f @ f.T - kq)
            overall[name][0] = max(overall[name][0], float(d.max()))
            overall[name][1] += float(d.sum())
            overall[name][2] += d.size
            if label in ("run21/0", "run21/8", "run21/14"):
                print(f"  {label:18s} {name:30s} {_f(d.max())} {_f(d.mean())}")
    for name, (mx, sm, cnt) in overall.items():
        print(f"  {'run21 all 15':18s} {name:30s} {_f(mx)} {_f(sm / cnt)}")

    q = res["quippy"][2]
    for name in backends:
        if name == "quippy":
            continue
        f = res[name][2]
        mx, sm, cnt = 0.0, 0.0, 0
        for start in range(0, len(big), 1000):
            d = np.abs(f[start:start + 1000] @ f.T - q[start:start + 1000] @ q.T)
            mx = max(mx, float(d.max()))
            sm += float(d.sum())
            cnt += d.size
        print(f"  {'10k cell':18s} {name:30s} {_f(mx)} {_f(sm / cnt)}")


if __name__ == "__main__":
    main()
