"""Benchmark of issue 15: a 10,000-atom frame at the cost of its SOAP, side by side in one run.

    .venv/bin/python bench/bench_frame.py [--quick] [--no-featomic] [--no-parallel]

One thread (BLAS and OpenMP limited to 1) unless stated. Data: the shipped 10k production cell
and the real run-21 labels. Prints, measured in this run:

1. per 10k-atom frame, end to end (read, bonds, SOAP, predict with std, write), for the default
   model (GPs on all labelled run-21 bonds: Zr-Cu 4,931); the frame's SOAP is the quippy
   backend's default engine (bondml.features.quip_soap, numpy, equal to quippy to ~1e-15).
   Measured side by side on the same frame: the paper's quippy SOAP alone (quippy itself,
   ``engine="library"``), the numpy QUIP engine alone, the frame end to end, and the ratios
   frame / quippy SOAP (the issue's 1.3x target) and frame / engine SOAP; and the predict step
   of today's exact path (exact mean + exact std, float32 as the previous default) and of the
   original algorithm (Python loop over training bonds, timed on a subset and scaled; DOMAIN.md);
2. fidelity on the frame: fast mean vs exact GP mean (max |diff|, eV), low-rank std vs exact std
   (median, p95, max relative error), out-of-domain flags (is the fast set a superset?);
3. a scaling table: predict time vs atoms (1k cut, 10k, 27k cut of the 2x2x2 replica) and vs
   training size (600, 2,000, 5,000, all per type), fast and exact;
4. featomic features (a model trained on featomic SOAP): SOAP + predict per frame;
5. start-up: ``bondml --help``, quippy's import and first call in a fresh process (and the numpy
   engine's first call), ``bondml predict`` on one frame (whole command, interpreter included)
   against the frame's quippy SOAP alone (the 1.5x target) and the engine's SOAP alone;
6. throughput: frames/s with 1 and 2 worker processes on a short trajectory (interleaved runs,
   best of two), CPU seconds per frame, peak RSS of a worker and of the parent (memory-mapped model);
7. fitting: exact fit of all Zr-Cu bonds, sparse fit of 20k/100k synthetic Zr-Cu bonds (the
   real run-21 bonds repeated with 0.02 A distance jitter and 5 meV label noise: a timing set,
   *not* new data) and the sparse vs exact accuracy on held-out run-21 cells.

``--model DIR`` runs only sections 5 and 6 with an existing model folder (about 2 minutes).
``--quick`` skips featomic, the 27k cell, the throughput run and the 100k fit; ``--full`` adds
the exact std for the other cells and training sizes (minutes). Timings on a shared machine:
compare the ratios, and read the load average printed at the top and bottom.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

BONDML = [sys.executable, "-m", "bondml.cli.main"]


CPU: dict[int, float] = {}


def _t(fn, *a, repeat: int = 1, **k):
    """Best wall time of ``repeat`` calls and the result; the CPU time of the best call is kept
    in CPU[id(result)] (CPU time is what a shared machine distorts least)."""
    best, out, cpu = np.inf, None, np.inf
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn(*a, **k)
        w = time.perf_counter() - t
        if w < best:
            best, cpu = w, time.process_time() - c
    CPU[id(out)] = cpu
    return best, out


def _cpu(x) -> float:
    return CPU.get(id(x), float("nan"))


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _rel(a, b):
    r = np.abs(a - b) / b
    return float(np.median(r)), float(np.percentile(r, 95)), float(r.max())


def frame_of(path: Path):
    from bondml.constants import INFERENCE_WINDOWS
    from bondml.io.lammps import read_lammps_data
    from bondml.structure.bonds import find_bonds

    t_read, f = _t(read_lammps_data, path)
    t_bonds, b = _t(find_bonds, f.atoms, windows=INFERENCE_WINDOWS)
    return f, b, t_read, t_bonds


def original_pair_seconds(model, soap, n_pairs: int = 3000) -> float:
    """Seconds per (test bond, training bond) kernel term of the original's Python loop."""
    rng = np.random.default_rng(0)
    est = model.estimators["Zr-Cu"]
    p = soap.shape[1]
    tr_a = rng.random((64, p))
    tr_b = rng.random((64, p))
    t0 = time.perf_counter()
    s = 0.0
    for k in range(n_pairs):
        pa, pb, m = soap[k % soap.shape[0]], soap[(k * 7) % soap.shape[0]], k % 64
        kk = np.exp(-((2.9 - est.d_train_[m]) ** 2) / (2 * 0.5**2)) * (
            (np.dot(pa, tr_a[m]) + np.dot(pb, tr_b[m]) + np.dot(pa, tr_b[m]) + np.dot(pb, tr_a[m])) / 4.0) ** 1.0
        s += kk * 0.1
    return (time.perf_counter() - t0) / n_pairs


