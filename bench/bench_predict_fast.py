"""Predict with std + out-of-domain flags on the 10k frame: the code before against this tree,
side by side in one run (issue 15, the predict step of bench_frame.py).

    .venv/bin/python bench/bench_predict_fast.py --before /path/to/old/src [--workdir DIR] [--rounds 3]

One thread (BLAS/OpenMP limited to 1). Models (fitted once into ``--workdir`` and reused): the
paper model as bench_frame.py fits it (all 9,187 labelled run-21 bonds, quippy SOAP, no
calibration: out-of-domain = std threshold), the same with ``bondml train``'s calibration
(``calibration="shift"``: similarity and calibrated-std flags), and the featomic-SOAP model
(QUIP basis, float32 rows as deploy uses). Each side runs in its own process (``PYTHONPATH`` =
``--before`` or this tree's ``src``), alternating, ``--rounds`` times; the best CPU and wall
time of ``predict_bonds`` per process (after one warm-up call) are kept, and one cProfile run
per side gives the pieces. Fidelity against the exact GP (exact mean, exact std in float64, the
exact-std path's flags; computed once with this tree's exact path): mean max |diff| (eV), std
relative error median / p95 / max, flags superset. Timings on a shared machine: read the ratios
and the load printed with them.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parents[1]
MODELS = ("paper", "paper_shift", "feat")
#: functions whose own time (cProfile tottime) makes up the pieces printed per side
PIECES = 10


def _prepare(work: Path) -> None:
    """Frame bonds, SOAP (quippy float64; featomic float32), the three models and the exact
    references, each made once."""
    sys.path.insert(0, str(HERE / "tests"))
    from bondml.constants import INFERENCE_WINDOWS
    from bondml.data import production_cell, reference_root
    from bondml.features.soap import FeatureSettings, compute_soap
    from bondml.io.lammps import read_lammps_data
    from bondml.model.bondmodel import BondModel
    from bondml.model.distance import DistanceModel
    from bondml.store.dataset import BondFeatures
    from bondml.store.extract import dataset_from_getl
    from bondml.structure.bonds import find_bonds

    from _demo_model import _label_rows  # test helper (tests/_demo_model.py)

    fs = FeatureSettings(backend="featomic")
    if not (work / "bonds.npz").exists():
        f = read_lammps_data(production_cell())
        b = find_bonds(f.atoms, windows=INFERENCE_WINDOWS)
        np.save(work / "soap-quippy.npy", compute_soap(f.atoms))
        np.save(work / "soap-feat.npy", compute_soap(f.atoms, fs, dtype=np.float32))
        np.savez(work / "bonds.npz", type=b.type.astype(str), distance=b.distance, i=b.i, j=b.j)
    b = np.load(work / "bonds.npz")
    for name in MODELS:
        mdir = work / f"model-{name}"
        if not (mdir / "model.json").exists():
            ds = dataset_from_getl(reference_root(), fs) if name == "feat" else dataset_from_getl(reference_root())
            dm = DistanceModel().fit(_label_rows(ds, reference_root()))
            kw = {"calibrate": True, "calibration": "shift"} if name == "paper_shift" else {"calibrate": False}
            BondModel.fit(ds, distance_model=dm, seed=0, **kw).save(mdir)
        ref = work / f"exact-{name}.npz"
        if not ref.exists():
            m = BondModel.load(mdir)
            soap = np.load(work / ("soap-feat.npy" if name == "feat" else "soap-quippy.npy"))
            bt = b["type"]
            pex = m.predict_bonds(bt, b["distance"], soap, b["i"], b["j"], m.settings, exact_std=True,
                                  precision="float64")
            mu = np.full(bt.size, np.nan)
            for t, est in m.estimators.items():
                k = np.flatnonzero(bt == t)
                F = BondFeatures(b["distance"][k], soap, b["i"][k], b["j"][k])
                mu[k] = est.predict(F, exact_mean=True, fast_soap=False) + m._prior(t, b["distance"][k])[0]
            np.savez(ref, mu=mu, std=pex["std"], ood=pex["out_of_domain"], fallback=pex["fallback"])


def _worker(work: Path, name: str, reps: int, out: Path, profile: bool) -> None:
    """Time predict_bonds (one warm-up call, then best of ``reps``) with the bondml on sys.path."""
    from bondml.model.bondmodel import BondModel

    b = np.load(work / "bonds.npz")
    soap = np.load(work / ("soap-feat.npy" if name == "feat" else "soap-quippy.npy"))
    m = BondModel.load(work / f"model-{name}")
    args = (b["type"], b["distance"], soap, b["i"], b["j"], m.settings)
    t0 = time.process_time()
    pred = m.predict_bonds(*args)
    first = time.process_time() - t0
    cpu, wall = np.inf, np.inf
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        pred = m.predict_bonds(*args)
        cpu, wall = min(cpu, time.process_time() - c), min(wall, time.perf_counter() - t)
    pieces = []
    if profile:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        m.predict_bonds(*args)
        pr.disable()
        st = pstats.Stats(pr).stats  # type: ignore[attr-defined]
        rows = sorted(((v[2], f"{Path(k[0]).name}:{k[2]}") for k, v in st.items()), reverse=True)[:PIECES]
        pieces = [(n, round(t, 3)) for t, n in rows]
    np.savez(out, **pred)
    out.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "wall": wall, "first_cpu": first, "pieces": pieces,
                                                    "load": os.getloadavg()[0]}))


def _fidelity(work: Path, name: str, pred: dict) -> str:
    ex = np.load(work / f"exact-{name}.npz")
    ok = ~ex["fallback"]
    dmu = float(np.max(np.abs(pred["minus_icohp"][ok] - ex["mu"][ok])))
    r = np.abs(pred["std"][ok] - ex["std"][ok]) / ex["std"][ok]
    fo, fe = pred["out_of_domain"], ex["ood"]
    return (f"mean {dmu:.1e} eV; std med {100 * np.median(r):.3f} % p95 {100 * np.percentile(r, 95):.3f} % "
            f"max {100 * r.max():.2f} %; flags {int(fo.sum())} (exact {int(fe.sum())}, "
            f"superset {bool(np.all(fo[fe]))})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="src folder of the code before (e.g. main's)")
    ap.add_argument("--workdir", type=Path, default=None, help="models, SOAP and exact references (reused)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--worker", nargs=4, metavar=("WORK", "MODEL", "OUT", "PROFILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        w, name, out, prof = args.worker
        return _worker(Path(w), name, args.reps, Path(out), prof == "1")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bondml-bench-predict-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; work dir {work}")
    _prepare(work)
    sides = {"before": args.before.resolve(), "after": HERE / "src"}
    res: dict[tuple[str, str], list[dict]] = {}
    for rnd in range(args.rounds):
        for name in args.models.split(","):
            for side, src in (sides.items() if rnd % 2 == 0 else reversed(sides.items())):
                out = work / f"pred-{name}-{side}.npz"
                env = dict(os.environ, PYTHONPATH=str(src))
                subprocess.run([sys.executable, __file__, "--before", str(src), "--reps", str(args.reps),
                                "--worker", str(work), name, str(out), "1" if rnd == 0 else "0"], env=env, check=True)
                r = json.loads(out.with_suffix(".json").read_text())
                r["fid"] = _fidelity(work, name, dict(np.load(out)))
                res.setdefault((name, side), []).append(r)
    print(f"\npredict_bonds with std + out-of-domain flags, 10k frame (66,518 bonds), one thread; best of "
          f"{args.reps} calls x {args.rounds} processes per side")
    print(f"{'model':<13s}{'side':<8s}{'CPU s':>8s}{'wall s':>8s}{'1st call CPU':>14s}  fidelity vs the exact GP")
    for name in args.models.split(","):
        best = {}
        for side in sides:
            rs = res[(name, side)]
            cpu, wall = min(r["cpu"] for r in rs), min(r["wall"] for r in rs)
            best[side] = cpu
            print(f"{name:<13s}{side:<8s}{cpu:8.3f}{wall:8.3f}{rs[0]['first_cpu']:14.3f}  {rs[-1]['fid']}")
        print(f"{'':<13s}ratio before / after (CPU): {best['before'] / best['after']:.2f}x")
    print("\npieces (cProfile tottime, s; one profiled call per side, first round)")
    for name in args.models.split(","):
        for side in sides:
            print(f"  {name} {side}: " + ", ".join(f"{n} {t}" for n, t in res[(name, side)][0]["pieces"]))
    print(f"\nload average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
