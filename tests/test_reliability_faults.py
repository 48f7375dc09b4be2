"""Fault injection for the reliability contract (slow; CI runs them).

* SIGKILL at random (seeded) moments of ``ingest``, ``train``, ``predict`` and ``run``: 20 kills
  each, every kill followed by a restart of the same command (the next trial), and every
  completed output compared with an uninterrupted run (identical file hashes);
* disk full through a small tmpfs (root only; skipped otherwise, with the reason);
* 8 processes contending for the lock of the store, a model folder, a predict folder and a run
  folder: no lost update, exactly the result of one uninterrupted run;
* predict's worker processes die with their parent.

Commands run in processes forked from a multiprocessing *forkserver* that has imported bondml
once (a real, separate process that SIGKILL kills like any other, without paying Python's import
time on every trial). Tiny inputs keep the whole module at about a minute on an idle 2-core machine.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_subruns

pytestmark = pytest.mark.slow

TRIALS = 20
_MP = multiprocessing.get_context("forkserver")
_MP.set_forkserver_preload(["bondml.cli.main", "bondml.store.db", "bondml.model.bondmodel", "bondml.deploy.infer",
                            "bondml.pipeline", "bondml.pipeline.stages", "bondml.evaluate.tune", "sklearn",
                            "bondml.features.soap", "quippy.descriptors", "ase.io", "test_reliability_faults"])
STATS: dict[str, dict[str, int]] = {}


# ------------------------------------------------------------------------------------------ children
def _silence() -> None:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.dup2(fd, 2)


def _cli(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Child: the bondml CLI (the same handler as the console script), output discarded."""
    _silence()
    os.environ.update(env or {})
    from bondml.cli.main import run

    os._exit(run(argv))


def _predict(model: str, structure: str, out: str) -> None:
    """Child: predict in this process (no worker pool: frames are written by the killed process)."""
    _silence()
    from bondml.deploy.infer import PredictConfig, predict_trajectory

    try:
        predict_trajectory(model, structure, out, PredictConfig(in_process=True, progress=False))
    except Exception:  # noqa: BLE001 - lock refusal in the contention test
        os._exit(2)
    os._exit(0)


def start(target: Callable[..., None], *args: object) -> multiprocessing.Process:
    p = _MP.Process(target=target, args=args)
    p.start()
    return p


def finish(target: Callable[..., None], *args: object, timeout: float = 300) -> int:
    p = start(target, *args)
    p.join(timeout)
    assert p.exitcode is not None, "child hung"
    return p.exitcode


# ------------------------------------------------------------------------------------------ digests
def digest(root: Path, skip: Callable[[Path], bool] = lambda p: False) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not skip(p):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def store_digest(store: Path) -> dict[str, str]:
    """Every file of a store; version manifests without their creation time and parent."""
    d = digest(store, skip=lambda p: p.parent.name == "versions")
    for v in sorted((store / "versions").glob("*.json")):
        m = json.loads(v.read_text())
        m.pop("lineage", None)
        d[f"versions/{v.name}"] = hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()
    return d


def predict_digest(out: Path) -> dict[str, str]:
    d = digest(out, skip=lambda p: p.name in ("manifest.json", "summary.json"))
    m = json.loads((out / "manifest.json").read_text())
    d["frames"] = json.dumps([(f["frame"], f["files"]) for f in m["frames"]])
    return d


def run_digest(out: Path) -> dict[str, object]:
    """{stage: (key, output hash)} of each stage's complete folder, plus the store's files."""
    res: dict[str, object] = {}
    for d in sorted((out / "stages").iterdir()):
        for m in d.glob("*/manifest.json"):
            man = json.loads(m.read_text())
            res[d.name] = (man["key"], man["output_hash"])
    res["store"] = store_digest(out / "store")
    return res


