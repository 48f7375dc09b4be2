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
