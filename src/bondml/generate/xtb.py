"""Approximate bond labels from GFN1-xTB (tblite), for working without DFT.

Label source ``xtb-gfn1``: never mixed with LOBSTER labels. Labels go to ``ICOHPLIST.xtb``
(LOBSTER's 8-column layout, so the same readers work) next to a marker
``LABEL_SOURCE.xtb.json`` naming the source, the quantity, the settings and the hash of the
structure they belong to. Ingest reads ``ICOHPLIST.lobster`` only unless told otherwise.

Per-bond quantity
-----------------
tblite gives, for a periodic cell, the Gamma-point (k = 0) matrices in the atomic-orbital basis:
density ``P``, overlap ``S`` and core Hamiltonian ``H`` (``save-integrals``). For atoms ``i``
and ``j`` (orbitals mu on i, nu on j):

* ``quantity="cohp"`` (default): ``x_ij = -2 sum_{mu,nu} P_mu,nu H_mu,nu`` in eV, an xTB
  analogue of -ICOHP integrated to the Fermi level (positive = bonding). ``H`` is tblite's core
  Hamiltonian, not the self-consistent one (tblite does not export the latter).
* ``quantity="mayer"``: the Mayer bond index ``sum (PS)_mu,nu (PS)_nu,mu`` (dimensionless);
  equal to tblite's own ``bond-orders`` result (checked: r = 0.99995 on reference sub-run 0).

Periodic images: Gamma-point matrices are lattice sums, ``P(k=0)_mu,nu = sum_T P_mu,nu(T)``, so
``x_ij`` is the sum over every image of the pair. A bond of :func:`find_bonds` is one image
``(i, j, shift)``. When the 1.8-4.2 Angstrom window holds a single image of a pair (always the
case in the study's 100-atom cells, edge >= 9 Angstrom: the next image is >= 5 Angstrom
further), the bond gets ``x_ij`` whole. When it holds several images, ``x_ij`` is split between
them with weights ``exp(-d / image_decay)`` normalised over those images (``image_decay``
0.5 Angstrom by default, a fast decay of the bond order with distance); images beyond the
window are neglected. Bonds of an atom with its own image (``i == j``) cannot be separated from
the on-site block and get NaN (not written as labels).

Agreement with LOBSTER is measured by :func:`compare_with_lobster` (per type Pearson r and RMSE
after a per-type linear fit).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from ..constants import BOND_TYPES, LABEL_WINDOW, LOBSTER_WINDOW
from ..errors import BondmlError, InputFileError, JobError
from ..io.lobster import IcohpList, read_icohplist, write_icohplist
from ..structure.bonds import Bonds, find_bonds, match_pairs
from ..util import atomic_write_json, sha256_arrays

#: Label source name of this labeler.
LABEL_SOURCE = "xtb-gfn1"
#: Label file and marker written into a sub-run folder.
XTB_ICOHPLIST = "ICOHPLIST.xtb"
XTB_MARKER = "LABEL_SOURCE.xtb.json"
QUANTITIES: tuple[str, ...] = ("cohp", "mayer")


@dataclass(frozen=True)
class XtbSettings:
    """tblite settings. ``electronic_temperature_K`` (Fermi smearing, K) helps metals converge;
    ``accuracy`` tblite's numerical accuracy (1 = default); ``max_iter`` SCC cycles;
    ``threads`` OpenMP threads (None: keep the environment's); ``image_decay`` Angstrom."""

    method: str = "GFN1-xTB"
    electronic_temperature_K: float = 300.0  # noqa: N815 - public field (config key); T / K: temperature, kelvin
    accuracy: float = 1.0
    max_iter: int = 250
    quantity: str = "cohp"
    image_decay: float = 0.5
    threads: int | None = None

    def key(self) -> dict:
        """Settings that change the numbers (for cache keys and markers)."""
        d = asdict(self)
        d.pop("threads")
        return d


@dataclass(frozen=True)
class XtbMatrices:
    """Gamma-point matrices of one tblite run (orbital basis; H in Hartree) and its metadata."""

    density: np.ndarray
    overlap: np.ndarray
    hamiltonian: np.ndarray
    orbital_atom: np.ndarray
    energy_ev: float
    wall_time_s: float


@dataclass(frozen=True)
class XtbLabels:
    """xTB strength per bond (``strength``; eV for ``cohp``, dimensionless for ``mayer``)."""

    bonds: Bonds
    strength: np.ndarray
    quantity: str
    energy_ev: float
    wall_time_s: float
    structure_sha256: str
    settings: dict = field(default_factory=dict)


def structure_hash(atoms: Atoms) -> str:
    """Content hash of a structure (symbols, positions, cell, pbc)."""
    return sha256_arrays([np.array(atoms.get_chemical_symbols(), dtype=object),
                          np.round(np.asarray(atoms.positions, float), 8),
                          np.round(np.asarray(atoms.cell.array, float), 8), np.asarray(atoms.pbc)])


def _orbital_atoms(calc_result, n_atoms: int, n_orb: int) -> np.ndarray:
    """Atom index of each orbital. tblite orders orbitals atom by atom; GFN1 gives every Zr, Cu
    and Al 9 functions (s, p, d shells), so the map follows from the orbital count."""
    if n_orb % n_atoms:
        raise BondmlError(f"tblite returned {n_orb} orbitals for {n_atoms} atoms: cannot map orbitals to atoms")
    return np.repeat(np.arange(n_atoms), n_orb // n_atoms)


def run_xtb(atoms: Atoms, settings: XtbSettings = XtbSettings()) -> XtbMatrices:
    """Run tblite on a periodic cell and return its Gamma-point P, S, H (Hartree) and energy (eV).

    Sets ``OMP_NUM_THREADS`` only when ``settings.threads`` is given (the OpenMP runtime reads it
    once per process, so set it before the first tblite call). Raises :class:`JobError` when the
    SCC does not converge or tblite fails.
    """
    from ..interop import as_atoms

    atoms = as_atoms(atoms)
    if settings.threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(settings.threads)
    os.environ.setdefault("OMP_STACKSIZE", "256M")
    from tblite.interface import Calculator

    if not all(atoms.pbc):
        raise BondmlError("the xTB labeler needs a periodic cell (pbc = T T T)")
    t0 = time.perf_counter()
    try:
        calc = Calculator(settings.method, np.asarray(atoms.numbers), np.asarray(atoms.positions) / Bohr,
                          lattice=np.asarray(atoms.cell.array) / Bohr, periodic=np.array([True, True, True]))
        calc.set("save-integrals", 1)
        calc.set("verbosity", 0)
        calc.set("accuracy", settings.accuracy)
        calc.set("max-iter", settings.max_iter)
        calc.set("temperature", settings.electronic_temperature_K * 3.166811563e-6)  # K -> Hartree
        res = calc.singlepoint()
        P = np.asarray(res.get("density-matrix"))
        S = np.asarray(res.get("overlap-matrix"))
        H = np.asarray(res.get("hamiltonian-matrix"))
        energy = float(res.get("energy")) * Hartree
    except Exception as exc:  # tblite raises its own runtime errors (SCC not converged...)
        raise JobError(f"tblite {settings.method} failed: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    if P.ndim == 3:  # spin-resolved density: total = sum of channels
        P = P.sum(axis=0)
    wall = time.perf_counter() - t0
    return XtbMatrices(P, S, H, _orbital_atoms(res, len(atoms), P.shape[0]), energy, wall)


def pair_matrix(m: XtbMatrices, quantity: str = "cohp") -> np.ndarray:
    """Atom-pair matrix (n_atoms x n_atoms) of the chosen quantity (eV for cohp), images summed."""
    if quantity not in QUANTITIES:
        raise BondmlError(f"xTB quantity {quantity!r} is not one of {', '.join(QUANTITIES)}")
    n_atoms = int(m.orbital_atom.max()) + 1
    # orbital -> atom summation matrix A (n_orb x n_atoms): block sums are A.T @ X @ A
    A = np.zeros((m.orbital_atom.size, n_atoms))
    A[np.arange(m.orbital_atom.size), m.orbital_atom] = 1.0
    if quantity == "cohp":
        X = -2.0 * (A.T @ (m.density * m.hamiltonian) @ A) * Hartree
    else:
        PS = m.density @ m.overlap
        X = A.T @ (PS * PS.T) @ A
    return 0.5 * (X + X.T)


def split_over_images(bonds: Bonds, pair_values: np.ndarray, image_decay: float) -> np.ndarray:
    """Per-bond values from per-pair (image-summed) values, see module doc. NaN for i == j."""
    out = pair_values[bonds.i, bonds.j].astype(float)
    w = np.exp(-bonds.distance / image_decay)
    key = bonds.i * (int(bonds.j.max(initial=0)) + 1) + bonds.j
    _, inv = np.unique(key, return_inverse=True)
    norm = np.bincount(inv, weights=w)
    out = out * w / norm[inv]
    out[bonds.i == bonds.j] = np.nan
    return out


def xtb_labels(atoms: Atoms, settings: XtbSettings = XtbSettings(),
               window: tuple[float, float] = LOBSTER_WINDOW,
               matrices: XtbMatrices | None = None) -> XtbLabels:
    """xTB bond strength of every bond of ``atoms`` in ``window`` (Angstrom)."""
    from ..interop import as_atoms

    atoms = as_atoms(atoms)
    m = matrices if matrices is not None else run_xtb(atoms, settings)
    bonds = find_bonds(atoms, window)
    values = split_over_images(bonds, pair_matrix(m, settings.quantity), settings.image_decay)
    return XtbLabels(bonds, values, settings.quantity, m.energy_ev, m.wall_time_s, structure_hash(atoms),
                     settings.key())


# --------------------------------------------------------------------------------------------
# files


def write_xtb_labels(folder: str | Path, atoms: Atoms, labels: XtbLabels, overwrite: bool = False) -> Path:
    """Write ``ICOHPLIST.xtb`` (ICOHP column = -strength, LOBSTER sign) and its marker.

    An existing label file is never replaced unless ``overwrite``. Self-image bonds (NaN) are
    left out. Returns the label file path.
    """
    folder = Path(folder)
    path = folder / XTB_ICOHPLIST
    if path.exists() and not overwrite:
        raise InputFileError(path, "exists already; xTB labels are never overwritten (pass overwrite)")
    keep = np.isfinite(labels.strength)
    b = labels.bonds.select(keep)
    write_icohplist(path, atoms.get_chemical_symbols(), b.i, b.j, b.distance, -b.shift, -labels.strength[keep])
    units = "eV" if labels.quantity == "cohp" else "dimensionless"
    marker = {
        "label_source": LABEL_SOURCE, "approximate": True, "quantity": labels.quantity, "units": units,
        "meaning": "ICOHP column = -(xTB strength); NOT a LOBSTER/DFT -ICOHP",
        "n_bonds": int(keep.sum()), "n_self_image_dropped": int((~keep).sum()),
        "structure_sha256": labels.structure_sha256, "settings": labels.settings,
        "energy_ev": labels.energy_ev, "wall_time_s": round(labels.wall_time_s, 3),
        "label_file": XTB_ICOHPLIST,
    }
    try:
        from tblite import __version__ as tv

        marker["tblite_version"] = tv
    except ImportError:  # pragma: no cover - version attribute missing in some builds
        pass
    atomic_write_json(folder / XTB_MARKER, marker)
    return path


def read_xtb_marker(folder: str | Path) -> dict | None:
    """The xTB label marker of a sub-run folder, or None when absent or unreadable."""
    p = Path(folder) / XTB_MARKER
    if not p.is_file():
        return None
    try:
        d = json.loads(p.read_text())
    except ValueError:
        return None
    return d if d.get("label_source") == LABEL_SOURCE else None


def has_xtb_labels(folder: str | Path, nc: str | None = None) -> bool:
    """True when the folder holds complete xTB labels matching its structure file."""
    folder = Path(folder)
    marker = read_xtb_marker(folder)
    if marker is None or not (folder / XTB_ICOHPLIST).is_file():
        return False
    try:
        lst = read_icohplist(folder / XTB_ICOHPLIST)
    except InputFileError:
        return False
    if len(lst) != marker.get("n_bonds"):
        return False
    if nc is not None and (folder / f"{nc}.xyz").is_file():
        from ase.io import read

        try:
            atoms = read(folder / f"{nc}.xyz")
        except Exception:  # noqa: BLE001 - unreadable structure: labels cannot be trusted
            return False
        return structure_hash(atoms) == marker.get("structure_sha256")
    return True


def label_subrun(folder: str | Path, nc: str, settings: XtbSettings = XtbSettings(),
                 cache_dir: str | Path | None = None) -> str:
    """Label one sub-run folder with xTB unless valid labels exist. Returns ``done``/``skipped``.

    ``cache_dir`` reuses xTB results keyed by content hash (see :func:`xtb_labels_cached`).
    Incomplete or stale label files (no marker, wrong structure hash) are set aside as
    ``ICOHPLIST.xtb.stale-<n>``, never deleted.
    """
    from ase.io import read

    folder = Path(folder)
    if has_xtb_labels(folder, nc):
        return "skipped"
    xyz = folder / f"{nc}.xyz"
    if not xyz.is_file():
        raise InputFileError(xyz, "structure file missing: cannot label")
    for name in (XTB_ICOHPLIST, XTB_MARKER):
        p = folder / name
        if p.exists():
            n = 1
            while p.with_name(f"{name}.stale-{n}").exists():
                n += 1
            p.rename(p.with_name(f"{name}.stale-{n}"))
    atoms = read(xyz)
    write_xtb_labels(folder, atoms, xtb_labels_cached(atoms, settings, cache_dir))
    return "done"


# --------------------------------------------------------------------------------------------
# agreement with LOBSTER


@dataclass(frozen=True)
class TypeAgreement:
    """Agreement of xTB strengths with LOBSTER -ICOHP for one bond type (or ``all``).

    ``pearson_r``; ``slope``/``intercept`` of the least-squares line -ICOHP = a x + b;
    ``rmse_ev`` of that line (eV); ``std_ev`` of the LOBSTER labels (the RMSE of a constant).
    """

    bond_type: str
    n: int
    pearson_r: float
    slope: float
    intercept: float
    rmse_ev: float
    std_ev: float


def _agreement(name: str, x: np.ndarray, y: np.ndarray) -> TypeAgreement:
    n = int(x.size)
    if n < 3 or np.std(x) == 0 or np.std(y) == 0:
        return TypeAgreement(name, n, float("nan"), float("nan"), float("nan"), float("nan"),
                             float(np.std(y)) if n else float("nan"))
    a, b = np.polyfit(x, y, 1)
    rmse = float(np.sqrt(np.mean((a * x + b - y) ** 2)))
    return TypeAgreement(name, n, float(np.corrcoef(x, y)[0, 1]), float(a), float(b), rmse, float(np.std(y)))


def compare_with_lobster(labels: XtbLabels, lobster: IcohpList | str | Path,
                         window: tuple[float, float] = LABEL_WINDOW) -> dict[str, TypeAgreement]:
    """Per bond type agreement of xTB strengths with LOBSTER -ICOHP, plus two aggregates.

    ``all``: one linear fit over every bond (raw xTB scale shared by all types);
    ``all_per_type_fit``: every bond after its own type's linear fit (what a per-type model
    sees; types with fewer than 3 bonds are left out). Keys are bond types as in the paper.

    Bonds are matched by (i, j, shift); only LOBSTER pairs with ``window[0] <= d <= window[1]``
    (the study's label window by default) count. Raises if a LOBSTER pair has no xTB bond.
    """
    if not isinstance(lobster, IcohpList):
        lobster = read_icohplist(lobster)
    m = match_pairs(labels.bonds, lobster.i, lobster.j, lobster.shift, lobster.distance)
    if m.unmatched.size:
        raise BondmlError(f"{m.unmatched.size} LOBSTER pairs have no xTB bond (different structure?)")
    sel = (lobster.distance >= window[0]) & (lobster.distance <= window[1])
    x = labels.strength[m.index[sel]]
    y = lobster.minus_icohp[sel]
    types = labels.bonds.type[m.index[sel]].astype(str)
    ok = np.isfinite(x)
    x, y, types = x[ok], y[ok], types[ok]
    out = {t: _agreement(t, x[types == t], y[types == t]) for t in BOND_TYPES if (types == t).any()}
    out["all"] = _agreement("all", x, y)
    fitted = np.full(x.size, np.nan)
    for t, a in out.items():
        if t != "all" and np.isfinite(a.slope):
            s = types == t
            fitted[s] = a.slope * x[s] + a.intercept
    ok = np.isfinite(fitted)
    per = _agreement("all_per_type_fit", fitted[ok], y[ok])
    out["all_per_type_fit"] = per
    return out


def xtb_labels_cached(atoms: Atoms, settings: XtbSettings = XtbSettings(),
                      cache_dir: str | Path | None = None,
                      window: tuple[float, float] = LOBSTER_WINDOW) -> XtbLabels:
    """:func:`xtb_labels` with the per-pair matrix cached on disk, keyed by content hash.

    The key is the structure hash plus the settings that change the numbers; a cached entry is
    a small ``.npz`` (n_atoms^2 floats). ``cache_dir=None`` computes without caching.
    """
    from ..util import sha256_json

    if cache_dir is None:
        return xtb_labels(atoms, settings, window)
    h = structure_hash(atoms)
    key = sha256_json({"structure": h, "settings": settings.key()})[:24]
    path = Path(cache_dir) / f"xtb-{key}.npz"
    if path.is_file():
        try:
            z = np.load(path)
            pm, energy, wall = z["pair"], float(z["energy_ev"]), float(z["wall_time_s"])
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)
            return xtb_labels_cached(atoms, settings, cache_dir, window)
    else:
        m = run_xtb(atoms, settings)
        pm, energy, wall = pair_matrix(m, settings.quantity), m.energy_ev, m.wall_time_s
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, pair=pm, energy_ev=energy, wall_time_s=wall)
        os.replace(tmp, path)
    bonds = find_bonds(atoms, window)
    values = split_over_images(bonds, pm, settings.image_decay)
    return XtbLabels(bonds, values, settings.quantity, energy, wall, h, settings.key())
