"""Core value types: where a cell sits in the study, bond types, compositions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .constants import ATOMIC_NUMBERS, ELEMENTS
from .errors import ConfigError, UnknownElementError


@dataclass(frozen=True, order=True)
class CellId:
    """Position of a cell in the study: composition (NC), MD run (ID_RUN) and sub-run."""

    nc: str
    run: int
    sub_run: int

    def __str__(self) -> str:
        return f"{self.nc}/{self.run}/{self.sub_run}"

    @property
    def key(self) -> str:
        """A file-name-safe key, e.g. ``Zr49Cu49Al2-21-3``."""
        return f"{self.nc}-{self.run}-{self.sub_run}"

    @classmethod
    def parse(cls, text: str) -> CellId:
        """A CellId from either spelling, ``Zr49Cu49Al2/21/3`` (``str``) or ``Zr49Cu49Al2-21-3`` (``key``)."""
        m = _CELL_RE.match(str(text).strip())
        if m is None:
            raise ConfigError(f"cell {text!r}: not NC/RUN/SUB or NC-RUN-SUB (e.g. Zr49Cu49Al2/21/3)")
        return cls(m.group(1), int(m.group(2)), int(m.group(3)))


_CELL_RE = re.compile(r"^(.+?)[-/](\d+)[-/](\d+)$")


def check_element(symbol: str, any_element: bool = False) -> str:
    """Return ``symbol`` if it belongs to the Zr-Cu-Al system (any chemical element with
    ``any_element``), else raise a one-line error."""
    if any_element:
        from .chemistry import atomic_number

        atomic_number(symbol)
        return symbol
    if symbol not in ATOMIC_NUMBERS:
        raise UnknownElementError(
            f"unknown element {symbol!r}: bondml models the Zr-Cu-Al system ({', '.join(ELEMENTS)})"
        )
    return symbol


def bond_type(a: str, b: str) -> str:
    """Bond type written as in the paper: heavier element first, e.g. ``bond_type('Al','Zr') == 'Zr-Al'``.

    Any chemical elements (``bond_type('Ni', 'Cu') == 'Cu-Ni'``); the element set a dataset or
    model covers is checked by :class:`bondml.chemistry.Chemistry`."""
    if a in ATOMIC_NUMBERS and b in ATOMIC_NUMBERS:
        za, zb = ATOMIC_NUMBERS[a], ATOMIC_NUMBERS[b]
        return f"{a}-{b}" if za >= zb else f"{b}-{a}"
    from .chemistry import any_bond_type

    return any_bond_type(a, b)


def split_bond_type(t: str) -> tuple[str, str]:  # noqa: D401
    """``'Zr-Cu' -> ('Zr', 'Cu')`` with validation."""
    parts = t.split("-")
    if len(parts) != 2:
        raise ConfigError(f"bond type {t!r} is not of the form A-B (e.g. Zr-Cu)")
    a, b = parts
    if bond_type(a, b) != t:
        raise ConfigError(f"bond type {t!r} should be written {bond_type(a, b)!r}")
    return a, b


_NC_RE = re.compile(r"([A-Z][a-z]?)(\d+(?:\.\d+)?)")


def parse_composition(nc: str, any_element: bool = False) -> dict[str, float]:
    """Parse a composition name such as ``Zr49Cu49Al2`` into atomic percents summing to 100
    (elements of the study only, unless ``any_element``)."""
    pos = 0
    out: dict[str, float] = {}
    for m in _NC_RE.finditer(nc):
        if m.start() != pos:
            break
        el = check_element(m.group(1), any_element)
        if el in out:
            raise ConfigError(f"composition {nc!r} names {el} twice")
        out[el] = float(m.group(2))
        pos = m.end()
    if pos != len(nc) or not out:
        raise ConfigError(f"composition {nc!r} is not of the form Zr49Cu49Al2")
    total = sum(out.values())
    if abs(total - 100.0) > 1e-6:
        raise ConfigError(f"composition {nc!r} sums to {total:g} %, not 100 %")
    return out


def composition_counts(nc: str, n_atoms: int) -> dict[str, int]:
    """Exact atom counts of ``nc`` in a cell of ``n_atoms``; error if not representable exactly."""
    frac = parse_composition(nc)
    counts = {el: p * n_atoms / 100.0 for el, p in frac.items()}
    bad = {el: c for el, c in counts.items() if abs(c - round(c)) > 1e-9}
    if bad:
        raise ConfigError(
            f"composition {nc!r} cannot be made exactly with {n_atoms} atoms "
            f"({', '.join(f'{el}={c:g}' for el, c in bad.items())})"
        )
    return {el: int(round(c)) for el, c in counts.items()}
