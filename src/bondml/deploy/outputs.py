"""What a deployment run writes, and how to read it back.

Layout of a run folder ``<out>``:

* ``bonds/frame=<k>/part-0.parquet``: one row per bond (hive-partitioned by frame): ``strain``,
  ``timestep``, ``i``, ``j`` (0-based atom rows, ids sorted), ``element_i``, ``element_j``,
  ``type``, ``shift_x/y/z`` (bond vector ``r_j + shift @ cell - r_i``; LOBSTER translation is
  ``-shift``), ``distance`` (Angstrom), ``minus_icohp`` and ``std`` (eV), ``fallback``,
  ``out_of_domain`` (bool).
* ``peratom/frame=<k>/part-0.parquet`` and ``peratom/frame_<k>.xyz`` (extended XYZ that OVITO
  and ASE read): per atom ``sum_micohp`` (eV, sum of -ICOHP over its bonds), ``coordination``,
  ``stress`` (GPa, xx yy zz xy xz yz, LAMMPS sign) and ``pressure`` (GPa, -trace/3) when the
  input has per-atom stress.
  In the ext-xyz the stress components are named columns ``sxx_gpa syy_gpa szz_gpa sxy_gpa
  sxz_gpa syz_gpa`` (OVITO shows them by name).
* ``icohplist/frame_<k>.ICOHPLIST.lobster`` on request (LOBSTER sign: ICOHP = -(-ICOHP)).
* ``ovito/frame_<k>.data`` + ``ovito/frame_<k>.bonds.dump`` on request, for OVITO: a LAMMPS data
  file (``atom_style bond``) with the bond topology (``Bonds``, bond types named by ``Bond Type
  Labels`` such as ``Cu-Ni``) and a LAMMPS *dump local* file with one row per bond carrying the
  per-bond values (``c_minus_icohp``, ``c_std``, ``c_distance``). LAMMPS data files have no
  place for a per-bond float, and OVITO's extended-XYZ reader reads no bonds; OVITO reads bond
  properties from dump local files through its *Load trajectory* modifier (see
  docs/formats.md). Self-image bonds (an atom with its own periodic image) cannot be written as
  LAMMPS topology and are left out of these two files.
* ``manifest.json``: run key (input + model + settings hash), completed frames with metadata.
* ``summary.json``: ``frames``, ``bonds`` (per-type counts in the first frame),
  ``seconds_per_frame`` and more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from ase import Atoms

from ..core.table import BondTable
from ..io.lobster import write_icohplist
from ..structure.bonds import Bonds
from ..util import atomic_write_bytes, atomic_write_text

STRESS_NAMES = ("sxx", "syy", "szz", "sxy", "sxz", "syz")


#: Prediction columns of a frame, aligned with its bonds (``BondModel.predict_bonds``' keys).
PRED_COLUMNS = ("minus_icohp", "std", "fallback", "out_of_domain")


def prediction_table(bonds: Bonds, pred: Mapping[str, np.ndarray],
                     meta: Mapping[str, Any] | None = None) -> BondTable:
    """Bonds and their predictions as one :class:`~bondml.core.table.BondTable`.

    Parameters
    ----------
    bonds : Bonds
        n bonds of one structure.
    pred : mapping
        ``minus_icohp``, ``std`` (eV, (n,)), ``fallback``, ``out_of_domain`` (bool, (n,)).
    meta : mapping, optional
        Table metadata (frame, timestep, ...).

    Returns
    -------
    BondTable
        Columns ``i``, ``j``, ``bond_type``, ``shift`` (n, 3), ``distance`` (Angstrom) and the
        prediction columns; ``ValueError`` when their lengths differ.
    """
    cols = {"i": bonds.i, "j": bonds.j, "bond_type": bonds.type, "shift": bonds.shift, "distance": bonds.distance}
    cols.update({k: pred[k] for k in PRED_COLUMNS})
    return BondTable(cols, meta or {})


@dataclass(frozen=True)
class FrameResult:
    """Everything inferred for one frame: the atoms, and its bonds with their predictions as one
    :class:`~bondml.core.table.BondTable` (:attr:`table`; ``bonds`` and ``pred`` are its inputs)."""

    frame: int
    timestep: int
    strain: float
    atoms: Atoms
    bonds: Bonds
    pred: dict[str, np.ndarray]
    stress: np.ndarray | None  # (n_atoms, 6) GPa

    @cached_property
    def table(self) -> BondTable:
        """Bonds + predictions (:func:`prediction_table`), with ``frame``/``timestep``/``strain`` in ``meta``."""
        return prediction_table(self.bonds, self.pred,
                                {"frame": self.frame, "timestep": self.timestep, "strain": self.strain})

    def __len__(self) -> int:
        return len(self.table)

    def counts(self) -> dict[str, int]:
        """Bonds per type (every type of the study, zeros included)."""
        return self.table.counts()


def bonds_table(r: FrameResult) -> pa.Table:
    """The per-bond Arrow table of one frame (without the partition column ``frame``)."""
    sym = np.array(r.atoms.get_chemical_symbols())
    b = r.table
    n = len(b)
    return pa.table(
        {
            "strain": pa.array(np.full(n, r.strain), pa.float64()),
            "timestep": pa.array(np.full(n, r.timestep), pa.int64()),
            "i": pa.array(b.i, pa.int32()),
            "j": pa.array(b.j, pa.int32()),
            "element_i": pa.array(sym[b.i].tolist(), pa.string()).dictionary_encode(),
            "element_j": pa.array(sym[b.j].tolist(), pa.string()).dictionary_encode(),
            "type": pa.array(b.bond_type.astype(str).tolist(), pa.string()).dictionary_encode(),
            "shift_x": pa.array(b.shift[:, 0], pa.int8()),
            "shift_y": pa.array(b.shift[:, 1], pa.int8()),
            "shift_z": pa.array(b.shift[:, 2], pa.int8()),
            "distance": pa.array(b.distance, pa.float32()),
            "minus_icohp": pa.array(b.minus_icohp, pa.float32()),
            "std": pa.array(b.std, pa.float32()),
            "fallback": pa.array(b.fallback, pa.bool_()),
            "out_of_domain": pa.array(b.out_of_domain, pa.bool_()),
        }
    )


def per_atom_values(n_atoms: int, i: np.ndarray, j: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-atom sum of ``value`` over the atom's bonds (each bond counts for both ends) and coordination.

    A self-image bond (i == j) counts twice for that atom, as it has two such neighbours.
    """
    s = np.bincount(i, weights=value, minlength=n_atoms) + np.bincount(j, weights=value, minlength=n_atoms)
    c = np.bincount(i, minlength=n_atoms) + np.bincount(j, minlength=n_atoms)
    return s, c.astype(np.int64)


