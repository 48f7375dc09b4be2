"""Readers and writers for LOBSTER files: ICOHPLIST (and ICOOPLIST / ICOBILIST), lobsterout, lobsterin.

Conventions
-----------
* Atom labels such as ``Cu12`` are 1-based in LOBSTER; bondml indices ``i``, ``j`` are 0-based.
* ``translation`` is LOBSTER's column: ``distance = |r_NU - t @ cell - r_MU|`` with positions
  exactly as in the structure file. bondml's bond ``shift`` (``r_j + shift @ cell - r_i``) is
  ``-translation``.
* ``icohp`` keeps LOBSTER's sign (negative = bonding); ``minus_icohp`` is the label the study uses.
* Spin-polarised files are summed over both spin channels, as LOBSTER users expect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError

_LABEL_RE = re.compile(r"^([A-Z][a-z]?)(\d+)$")
_SPIN_RE = re.compile(r"for spin\s+(\d)")


@dataclass(frozen=True)
class IcohpList:
    """Pairs of an ICOHPLIST file, one row per unordered pair (spin channels summed).

    Attributes are numpy arrays of equal length: ``index`` (COHP#), ``i``/``j`` (0-based atom
    indices of atomMU/atomNU), ``element_i``/``element_j``, ``distance`` (Angstrom),
    ``translation`` (n, 3) ints (zeros when the file has no translation columns),
    ``icohp`` (eV, LOBSTER sign).
    """

    index: np.ndarray
    i: np.ndarray
    j: np.ndarray
    element_i: np.ndarray
    element_j: np.ndarray
    distance: np.ndarray
    translation: np.ndarray
    icohp: np.ndarray
    n_spin: int = 1
    has_translation: bool = True
    kind: str = "ICOHP"
    orbital_lines_skipped: int = 0
    path: str = ""

    def __len__(self) -> int:
        return int(self.index.size)

    @property
    def minus_icohp(self) -> np.ndarray:
        """-ICOHP in eV (positive = bonding), the label of the study."""
        return -self.icohp

    @property
    def shift(self) -> np.ndarray:
        """bondml's lattice shift (``r_j + shift @ cell - r_i``), i.e. ``-translation``."""
        return -self.translation


def _parse_label(label: str, path: Path, lineno: int) -> tuple[str, int]:
    m = _LABEL_RE.match(label)
    if not m:
        raise InputFileError(path, f"line {lineno}: cannot read atom label {label!r}")
    return m.group(1), int(m.group(2)) - 1