def make_cells(work: Path, quick: bool):
    from bondml.data import production_cell
    from bondml.io.lammps import read_lammps_data, write_lammps_data
    from bondml.md.compress import cut_cell

    cells = {"10k": Path(production_cell())}
    src = read_lammps_data(production_cell()).atoms
    side = float(np.cbrt(src.cell.volume))
    cells["1k"] = cut_cell(work / "c1k.data", side=side * np.cbrt(0.1))
    if not quick:
        big = src.repeat((2, 2, 2))
        write_lammps_data(work / "rep8.data", big)
        cells["27k"] = cut_cell(work / "c27k.data", side=side * np.cbrt(2.7), source=work / "rep8.data")
    return cells


LAST_CPU = [float("nan")]


def _run_wall(cmd: list[str], repeat: int = 1) -> float:
    """Best wall time of ``repeat`` runs of ``cmd``; the CPU time (user + system) of that run in
    LAST_CPU[0] (what a shared machine distorts least)."""
    import resource

    best = np.inf
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        w = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if w < best:
            best, LAST_CPU[0] = w, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return best


def startup_and_throughput(mdir: Path, cell: Path, atoms, t_soap: float, work: Path, size: float,
                           parallel: bool = True, n_frames: int = 10, cpu_soap: float = float("nan"),
                           t_engine: float = float("nan"), cpu_engine: float = float("nan")) -> None:
    """Sections 5 (start-up: --help, a one-frame ``bondml predict`` against the frame's SOAP) and 6
    (throughput: 1 and 2 worker processes on a short trajectory of the 10k cell). ``t_soap`` /
    ``cpu_soap``: the paper's quippy SOAP of the frame alone (wall / CPU s); ``t_engine`` /
    ``cpu_engine``: the numpy QUIP engine's."""
    import json

    # quippy's first call in a fresh process: import + descriptor + first frame; then the engine's
    code = ("import time; t0 = time.perf_counter()\n"
            "from bondml.data import production_cell\nfrom bondml.io.lammps import read_lammps_data\n"
            "a = read_lammps_data(production_cell()).atoms\nt1 = time.perf_counter()\n"
            "import quippy\nt2 = time.perf_counter()\n"
            "from bondml.features.soap import compute_soap\ncompute_soap(a, engine='library')\n"
            "t3 = time.perf_counter()\n"
            "compute_soap(a, engine='library')\nt4 = time.perf_counter()\nprint(t2 - t1, t3 - t2, t4 - t3)\n")
    q_imp, q_first, q_second = map(float, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                         check=True).stdout.split())
    code = ("import time\nfrom bondml.data import production_cell\nfrom bondml.io.lammps import read_lammps_data\n"
            "a = read_lammps_data(production_cell()).atoms\nt1 = time.perf_counter()\n"
            "from bondml.features.soap import compute_soap\ncompute_soap(a)\nt2 = time.perf_counter()\n"
            "import sys\nprint(t2 - t1, int(any(m.split('.')[0] == 'quippy' for m in sys.modules)))\n")
    e_first, e_quippy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout.split()
    t_help = _run_wall(BONDML + ["--help"], repeat=3)
    c_help = LAST_CPU[0]
    t_imp = _run_wall([sys.executable, "-c", "import bondml.cli.main, bondml.cli.deploy, bondml.deploy.infer, "
                       "bondml.model.bondmodel"], repeat=3)
    out1 = work / "pred1"
    walls, cpus, frames = [], [], []
    for _ in range(2):  # best of two: the machine is shared (the first also fills the model-check cache)
        walls.append(_run_wall(BONDML + ["predict", "--model", str(mdir), "--structure", str(cell), "--out", str(out1),
                                         "--quiet", "--overwrite", "--workers", "1"]))
        cpus.append(LAST_CPU[0])
        frames.append(json.loads((out1 / "manifest.json").read_text())["frames"][0])
    k = int(np.argmin(walls))
    wall1, cpu1, fr = walls[k], cpus[k], frames[k]
    print(f"\n5. start-up (load {_load()})")
    print(f"bondml --help: {t_help:.2f} s wall, {c_help:.2f} s CPU (target < 0.3 s); imports of the predict path: "
          f"{t_imp:.2f} s")
    print(f"quippy in a fresh process: import {q_imp:.2f} s, first frame {q_first:.2f} s, second {q_second:.2f} s "
          f"(steady state in this process {t_soap:.2f} s)")
    print(f"numpy QUIP engine in a fresh process: first frame {float(e_first):.2f} s, imports included (quippy "
          f"imported: {bool(int(e_quippy))}; steady state in this process {t_engine:.2f} s)")
    print(f"bondml predict, one 10k frame: wall {wall1:.2f} s = frame {fr['seconds']:.2f} s "
          f"(steps {', '.join(f'{k} {v:.2f}' for k, v in fr['steps'].items())}) + interpreter, imports, model "
          f"check, input check and finish {wall1 - fr['seconds']:.2f} s (first frame reached after at most that; "
          f"target < 1 s)")
    print(f"ratio to the paper's quippy SOAP of the frame alone: {wall1 / t_soap:.2f}x wall (target <= 1.5x); CPU: "
          f"whole command {cpu1:.2f} s / quippy SOAP {cpu_soap:.2f} s = {cpu1 / cpu_soap:.2f}x (first of the two runs, "
          f"which fills the model-check cache if empty: wall {walls[0]:.2f} s, CPU {cpus[0]:.2f} s)")
    print(f"ratio to the numpy QUIP engine's SOAP of the frame alone (what the command computes): "
          f"{wall1 / t_engine:.2f}x wall, {cpu1 / cpu_engine:.2f}x CPU")
    if not parallel:
        return
    from bondml.io.lammps import format_dump_frame

    traj = work / "traj.dump"
    rng = np.random.default_rng(0)
    with open(traj, "w") as fh:
        for k in range(n_frames):
            a = atoms.copy()
            a.positions += rng.normal(0, 0.05, a.positions.shape)
            fh.write(format_dump_frame(a, timestep=1000 * k))
    # in a small fresh interpreter per worker count (its own peak: VmHWM, as ru_maxrss survives the
    # exec from this large process); the thread
    # variables are unset so that the workers choose their BLAS threads as `bondml predict` does
    code = ("import json, os, resource, sys, time\n"
            "from bondml.deploy.infer import PredictConfig, predict_trajectory\n"
            "w = int(sys.argv[1]); t0 = time.perf_counter(); ts = []\n"
            f"s = predict_trajectory({str(mdir)!r}, {str(traj)!r}, {str(work)!r} + f'/traj-{{w}}', "
            "PredictConfig(workers=w, overwrite=True, recycle_every=20), "
            "progress=lambda done, total: ts.append(time.perf_counter()))\n"
            "wall = time.perf_counter() - t0; c = os.times(); n = s['frames']\n"
            # steady state: from the w-th recorded frame to the last (the first w frames pay the
            # workers' start: spawn, imports, model mapping, a fixed cost in a 728-frame run)
            "print(json.dumps({'rate': n / wall, 'steady': (n - w) / (ts[n] - ts[w]), "
            "'cpu': (c[0] + c[1] + c[2] + c[3]) / n, "
            "'frame_cpu': s['cpu_seconds_per_frame'], "
            "'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "
            "'parent_rss': [int(x.split()[1]) / 1024 for x in open('/proc/self/status') "
            "if x.startswith('VmHWM')][0]}))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                            "MKL_NUM_THREADS")}
    # three set-ups: one worker on one thread (one core's throughput: the scaling baseline), one
    # worker as `bondml predict` runs it (BLAS threads on every core), two one-thread workers
    one = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    setups = {"1 worker, 1 thread": (1, {**env, **one}), "1 worker, 2 BLAS threads": (1, env),
              "2 workers, 1 thread each": (2, env)}
    r, loads = {}, {}
    for name in list(setups) * 2:  # interleaved, best of two each: the machine is shared
        w, e = setups[name]
        loads.setdefault(name, []).append(_load())
        x = json.loads(subprocess.run([sys.executable, "-c", code, str(w)], capture_output=True, text=True, env=e,
                                      check=True).stdout.strip().splitlines()[-1])
        if name not in r or x["rate"] > r[name]["rate"]:
            r[name] = x
    print(f"\n6. throughput, {n_frames}-frame trajectory of the 10k cell (loads at the starts: {loads})")
    print(f"{'set-up':<28s}{'frames/s':>10s}{'steady':>8s}{'CPU s/frame':>13s}{'worker CPU':>12s}"
          f"{'worker RSS MB':>15s}{'parent RSS MB':>15s}")
    for name in setups:
        print(f"{name:<28s}{r[name]['rate']:10.3f}{r[name]['steady']:8.3f}{r[name]['cpu']:13.2f}"
              f"{r[name]['frame_cpu']:12.2f}{r[name]['rss']:15.0f}{r[name]['parent_rss']:15.0f}")
    two, base, blas = r["2 workers, 1 thread each"], r["1 worker, 1 thread"], r["1 worker, 2 BLAS threads"]
    print("(frames/s: the whole run, workers' start included; steady: from the w-th recorded frame to the last)")
    print(f"2 workers / 1 one-thread worker: {two['rate'] / base['rate']:.2f}x frames/s over the whole run, "
          f"{two['steady'] / base['steady']:.2f}x steady (target >= 1.8x on 2 idle "
          f"cores); 2 workers / 1 worker with 2 BLAS threads: {two['rate'] / blas['rate']:.2f}x "
          f"(steady {two['steady'] / blas['steady']:.2f}x); CPU per frame "
          f"{two['cpu'] / base['cpu']:.2f}x; model {size:.0f} MB on disk, memory-mapped (shared page cache: a "
          "worker's RSS counts the pages it touched)")


def startup_only(mdir: Path, args) -> None:
    """``--model DIR``: only sections 5 and 6 with an existing model folder (no fits)."""
    from threadpoolctl import threadpool_limits

    from bondml.data import production_cell
    from bondml.features.soap import compute_soap
    from bondml.io.lammps import read_lammps_data

    threadpool_limits(1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bondml-bench-frame-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {_load()} (2 cores shared); work dir {work}")
    atoms = read_lammps_data(production_cell()).atoms
    compute_soap(atoms, engine="library")
    compute_soap(atoms)
    t_soap, soap = _t(compute_soap, atoms, engine="library", repeat=2)
    t_engine, soap_e = _t(compute_soap, atoms, repeat=2)
    size = sum(p.stat().st_size for p in (mdir / "arrays").iterdir()) / 2**20
    startup_and_throughput(mdir, Path(production_cell()), atoms, t_soap, work, size, parallel=not args.no_parallel,
                           cpu_soap=_cpu(soap), t_engine=t_engine, cpu_engine=_cpu(soap_e))
    print(f"\nload average at end: {_load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip featomic, the 27k cell, throughput, 100k fit")
    ap.add_argument("--full", action="store_true", help="also the exact std at 1k/27k atoms and every training size")
    ap.add_argument("--no-featomic", action="store_true")
    ap.add_argument("--no-parallel", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--model", type=Path, default=None,
                    help="only start-up and throughput (sections 5, 6) with this existing model folder")
    args = ap.parse_args()
    if args.model is not None:
        return startup_only(args.model, args)
    from threadpoolctl import threadpool_limits

    from bondml.data import reference_root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from bondml.deploy.outputs import FrameResult, write_frame
    from bondml.features.soap import compute_soap
    from bondml.io.lammps import per_atom_stress_gpa
    from bondml.model.bondmodel import BondModel
    from bondml.model.distance import DistanceModel
    from bondml.model.gpr import BondGPR
    from bondml.store.extract import dataset_from_getl

    from _demo_model import _label_rows  # test helper (tests/_demo_model.py)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bondml-bench-frame-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {_load()} (2 cores shared); work dir {work}")
    threadpool_limits(1)
    ds = dataset_from_getl(reference_root())
    dm = DistanceModel().fit(_label_rows(ds, reference_root()))
    t_fit, model = _t(BondModel.fit, ds, distance_model=dm, seed=0, calibrate=False)
    mdir = model.save(work / "model-all")
    size = sum(p.stat().st_size for p in (mdir / "arrays").iterdir()) / 2**20
    print(f"default model: all {len(ds)} labelled run-21 bonds ({dict(ds.counts())}), fit {t_fit:.1f} s "
          f"(no calibration), {size:.0f} MB on disk; inducing bonds per type: "
          + ", ".join(f"{t} {e.ind_d_.size}" for t, e in model.estimators.items()))
    model = BondModel.load(mdir)

    cells = make_cells(work, args.quick)
    f10, b10, t_read, t_bonds = frame_of(cells["10k"])
    # the paper's quippy SOAP alone (quippy itself) and the numpy QUIP engine alone, same frame,
    # interleaved (best of 2 after a first call that pays imports and set-up)
    _t(compute_soap, f10.atoms, engine="library")
    _t(compute_soap, f10.atoms)
    lib_runs, eng_runs = [], []
    for _ in range(2):
        lib_runs.append(_t(compute_soap, f10.atoms, engine="library"))
        eng_runs.append(_t(compute_soap, f10.atoms))
    t_quippy, soap_q = min(lib_runs, key=lambda x: x[0])
    t_soap, soap = min(eng_runs, key=lambda x: x[0])
    soap_diff = float(np.abs(soap - soap_q).max())
    args10 = (b10.type, b10.distance, soap, b10.i, b10.j, model.settings)
    t_pred, pred = _t(model.predict_bonds, *args10, repeat=2)
    res = FrameResult(0, 0, 0.0, f10.atoms, b10, pred, per_atom_stress_gpa(f10))
    t_write, _ = _t(write_frame, work / "out", res, repeat=2)  # best of 2: the first pays imports
    total = t_read + t_bonds + t_soap + t_pred + t_write
    t_exact, pex = _t(model.predict_bonds, *args10, exact_std=True, precision="float64")
    # today's path (exact mean + exact std through every test x training kernel row, float32 as
    # the previous default) timed; the exact float64 GP mean for the fidelity check
    from bondml.store.dataset import BondFeatures

    t_exact_all = 0.0
    mu_exact = np.full(len(b10), np.nan)
    for t, est in model.estimators.items():
        k = np.flatnonzero(b10.type.astype(str) == t)
        F = BondFeatures(b10.distance[k], soap, b10.i[k], b10.j[k])
        tt, _r = _t(est.predict, F, return_std=True, exact_std=True, exact_mean=True, fast_soap=True)
        t_exact_all += tt
        mu_exact[k] = est.predict(F, exact_mean=True, fast_soap=False) + model._prior(t, b10.distance[k])[0]
    fb = pred["fallback"]
    mu_exact[fb] = pred["minus_icohp"][fb]
    per_pair = original_pair_seconds(model, soap)
    counts = {t: int(np.sum(b10.type.astype(str) == t)) for t in model.estimators}
    orig = per_pair * sum(counts[t] * model.estimators[t].n_train_ for t in counts)

    print(f"\n1. one 10k-atom frame ({len(f10.atoms)} atoms, {len(b10)} bonds), one thread, default model")
    print(f"{'step':<34s}{'wall s':>10s}")
    for k, v in (("read (LAMMPS data)", t_read), ("bonds", t_bonds), ("SOAP (numpy QUIP engine)", t_soap),
                 ("predict + std (fast)", t_pred), ("write (Parquet + ext-xyz)", t_write), ("total", total)):
        print(f"{k:<34s}{v:10.3f}")
    cpu_frame = t_read + t_bonds + t_write + _cpu(soap) + _cpu(pred)
    print(f"the paper's quippy SOAP alone (quippy itself): {t_quippy:.3f} s wall, {_cpu(soap_q):.2f} s CPU; the "
          f"numpy QUIP engine alone: {t_soap:.3f} s wall, {_cpu(soap):.2f} s CPU ({t_quippy / t_soap:.1f}x faster; "
          f"max |difference| {soap_diff:.1e})")
    print(f"ratio frame / quippy SOAP alone: {total / t_quippy:.2f}x wall (target <= 1.3x in a trajectory), "
          f"{cpu_frame / _cpu(soap_q):.2f}x CPU; frame / engine SOAP alone: {total / t_soap:.2f}x wall, "
          f"{cpu_frame / _cpu(soap):.2f}x CPU")
    print(f"predict: exact std (fast mean, float64) {t_exact:.2f} s, "
          "today's exact path (exact mean + exact std, float32) "
          f"{t_exact_all:.2f} s -> {t_exact_all / t_pred:.1f}x slower than fast; end to end "
          f"{(total - t_pred + t_exact_all) / total:.1f}x")
    print(f"original algorithm (Python loop, {per_pair * 1e6:.1f} us per pair, scaled): {orig:.0f} s predict "
          f"-> {orig / t_pred:.0f}x the fast predict, {orig / total:.0f}x end to end")

    # 2. fidelity
    ok = ~fb
    dmu = float(np.nanmax(np.abs(pred["minus_icohp"][ok] - mu_exact[ok])))
    med, p95, mx = _rel(pred["std"][ok], pex["std"][ok])
    ood_f, ood_e = pred["out_of_domain"], pex["out_of_domain"]
    print("\n2. fidelity on the frame (GP bonds)")
    print(f"mean: max |fast - exact| = {dmu:.2e} eV (target 1e-6)")
    print(f"std: relative error median {100 * med:.3f} %, p95 {100 * p95:.3f} %, max {100 * mx:.2f} % "
          "(target p95 <= 2 %)")
    print(f"out of domain: fast {int(ood_f.sum())}, exact {int(ood_e.sum())}, exact-only {int(np.sum(ood_e & ~ood_f))} "
          f"(superset: {bool(np.all(ood_f[ood_e]))})")

    # 3. scaling
    print("\n3. scaling (predict + std, seconds; one thread)")
    print(f"{'cell':<8s}{'atoms':>7s}{'bonds':>8s}{'SOAP':>8s}{'predict':>9s}{'exact':>9s}")
    for name, path in cells.items():
        f, b, _, _ = frame_of(path)
        s = soap if name == "10k" else compute_soap(f.atoms)
        ts = t_soap if name == "10k" else _t(compute_soap, f.atoms)[0]
        a = (b.type, b.distance, s, b.i, b.j, model.settings)
        tp = t_pred if name == "10k" else _t(model.predict_bonds, *a)[0]
        te = t_exact if name == "10k" else (_t(model.predict_bonds, *a, exact_std=True)[0] if args.full else np.nan)
        print(f"{name:<8s}{len(f.atoms):7d}{len(b):8d}{ts:8.2f}{tp:9.2f}{te:9.2f}")
    print(f"{'n_train/type':<14s}{'Zr-Cu used':>11s}{'fit':>8s}{'predict':>9s}{'exact std':>10s}")
    for n in (600, 2000, 5000, None):
        tf, m = _t(BondModel.fit, ds, distance_model=dm, max_train_per_type=n, seed=0, calibrate=False)
        tp = _t(m.predict_bonds, *args10)[0]
        te = _t(m.predict_bonds, *args10, exact_std=True)[0] if (args.full or n == 600) else np.nan
        print(f"{str(n or 'all'):<14s}{m.estimators['Zr-Cu'].n_train_:11d}{tf:8.1f}{tp:9.2f}{te:10.2f}")

    # 4. featomic
    if not args.no_featomic and not args.quick:
        from bondml.features.soap import FeatureSettings

        fs = FeatureSettings(backend="featomic")  # QUIP's polynomial basis: bondml's numpy SOAP engine
        dsf = dataset_from_getl(reference_root(), fs)
        mf = BondModel.fit(dsf, distance_model=dm, seed=0, calibrate=False)
        tsf, sf = _t(compute_soap, f10.atoms, fs, dtype=np.float32, repeat=2)  # float32 rows, as deploy
        tpf = _t(mf.predict_bonds, b10.type, b10.distance, sf, b10.i, b10.j, fs)[0]
        totf = t_read + t_bonds + tsf + tpf + t_write
        print(f"\n4. featomic SOAP model: SOAP {tsf:.2f} s + predict {tpf:.2f} s; "
              f"end to end {totf:.2f} s (target <= 2 s)")

    startup_and_throughput(mdir, cells["10k"], f10.atoms, t_quippy, work, size,
                           parallel=not args.no_parallel and not args.quick, cpu_soap=_cpu(soap_q),
                           t_engine=t_soap, cpu_engine=_cpu(soap))

    # 7. fitting
    from bondml.store.dataset import BondFeatures

    sub = ds.of_type("Zr-Cu")
    tfe = _t(BondGPR.paper("Zr-Cu").fit, sub.features(), sub.y)[0]
    g = sub.groups("cell")
    te = np.isin(g, np.random.default_rng(0).choice(np.unique(g), np.unique(g).size // 5, replace=False))
    a_, b_ = sub.select(np.flatnonzero(~te)), sub.select(np.flatnonzero(te))
    ex = BondGPR.paper("Zr-Cu").fit(a_.features(), a_.y)
    sp = BondGPR.paper("Zr-Cu", max_exact=0, sparse_inducing=1000).fit(a_.features(), a_.y)
    me, mu_s = ex.predict(b_.features()), sp.predict(b_.features())
    rm = lambda e: 1000 * float(np.sqrt(np.mean(e**2)))  # noqa: E731
    print(f"\n7. fitting: exact fit of all {len(sub)} Zr-Cu bonds {tfe:.1f} s; held-out cells ({len(b_)} bonds): "
          f"exact RMSE {rm(me - b_.y):.2f} meV, sparse (m=1000) {rm(mu_s - b_.y):.2f} meV, "
          f"|sparse - exact| rms {rm(mu_s - me):.2f} meV")
    f = sub.features()
    for N in ((20_000,) if args.quick else (20_000, 100_000)):
        rep = np.resize(np.arange(len(sub)), N)
        r = np.random.default_rng(1)
        F = BondFeatures(f.distance[rep] + r.normal(0, 0.02, N), f.atom_soap, f.atom_i[rep], f.atom_j[rep])
        tsp = _t(BondGPR.paper("Zr-Cu", sparse_inducing=1000).fit, F, sub.y[rep] + r.normal(0, 0.005, N))[0]
        print(f"sparse fit of {N} synthetic Zr-Cu bonds (m=1000): {tsp:.1f} s (target < 60 s for 100k)")
    print(f"\nload average at end: {_load()}")


if __name__ == "__main__":
    main()
