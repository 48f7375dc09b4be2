"""LAMMPS data files and custom dumps, streamed frame by frame; any ASE trajectory format too.

Units are LAMMPS ``metal``: positions in Angstrom, per-atom ``compute stress/atom`` in
bar*Angstrom^3 (a stress times a volume; see :func:`per_atom_stress_gpa`).

Conventions
-----------
* A :class:`Frame` holds an :class:`ase.Atoms` whose cell starts at the origin (the LAMMPS box
  origin ``(xlo, ylo, zlo)`` is subtracted and kept in ``Frame.origin``), rows sorted by atom id.
* Positions are *unwrapped* when the dump allows it: ``xu yu zu`` / ``xsu ysu zsu`` columns, or
  wrapped ``x y z`` / ``xs ys zs`` plus image flags ``ix iy iz`` (r + image @ cell). Then a bond's
  lattice shift is the same physical bond in every frame (see :mod:`bondml.analysis.exchange`).
  ``Frame.unwrapped`` says which case applies.
* Triclinic boxes (``ITEM: BOX BOUNDS xy xz yz ...``) are converted from LAMMPS' bounding box
  to the cell ``[[lx,0,0],[xy,ly,0],[xz,yz,lz]]`` exactly as the LAMMPS manual describes.
* Reading never holds more than one frame: :func:`iter_dump` is a generator over the file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from ..constants import ATOMIC_MASSES, ELEMENTS
from ..errors import ConfigError, InputFileError, UnknownElementError

#: The study's LAMMPS atom types: 1 Zr, 2 Cu, 3 Al (the element order of the EAM potential's
#: ``pair_coeff * * <file> Zr Cu Al``). The one type map of bondml: readers, writers and the MD
#: inputs of generate and deploy all default to it.
STUDY_TYPE_MAP: dict[int, str] = {k + 1: el for k, el in enumerate(ELEMENTS)}


def type_map_string(type_map: Mapping[int, str] | None = None) -> str:
    """``"1=Zr,2=Cu,3=Al"``: a type map as written in configs and on the command line."""
    return ",".join(f"{t}={e}" for t, e in sorted((type_map or STUDY_TYPE_MAP).items()))


def format_lammps_data(atoms: Atoms, type_map: Mapping[int, str] | None = None, masses: bool = True,
                       title: str | None = None, digits: int = 6, box_digits: int = 8) -> str:
    """Text of an ``atom_style atomic`` LAMMPS data file (orthogonal or triclinic box).

    Parameters
    ----------
    atoms : ase.Atoms
        Cell in LAMMPS' lower-triangular form (a along x, b in the xy plane), origin at 0;
        positions in Angstrom.
    type_map : mapping {type: element}, optional
        Default :data:`STUDY_TYPE_MAP`.
    masses : bool
        Write the ``Masses`` section (amu) so that readers can map types to elements.
    title : str, optional
        First line (default ``bondml data file (<n> atoms)``).
    digits, box_digits : int
        Decimals of the positions and of the box (Angstrom).

    Returns
    -------
    str
    """
    tm = dict(type_map or STUDY_TYPE_MAP)
    inv = {e: t for t, e in tm.items()}
    c = np.asarray(atoms.cell.array, float)
    if abs(c[0, 1]) > 1e-9 or abs(c[0, 2]) > 1e-9 or abs(c[1, 2]) > 1e-9:
        raise ConfigError("LAMMPS data file: the cell is not in LAMMPS' lower-triangular form (a along x, b in xy)")
    symbols = atoms.get_chemical_symbols()
    missing = sorted(set(symbols) - set(inv))
    if missing:
        raise UnknownElementError(f"elements {missing} have no LAMMPS type (type map {tm})")
    b = box_digits
    lines = [title or f"bondml data file ({len(atoms)} atoms)", "", f"{len(atoms)} atoms", f"{len(tm)} atom types", ""]
    lines += [f"0.0 {c[0, 0]:.{b}f} xlo xhi", f"0.0 {c[1, 1]:.{b}f} ylo yhi", f"0.0 {c[2, 2]:.{b}f} zlo zhi"]
    if abs(c[1, 0]) + abs(c[2, 0]) + abs(c[2, 1]) > 0:
        lines.append(f"{c[1, 0]:.{b}f} {c[2, 0]:.{b}f} {c[2, 1]:.{b}f} xy xz yz")
    if masses:
        lines += ["", "Masses", ""] + [f"{t} {ATOMIC_MASSES[e]} # {e}" for t, e in sorted(tm.items())]
    lines += ["", "Atoms # atomic", ""]
    d = digits
    for k, (s, p) in enumerate(zip(symbols, atoms.positions, strict=True), start=1):
        lines.append(f"{k} {inv[s]} {p[0]:.{d}f} {p[1]:.{d}f} {p[2]:.{d}f}")
    return "\n".join(lines) + "\n"


def write_lammps_data(path: str | Path, atoms: Atoms, type_map: Mapping[int, str] | None = None,
                      **kw: object) -> Path:
    """Write :func:`format_lammps_data` to ``path`` atomically; returns the path."""
    from ..util import atomic_write_text

    atomic_write_text(path, format_lammps_data(atoms, type_map, **kw))  # type: ignore[arg-type]
    return Path(path)


#: Per-atom stress columns written by :mod:`bondml.md.compress`, already in GPa (Voigt order).
STRESS_GPA_COLUMNS: tuple[str, ...] = ("v_sxx", "v_syy", "v_szz", "v_sxy", "v_sxz", "v_syz")
#: Largest mass difference (amu) accepted when mapping atom types to elements by mass.
MASS_TOLERANCE = 0.5
#: 1 GPa in bar.
BAR_PER_GPA = 1.0e4


@dataclass
class Frame:
    """One snapshot: atoms (ids sorted, cell at the origin), timestep and extra per-atom columns.

    ``columns`` maps dump column names (e.g. ``c_spa[1]``, ``v_sxx``) to float arrays in atom
    order; ``ids`` are the LAMMPS atom ids (sorted); ``types`` the LAMMPS types (0 when unknown);
    ``origin`` the box origin (Angstrom); ``unwrapped`` whether positions are unwrapped.
    """

    atoms: Atoms
    timestep: int
    ids: np.ndarray
    types: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    unwrapped: bool = False

    def __len__(self) -> int:
        return len(self.atoms)


# --------------------------------------------------------------------------------------------
# types -> elements
# --------------------------------------------------------------------------------------------


def elements_from_masses(masses: Mapping[int, float], path: object = "") -> dict[int, str]:
    """Map LAMMPS atom types to elements by nearest atomic mass (within :data:`MASS_TOLERANCE` amu)."""
    out: dict[int, str] = {}
    for t, m in masses.items():
        el, ref = min(ATOMIC_MASSES.items(), key=lambda kv: abs(kv[1] - m))
        if abs(ref - m) > MASS_TOLERANCE:
            raise UnknownElementError(
                f"{path}: atom type {t} has mass {m:g} amu, not one of {dict(ATOMIC_MASSES)}; "
                "give an explicit type map (e.g. 1=Zr,2=Cu,3=Al)"
            )
        out[int(t)] = el
    return out


def parse_type_map(text: str | Mapping[int, str] | Sequence[str] | None) -> dict[int, str] | None:
    """``'1=Zr,2=Cu,3=Al'`` or ``['Zr','Cu','Al']`` or ``{1: 'Zr'}`` -> ``{1: 'Zr', ...}``."""
    if text is None:
        return None
    if isinstance(text, Mapping):
        return {int(k): str(v) for k, v in text.items()}
    if isinstance(text, str):
        if "=" not in text:
            return {k + 1: e.strip() for k, e in enumerate(text.replace(",", " ").split())}
        out = {}
        for part in text.split(","):
            k, v = part.split("=")
            out[int(k)] = v.strip()
        return out
    return {k + 1: str(e) for k, e in enumerate(text)}


def _symbols_for_types(types: np.ndarray, type_map: Mapping[int, str], path: object) -> list[str]:
    missing = sorted(set(np.unique(types).tolist()) - set(type_map))
    if missing:
        raise InputFileError(path, f"atom types {missing} have no element (type map {dict(type_map)})")
    lut = np.array([type_map.get(t, "X") for t in range(int(types.max()) + 1)], dtype=object)
    return lut[types].tolist()


# --------------------------------------------------------------------------------------------
# data files
# --------------------------------------------------------------------------------------------

_HEADER_KEYS = ("atoms", "atom types", "xlo xhi", "ylo yhi", "zlo zhi", "xy xz yz")


def read_lammps_data(path: str | Path, type_map: Mapping[int, str] | str | None = None) -> Frame:
    """Read a LAMMPS data file (``atom_style atomic``, or ``charge``/``full`` by column count).

    Atom types map to elements through ``type_map`` or else the ``Masses`` section (nearest
    mass). Image flags in the Atoms section unwrap positions. Returns a :class:`Frame` with
    timestep 0 and atoms sorted by id.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    lines = path.read_text(errors="replace").splitlines()
    header: dict[str, list[float]] = {}
    sections: dict[str, list[str]] = {}
    k = 1  # first line is a comment
    current: str | None = None
    while k < len(lines):
        raw = lines[k]
        s = raw.split("#")[0].strip()
        k += 1
        if not s:
            continue
        word = s.split()[0]
        if word[0].isalpha():  # a section title
            current = word
            sections[current] = []
            continue
        if current is None:
            for key in _HEADER_KEYS:
                if s.endswith(key):
                    header[key] = [float(v) for v in s[: -len(key)].split()]
                    break
            continue
        sections[current].append(s)
    try:
        n = int(header["atoms"][0])
        lo_hi = [header[a] for a in ("xlo xhi", "ylo yhi", "zlo zhi")]
    except KeyError as exc:
        raise InputFileError(path, f"header lacks the {exc.args[0]!r} line") from None
    tilt = header.get("xy xz yz", [0.0, 0.0, 0.0])
    rows = sections.get("Atoms")
    if rows is None or len(rows) != n:
        got = 0 if rows is None else len(rows)
        raise InputFileError(path, f"Atoms section has {got} lines, header says {n} atoms")
    masses = {int(r.split()[0]): float(r.split()[1]) for r in sections.get("Masses", [])}
    tm = parse_type_map(type_map) if type_map is not None else None
    try:
        table = np.array([r.split() for r in rows], dtype=float)
    except ValueError:
        raise InputFileError(path, "Atoms section has rows of different lengths or non-numbers") from None
    ncol = table.shape[1]
    # atomic: id type x y z [ix iy iz]; charge: id type q x y z [..]; full: id mol type q x y z [..]
    layouts = {5: (1, 2), 8: (1, 2), 6: (1, 3), 9: (1, 3), 7: (2, 4), 10: (2, 4)}
    if ncol not in layouts:
        raise InputFileError(path, f"cannot read an Atoms section with {ncol} columns")
    tcol, pcol = layouts[ncol]
    ids = table[:, 0].astype(np.int64)
    types = table[:, tcol].astype(np.int64)
    pos = table[:, pcol : pcol + 3]
    image = table[:, pcol + 3 : pcol + 6].astype(np.int64) if ncol in (8, 9, 10) else None
    origin = np.array([lo_hi[0][0], lo_hi[1][0], lo_hi[2][0]])
    cell = np.array(
        [
            [lo_hi[0][1] - lo_hi[0][0], 0.0, 0.0],
            [tilt[0], lo_hi[1][1] - lo_hi[1][0], 0.0],
            [tilt[1], tilt[2], lo_hi[2][1] - lo_hi[2][0]],
        ]
    )
    if tm is None:
        if not masses:
            raise InputFileError(path, "no Masses section: give an explicit type map")
        tm = elements_from_masses(masses, path)
    order = np.argsort(ids, kind="stable")
    ids, types, pos = ids[order], types[order], pos[order] - origin
    if image is not None:
        pos = pos + image[order] @ cell
    atoms = Atoms(symbols=_symbols_for_types(types, tm, path), positions=pos, cell=cell, pbc=True)
    return Frame(atoms=atoms, timestep=0, ids=ids, types=types, origin=origin, unwrapped=image is not None)