def read_icohplist(path: str | Path) -> IcohpList:
    """Read an ``ICOHPLIST.lobster`` (also ``ICOOPLIST``/``ICOBILIST``) file.

    Handles the 8-column layout (with translation), the older 5-column layout without
    translation, orbital-resolved lines of newer LOBSTER versions (skipped: the per-pair total
    is kept) and spin-polarised files (channels summed). Raises :class:`InputFileError` with one
    line naming the file and the problem for a missing, empty, truncated or corrupt file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    text = path.read_text(errors="replace")
    if not text.strip():
        raise InputFileError(path, "file is empty")
    kind = "ICOHP"
    for k in ("ICOOP", "ICOBI", "ICOHP"):
        if k in text.splitlines()[0]:
            kind = k
            break
    blocks: list[dict[int, tuple]] = []
    order: list[list[int]] = []
    current: dict[int, tuple] | None = None
    has_translation: bool | None = None
    skipped = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith(("COHP#", "COOP#", "COBI#")) or "atomMU" in s:
            current = {}
            blocks.append(current)
            order.append([])
            continue
        if current is None:
            raise InputFileError(path, f"line {lineno}: data before the header line (not an ICOHPLIST?)")
        parts = s.split()
        if len(parts) >= 3 and ("[" in parts[1] or "[" in parts[2]):
            skipped += 1  # orbital-resolved line of LOBSTER >= 4; the pair total is its own line
            continue
        if len(parts) not in (5, 8):
            if len(parts) > 8 and kind == "ICOBI":
                skipped += 1  # multi-centre ICOBI line (more than two atoms): not a pair
                continue
            raise InputFileError(path, f"line {lineno}: expected 5 or 8 columns, got {len(parts)} (truncated or corrupt?)")
        this_has_t = len(parts) == 8
        if has_translation is None:
            has_translation = this_has_t
        elif has_translation != this_has_t:
            raise InputFileError(path, f"line {lineno}: column count changes inside the file (corrupt?)")
        try:
            idx = int(parts[0])
            ei, i = _parse_label(parts[1], path, lineno)
            ej, j = _parse_label(parts[2], path, lineno)
            d = float(parts[3])
            if this_has_t:
                t = (int(parts[4]), int(parts[5]), int(parts[6]))
                v = float(parts[7])
            else:
                t = (0, 0, 0)
                v = float(parts[4])
        except ValueError as exc:
            raise InputFileError(path, f"line {lineno}: cannot parse numbers ({exc})") from None
        if not np.isfinite(v) or not np.isfinite(d):
            raise InputFileError(path, f"line {lineno}: non-finite value")
        if idx in current:
            raise InputFileError(path, f"line {lineno}: COHP# {idx} appears twice in one spin block")
        current[idx] = (i, j, ei, ej, d, t, v)
        order[-1].append(idx)
    if not blocks or not blocks[0]:
        raise InputFileError(path, "no interactions found (truncated?)")
    if len(blocks) > 2:
        raise InputFileError(path, f"{len(blocks)} header lines; expected 1 or 2 spin blocks")
    first = blocks[0]
    if len(blocks) == 2:
        second = blocks[1]
        if set(second) != set(first):
            raise InputFileError(
                path, f"spin blocks differ ({len(first)} vs {len(second)} interactions; truncated?)"
            )
    keys = order[0]
    n = len(keys)
    icohp = np.array([first[k][6] for k in keys], dtype=float)
    if len(blocks) == 2:
        icohp = icohp + np.array([blocks[1][k][6] for k in keys], dtype=float)
    return IcohpList(
        index=np.array(keys, dtype=np.int64),
        i=np.array([first[k][0] for k in keys], dtype=np.int64),
        j=np.array([first[k][1] for k in keys], dtype=np.int64),
        element_i=np.array([first[k][2] for k in keys], dtype=object),
        element_j=np.array([first[k][3] for k in keys], dtype=object),
        distance=np.array([first[k][4] for k in keys], dtype=float),
        translation=np.array([first[k][5] for k in keys], dtype=np.int64).reshape(n, 3),
        icohp=icohp,
        n_spin=len(blocks),
        has_translation=bool(has_translation),
        kind=kind,
        orbital_lines_skipped=skipped,
        path=str(path),
    )


def write_icohplist(
    path: str | Path,
    symbols: list[str] | np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    distance: np.ndarray,
    translation: np.ndarray,
    icohp: np.ndarray,
) -> None:
    """Write an ICOHPLIST in LOBSTER's 8-column layout (``icohp`` with LOBSTER sign, eV).

    ``i``/``j`` are 0-based; ``translation`` follows LOBSTER's convention (``-shift``).
    The file is written atomically.
    """
    from ..util import atomic_write_text

    lines = ["  COHP#  atomMU  atomNU     distance     translation      ICOHP (at) eF   for spin  1"]
    sym = np.asarray(symbols)
    t = np.asarray(translation, dtype=int).reshape(-1, 3)
    for k in range(len(i)):
        a = f"{sym[i[k]]}{int(i[k]) + 1}"
        b = f"{sym[j[k]]}{int(j[k]) + 1}"
        lines.append(
            f"{k + 1:7d} {a:>7s} {b:>7s} {distance[k]:12.5f} {t[k, 0]:7d} {t[k, 1]:3d} {t[k, 2]:3d}"
            f" {icohp[k]:18.5f} "
        )
    atomic_write_text(path, "\n".join(lines) + "\n")


@dataclass(frozen=True)
class LobsterOut:
    """What ``lobsterout`` says about a LOBSTER run."""

    path: str
    version: str | None
    finished: bool
    warnings: tuple[str, ...]
    infos: tuple[str, ...]
    charge_spilling_percent: float | None
    total_spilling_percent: float | None
    n_interactions: int | None
    wall_time_s: float | None
    basis: dict[str, tuple[str, ...]] = field(default_factory=dict)


_WALL_RE = re.compile(
    r"finished in\s+(?:(\d+)\s*h)?\s*(?:(\d+)\s*min)?\s*(?:(\d+)\s*s)?\s*(?:(\d+)\s*ms)?\s*of wall time"
)


def read_lobsterout(path: str | Path) -> LobsterOut:
    """Parse ``lobsterout``: version, finished or not, warnings, spilling, interactions, wall time."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    text = path.read_text(errors="replace")
    version = None
    m = re.search(r"LOBSTER\s+v?([\d.]+)", text)
    if m:
        version = m.group(1)
    warnings: list[str] = []
    infos: list[str] = []
    basis: dict[str, tuple[str, ...]] = {}
    prev = ""
    for line in text.splitlines():
        s = line.strip()
        if "WARNING:" in s:
            msg = s.split("WARNING:", 1)[1].strip()
            if prev == "W" and warnings:  # a message continued on the next WARNING: line
                warnings[-1] = f"{warnings[-1]} {msg}"
            else:
                warnings.append(msg)
            prev = "W"
        elif s.startswith("INFO:"):
            if prev == "I" and infos:
                infos[-1] = f"{infos[-1]} {s[5:].strip()}"
            else:
                infos.append(s[5:].strip())
            prev = "I"
        else:
            prev = ""
        bm = re.match(r"^([A-Z][a-z]?) \((\w+)\) (.+)$", s)
        if bm:
            basis[bm.group(1)] = tuple(bm.group(3).split())
    cs = re.findall(r"abs\. charge spilling:\s*([\d.]+)%", text)
    ts = re.findall(r"abs\. total\s+spilling:\s*([\d.]+)%", text)
    ni = re.search(r"found (\d+) interactions", text)
    wall = None
    wm = _WALL_RE.search(text)
    if wm:
        h, mi, s_, ms = (int(g) if g else 0 for g in wm.groups())
        wall = h * 3600 + mi * 60 + s_ + ms / 1000.0
    finished = wm is not None or "finished in" in text
    return LobsterOut(
        path=str(path),
        version=version,
        finished=finished,
        warnings=tuple(warnings),
        infos=tuple(infos),
        charge_spilling_percent=float(cs[-1]) if cs else None,
        total_spilling_percent=float(ts[-1]) if ts else None,
        n_interactions=int(ni.group(1)) if ni else None,
        wall_time_s=wall,
        basis=basis,
    )