def kill_trials(name: str, rng: random.Random, launch: Callable[[], multiprocessing.Process],
                complete: Callable[[], bool], compare: Callable[[], None], reset: Callable[[], None],
                span: float, trials: int = TRIALS) -> None:
    """``trials`` SIGKILLs at uniform random moments of ``span`` seconds; each new trial restarts
    the command on what the killed one left (a resume). A completed output is compared with the
    uninterrupted run and then removed, so that later kills land in real work again."""
    killed = completed = 0
    for k in range(trials):
        delay = 0.02 if k == 0 else rng.uniform(0.0, span)  # the first: before anything is written
        p = launch()
        p.join(delay)
        if p.exitcode is None:
            os.kill(p.pid, signal.SIGKILL)
            killed += 1
        p.join(60)
        assert p.exitcode is not None
        if complete():
            compare()
            completed += 1
            reset()
    p = launch()  # the final resume, uninterrupted
    p.join(300)
    assert complete(), f"{name}: the resumed command did not complete (exit {p.exitcode})"
    compare()
    completed += 1
    STATS[name] = {"kills": killed, "trials": trials, "completed_and_identical": completed}
    assert killed >= trials // 2, f"{name}: only {killed} of {trials} trials were interrupted"


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Inputs: a 2-cell GETL tree, a reference store and model, a 6-frame trajectory of a 12 A cut."""
    from bondml.io.lammps import format_dump_frame, read_lammps_data
    from bondml.md.compress import cut_cell

    d = tmp_path_factory.mktemp("faults")
    b = {"dir": d, "tree": copy_subruns(d / "tree", [0, 13])}
    b["store"] = d / "ref-store"
    assert finish(_cli, ["ingest", str(b["tree"]), "--store", str(b["store"])]) in (0, 1)
    from bondml.data import reference_root

    b["tables"] = d / "tables"  # DB4 only: the distance model of train in a fraction of the time
    shutil.copytree(reference_root() / "ML/big-data-full/DB4", b["tables"] / "ML/big-data-full/DB4")
    b["model"] = d / "ref-model"
    assert finish(_cli, ["train", "--store", str(b["store"]), "--out", str(b["model"]), "--max-train", "20",
                         "--tables", str(b["tables"])]) == 0
    cell = cut_cell(d / "cell.data", side=12.0)
    f0 = read_lammps_data(cell)
    rng = np.random.default_rng(3)
    b["traj"] = d / "traj.dump"
    with open(b["traj"], "w") as fh:
        for k in range(6):
            a = f0.atoms.copy()
            c = a.cell.array.copy()
            c[0, 0] *= 1 - 0.01 * k
            a.set_cell(c, scale_atoms=True)
            a.positions += rng.normal(0, 0.02, a.positions.shape)
            a.wrap()
            fh.write(format_dump_frame(a, timestep=100 * k))
    b["pred"] = d / "ref-pred"
    assert finish(_predict, str(b["model"]), str(b["traj"]), str(b["pred"])) == 0
    b["cfg"] = d / "tiny.toml"
    b["cfg"].write_text(f"""[pipeline]
