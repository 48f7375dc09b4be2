"""Deployment benchmark: one 10k-atom frame end to end on one core, the original's per-bond loop,
and peak memory over a many-frame trajectory.

    .venv/bin/python bench/bench_deploy.py [--frames 12] [--n-train 600] [--subset 20]

Steps per frame: read (parse one frame of a LAMMPS dump), bonds (vesin, per-type windows), SOAP
(quippy, paper settings), predict (-ICOHP + std, all ~66.5k bonds), write (Parquet + ext-xyz).
The original algorithm (a Python loop over training bonds for each bond, kernel of DOMAIN.md) is
timed on ``--subset`` bonds and scaled to all bonds of the frame. Memory: peak RSS of the main
process and of the worker processes (replaced every ``--recycle`` frames, which bounds QUIP's SOAP
leak) after the first ``--recycle`` frames vs after all ``--frames`` frames of a synthetic
trajectory (the 10k cell with seeded 0.05 A displacements); ru_maxrss is a high-water mark.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"  # one core

import argparse  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """High-water mark of resident memory (MB) of this process or (RUSAGE_CHILDREN) its largest finished child."""
    return resource.getrusage(who).ru_maxrss / 1024.0


def write_trajectory(path: Path, n_frames: int, seed: int = 0) -> None:
    """The 10k cell with seeded small displacements, ``n_frames`` frames, with per-atom stress columns."""
    from bondml.data import production_cell
    from bondml.io.lammps import format_dump_frame, read_lammps_data

    f0 = read_lammps_data(production_cell())
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for k in range(n_frames):
            a = f0.atoms.copy()
            a.positions += rng.normal(0, 0.05, a.positions.shape)
            cols = {f"v_s{c}": rng.normal(0, 1, len(a)) for c in ("xx", "yy", "zz", "xy", "xz", "yz")}
            fh.write(format_dump_frame(a, timestep=20000 * k, columns=cols))


def original_loop_seconds(model_dir: Path, frame_atoms: object, subset: int, n_train: int) -> tuple[float, int]:
    """Time the original's per-bond Python loop over training bonds on ``subset`` bonds; scaled to the frame.

    For each bond: for each training bond of its type, k = exp(-(d-d')^2/2s^2) *
    ((pA.pA' + pB.pB' + pA.pB' + pB.pA')/4)^zeta, then sum k*alpha. Training SOAP and alpha are the
    real model's sizes (random values of the right shapes: timing only).
    """
    from bondml.constants import INFERENCE_WINDOWS
    from bondml.features.soap import compute_soap
    from bondml.structure.bonds import find_bonds

    bonds = find_bonds(frame_atoms, windows=INFERENCE_WINDOWS)
    soap = compute_soap(frame_atoms)
    rng = np.random.default_rng(0)
    tr_a = rng.random((n_train, soap.shape[1]))
    tr_b = rng.random((n_train, soap.shape[1]))
    tr_d = rng.uniform(2.5, 3.5, n_train)
    alpha = rng.normal(size=n_train)
    sigma, zeta = 0.5, 1.0
    idx = rng.choice(len(bonds), subset, replace=False)
    t0 = time.perf_counter()
    for b in idx:
        pa, pb, d = soap[bonds.i[b]], soap[bonds.j[b]], bonds.distance[b]
        s = 0.0
        for m in range(n_train):
            k = np.exp(-((d - tr_d[m]) ** 2) / (2 * sigma**2)) * (
                (np.dot(pa, tr_a[m]) + np.dot(pb, tr_b[m]) + np.dot(pa, tr_b[m]) + np.dot(pb, tr_a[m])) / 4.0
            ) ** zeta
            s += k * alpha[m]
    per_bond = (time.perf_counter() - t0) / subset
    return per_bond * len(bonds), len(bonds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--n-train", type=int, default=600, help="training bonds per type (paper: ~600)")
    ap.add_argument("--subset", type=int, default=20, help="bonds timed with the original loop")
    ap.add_argument("--recycle", type=int, default=3, help="frames per worker process")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--precision", default="float32", help="model arithmetic: float32 or float64")
    ap.add_argument("--no-featomic", action="store_true", help="skip the featomic-backend comparison")
    args = ap.parse_args()

    import sys

    from rich.console import Console
    from rich.table import Table

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from bondml.deploy.infer import PredictConfig, predict_trajectory
    from bondml.io.lammps import iter_dump

    from _demo_model import train_demo_model  # test helper (tests/_demo_model.py)

    console = Console()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bondml-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    model_dir = train_demo_model(work / "model", max_per_type=args.n_train, seed=0)
    console.print(f"model: {args.n_train} bonds/type, trained in {time.perf_counter() - t:.1f} s")
    traj = work / "traj.dump"
    write_trajectory(traj, args.frames)
    console.print(f"trajectory: {args.frames} frames, {traj.stat().st_size / 2**20:.0f} MB")

    # read: parse the frames of the dump
    t = time.perf_counter()
    frames_read = 0
    for f in iter_dump(traj):
        frames_read += 1
        if frames_read == 3:
            first_atoms = f.atoms
            break
    read_s = (time.perf_counter() - t) / frames_read

    rss0 = peak_rss_mb()
    out = work / "run"
    n_first = min(args.recycle, args.frames)
    cfg = dict(workers=1, recycle_every=args.recycle, precision=args.precision)
    predict_trajectory(model_dir, traj, out, PredictConfig(max_frames=n_first, overwrite=True, progress=False, **cfg))
    rss_first = (peak_rss_mb(), peak_rss_mb(resource.RUSAGE_CHILDREN))
    s = predict_trajectory(model_dir, traj, out, PredictConfig(progress=True, **cfg))
    rss_all = (peak_rss_mb(), peak_rss_mb(resource.RUSAGE_CHILDREN))
    steps = s["seconds_per_frame_steps"]

    orig_s, n_bonds = original_loop_seconds(model_dir, first_atoms, args.subset, args.n_train)
    total = read_s + s["seconds_per_frame"] - steps.get("load", 0.0)

    alt = None
    if not args.no_featomic:  # the same frame path with a model trained on featomic SOAP (GTO basis)
        from bondml.features.soap import FeatureSettings

        fs = FeatureSettings(backend="featomic", extra=(("featomic_radial", "gto"),))
        fmodel = train_demo_model(work / "model-featomic", max_per_type=args.n_train, seed=0, settings=fs)
        fa = predict_trajectory(fmodel, traj, work / "run-featomic",
                                PredictConfig(max_frames=3, overwrite=True, progress=False, **cfg))
        alt = fa["seconds_per_frame_steps"]

    tab = Table(title=f"one 10k-atom frame, one core ({n_bonds} bonds, model {args.n_train}/type, "
                      f"{args.precision})")
    tab.add_column("step")
    tab.add_column("seconds (paper SOAP, quippy)", justify="right")
    if alt is not None:
        tab.add_column("seconds (featomic SOAP model)", justify="right")
    for k in ("read", "load", "bonds", "soap", "predict", "write"):
        v = read_s if k == "read" else steps.get(k, 0.0)
        row = [k, f"{v:.3f}"]
        if alt is not None:
            row.append(f"{read_s if k == 'read' else alt.get(k, 0.0):.3f}")
        tab.add_row(*row)
    row = ["total (end to end, without load)", f"{total:.2f}"]
    if alt is not None:
        row.append(f"{read_s + sum(v for k, v in alt.items() if k != 'load'):.2f}")
    tab.add_row(*row)
    tab.add_row(f"original per-bond loop (scaled from {args.subset} bonds)", f"{orig_s:.0f}")
    tab.add_row("speed-up vs original loop (predict step)", f"{orig_s / max(steps.get('predict', 1e-9), 1e-9):.0f}x")
    tab.add_row("speed-up vs original loop (end to end)", f"{orig_s / total:.0f}x")
    console.print(tab)
    mem = Table(title=f"peak memory (RSS, MB); worker replaced every {args.recycle} frames")
    mem.add_column("after")
    mem.add_column("main process", justify="right")
    mem.add_column("largest worker", justify="right")
    mem.add_row("reading 3 frames", f"{rss0:.0f}", "-")
    mem.add_row(f"predicting {n_first} frames", f"{rss_first[0]:.0f}", f"{rss_first[1]:.0f}")
    mem.add_row(f"predicting all {s['frames']} frames", f"{rss_all[0]:.0f}", f"{rss_all[1]:.0f}")
    console.print(mem)
    console.print(f"bonds in frame 0: {s['bonds']} (total {s['bonds_total_first_frame']}); "
                  f"out of domain {100 * s['fraction_out_of_domain']:.2f} %")


if __name__ == "__main__":
    main()