def peratom_table(r: FrameResult) -> pa.Table:
    """Per-atom table: element, x y z (Angstrom), sum_micohp (eV), coordination, stress (GPa)."""
    n = len(r.atoms)
    t = r.table
    s, c = per_atom_values(n, t.i, t.j, np.nan_to_num(t.minus_icohp))
    cols: dict[str, object] = {
        "atom": pa.array(np.arange(n), pa.int32()),
        "element": pa.array(r.atoms.get_chemical_symbols(), pa.string()).dictionary_encode(),
        "x": r.atoms.positions[:, 0],
        "y": r.atoms.positions[:, 1],
        "z": r.atoms.positions[:, 2],
        "sum_micohp": s,
        "coordination": pa.array(c, pa.int32()),
        "strain": np.full(n, r.strain),
    }
    if r.stress is not None:
        for k, name in enumerate(STRESS_NAMES):
            cols[name] = r.stress[:, k]
        cols["pressure"] = -r.stress[:, :3].sum(axis=1) / 3.0
    return pa.table(cols)


def _parquet_bytes(t: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(t, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def frame_dir(root: Path, kind: str, frame: int) -> Path:
    """``root/kind/frame=<frame>`` (hive partition)."""
    return root / kind / f"frame={frame}"


def ovito_files(r: FrameResult) -> tuple[str, str]:
    """LAMMPS data file (topology, ``atom_style bond``) and LAMMPS dump local file (per-bond
    ``minus_icohp``/``std`` in eV, ``distance`` in Angstrom) of one frame, as texts.

    The cell is rotated to LAMMPS' convention (a along x, b in the xy plane) with ase's
    ``Prism``, positions with it; atom ids are 1-based rows, bond ids 1-based rows of the kept
    bonds (every bond except self-image ones), in the same order in both files.
    """
    from ase.calculators.lammps import Prism
    from ase.data import atomic_masses, atomic_numbers

    from ..chemistry import types_in_order

    sym = np.array(r.atoms.get_chemical_symbols())
    els = sorted(set(sym.tolist()), key=lambda e: -atomic_numbers[e])
    etype = {e: k + 1 for k, e in enumerate(els)}
    b = r.table
    bt = b.bond_type.astype(str)
    keep = np.flatnonzero(b.i != b.j)
    btypes = list(types_in_order(np.unique(bt).tolist()))
    btype = {t: k + 1 for k, t in enumerate(btypes)}
    prism = Prism(np.asarray(r.atoms.cell.array))
    xhi, yhi, zhi, xy, xz, yz = prism.get_lammps_prism()
    pos = prism.vector_to_lammps(np.asarray(r.atoms.positions), wrap=True)
    head = [f"LAMMPS data file: bondml bonds of frame {r.frame} (timestep {r.timestep}; per-bond values in "
            f"frame_{r.frame:05d}.bonds.dump)", "",
            f"{len(sym)} atoms", f"{len(els)} atom types", f"{keep.size} bonds", f"{len(btypes)} bond types", "",
            f"0.0 {xhi:.10f} xlo xhi", f"0.0 {yhi:.10f} ylo yhi", f"0.0 {zhi:.10f} zlo zhi"]
    if prism.is_skewed():
        head.append(f"{xy:.10f} {xz:.10f} {yz:.10f} xy xz yz")
    head += ["", "Atom Type Labels", ""] + [f"{etype[e]} {e}" for e in els]
    head += ["", "Bond Type Labels", ""] + [f"{btype[t]} {t}" for t in btypes]
    head += ["", "Masses", ""] + [f"{etype[e]} {atomic_masses[atomic_numbers[e]]:.4f}  # {e}" for e in els]
    head += ["", "Atoms  # bond", ""]
    types = np.array([etype[e] for e in sym])
    atoms_lines = [f"{k + 1} 1 {types[k]} {pos[k, 0]:.8f} {pos[k, 1]:.8f} {pos[k, 2]:.8f}" for k in range(len(sym))]
    bond_lines = [f"{n + 1} {btype[bt[k]]} {b.i[k] + 1} {b.j[k] + 1}" for n, k in enumerate(keep)]
    data = "\n".join(head + atoms_lines + ["", "Bonds", ""] + bond_lines) + "\n"
    y = np.asarray(b.minus_icohp, float)
    sd = np.asarray(b.std, float)
    bounds = [(min(0.0, xy, xz, xy + xz), xhi + max(0.0, xy, xz, xy + xz), xy),
              (min(0.0, yz), yhi + max(0.0, yz), xz), (0.0, zhi, yz)]
    dump = ["ITEM: TIMESTEP", str(r.timestep), "ITEM: NUMBER OF BONDS", str(keep.size),
            "ITEM: BOX BOUNDS xy xz yz pp pp pp",
            *[f"{a:.10f} {c:.10f} {t:.10f}" for a, c, t in bounds],
            "ITEM: BONDS index c_batom1 c_batom2 c_btype c_minus_icohp c_std c_distance"]
    dump += [f"{n + 1} {b.i[k] + 1} {b.j[k] + 1} {btype[bt[k]]} {y[k]:.6f} {sd[k]:.6f} {b.distance[k]:.6f}"
             for n, k in enumerate(keep)]
    return data, "\n".join(dump) + "\n"


def write_frame(out: Path, r: FrameResult, icohplist: bool = False, ovito: bool = False) -> dict[str, int]:
    """Write every per-frame file atomically; returns per-type bond counts."""
    atomic_write_bytes(frame_dir(out, "bonds", r.frame) / "part-0.parquet", _parquet_bytes(bonds_table(r)))
    pa_t = peratom_table(r)
    atomic_write_bytes(frame_dir(out, "peratom", r.frame) / "part-0.parquet", _parquet_bytes(pa_t))
    atomic_write_text(out / "peratom" / f"frame_{r.frame:05d}.xyz", peratom_extxyz(r, pa_t))
    if icohplist:
        t = r.table
        write_icohplist(
            out / "icohplist" / f"frame_{r.frame:05d}.ICOHPLIST.lobster",
            r.atoms.get_chemical_symbols(),
            t.i,
            t.j,
            t.distance,
            -t.shift,
            -np.nan_to_num(t.minus_icohp),
        )
    if ovito:
        data, dump = ovito_files(r)
        atomic_write_text(out / "ovito" / f"frame_{r.frame:05d}.data", data)
        atomic_write_text(out / "ovito" / f"frame_{r.frame:05d}.bonds.dump", dump)
    return r.counts()


def peratom_extxyz(r: FrameResult, t: pa.Table) -> str:
    """Extended XYZ text of a frame with per-atom columns (ASE and OVITO read it)."""
    import io

    from ase.io import write

    a = Atoms(r.atoms.get_chemical_symbols(), positions=r.atoms.positions, cell=r.atoms.cell, pbc=True)
    a.new_array("sum_micohp", t.column("sum_micohp").to_numpy())
    a.new_array("coordination", t.column("coordination").to_numpy().astype(np.int64))
    if r.stress is not None:
        for k, name in enumerate(STRESS_NAMES):
            a.new_array(f"{name}_gpa", np.ascontiguousarray(r.stress[:, k]))
        a.new_array("pressure_gpa", t.column("pressure").to_numpy())
    a.info.update({"frame": r.frame, "timestep": r.timestep, "strain": r.strain})
    buf = io.StringIO()
    write(buf, a, format="extxyz")
    return buf.getvalue()


def read_bonds(out: str | Path, frames: list[int] | None = None, columns: list[str] | None = None) -> pa.Table:
    """Bonds of a run (all or some frames) as one Arrow table with a ``frame`` column."""
    return _read_kind(Path(out), "bonds", frames, columns)


def read_peratom(out: str | Path, frames: list[int] | None = None, columns: list[str] | None = None) -> pa.Table:
    """Per-atom values of a run (all or some frames) with a ``frame`` column."""
    return _read_kind(Path(out), "peratom", frames, columns)


def _read_kind(out: Path, kind: str, frames: list[int] | None, columns: list[str] | None) -> pa.Table:
    from ..errors import InputFileError

    root = out / kind
    if not root.is_dir():
        raise InputFileError(root, "no per-frame tables here (not a bondml predict output?)")
    avail = sorted(int(p.name.split("=")[1]) for p in root.glob("frame=*") if (p / "part-0.parquet").is_file())
    want = avail if frames is None else [f for f in frames if f in set(avail)]
    parts = []
    for f in want:
        t = pq.read_table(frame_dir(out, kind, f) / "part-0.parquet", columns=columns)
        parts.append(t.append_column("frame", pa.array(np.full(t.num_rows, f), pa.int32())))
    if not parts:
        raise InputFileError(root, "no frames")
    return pa.concat_tables(parts, promote_options="permissive")


def frames_available(out: str | Path, kind: str = "bonds") -> list[int]:
    """Frame indices with a complete table of ``kind``."""
    root = Path(out) / kind
    return sorted(int(p.name.split("=")[1]) for p in root.glob("frame=*") if (p / "part-0.parquet").is_file())