@dataclass(frozen=True)
class LobsterIn:
    """What a ``lobsterin`` asks for.

    ``pairs`` rows are ``(i, j, ox, oy, oz)`` with 0-based atoms and LOBSTER's ``offset`` (the
    lattice shift of atom j: ``r_j + offset @ cell - r_i``), from ``cohpbetween`` lines.
    ``generator`` holds ``(d_min, d_max)`` windows from ``cohpGenerator`` lines.
    """

    path: str
    pairs: np.ndarray
    generator: tuple[tuple[float, float], ...]
    basis: dict[str, tuple[str, ...]]
    keywords: dict[str, str]


def read_lobsterin(path: str | Path) -> LobsterIn:
    """Parse a ``lobsterin``: explicit ``cohpbetween`` pairs, ``cohpGenerator`` windows, basis."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    pairs: list[tuple[int, int, int, int, int]] = []
    gens: list[tuple[float, float]] = []
    basis: dict[str, tuple[str, ...]] = {}
    kw: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        s = line.split("!")[0].split("#")[0].strip()
        if not s:
            continue
        low = s.lower()
        parts = s.split()
        try:
            if low.startswith("cohpbetween"):
                m = re.match(
                    r"cohpbetween\s+atom\s+(\d+)\s+atom\s+(\d+)(?:\s+offset\s+(-?\d+)\s+(-?\d+)\s+(-?\d+))?",
                    s,
                    re.I,
                )
                if not m:
                    raise ValueError(s)
                o = tuple(int(g) if g else 0 for g in m.groups()[2:])
                pairs.append((int(m.group(1)) - 1, int(m.group(2)) - 1, *o))
            elif low.startswith("cohpgenerator"):
                m = re.search(r"from\s+([\d.]+)\s+to\s+([\d.]+)", s, re.I)
                if not m:
                    raise ValueError(s)
                gens.append((float(m.group(1)), float(m.group(2))))
            elif low.startswith("basisfunctions"):
                basis[parts[1]] = tuple(parts[2:])
            else:
                kw[parts[0]] = " ".join(parts[1:])
        except ValueError:
            raise InputFileError(path, f"line {lineno}: cannot parse {s!r}") from None
    arr = np.array(pairs, dtype=np.int64).reshape(-1, 5)
    return LobsterIn(path=str(path), pairs=arr, generator=tuple(gens), basis=basis, keywords=kw)
