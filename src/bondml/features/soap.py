"""SOAP descriptors per atom (or per bond midpoint), with the paper's settings as a frozen value object.

The default backend is QUIP's SOAP, the paper's own descriptors:
``soap cutoff=3.75 l_max=6 n_max=8 atom_sigma=0.5 n_Z=3 Z={13 29 40} n_species=3
species_Z={13 29 40}``, normalised, length 2101 (2100 + one constant component). Features are
computed once per (cell, atom); bonds index into the per-atom matrix.

The ``quippy`` backend's vectors are computed by one of two engines that give the same vectors
(to ~1e-15; the tests hold them to 1e-12 on real cells):

* ``"numpy"`` (the default): :mod:`bondml.features.quip_soap`, a vectorised numpy
  re-implementation of QUIP's ``soap_calc``, about 10x faster; quippy is not imported;
* ``"library"``: quippy itself (``quippy-ase``, :func:`_soap_quippy`), for checks and comparison.

Choose with the ``engine`` keyword of :func:`compute_soap` / :func:`compute_bond_features` or the
environment variable ``BONDML_QUIP_ENGINE`` (``numpy`` or ``library``; the keyword wins). The
engine is not part of :class:`FeatureSettings`: stores, caches and models are valid with either.
Inputs the numpy engine does not handle (a cell periodic in only some directions) go to quippy.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import numpy as np
from ase import Atoms

# FeatureSettings lives in the core layer (every stage and the model use it); re-exported here.
from ..core.settings import (  # noqa: F401
    BACKENDS,
    BOND_SETTINGS,
    KINDS,
    PAPER_SETTINGS,
    FeatureSettings,
    settings_for,
)
from ..errors import BondmlError, ConfigError, FeatureMismatchError, UnknownElementError

#: Environment variable choosing the engine of the quippy backend: ``numpy`` (default) or ``library``.
QUIP_ENGINE_ENV = "BONDML_QUIP_ENGINE"
#: The engines of the quippy backend.
QUIP_ENGINES = ("numpy", "library")


def quip_engine(engine: str | None = None) -> str:
    """The engine computing the quippy backend's vectors: ``engine`` if given, else
    ``$BONDML_QUIP_ENGINE``, else ``"numpy"``. Raises ValueError (keyword) or ConfigError
    (environment) for another name."""
    if engine is not None:
        if engine not in QUIP_ENGINES:
            raise ValueError(f"engine={engine!r}: choose one of {', '.join(QUIP_ENGINES)}")
        return engine
    env = os.environ.get(QUIP_ENGINE_ENV, "").strip().lower()
    if not env:
        return "numpy"
    if env not in QUIP_ENGINES:
        raise ConfigError(f"{QUIP_ENGINE_ENV}={env!r}: choose one of {', '.join(QUIP_ENGINES)}")
    return env


@lru_cache(maxsize=8)
def _quip_descriptor(desc: str) -> Any:
    try:
        from quippy.descriptors import Descriptor
    except ImportError as exc:
        raise BondmlError(f"quippy is not importable ({exc}): the library engine of the quippy SOAP backend "
                          "needs quippy-ase") from exc

    return Descriptor(desc)


def _check_species(atoms: Atoms, settings: FeatureSettings) -> None:
    z = set(np.unique(atoms.numbers).tolist())
    missing = z - set(settings.species_z)
    if missing:
        raise UnknownElementError(
            f"atoms with Z={sorted(missing)} are not among the SOAP species {list(settings.species_z)}"
        )


def _soap_quippy(atoms: Atoms, settings: FeatureSettings) -> np.ndarray:
    """QUIP's SOAP of every atom through ``Descriptor.calc_array`` (one neighbour list, no per-atom
    Python loop), bit-identical to ``quippy.descriptors.Descriptor.calc(atoms)["data"]``.

    quippy's ``Descriptor.calc`` converts the atoms (copying every ASE array), builds the neighbour
    list twice (``calc`` and ``count``) and unpacks the 10,000 per-atom results one Fortran object
    at a time; here the atoms carry only what SOAP reads (positions, cell, pbc, Z), the list is
    built once and QUIP writes all descriptors into one Fortran-ordered array whose transpose is
    the (n_atoms, p) result. The QUIP descriptor object is built once per settings and process.
    """
    d = _quip_descriptor(settings.quip_string())._quip_descriptor  # f90wrap object, cached per settings
    from quippy.atoms_types_module import Atoms as QuipAtoms

    a = atoms.copy()
    a.wrap(eps=0.0)  # QUIP needs positions inside the cell; SOAP is invariant under image choice
    q = QuipAtoms(len(a), a.get_cell().T.copy())
    q.pos[:] = a.get_positions().T
    q.is_periodic[:] = a.get_pbc()
    q.z[:] = a.numbers
    q.set_atoms(q.z)  # species and masses, as quippy.convert.ase_to_quip
    if q.cutoff < d.cutoff() + 1:  # as quippy's Descriptor._calc_connect
        q.set_cutoff(d.cutoff() + 1)
    q.calc_connect()
    n, _ = d.sizes(q)
    if n != len(atoms):
        raise RuntimeError(f"QUIP returned {n} descriptors for {len(atoms)} atoms")
    data = np.empty((d.dimensions(), n), dtype=np.float64, order="F")
    ci = np.empty((1, n), dtype=np.int32, order="F")
    d.calc_array(q, descriptor_out=data, descriptor_index=ci)
    order = ci[0].astype(np.int64) - 1
    if np.array_equal(order, np.arange(n)):
        return data.T  # C-contiguous (n_atoms, p), no copy
    out = np.empty((n, data.shape[0]), dtype=np.float64)
    out[order] = data.T
    return out


def _soap_quip(atoms: Atoms, settings: FeatureSettings, dtype: np.dtype = np.dtype(np.float64),
               engine: str | None = None) -> np.ndarray:
    """The quippy backend's vectors from the chosen engine (:func:`quip_engine`); the numpy engine
    hands inputs it does not handle to quippy."""
    from .quip_soap import soap_quip_numpy, supports

    if quip_engine(engine) == "numpy" and supports(atoms, settings) is None:
        return soap_quip_numpy(atoms, settings, dtype=dtype)
    out = _soap_quippy(atoms, settings)
    return out if dtype == np.float64 else out.astype(dtype)


def _check_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float64, np.float32):
        raise ValueError(f"dtype={dt}: SOAP vectors are float64 or float32")
    return dt


def compute_soap(atoms: Atoms, settings: FeatureSettings = PAPER_SETTINGS, dtype: Any = np.float64,
                 engine: str | None = None) -> np.ndarray:
    """Per-atom SOAP vectors, shape (n_atoms, n_features), rows in atom order.

    Normalised to unit length when ``settings.normalise`` (the paper's choice). ``dtype``:
    float64 (default) or float32 (computed in float64, rounded). ``engine`` (quippy backend
    only): ``"numpy"`` (default: :mod:`bondml.features.quip_soap`) or ``"library"`` (quippy
    itself); None reads ``$BONDML_QUIP_ENGINE``. Both give the same vectors to ~1e-15. Raises
    :class:`UnknownElementError` for an element outside ``settings.species_z``, and
    FeatureMismatchError for bond-centred settings (use :func:`compute_bond_features`).
    ``atoms`` may also be a pymatgen ``Structure``.
    """
    from ..interop import as_atoms

    if settings.kind != "atom":
        raise FeatureMismatchError("bond-centred SOAP settings need the bonds: use compute_bond_features")
    dt = _check_dtype(dtype)
    if engine is not None:
        quip_engine(engine)  # a misspelt engine is refused whatever the backend
    atoms = as_atoms(atoms)
    _check_species(atoms, settings)
    if settings.backend == "featomic":
        from .featomic_backend import soap_featomic

        return soap_featomic(atoms, settings, dtype=dt)
    return _soap_quip(atoms, settings, dt, engine)  # FeatureSettings allows only quippy or featomic


def compute_bond_features(
    atoms: Atoms, i: np.ndarray, j: np.ndarray, shift: np.ndarray, settings: FeatureSettings = PAPER_SETTINGS,
    dtype: Any = np.float64, engine: str | None = None, out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model features of the bonds (i, j, shift) of ``atoms``: ``(rows, row_i, row_j)``.

    ``kind="atom"``: rows are the per-atom SOAP (n_atoms, p) and ``row_i, row_j = i, j``;
    ``kind="bond"``: rows are the bond-centred SOAP (n_bonds, p) and ``row_i = row_j =
    arange(n_bonds)`` (so that the model's pbar = (q + q) / 2 = q). ``shift`` (n, 3): bond vector
    ``r_j + shift @ cell - r_i``. Pass the result to :class:`bondml.store.dataset.BondFeatures`
    or ``BondModel.predict_bonds``. ``dtype``: float64 (default) or float32 rows (computed in
    float64, rounded: half the memory, e.g. for float32 model products). ``engine``: as in
    :func:`compute_soap` (quippy backend). ``out`` (bond-centred only): a C-contiguous
    (n_bonds, p) array of ``dtype`` the rows are written into (reused across frames, it saves a
    fresh array's page faults); ignored for ``kind="atom"``.
    """
    from ..interop import as_atoms

    atoms = as_atoms(atoms)
    i = np.asarray(i, np.int64).ravel()
    j = np.asarray(j, np.int64).ravel()
    dt = _check_dtype(dtype)
    if settings.kind == "atom":
        return compute_soap(atoms, settings, dtype=dt, engine=engine), i, j
    _check_species(atoms, settings)
    from .bond_centred import bond_soap

    rows = bond_soap(atoms, i, j, np.asarray(shift, np.int64).reshape(-1, 3), settings, dtype=dt, out=out)
    k = np.arange(i.size, dtype=np.int64)
    return rows, k, k.copy()
