"""Readers and writers for LOBSTER files: ICOHPLIST (and ICOOPLIST / ICOBILIST), COHPCAR,
lobsterout, lobsterin.

Conventions
-----------
* Atom labels such as ``Cu12`` are 1-based in LOBSTER; bondml indices ``i``, ``j`` are 0-based.
* ``translation`` is LOBSTER's column: ``distance = |r_NU - t @ cell - r_MU|`` with positions
  exactly as in the structure file. bondml's bond ``shift`` (``r_j + shift @ cell - r_i``) is
  ``-translation``.
* ``icohp`` keeps LOBSTER's sign (negative = bonding); ``minus_icohp`` is the label the study uses.
* Spin-polarised files are summed over both spin channels, as LOBSTER users expect; the
  channels are kept in ``icohp_spin``.

Layouts of the pair lists (all read by :func:`read_icohplist`, plain or gzip-compressed)
-------------------------------------------------------------------------------------------
* **six columns** (LOBSTER 2.x): ``COHP# atomMU atomNU distance ICOHP #bonds``; no
  translation (``has_translation=False``), values averaged over ``#bonds`` symmetry-equivalent
  bonds; a spin-polarised file repeats the header and the list for spin 2.
* **eight columns** (LOBSTER 3.x, 4.x, and 5.x without spin polarisation):
  ``COHP# atomMU atomNU distance tx ty tz ICOHP``; spin 2 is a second header + list.
* **nine columns** (LOBSTER 5.x, spin-polarised): a two-line header, then both spin channels on
  one row: ``COHP# atomMU atomNU distance tx ty tz ICOHP(up) ICOHP(down)``.
* **orbital-resolved** (``orbitalwise``, LOBSTER >= 4): after each pair's total line come its
  orbital-pair lines with the same COHP# and LOBSTER's orbital names (``Cu1_3s``, ``Zr2_4d_xy``,
  ``Cu1_4d_x^2-y^2``). They are kept (``orbitals``) and checked: same atoms, distance and
  translation as their total line, and they sum to the total within rounding.

Strictness (no silently wrong data): a list is accepted only if every record parses in full,
numbers have LOBSTER's fixed 5 decimals (a number cut short such as ``-2.4`` or ``-0.`` is
refused), COHP# runs 1..n without gaps, the spin channels list the same pairs, and the file ends
with a complete line (a final newline). The count against lobsterout and the pair list against
the structure are checked by the callers (:mod:`bondml.io.getl`, :mod:`bondml.store.extract`).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError

#: Decimals LOBSTER writes for distances and integrated values (Fortran F...5 formats).
DECIMALS = 5

_LABEL_RE = re.compile(r"^([A-Z][a-z]?)(\d+)$")
_DEC = rf"-?\d+\.\d{{{DECIMALS}}}"
_LAB = r"([A-Z][a-z]?\d+)(?:_(\S+))?"
_INT = r"-?\d+"
_ROW_RE = {
    6: re.compile(rf"^\s*(\d+)\s+{_LAB}\s+{_LAB}\s+({_DEC})\s+({_DEC})\s+(\d+)\s*$"),
    8: re.compile(rf"^\s*(\d+)\s+{_LAB}\s+{_LAB}\s+({_DEC})\s+({_INT})\s+({_INT})\s+({_INT})\s+({_DEC})\s*$"),
    9: re.compile(
        rf"^\s*(\d+)\s+{_LAB}\s+{_LAB}\s+({_DEC})\s+({_INT})\s+({_INT})\s+({_INT})\s+({_DEC})\s+({_DEC})\s*$"
    ),
}
_KINDS = {"COHP#": "ICOHP", "COOP#": "ICOOP", "COBI#": "ICOBI"}
LAYOUTS = {6: "six-column (LOBSTER 2.x)", 8: "eight-column (LOBSTER 3.x-5.x)",
           9: "nine-column (LOBSTER 5.x, spin channels on one row)"}


@dataclass(frozen=True)
class IcohpList:
    """Pairs of an ICOHPLIST file, one row per unordered pair (spin channels summed).

    Attributes are numpy arrays of equal length ``n``: ``index`` (COHP#), ``i``/``j`` (0-based
    atom indices of atomMU/atomNU), ``element_i``/``element_j``, ``distance`` (Angstrom),
    ``translation`` (n, 3) ints (zeros when the file has no translation columns),
    ``icohp`` (eV for ICOHP, LOBSTER sign, summed over spins), ``icohp_spin`` (n, n_spin),
    ``n_bonds`` (LOBSTER 2.x ``#bonds`` column, 1 otherwise). ``orbitals`` holds the
    orbital-resolved lines when present: ``index`` (m,), ``orbital_i``/``orbital_j`` (m,) names
    such as ``3s`` or ``4d_xy``, ``value`` (m, n_spin).
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
    icohp_spin: np.ndarray | None = None
    n_bonds: np.ndarray | None = None
    layout: str = LAYOUTS[8]
    orbitals: dict[str, np.ndarray] = field(default_factory=dict)

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

    def with_translation(self, translation: np.ndarray) -> IcohpList:
        """A copy with the translation column filled in (for six-column files, from the structure)."""
        from dataclasses import replace

        return replace(self, translation=np.asarray(translation, np.int64).reshape(-1, 3),
                       has_translation=True)


def read_text(path: str | Path) -> str:
    """Text of a (possibly gzip-compressed) file, with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputFileError(path, f"damaged gzip file ({exc})") from None
    return raw.decode("utf-8", errors="replace")


def find_list(folder: str | Path, name: str = "ICOHPLIST.lobster") -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists (plain first); None if neither."""
    folder = Path(folder)
    for p in (folder / name, folder / f"{name}.gz"):
        if p.is_file():
            return p
    return None


def _parse_label(label: str, path: Path, lineno: int) -> tuple[str, int]:
    m = _LABEL_RE.match(label)
    if not m:
        raise InputFileError(path, f"line {lineno}: cannot read atom label {label!r}")
    return m.group(1), int(m.group(2)) - 1


def _diagnose(line: str, ncol: int, path: Path, lineno: int) -> InputFileError:
    """One line saying why a record does not parse in full."""
    parts = line.split()
    if len(parts) != ncol:
        return InputFileError(path, f"line {lineno}: expected {ncol} columns, got {len(parts)} (truncated or corrupt?)")
    dec_cols = {6: (3, 4), 8: (3, 7), 9: (3, 7, 8)}[ncol]
    for c in dec_cols:
        tok = parts[c]
        if not re.fullmatch(_DEC, tok):
            if re.fullmatch(r"-?\d*\.?\d*(?:[eE][-+]?\d+)?", tok) and any(ch.isdigit() for ch in tok):
                nd = len(tok.split(".", 1)[1]) if "." in tok else 0
                return InputFileError(path, f"line {lineno}: number {tok!r} has {nd} decimals, LOBSTER writes "
                                            f"{DECIMALS} (cut short?)")
            if tok.lower().lstrip("-+") in ("nan", "inf", "infinity"):
                return InputFileError(path, f"line {lineno}: non-finite value {tok!r}")
            return InputFileError(path, f"line {lineno}: cannot parse numbers ({tok!r})")
    for c in (1, 2):
        if not re.fullmatch(_LAB, parts[c]):
            return InputFileError(path, f"line {lineno}: cannot read atom label {parts[c]!r}")
    return InputFileError(path, f"line {lineno}: cannot parse numbers ({line.strip()!r})")


def read_icohplist(path: str | Path) -> IcohpList:
    """Read an ``ICOHPLIST.lobster`` (also ``ICOOPLIST``/``ICOBILIST``, plain or ``.gz``).

    Every layout LOBSTER writes is read (see the module docstring); the file must be complete
    and every record must parse in full, else :class:`InputFileError` with one line naming the
    file, the line and the problem.

    Returns
    -------
    IcohpList
        One row per pair, spin channels summed in ``icohp`` (eV, LOBSTER's sign).
    """
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise InputFileError(path, "file is empty")
    if not text.endswith("\n"):
        n = text.count("\n") + 1
        raise InputFileError(path, f"line {n}: last line is incomplete (no final newline; truncated?)")
    lines = text.split("\n")[:-1]
    while lines and not lines[-1].strip():
        lines.pop()
    first = lines[0].split()
    if not first or first[0] not in _KINDS:
        raise InputFileError(path, "line 1: no COHP#/COOP#/COBI# header (not an ICOHPLIST?)")
    kind = _KINDS[first[0]]
    ncol: int | None = None
    n_spin_row = 1
    blocks: list[list[tuple]] = []
    orbs: list[list[tuple]] = []
    cur: list[tuple] | None = None
    cur_orb: list[tuple] | None = None
    lineno = 0
    k = 0
    while k < len(lines):
        line = lines[k]
        lineno = k + 1
        k += 1
        s = line.strip()
        if not s:
            raise InputFileError(path, f"line {lineno}: blank line inside the list (corrupt?)")
        tok0 = s.split()[0]
        if tok0 in _KINDS:
            if _KINDS[tok0] != kind:
                raise InputFileError(path, f"line {lineno}: {tok0} header in a {kind} list")
            two_spins_one_row = s.count("eF") >= 2 or (
                k < len(lines) and "spin 2" in " ".join(lines[k].split()) and not lines[k].split()[0].isdigit())
            if two_spins_one_row:
                if blocks:
                    raise InputFileError(path, f"line {lineno}: second header in a nine-column file (corrupt?)")
                if k < len(lines) and not lines[k].split()[0].lstrip("-").isdigit():
                    k += 1  # the "for spin 1  for spin 2" continuation of the header
                n_spin_row = 2
            cur, cur_orb = [], []
            blocks.append(cur)
            orbs.append(cur_orb)
            continue
        if cur is None or cur_orb is None:
            raise InputFileError(path, f"line {lineno}: data before the header line (not an ICOHPLIST?)")
        if ncol is None:
            n = len(s.split())
            ncol = 9 if n_spin_row == 2 else (6 if n == 6 else 8)
            if n_spin_row == 2 and n != 9:
                raise InputFileError(path, f"line {lineno}: expected 9 columns after a two-spin header, got {n}")
        m = _ROW_RE[ncol].match(line)
        if not m:
            raise _diagnose(line, ncol, path, lineno)
        g = m.groups()
        idx = int(g[0])
        ai, oi, aj, oj = g[1], g[2], g[3], g[4]
        d = float(g[5])
        vals: tuple[float, ...]
        if ncol == 6:
            t = (0, 0, 0)
            vals = (float(g[6]),)
            nb = int(g[7])
        else:
            t = (int(g[6]), int(g[7]), int(g[8]))
            vals = tuple(float(x) for x in g[9:])
            nb = 1
        if (oi is None) != (oj is None):
            raise InputFileError(path, f"line {lineno}: one atom has an orbital and the other not ({ai}, {aj})")
        if oi is None:
            expect = len(cur) + 1
            if idx != expect:
                raise InputFileError(path, f"line {lineno}: COHP# {idx} where {expect} was expected (lines missing?)")
            ei, i = _parse_label(ai, path, lineno)
            ej, j = _parse_label(aj, path, lineno)
            cur.append((idx, i, j, ei, ej, d, t, vals, nb, lineno))
        else:
            if not cur or cur[-1][0] != idx:
                raise InputFileError(path, f"line {lineno}: orbital line of COHP# {idx} without its total line")
            row = cur[-1]
            if (ai, aj) != (f"{row[3]}{row[1] + 1}", f"{row[4]}{row[2] + 1}") or d != row[5] or t != row[6]:
                raise InputFileError(path, f"line {lineno}: orbital line of COHP# {idx} names another pair than "
                                           f"its total line")
            cur_orb.append((idx, oi, oj, vals))
    if not blocks or not blocks[0]:
        raise InputFileError(path, "no interactions found (truncated?)")
    assert ncol is not None
    if n_spin_row == 2 and len(blocks) != 1:
        raise InputFileError(path, f"{len(blocks)} header lines in a nine-column file (corrupt?)")
    if n_spin_row == 1 and len(blocks) > 2:
        raise InputFileError(path, f"{len(blocks)} header lines; expected 1 or 2 spin blocks")
    base = blocks[0]
    if len(blocks) == 2:
        other = blocks[1]
        if len(other) != len(base):
            raise InputFileError(path, f"spin blocks differ ({len(base)} vs {len(other)} interactions; truncated?)")
        for a, b in zip(base, other, strict=True):
            if a[:7] != b[:7]:
                raise InputFileError(path, f"line {b[9]}: spin 2 lists another pair than spin 1 (COHP# {b[0]})")
        if len(orbs[1]) != len(orbs[0]):
            raise InputFileError(path, f"spin blocks differ in orbital lines ({len(orbs[0])} vs {len(orbs[1])}; "
                                       "truncated?)")
    n = len(base)
    spin = np.array([r[7] for r in base], dtype=float).reshape(n, -1)
    if len(blocks) == 2:
        spin = np.column_stack([spin, np.array([r[7] for r in blocks[1]], dtype=float)])
    n_spin = spin.shape[1]
    orbitals: dict[str, np.ndarray] = {}
    if orbs[0]:
        oidx = np.array([o[0] for o in orbs[0]], dtype=np.int64)
        oval = np.array([o[3] for o in orbs[0]], dtype=float).reshape(len(oidx), -1)
        if len(blocks) == 2:
            oval = np.column_stack([oval, np.array([o[3] for o in orbs[1]], dtype=float)])
        # truncation inside an orbital block: the orbitals must add up to their pair's total
        has = np.zeros(n, dtype=bool)
        has[oidx - 1] = True
        if not has.all():
            miss = int(np.flatnonzero(~has)[0]) + 1
            raise InputFileError(path, f"COHP# {miss} has no orbital lines while others have (truncated?)")
        cnt = np.bincount(oidx - 1, minlength=n)
        pair_el = [f"{r[3]}-{r[4]}" for r in base]
        seen: dict[str, int] = {}
        for k_, (pe, c_) in enumerate(zip(pair_el, cnt, strict=True)):
            if seen.setdefault(pe, int(c_)) != c_:
                raise InputFileError(path, f"COHP# {k_ + 1} ({pe}) has {c_} orbital lines, other {pe} pairs "
                                           f"{seen[pe]} (truncated or corrupt?)")
        # ICOBI is not a sum over orbital pairs in every LOBSTER version: checked for ICOHP/ICOOP
        for s_ in range(n_spin if kind != "ICOBI" else 0):
            tot = np.bincount(oidx - 1, weights=oval[:, s_], minlength=n)
            tol = 0.5 * 10.0 ** -DECIMALS * (cnt + 1) + 1e-9
            bad = np.flatnonzero(np.abs(tot - spin[:, s_]) > tol)
            if bad.size:
                kb = int(bad[0])
                raise InputFileError(path, f"orbital lines of COHP# {kb + 1} add up to {tot[kb]:.5f}, not the total "
                                           f"{spin[kb, s_]:.5f} (truncated or corrupt?)")
        orbitals = {"index": oidx, "orbital_i": np.array([o[1] for o in orbs[0]], dtype=object),
                    "orbital_j": np.array([o[2] for o in orbs[0]], dtype=object), "value": oval}
    return IcohpList(
        index=np.array([r[0] for r in base], dtype=np.int64),
        i=np.array([r[1] for r in base], dtype=np.int64),
        j=np.array([r[2] for r in base], dtype=np.int64),
        element_i=np.array([r[3] for r in base], dtype=object),
        element_j=np.array([r[4] for r in base], dtype=object),
        distance=np.array([r[5] for r in base], dtype=float),
        translation=np.array([r[6] for r in base], dtype=np.int64).reshape(n, 3),
        icohp=spin.sum(axis=1),
        n_spin=n_spin,
        has_translation=ncol != 6,
        kind=kind,
        orbital_lines_skipped=len(orbs[0]) * len(blocks),
        path=str(path),
        icohp_spin=spin,
        n_bonds=np.array([r[8] for r in base], dtype=np.int64),
        layout=LAYOUTS[ncol],
        orbitals=orbitals,
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
    text = read_text(path)
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
class CohpCar:
    """A ``COHPCAR.lobster`` (also ``COOPCAR``/``COBICAR``): COHP curves per pair and spin.

    ``energy`` (m,) eV relative to the Fermi level as LOBSTER writes it; ``efermi`` eV;
    ``labels`` one per pair (``Cu1->Zr2``, orbital-resolved ``Cu1[3s]->Zr2[4s]``), ``atoms``
    (n, 2) 0-based, ``distance`` (n,) Angstrom; ``cohp``/``icohp`` (n, n_spin, m) (eV for COHP,
    LOBSTER's sign: negative = bonding); ``average_cohp``/``average_icohp`` (n_spin, m).
    """

    path: str
    energy: np.ndarray
    efermi: float
    labels: tuple[str, ...]
    atoms: np.ndarray
    distance: np.ndarray
    cohp: np.ndarray
    icohp: np.ndarray
    average_cohp: np.ndarray
    average_icohp: np.ndarray

    @property
    def n_spin(self) -> int:
        return int(self.cohp.shape[1])

    def minus_cohp(self, pair: int, spin_sum: bool = True) -> np.ndarray:
        """-COHP of pair ``pair`` (0-based row of the file's list), summed over spins: (m,) or (n_spin, m)."""
        c = -self.cohp[pair]
        return c.sum(axis=0) if spin_sum else c


_COHPCAR_LABEL = re.compile(r"^No\.(\d+):([A-Z][a-z]?)(\d+)(\[[^\]]*\])?->([A-Z][a-z]?)(\d+)(\[[^\]]*\])?"
                            r"\(([-\d.eE+]+)\)")


def read_cohpcar(path: str | Path) -> CohpCar:
    """Read a ``COHPCAR.lobster`` (plain or ``.gz``) in LOBSTER's documented layout.

    Line 1 is a title; line 2 gives ``n+1`` (pairs plus the average), the number of spins, the
    number of energy points, E_min, E_max and E_F; then ``Average`` and one label line per pair
    (``No.1:Cu1->Zr2(2.58171)``), then one row per energy: ``E, avg COHP, avg ICOHP, COHP_1,
    ICOHP_1, ...`` for spin 1 followed by the same columns for spin 2. Strict like
    :func:`read_icohplist`: every row complete, as many rows as announced, a final newline.
    """
    path = Path(path)
    text = read_text(path)
    if not text.endswith("\n"):
        raise InputFileError(path, f"line {text.count(chr(10)) + 1}: last line is incomplete (truncated?)")
    lines = text.split("\n")[:-1]
    if len(lines) < 3:
        raise InputFileError(path, "too short for a COHPCAR (truncated?)")
    try:
        par = lines[1].split()
        n_sets, n_spin, n_e = int(par[0]), int(par[1]), int(par[2])
        efermi = float(par[-1])
    except (ValueError, IndexError):
        raise InputFileError(path, f"line 2: cannot read the parameters line {lines[1].strip()!r}") from None
    if n_spin not in (1, 2) or n_sets < 1 or n_e < 1:
        raise InputFileError(path, f"line 2: impossible parameters {lines[1].strip()!r}")
    n_pairs = n_sets - 1
    if len(lines) < 3 + n_pairs or lines[2].strip() != "Average":
        raise InputFileError(path, "line 3: expected 'Average' (not a COHPCAR?)")
    labels, atoms, dist = [], [], []
    for k in range(n_pairs):
        s = lines[3 + k].strip()
        m = _COHPCAR_LABEL.match(s)
        if not m or int(m.group(1)) != k + 1:
            raise InputFileError(path, f"line {4 + k}: cannot read pair label {s!r}")
        labels.append(s.split(":", 1)[1].rsplit("(", 1)[0])
        atoms.append((int(m.group(3)) - 1, int(m.group(6)) - 1))
        dist.append(float(m.group(8)))
    start = 3 + n_pairs
    rows = lines[start:]
    while rows and not rows[-1].strip():
        rows.pop()
    ncol = 1 + 2 * n_sets * n_spin
    if len(rows) != n_e:
        raise InputFileError(path, f"{len(rows)} energy rows, line 2 announces {n_e} (truncated?)")
    data = np.empty((n_e, ncol))
    for k, r in enumerate(rows):
        parts = r.split()
        if len(parts) != ncol:
            raise InputFileError(path, f"line {start + k + 1}: expected {ncol} columns, got {len(parts)} (truncated?)")
        try:
            data[k] = [float(x) for x in parts]
        except ValueError:
            raise InputFileError(path, f"line {start + k + 1}: cannot parse numbers") from None
    if not np.isfinite(data).all():
        raise InputFileError(path, "non-finite value in the curves")
    blocks = data[:, 1:].reshape(n_e, n_spin, n_sets, 2)  # energy, spin, set, (COHP, ICOHP)
    return CohpCar(
        path=str(path), energy=data[:, 0], efermi=efermi, labels=tuple(labels),
        atoms=np.array(atoms, dtype=np.int64).reshape(-1, 2), distance=np.array(dist, dtype=float),
        cohp=np.transpose(blocks[:, :, 1:, 0], (2, 1, 0)).copy(),
        icohp=np.transpose(blocks[:, :, 1:, 1], (2, 1, 0)).copy(),
        average_cohp=blocks[:, :, 0, 0].T.copy(), average_icohp=blocks[:, :, 0, 1].T.copy(),
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
                ox, oy, oz = (int(g) if g else 0 for g in m.groups()[2:])
                pairs.append((int(m.group(1)) - 1, int(m.group(2)) - 1, ox, oy, oz))
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
