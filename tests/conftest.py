"""Shared fixtures: the vendored real reference data and scratch copies of parts of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bondml.data import reference_root, run21_dir


@pytest.fixture(scope="session")
def ref_root() -> Path:
    """Root of the real reference data (vendored in data/reference-data)."""
    return reference_root()


@pytest.fixture(scope="session")
def run21() -> Path:
    """Real run 21 of Zr49Cu49Al2: sub-runs in 2000/0..14 (13 is a real failure)."""
    return run21_dir()


def copy_subruns(dst_root: Path, subs: list[int], nc: str = "Zr49Cu49Al2", run: int = 21) -> Path:
    """Copy some real sub-runs of run 21 into a fresh GETL tree under ``dst_root``; returns the root."""
    src = run21_dir() / "2000"
    for k in subs:
        d = dst_root / "ML/big-data-full" / nc / "c/md/lammps/100" / str(run) / "2000" / str(k)
        shutil.copytree(src / str(k), d)
        for p in d.iterdir():
            p.chmod(0o644)
    return dst_root


@pytest.fixture
def mini_tree(tmp_path: Path) -> Path:
    """A writable GETL tree with sub-runs 0, 1 and 13 of the real run 21."""
    return copy_subruns(tmp_path / "tree", [0, 1, 13])


# ---------------------------------------------------------------- deployment fixtures (shared)
@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model: GPs on 300 bonds per type of run 21 (seeded), Al-Al by the distance fallback."""
    from _demo_model import train_demo_model

    return train_demo_model(tmp_path_factory.mktemp("model") / "m", max_per_type=300, seed=0)


@pytest.fixture(scope="session")
def small_cell(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20 A cut of the 10k cell (~450 atoms) as a LAMMPS data file."""
    from bondml.md.compress import cut_cell

    return cut_cell(tmp_path_factory.mktemp("cell") / "cut.data", side=20.0)


@pytest.fixture(scope="session")
def trajectory(small_cell: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 frames: the cut cell compressed by 1 % per frame along x, atoms jiggled (seeded), image flags."""
    import numpy as np

    from bondml.io.lammps import format_dump_frame, read_lammps_data

    f0 = read_lammps_data(small_cell)
    rng = np.random.default_rng(7)
    p = tmp_path_factory.mktemp("traj") / "traj.dump"
    with open(p, "w") as fh:
        for k in range(4):
            a = f0.atoms.copy()
            cell = a.cell.array.copy()
            cell[0, 0] *= 1 - 0.01 * k
            a.set_cell(cell, scale_atoms=True)
            a.positions += rng.normal(0, 0.03, a.positions.shape)
            image = np.floor(a.get_scaled_positions(wrap=False)).astype(int)
            a.wrap()
            stress = rng.normal(0, 1, (len(a), 6))
            cols = {f"v_s{c}": stress[:, n] for n, c in enumerate(("xx", "yy", "zz", "xy", "xz", "yz"))}
            fh.write(format_dump_frame(a, timestep=1000 * k, columns=cols, image=image))
    return p


# ---------------------------------------------------------------- a real one-node Slurm (root only)
@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A one-node Slurm (munged, slurmctld, slurmd of Debian's slurm-wlm) for the session; stopped
    by PID afterwards, even on failure. Skipped with the reason when not root or not installed."""
    import os

    import _slurm

    why = _slurm.why_not_available()
    if why:
        pytest.skip(why)
    cluster = _slurm.start_cluster(tmp_path_factory.mktemp("slurm"))
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
