"""SOAP descriptors per atom, with the paper's settings as a frozen value object.

The default backend is QUIP through ``quippy-ase``, which gives the paper's own descriptors:
``soap cutoff=3.75 l_max=6 n_max=8 atom_sigma=0.5 n_Z=3 Z={13 29 40} n_species=3
species_Z={13 29 40}``, normalised, length 2101 (2100 + one constant component). Features are
computed once per (cell, atom); bonds index into the per-atom matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from ase import Atoms

from ..constants import PAPER_SOAP
from ..errors import FeatureMismatchError, UnknownElementError
from ..util import sha256_json

BACKENDS = ("quippy", "featomic")


@dataclass(frozen=True)
class FeatureSettings:
    """SOAP settings (Angstrom for ``cutoff`` and ``atom_sigma``) plus the backend computing them.

    Frozen and hashable: it travels with every feature table, dataset and model, and two
    feature sets are only comparable when their settings are equal.
    """

    cutoff: float = PAPER_SOAP["cutoff"]
    l_max: int = PAPER_SOAP["l_max"]
    n_max: int = PAPER_SOAP["n_max"]
    atom_sigma: float = PAPER_SOAP["atom_sigma"]
    species_z: tuple[int, ...] = PAPER_SOAP["species_z"]
    backend: str = "quippy"
    normalise: bool = True
    extra: tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown SOAP backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        object.__setattr__(self, "species_z", tuple(sorted(int(z) for z in self.species_z)))
        object.__setattr__(self, "extra", tuple(tuple(x) for x in self.extra))

    def quip_string(self) -> str:
        """The QUIP descriptor string, e.g. the paper's."""
        z = " ".join(str(v) for v in self.species_z)
        n = len(self.species_z)
        return (
            f"soap cutoff={self.cutoff:g} l_max={self.l_max} n_max={self.n_max} "
            f"atom_sigma={self.atom_sigma:g} n_Z={n} Z={{{z}}} n_species={n} species_Z={{{z}}}"
            + ("" if self.normalise else " normalise=F")
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["species_z"] = list(self.species_z)
        d["extra"] = [list(x) for x in self.extra]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSettings:
        d = dict(d)
        d["species_z"] = tuple(d.get("species_z", PAPER_SOAP["species_z"]))
        d["extra"] = tuple(tuple(x) for x in d.get("extra", ()))
        return cls(**d)

    @property
    def digest(self) -> str:
        """Short content hash of the settings (12 hex characters)."""
        return sha256_json(self.to_dict())[:12]

    @property
    def elements(self) -> tuple[str, ...]:
        from ..chemistry import symbol_of

        return tuple(symbol_of(z) for z in self.species_z)

    def require_same(self, other: FeatureSettings, what: str = "features") -> None:
        """Raise :class:`FeatureMismatchError` (one line, naming the differing fields) if unequal."""
        if self != other:
            a, b = self.to_dict(), other.to_dict()
            diff = ", ".join(f"{k}={b[k]!r} (expected {a[k]!r})" for k in a if a[k] != b[k])
            raise FeatureMismatchError(f"{what} were computed with other SOAP settings: {diff}")


#: The paper's settings through QUIP.
PAPER_SETTINGS = FeatureSettings()


@lru_cache(maxsize=8)
def _quip_descriptor(desc: str) -> Any:
    from quippy.descriptors import Descriptor

    return Descriptor(desc)


def _check_species(atoms: Atoms, settings: FeatureSettings) -> None:
    z = set(np.unique(atoms.numbers).tolist())
    missing = z - set(settings.species_z)
    if missing:
        raise UnknownElementError(
            f"atoms with Z={sorted(missing)} are not among the SOAP species {list(settings.species_z)}"
        )


def _soap_quippy(atoms: Atoms, settings: FeatureSettings) -> np.ndarray:
    d = _quip_descriptor(settings.quip_string())
    a = atoms.copy()
    a.wrap(eps=0.0)  # QUIP needs positions inside the cell; SOAP is invariant under image choice
    r = d.calc(a)
    data = np.asarray(r["data"], dtype=float)
    ci = np.asarray(r["ci"], dtype=np.int64).ravel() - 1
    out = np.empty((len(atoms), data.shape[1]), dtype=float)
    if ci.size != len(atoms):
        raise RuntimeError(f"QUIP returned {ci.size} descriptors for {len(atoms)} atoms")
    out[ci] = data
    return out


def _soap_featomic(atoms: Atoms, settings: FeatureSettings) -> np.ndarray:
    from .featomic_backend import soap_featomic

    return soap_featomic(atoms, settings)


_BACKEND_FUNCS: dict[str, Callable[[Atoms, FeatureSettings], np.ndarray]] = {
    "quippy": _soap_quippy,
    "featomic": _soap_featomic,
}


def compute_soap(atoms: Atoms, settings: FeatureSettings = PAPER_SETTINGS) -> np.ndarray:
    """Per-atom SOAP vectors, shape (n_atoms, n_features), rows in atom order.

    Normalised to unit length when ``settings.normalise`` (the paper's choice). Raises
    :class:`UnknownElementError` for an element outside ``settings.species_z``. ``atoms`` may
    also be a pymatgen ``Structure``.
    """
    from ..interop import as_atoms

    atoms = as_atoms(atoms)
    _check_species(atoms, settings)
    return _BACKEND_FUNCS[settings.backend](atoms, settings)