name = "faults"
[data]
roots = ["{b['tree']}"]
[model]
max_train_per_type = 20
fallback_tables = ""
[executor]
kind = "local"
workers = 1
[tracking]
enabled = false
[active_learning]
enabled = false
""")
    b["run"] = d / "ref-run"
    t0 = time.perf_counter()
    assert finish(_cli, ["run", str(b["cfg"]), "--out", str(b["run"]), "--stage", "train"]) == 0
    b["run_seconds"] = time.perf_counter() - t0  # type: ignore[assignment]
    return b


def _timed(target: Callable[..., None], *args: object) -> float:
    t0 = time.perf_counter()
    finish(target, *args)
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------ SIGKILL
def test_sigkill_ingest(base: dict[str, Path]) -> None:
    work = base["dir"] / "k-store"
    argv = ["ingest", str(base["tree"]), "--store", str(work), "--json"]
    span = _timed(_cli, argv)
    shutil.rmtree(work)
    want = store_digest(base["store"])
    kill_trials("ingest", random.Random(11), lambda: start(_cli, argv), lambda: (work / "HEAD").is_file(),
                lambda: _eq(store_digest(work), want), lambda: shutil.rmtree(work), span)


def test_sigkill_train(base: dict[str, Path]) -> None:
    work = base["dir"] / "k-model"
    argv = ["train", "--store", str(base["store"]), "--out", str(work), "--max-train", "20",
            "--tables", str(base["tables"])]
    span = _timed(_cli, argv)
    shutil.rmtree(work)
    want = digest(base["model"])
    kill_trials("train", random.Random(12), lambda: start(_cli, argv), lambda: (work / "model.json").is_file(),
                lambda: _eq(digest(work, skip=lambda p: p.name.startswith(".")), want),
                lambda: shutil.rmtree(work), span)


def test_sigkill_predict(base: dict[str, Path]) -> None:
    work = base["dir"] / "k-pred"
    args = (str(base["model"]), str(base["traj"]), str(work))
    span = _timed(_predict, *args)
    shutil.rmtree(work)
    want = predict_digest(base["pred"])

    def complete() -> bool:
        m = work / "summary.json"
        return m.is_file() and json.loads(m.read_text())["frames"] == 6

    kill_trials("predict", random.Random(13), lambda: start(_predict, *args), complete,
                lambda: _eq(predict_digest(work), want), lambda: shutil.rmtree(work), span)


def test_sigkill_run(base: dict[str, Path]) -> None:
    work = base["dir"] / "k-run"
    argv = ["run", str(base["cfg"]), "--out", str(work), "--stage", "train"]
    want = run_digest(base["run"])

    def complete() -> bool:
        return any((work / "stages" / "train").glob("*/manifest.json")) if (work / "stages").is_dir() else False

    kill_trials("run", random.Random(14), lambda: start(_cli, argv), complete, lambda: _eq(run_digest(work), want),
                lambda: shutil.rmtree(work), float(base["run_seconds"]))  # type: ignore[arg-type]


def _eq(got: object, want: object) -> None:
    assert got == want, "resumed output differs from the uninterrupted run"


# ------------------------------------------------------------------------------------------ locks
def test_eight_processes_contend_for_every_lock(base: dict[str, Path]) -> None:
    """Store: 8 concurrent ingests of 8 different cells lose no update (the last version holds all
    8). Model, predict and run folders: 8 concurrent commands on one folder give exactly the
    result of one uninterrupted run; the others wait or are refused with one line (exit 2)."""
    from bondml.store.db import BondStore

    d = base["dir"] / "locks"
    trees = [copy_subruns(d / f"tree{k}", [13], run=k + 1) for k in range(8)]
    store = d / "store"
    t0 = time.perf_counter()
    procs = [start(_cli, ["ingest", str(t), "--store", str(store), "--json"]) for t in trees]
    for p in procs:
        p.join(300)
    print(f"\n8 contending ingests: {time.perf_counter() - t0:.1f} s")
    assert all(p.exitcode in (0, 1) for p in procs), [p.exitcode for p in procs]  # sub-run 13: a failed DFT run
    cells = {(c["run"], c["sub_run"]) for c in BondStore(store).cells()}
    assert cells == {(k + 1, 13) for k in range(8)}, "a store version lost another ingest's cells"
    assert len(BondStore(store).versions()) == 8

    model = d / "model"
    argv = ["train", "--store", str(base["store"]), "--out", str(model), "--max-train", "20", "--tables",
            str(base["tables"])]
    t0 = time.perf_counter()
    procs = [start(_cli, argv) for _ in range(8)]
    for p in procs:
        p.join(300)
    print(f"8 contending trains: {time.perf_counter() - t0:.1f} s")
    codes = sorted(p.exitcode for p in procs)
    assert codes.count(0) == 1 and codes.count(2) == 7, codes
    assert digest(model, skip=lambda p: p.name.startswith(".")) == digest(base["model"])

    pred = d / "pred"
    t0 = time.perf_counter()
    procs = [start(_predict, str(base["model"]), str(base["traj"]), str(pred)) for _ in range(8)]
    for p in procs:
        p.join(300)
    codes = [p.exitcode for p in procs]
    print(f"8 contending predicts: {time.perf_counter() - t0:.1f} s")
    assert set(codes) <= {0, 2} and 0 in codes, codes
    assert predict_digest(pred) == predict_digest(base["pred"])

    out = d / "run"
    procs = [start(_cli, ["run", str(base["cfg"]), "--out", str(out), "--stage", "train"]) for _ in range(8)]
    for p in procs:
        p.join(300)
    codes = [p.exitcode for p in procs]
    assert set(codes) <= {0, 2} and 0 in codes, codes
    assert run_digest(out) == run_digest(base["run"])
    STATS["locks"] = {"processes": 8, "locks": 4}


# ------------------------------------------------------------------------------------------ workers
def test_workers_die_with_their_parent(base: dict[str, Path], tmp_path: Path) -> None:
    """SIGKILL a ``bondml predict`` with 2 worker processes: the workers are gone within seconds."""
    import psutil

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    p = subprocess.Popen([sys.executable, "-m", "bondml.cli.main", "predict", "--model", str(base["model"]),
                          "--structure", str(base["traj"]), "--out", str(tmp_path / "o"), "--workers", "2",
                          "--recycle-every", "50", "--quiet"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    parent = psutil.Process(p.pid)
    deadline = time.time() + 120
    workers: list[psutil.Process] = []
    while time.time() < deadline and len(workers) < 2 and p.poll() is None:
        workers = [c for c in parent.children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())]
        time.sleep(0.1)
    assert workers, "no worker processes started"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers outlived their parent: {[w.pid for w in alive]}"


# ------------------------------------------------------------------------------------------ disk full
def _tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode})")


@pytest.mark.skipif(os.geteuid() != 0, reason="disk-full injection mounts a small tmpfs, which needs root")
def test_disk_full_then_resume(base: dict[str, Path], tmp_path: Path) -> None:
    """ENOSPC in ingest and predict: one line naming the file, exit 2, nothing half-written is
    taken for data; with space again, the same command resumes to the uninterrupted result."""
    from bondml.cli.main import run

    mnt = tmp_path / "small disk"
    _tmpfs(mnt, "1500k")
    try:
        store = mnt / "store"
        r = subprocess.run([sys.executable, "-m", "bondml.cli.main", "ingest", str(base["tree"]),
                            "--store", str(store)],
                           capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src")))
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert "no space left on the device" in lines[0] and str(mnt) in lines[0]
        assert not (store / "HEAD").exists() and not list(store.rglob(".*.tmp"))
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        assert run(["ingest", str(base["tree"]), "--store", str(store), "--json"]) in (0, 1)
        assert store_digest(store) == store_digest(base["store"])
        # predict: a disk that fills up after the first frames
        subprocess.run(["mount", "-o", f"remount,size={_used_kb(mnt) + 80}k", str(mnt)], check=True)
        out = mnt / "pred"
        code = run(["predict", "--model", str(base["model"]), "--structure", str(base["traj"]), "--out", str(out),
                    "--quiet", "--workers", "1"])
        assert code == 2
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        assert run(["predict", "--model", str(base["model"]), "--structure", str(base["traj"]), "--out", str(out),
                    "--quiet", "--workers", "1"]) == 0
        assert predict_digest(out) == predict_digest(base["pred"])
        STATS["disk_full"] = {"commands": 2}
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _used_kb(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize // 1024


def test_report_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    """Print the figures for docs/reliability.md (run with -s)."""
    with capsys.disabled():
        print("\nreliability fault injection:", json.dumps(STATS, sort_keys=True))
