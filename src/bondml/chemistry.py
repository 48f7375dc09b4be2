"""Which elements a dataset or model covers, and what follows from them: bond types, SOAP
species, per-type bond windows and GP hyper-parameter defaults.

Core-level module (depends on :mod:`bondml.constants`, :mod:`bondml.errors` and ``ase.data``).
Two kinds of :class:`Chemistry`:

* the ``study`` preset (:data:`STUDY`): Zr, Cu, Al with every number of the paper
  (:mod:`bondml.constants`): LOBSTER window 1.80-4.20 A, label window 1.80-3.75 A, the per-type
  inference windows and hyper-parameters. Any data whose elements are a subset of Zr, Cu, Al
  uses it, so the study's results are reproduced exactly.
* a derived chemistry (:meth:`Chemistry.from_elements`) for any other element set. Rule
  (documented in docs/formats.md): with ``r`` the covalent radii of ase.data (Cordero et al.
  2008) and ``s = r_A + r_B``, the window of type A-B is ``[0.75 s, 1.30 s]`` rounded to 0.05 A
  (on the study's elements this gives windows within 0.3 A of the paper's); the label and
  LOBSTER windows span all the types' windows; the hyper-parameters are the paper's most common
  values (zeta 1, sigma 0.5 A, gamma 0.01). Any of them can be overridden per type.

Bond types are written heavier element first (``Zr-Cu``, ``Ni-Cu``), as in the paper.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .constants import (
    ATOMIC_NUMBERS,
    BOND_TYPES,
    ELEMENTS,
    INFERENCE_WINDOWS,
    LABEL_WINDOW,
    LOBSTER_WINDOW,
    PAPER_HYPERPARAMETERS,
)
from .errors import UnknownElementError

#: Window rule of derived chemistries: [LOW * s, HIGH * s], s = sum of covalent radii (Angstrom).
WINDOW_RULE = (0.75, 1.30)
#: Hyper-parameter defaults of derived chemistries (the paper's most common values).
DEFAULT_HYPERPARAMETERS = {"zeta": 1.0, "sigma": 0.5, "gamma": 0.01}


def atomic_number(symbol: str) -> int:
    """Atomic number of a chemical symbol (any element), one-line error for anything else."""
    from ase.data import atomic_numbers

    z = atomic_numbers.get(symbol)
    if z is None or z == 0 or not isinstance(symbol, str) or symbol[:1] != symbol[:1].upper():
        raise UnknownElementError(f"unknown element {symbol!r}: not a chemical symbol")
    return int(z)


def symbol_of(z: int) -> str:
    from ase.data import chemical_symbols

    if not 0 < int(z) < len(chemical_symbols):
        raise UnknownElementError(f"unknown atomic number {z!r}")
    return chemical_symbols[int(z)]


def any_bond_type(a: str, b: str) -> str:
    """Bond type of two elements, heavier first (``any_bond_type('Cu', 'Ni') == 'Ni-Cu'``)."""
    za, zb = atomic_number(a), atomic_number(b)
    return f"{a}-{b}" if za >= zb else f"{b}-{a}"


def _round(x: float, step: float = 0.05) -> float:
    return round(round(x / step) * step, 2)


@dataclass(frozen=True)
class Chemistry:
    """An element set and what follows from it (see the module docstring).

    ``elements`` in decreasing atomic number; ``windows`` per bond type (Angstrom, inference);
    ``hyperparameters`` per bond type; ``lobster_window``/``label_window`` (Angstrom).
    """

    elements: tuple[str, ...]
    name: str
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    hyperparameters: dict[str, dict[str, float]] = field(default_factory=dict)
    lobster_window: tuple[float, float] = LOBSTER_WINDOW
    label_window: tuple[float, float] = LABEL_WINDOW

    @property
    def atomic_numbers(self) -> dict[str, int]:
        return {e: atomic_number(e) for e in self.elements}

    @property
    def species_z(self) -> tuple[int, ...]:
        """SOAP species (sorted atomic numbers)."""
        return tuple(sorted(self.atomic_numbers.values()))

    @property
    def bond_types(self) -> tuple[str, ...]:
        """Every bond type, in the paper's order (``Zr-Zr, Zr-Cu, Zr-Al, Cu-Cu, Cu-Al, Al-Al``)."""
        els = self.elements
        return tuple(any_bond_type(a, b) for k, a in enumerate(els) for b in els[k:])

    @property
    def is_study(self) -> bool:
        return self.name == "study"

    def bond_type(self, a: str, b: str) -> str:
        self.check([a, b])
        return any_bond_type(a, b)

    def check(self, symbols: Iterable[str], what: str = "structure") -> None:
        """One-line :class:`UnknownElementError` if ``symbols`` hold an element outside the set."""
        extra = sorted(set(symbols) - set(self.elements))
        if extra:
            raise UnknownElementError(
                f"{what} has element(s) {', '.join(extra)} outside this model's elements "
                f"({', '.join(self.elements)})")

    def with_overrides(self, windows: dict[str, tuple[float, float]] | None = None,
                       hyperparameters: dict[str, dict[str, float]] | None = None) -> Chemistry:
        """A copy with some per-type windows or hyper-parameters replaced."""
        w = dict(self.windows)
        w.update(windows or {})
        h = {k: dict(v) for k, v in self.hyperparameters.items()}
        for t, hp in (hyperparameters or {}).items():
            h.setdefault(t, {}).update(hp)
        return Chemistry(self.elements, self.name if not (windows or hyperparameters) else f"{self.name}+overrides",
                         w, h, self.lobster_window, self.label_window)

    @classmethod
    def study(cls) -> Chemistry:
        """The Zr-Cu-Al preset with the paper's numbers."""
        return cls(ELEMENTS, "study", dict(INFERENCE_WINDOWS), {k: dict(v) for k, v in PAPER_HYPERPARAMETERS.items()},
                   LOBSTER_WINDOW, LABEL_WINDOW)

    @classmethod
    def from_elements(cls, symbols: Iterable[str]) -> Chemistry:
        """The study preset when ``symbols`` are among Zr, Cu, Al, else a derived chemistry."""
        from ase.data import covalent_radii

        els = set(symbols)
        for e in els:
            atomic_number(e)
        if els <= set(ELEMENTS):
            return STUDY
        ordered = tuple(sorted(els, key=lambda e: -atomic_number(e)))
        windows: dict[str, tuple[float, float]] = {}
        for k, a in enumerate(ordered):
            for b in ordered[k:]:
                s = float(covalent_radii[atomic_number(a)] + covalent_radii[atomic_number(b)])
                windows[any_bond_type(a, b)] = (_round(WINDOW_RULE[0] * s), _round(WINDOW_RULE[1] * s))
        lo = min(w[0] for w in windows.values())
        hi = max(w[1] for w in windows.values())
        hp = {t: dict(DEFAULT_HYPERPARAMETERS) for t in windows}
        return cls(ordered, "-".join(ordered), windows, hp, (lo, hi), (lo, hi))

    @classmethod
    def from_species_z(cls, species_z: Iterable[int]) -> Chemistry:
        """Chemistry of SOAP settings' species (the study preset for Z = 13, 29, 40)."""
        return cls.from_elements(symbol_of(z) for z in species_z)


#: The Zr-Cu-Al study preset.
STUDY = Chemistry.study()


def types_in_order(present: Iterable[str]) -> tuple[str, ...]:
    """Bond types to report for the given ones: the study's six when all are study types
    (today's tables unchanged), else the present types, heavier pairs first."""
    p = {str(t) for t in present}
    if p <= set(BOND_TYPES):
        return BOND_TYPES
    els: set[str] = set()
    for t in p:
        els.update(t.split("-"))
    return tuple(t for t in Chemistry.from_elements(els).bond_types if t in p)


def study_elements_only(symbols: Iterable[str]) -> bool:
    return set(symbols) <= set(ATOMIC_NUMBERS)
