"""SOAP descriptors per atom (or per bond midpoint), with the paper's settings as a frozen value object.

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

from ..constants import ATOMIC_NUMBERS, PAPER_SOAP
from ..errors import FeatureMismatchError, UnknownElementError
from ..util import sha256_json

BACKENDS = ("quippy", "featomic")
#: ``atom``: per-atom SOAP, a bond is described by its two atoms (the paper: kernel on
#: pbar = (pA + pB) / 2); ``bond``: SOAP expanded at the bond midpoint, one vector per bond
#: (:mod:`bondml.features.bond_centred`).
KINDS = ("atom", "bond")


@dataclass(frozen=True)
class FeatureSettings:
    """SOAP settings (Angstrom for ``cutoff`` and ``atom_sigma``) plus the backend computing them.

    Frozen and hashable: it travels with every feature table, dataset and model, and two
    feature sets are only comparable when their settings are equal. ``kind`` is ``"atom"``
    (per-atom SOAP, the paper) or ``"bond"`` (SOAP at the bond midpoint, computed with the
    featomic radial basis: needs ``backend="featomic"``). ``kind="atom"`` is left out of
    :meth:`to_dict` so that the digests of atom-centred settings are those of earlier versions.
    """

    cutoff: float = PAPER_SOAP["cutoff"]
    l_max: int = PAPER_SOAP["l_max"]
    n_max: int = PAPER_SOAP["n_max"]
    atom_sigma: float = PAPER_SOAP["atom_sigma"]
    species_z: tuple[int, ...] = PAPER_SOAP["species_z"]
    backend: str = "quippy"
    normalise: bool = True
    extra: tuple[tuple[str, Any], ...] = field(default=())
    kind: str = "atom"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown SOAP backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown descriptor kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.kind == "bond" and (self.backend != "featomic" or dict(self.extra).get("featomic_radial", "quip_poly")
                                    != "quip_poly"):
            raise ValueError("bond-centred SOAP uses featomic's QUIP-polynomial radial basis: "
                             "backend='featomic' without featomic_radial")
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
        if self.kind == "atom":
            del d["kind"]
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
        inv = {z: e for e, z in ATOMIC_NUMBERS.items()}
        return tuple(inv[z] for z in self.species_z)

    def require_same(self, other: FeatureSettings, what: str = "features") -> None:
        """Raise :class:`FeatureMismatchError` (one line, naming the differing fields) if unequal."""
        if self != other:
            a, b = self.to_dict(), other.to_dict()
            diff = ", ".join(f"{k}={b[k]!r} (expected {a[k]!r})" for k in a if a[k] != b[k])
            raise FeatureMismatchError(f"{what} were computed with other SOAP settings: {diff}")


#: The paper's settings through QUIP.
PAPER_SETTINGS = FeatureSettings()
#: The paper's SOAP settings expanded at the bond midpoint (one vector per bond).
BOND_SETTINGS = FeatureSettings(backend="featomic", kind="bond")


def settings_for(descriptor: str) -> FeatureSettings:
    """Feature settings of a descriptor name: ``atom`` (the paper's QUIP SOAP) or ``bond``."""
    if descriptor == "atom":
        return PAPER_SETTINGS
    if descriptor == "bond":
        return BOND_SETTINGS
    raise ValueError(f"unknown descriptor {descriptor!r}; choose atom or bond")


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
    :class:`UnknownElementError` for an element outside ``settings.species_z``, and
    FeatureMismatchError for bond-centred settings (use :func:`compute_bond_features`).
    """
    if settings.kind != "atom":
        raise FeatureMismatchError("bond-centred SOAP settings need the bonds: use compute_bond_features")
    _check_species(atoms, settings)
    return _BACKEND_FUNCS[settings.backend](atoms, settings)


def compute_bond_features(
    atoms: Atoms, i: np.ndarray, j: np.ndarray, shift: np.ndarray, settings: FeatureSettings = PAPER_SETTINGS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model features of the bonds (i, j, shift) of ``atoms``: ``(rows, row_i, row_j)``.

    ``kind="atom"``: rows are the per-atom SOAP (n_atoms, p) and ``row_i, row_j = i, j``;
    ``kind="bond"``: rows are the bond-centred SOAP (n_bonds, p) and ``row_i = row_j =
    arange(n_bonds)`` (so that the model's pbar = (q + q) / 2 = q). ``shift`` (n, 3): bond vector
    ``r_j + shift @ cell - r_i``. Pass the result to :class:`bondml.store.dataset.BondFeatures`
    or ``BondModel.predict_bonds``.
    """
    i = np.asarray(i, np.int64).ravel()
    j = np.asarray(j, np.int64).ravel()
    if settings.kind == "atom":
        return compute_soap(atoms, settings), i, j
    _check_species(atoms, settings)
    from .bond_centred import bond_soap

    rows = bond_soap(atoms, i, j, np.asarray(shift, np.int64).reshape(-1, 3), settings)
    k = np.arange(i.size, dtype=np.int64)
    return rows, k, k.copy()