# --------------------------------------------------------------------------------------------
# custom dumps
# --------------------------------------------------------------------------------------------

_POSITION_SETS = (
    (("xu", "yu", "zu"), False, True),
    (("xsu", "ysu", "zsu"), True, True),
    (("x", "y", "z"), False, False),
    (("xs", "ys", "zs"), True, False),
)


def _box_from_bounds(lines: list[str], triclinic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cell (rows a, b, c) and origin from the three BOX BOUNDS lines (LAMMPS manual, Howto triclinic)."""
    v = [list(map(float, ln.split())) for ln in lines]
    if triclinic:
        (xlb, xhb, xy), (ylb, yhb, xz), (zlo, zhi, yz) = v
        xlo = xlb - min(0.0, xy, xz, xy + xz)
        xhi = xhb - max(0.0, xy, xz, xy + xz)
        ylo = ylb - min(0.0, yz)
        yhi = yhb - max(0.0, yz)
    else:
        (xlo, xhi), (ylo, yhi), (zlo, zhi) = (r[:2] for r in v)
        xy = xz = yz = 0.0
    cell = np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]])
    return cell, np.array([xlo, ylo, zlo])


def _read_exact(fh: io.TextIOBase, n: int, path: object, what: str) -> list[str]:
    out = []
    for _ in range(n):
        line = fh.readline()
        if not line:
            raise InputFileError(path, f"file ends inside {what} (truncated?)")
        out.append(line)
    return out


def iter_dump(
    path: str | Path,
    type_map: Mapping[int, str] | str | None = None,
    unwrap: bool = True,
    n_atoms: int | None = None,
) -> Iterator[Frame]:
    """Stream the frames of a LAMMPS custom dump (text), one :class:`Frame` at a time.

    Needs ``id``, ``type`` or ``element``, and one position set (``x y z``, ``xs ys zs``,
    ``xu yu zu`` or ``xsu ysu zsu``). Every other column is returned in ``Frame.columns``.
    Types map to elements through ``type_map`` (default: the study's 1 Zr, 2 Cu, 3 Al) unless an
    ``element`` column is present. Every frame must have the same number of atoms (``n_atoms``,
    or that of the first frame). ``unwrap`` adds ``ix iy iz`` @ cell to wrapped positions.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    tm = (parse_type_map(type_map) if type_map is not None else None) or dict(STUDY_TYPE_MAP)
    with open(path, encoding="utf-8", errors="replace") as fh:
        frame_no = 0
        while True:
            line = fh.readline()
            if not line:
                return
            if not line.strip():
                continue
            if not line.startswith("ITEM: TIMESTEP"):
                raise InputFileError(path, f"frame {frame_no}: expected 'ITEM: TIMESTEP', got {line.strip()[:40]!r}")
            frame = _read_frame_body(fh, path, frame_no, tm, unwrap)
            if n_atoms is None:
                n_atoms = len(frame)
            elif len(frame) != n_atoms:
                raise InputFileError(
                    path, f"frame {frame_no} (step {frame.timestep}) has {len(frame)} atoms, expected {n_atoms}"
                )
            yield frame
            frame_no += 1


def _read_frame_body(
    fh: io.TextIOBase, path: Path, frame_no: int, tm: Mapping[int, str], unwrap: bool
) -> Frame:
    where = f"frame {frame_no}"
    try:
        step = int(_read_exact(fh, 1, path, where)[0].split()[0])
        item = fh.readline()
        if not item.startswith("ITEM: NUMBER OF ATOMS"):
            raise InputFileError(path, f"{where}: expected 'ITEM: NUMBER OF ATOMS'")
        n = int(_read_exact(fh, 1, path, where)[0])
        item = fh.readline()
        if not item.startswith("ITEM: BOX BOUNDS"):
            raise InputFileError(path, f"{where}: expected 'ITEM: BOX BOUNDS'")
        triclinic = "xy" in item.split()
        cell, origin = _box_from_bounds(_read_exact(fh, 3, path, where), triclinic)
    except ValueError:
        raise InputFileError(path, f"{where}: cannot read the header numbers") from None
    item = fh.readline()
    if not item.startswith("ITEM: ATOMS"):
        raise InputFileError(path, f"{where}: expected 'ITEM: ATOMS'")
    names = item.split()[2:]
    body = _read_exact(fh, n, path, f"{where} atoms")
    tokens = np.array("".join(body).split(), dtype=object)
    if tokens.size != n * len(names):
        raise InputFileError(path, f"{where}: {tokens.size} values for {n} atoms x {len(names)} columns")
    table = tokens.reshape(n, len(names))
    col = {c: k for k, c in enumerate(names)}
    if "id" not in col:
        raise InputFileError(path, f"{where}: dump has no 'id' column (columns: {' '.join(names)})")
    if "type" not in col and "element" not in col:
        raise InputFileError(path, f"{where}: dump has neither 'type' nor 'element' column")
    pos_set = next((p for p in _POSITION_SETS if all(c in col for c in p[0])), None)
    if pos_set is None:
        raise InputFileError(path, f"{where}: dump has no position columns (x y z, xs ys zs, xu yu zu or xsu ysu zsu)")
    (cx, cy, cz), scaled, is_unwrapped = pos_set
    try:
        ids = table[:, col["id"]].astype(np.int64)
        order = np.argsort(ids, kind="stable")
        table = table[order]
        ids = ids[order]
        types = table[:, col["type"]].astype(np.int64) if "type" in col else np.zeros(n, np.int64)
        pos = table[:, [col[cx], col[cy], col[cz]]].astype(float)
        used = {"id", "type", "element", cx, cy, cz}
        image = None
        if all(c in col for c in ("ix", "iy", "iz")):
            image = table[:, [col["ix"], col["iy"], col["iz"]]].astype(np.int64)
            used |= {"ix", "iy", "iz"}
        extra = {c: table[:, k].astype(float) for c, k in col.items() if c not in used}
    except ValueError:
        raise InputFileError(path, f"{where}: non-numeric value in the atom table") from None
    if np.unique(ids).size != n:
        raise InputFileError(path, f"{where}: duplicate atom ids")
    pos = pos @ cell if scaled else pos - origin
    if unwrap and image is not None and not is_unwrapped:
        pos = pos + image @ cell
        is_unwrapped = True
    if "element" in col:
        symbols = table[:, col["element"]].astype(str).tolist()
    else:
        symbols = _symbols_for_types(types, tm, path)
    atoms = Atoms(symbols=symbols, positions=pos, cell=cell, pbc=True)
    if image is not None:
        extra.update({"ix": image[:, 0].astype(float), "iy": image[:, 1].astype(float),
                      "iz": image[:, 2].astype(float)})
    return Frame(atoms=atoms, timestep=step, ids=ids, types=types, columns=extra, origin=origin, unwrapped=is_unwrapped)


def _box_lines(cell: np.ndarray, origin: np.ndarray) -> list[str]:
    """BOX BOUNDS item + 3 lines for a LAMMPS-shaped (lower-triangular) cell."""
    c = np.asarray(cell, float)
    if abs(c[0, 1]) > 1e-9 or abs(c[0, 2]) > 1e-9 or abs(c[1, 2]) > 1e-9:
        raise InputFileError("dump", "cell is not in LAMMPS' lower-triangular form (a along x, b in xy)")
    xlo, ylo, zlo = origin
    lx, ly, lz = c[0, 0], c[1, 1], c[2, 2]
    xy, xz, yz = c[1, 0], c[2, 0], c[2, 1]
    if abs(xy) + abs(xz) + abs(yz) < 1e-12:
        return [
            "ITEM: BOX BOUNDS pp pp pp",
            f"{xlo:.10g} {xlo + lx:.10g}",
            f"{ylo:.10g} {ylo + ly:.10g}",
            f"{zlo:.10g} {zlo + lz:.10g}",
        ]
    xlb = xlo + min(0.0, xy, xz, xy + xz)
    xhb = xlo + lx + max(0.0, xy, xz, xy + xz)
    ylb = ylo + min(0.0, yz)
    yhb = ylo + ly + max(0.0, yz)
    return [
        "ITEM: BOX BOUNDS xy xz yz pp pp pp",
        f"{xlb:.10g} {xhb:.10g} {xy:.10g}",
        f"{ylb:.10g} {yhb:.10g} {xz:.10g}",
        f"{zlo:.10g} {zlo + lz:.10g} {yz:.10g}",
    ]


def format_dump_frame(
    atoms: Atoms,
    timestep: int = 0,
    columns: Mapping[str, np.ndarray] | None = None,
    ids: np.ndarray | None = None,
    types: np.ndarray | None = None,
    type_map: Mapping[int, str] | None = None,
    origin: np.ndarray | None = None,
    image: np.ndarray | None = None,
) -> str:
    """One frame of a LAMMPS custom dump as text: ``id type element x y z [ix iy iz] <columns>``.

    ``columns`` adds per-atom float columns (e.g. ``sum_micohp`` in eV, ``v_sxx`` in GPa).
    Types default to the order of ``type_map`` (default 1 Zr, 2 Cu, 3 Al).
    """
    n = len(atoms)
    tm = dict(type_map) if type_map is not None else dict(STUDY_TYPE_MAP)
    inv = {e: t for t, e in tm.items()}
    sym = atoms.get_chemical_symbols()
    if types is None:
        try:
            types = np.array([inv[s] for s in sym], dtype=np.int64)
        except KeyError as exc:
            raise UnknownElementError(f"element {exc.args[0]!r} has no LAMMPS type in {tm}") from None
    ids = np.arange(1, n + 1) if ids is None else np.asarray(ids)
    origin = np.zeros(3) if origin is None else np.asarray(origin, float)
    pos = atoms.positions + origin
    cols = dict(columns or {})
    names = ["id", "type", "element", "x", "y", "z"]
    if image is not None:
        names += ["ix", "iy", "iz"]
    names += list(cols)
    head = ["ITEM: TIMESTEP", str(int(timestep)), "ITEM: NUMBER OF ATOMS", str(n)]
    head += _box_lines(atoms.cell.array, origin)
    head.append("ITEM: ATOMS " + " ".join(names))
    out = io.StringIO()
    out.write("\n".join(head) + "\n")
    for k in range(n):
        row = f"{ids[k]} {types[k]} {sym[k]} {pos[k, 0]:.8f} {pos[k, 1]:.8f} {pos[k, 2]:.8f}"
        if image is not None:
            row += f" {image[k, 0]} {image[k, 1]} {image[k, 2]}"
        for v in cols.values():
            row += f" {float(v[k]):.8g}"
        out.write(row + "\n")
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# any structure or trajectory file
# --------------------------------------------------------------------------------------------


def sniff_format(path: str | Path) -> str:
    """``'lammps-dump'``, ``'lammps-data'`` or ``'ase'`` (anything ``ase.io.iread`` reads)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = [fh.readline() for _ in range(40)]
    if head[0].startswith("ITEM: TIMESTEP"):
        return "lammps-dump"
    if any(ln.strip().endswith("xlo xhi") for ln in head) and any(ln.strip().endswith("atoms") for ln in head):
        return "lammps-data"
    return "ase"


def iter_frames(
    path: str | Path, type_map: Mapping[int, str] | str | None = None, fmt: str | None = None
) -> Iterator[Frame]:
    """Stream the frames of any supported structure or trajectory file (one frame for a data file)."""
    path = Path(path)
    fmt = fmt or sniff_format(path)
    if fmt == "lammps-dump":
        yield from iter_dump(path, type_map=type_map)
    elif fmt == "lammps-data":
        yield read_lammps_data(path, type_map=type_map)
    else:
        yield from _iter_ase(path)


def _iter_ase(path: Path) -> Iterator[Frame]:
    from ase.io import iread

    n0: int | None = None
    try:
        for k, a in enumerate(iread(str(path), index=":")):
            if n0 is None:
                n0 = len(a)
            elif len(a) != n0:
                raise InputFileError(path, f"frame {k} has {len(a)} atoms, expected {n0}")
            if not a.pbc.all() or a.cell.volume < 1e-9:
                raise InputFileError(path, f"frame {k}: no periodic cell")
            cols = {
                key: np.asarray(v, float)
                for key, v in a.arrays.items()
                if key not in ("numbers", "positions") and np.asarray(v).ndim == 1 and np.asarray(v).dtype.kind in "fi"
            }
            yield Frame(
                atoms=Atoms(a.symbols, positions=a.positions, cell=a.cell, pbc=True),
                timestep=int(a.info.get("timestep", k)),
                ids=np.arange(1, len(a) + 1),
                types=np.zeros(len(a), np.int64),
                columns=cols,
            )
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - ase raises many types
        raise InputFileError(path, f"cannot read with ase.io ({type(exc).__name__}: {exc})") from None


def per_atom_stress_gpa(frame: Frame) -> np.ndarray | None:
    """Per-atom stress (n, 6; xx yy zz xy xz yz; GPa, LAMMPS sign: negative = compressive).

    Uses the GPa columns of :mod:`bondml.md.compress` (``v_sxx``...) when present; else converts
    six ``c_*[1..6]`` columns of ``compute stress/atom`` (bar*Angstrom^3) by dividing by the mean
    atomic volume V_cell/N (a Voronoi-free estimate) and by 1e4 bar/GPa. ``None`` when absent.
    The per-atom mean of this array equals LAMMPS' ``-pxx`` ... (global stress, GPa).
    """
    c = frame.columns
    if all(k in c for k in STRESS_GPA_COLUMNS):
        return np.column_stack([c[k] for k in STRESS_GPA_COLUMNS])
    for prefix in sorted({k.split("[")[0] for k in c if k.endswith("]")}):
        keys = [f"{prefix}[{m}]" for m in range(1, 7)]
        if all(k in c for k in keys):
            v_atom = frame.atoms.cell.volume / len(frame)
            return np.column_stack([c[k] for k in keys]) / v_atom / BAR_PER_GPA
    return None
