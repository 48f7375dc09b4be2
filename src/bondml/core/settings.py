"""SOAP feature settings.

A frozen value object that travels with every feature table, dataset and model (moved here from
:mod:`bondml.features.soap`, which re-exports it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..constants import PAPER_SOAP
from ..errors import FeatureMismatchError
from ..util import sha256_json

BACKENDS = ("quippy", "featomic")
#: ``atom``: per-atom SOAP, a bond is described by its two atoms (the paper: kernel on
#: pbar = (pA + pB) / 2); ``bond``: SOAP expanded at the bond midpoint, one vector per bond
#: (:mod:`bondml.features.bond_centred`).
KINDS = ("atom", "bond")
_PAPER: dict[str, Any] = dict(PAPER_SOAP)


@dataclass(frozen=True)
class FeatureSettings:
    """SOAP settings (Angstrom for ``cutoff`` and ``atom_sigma``) plus the backend computing them.

    Frozen and hashable: it travels with every feature table, dataset and model, and two
    feature sets are only comparable when their settings are equal. ``kind`` is ``"atom"``
    (per-atom SOAP, the paper) or ``"bond"`` (SOAP at the bond midpoint, computed with the
    featomic radial basis: needs ``backend="featomic"``). ``kind="atom"`` is left out of
    :meth:`to_dict` so that the digests of atom-centred settings are those of earlier versions.
    """

    cutoff: float = _PAPER["cutoff"]
    l_max: int = _PAPER["l_max"]
    n_max: int = _PAPER["n_max"]
    atom_sigma: float = _PAPER["atom_sigma"]
    species_z: tuple[int, ...] = _PAPER["species_z"]
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
        """JSON-ready dict (lists for tuples)."""
        d = asdict(self)
        d["species_z"] = list(self.species_z)
        d["extra"] = [list(x) for x in self.extra]
        if self.kind == "atom":
            del d["kind"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSettings:
        """Inverse of :meth:`to_dict`."""
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
        """Element symbols of ``species_z``, in Z order."""
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
#: The paper's SOAP settings expanded at the bond midpoint (one vector per bond).
BOND_SETTINGS = FeatureSettings(backend="featomic", kind="bond")


def settings_for(descriptor: str) -> FeatureSettings:
    """Feature settings of a descriptor name: ``atom`` (the paper's QUIP SOAP) or ``bond``."""
    if descriptor == "atom":
        return PAPER_SETTINGS
    if descriptor == "bond":
        return BOND_SETTINGS
    raise ValueError(f"unknown descriptor {descriptor!r}; choose atom or bond")


