"""The original GETL directory convention and the per-sub-run status vocabulary.

Layout: ``<root>/ML/big-data-full/<NC>/c/md/lammps/100/<ID_RUN>/2000/<SUB_RUN>/`` holding
``<NC>.xyz``, ``<NC>.scf.in``/``<NC>.scf.out`` (pw.x), ``lobsterin``, ``lobsterout`` and
``ICOHPLIST.lobster``. Statuses are derived from the files themselves, never from marker files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputFileError
from ..types import CellId
from .espresso import read_pw_output
from .lobster import read_icohplist, read_lobsterout
from .runs import TARGET_FILES, RunFiles, study_files
from .vasp import read_vasp_output

#: Path pieces of the original convention.
BIG_DATA = ("ML", "big-data-full")
MD_PATH = ("c", "md", "lammps", "100")
QUENCH_DIR = "2000"

_NC_RE = re.compile(r"^(?:[A-Z][a-z]?\d+(?:\.\d+)?)+$")

#: Status when no DFT output exists yet (a generated cell waiting for its jobs).
STATUS_NEW = "NEW"


def run_path(root: str | Path, nc: str, run: int) -> Path:
    """``<root>/ML/big-data-full/<NC>/c/md/lammps/100/<run>``."""
    return Path(root).joinpath(*BIG_DATA, nc, *MD_PATH, str(run))


def subrun_path(root: str | Path, cell: CellId) -> Path:
    """Folder of one sub-run in the original layout."""
    return run_path(root, cell.nc, cell.run) / QUENCH_DIR / str(cell.sub_run)


def _base(root: Path) -> Path:
    """Accept either the project root holding ``ML/`` or ``ML/big-data-full`` itself."""
    root = Path(root)
    if (root / BIG_DATA[0] / BIG_DATA[1]).is_dir():
        return root / BIG_DATA[0] / BIG_DATA[1]
    if root.name == BIG_DATA[1]:
        return root
    if (root / BIG_DATA[1]).is_dir():
        return root / BIG_DATA[1]
    raise InputFileError(root, "no ML/big-data-full folder here (not a GETL tree)")


def discover(root: str | Path) -> list[CellId]:
    """Every (composition, run, sub-run) folder of a GETL tree, sorted."""
    base = _base(Path(root))
    cells: list[CellId] = []
    for nc_dir in sorted(p for p in base.iterdir() if p.is_dir() and _NC_RE.match(p.name)):
        runs = nc_dir.joinpath(*MD_PATH)
        if not runs.is_dir():
            continue
        for run_dir in (p for p in runs.iterdir() if p.is_dir() and p.name.isdigit()):
            q = run_dir / QUENCH_DIR
            if not q.is_dir():
                continue
            for sub in (p for p in q.iterdir() if p.is_dir() and p.name.isdigit()):
                cells.append(CellId(nc_dir.name, int(run_dir.name), int(sub.name)))
    return sorted(cells)


@dataclass(frozen=True)
class SubRunFiles:
    """Paths of the files of one sub-run (they may not exist)."""

    folder: Path
    nc: str

    @property
    def xyz(self) -> Path:
        return self.folder / f"{self.nc}.xyz"

    @property
    def scf_in(self) -> Path:
        return self.folder / f"{self.nc}.scf.in"

    @property
    def scf_out(self) -> Path:
        return self.folder / f"{self.nc}.scf.out"

    @property
    def lobsterin(self) -> Path:
        return self.folder / "lobsterin"

    @property
    def lobsterout(self) -> Path:
        return self.folder / "lobsterout"

    @property
    def icohplist(self) -> Path:
        return self.folder / "ICOHPLIST.lobster"


@dataclass(frozen=True)
class StatusReport:
    """Status of one sub-run, derived from its files.

    ``status`` is one of the original vocabulary (``bondml.constants.STATUSES``) or ``NEW``;
    ``reason`` is one human line; ``labelled`` tells whether its ICOHPLIST can serve as labels.
    """

    status: str
    reason: str
    scf_converged: bool | None
    lobster_finished: bool | None
    icohp_ok: bool
    n_icohp: int = 0
    details: dict[str, object] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        from ..constants import LABELLED_STATUSES

        return self.status in LABELLED_STATUSES


def classify(folder: str | Path, nc: str | None = None, files: RunFiles | None = None,
             target: str = "icohp") -> StatusReport:
    """Classify a sub-run from its files, with the original status vocabulary.

    * SCF converged and ICOHPLIST complete: ``DONE`` if lobsterout says finished, else
      ``SCF_CONVERGED_LOB_NOT_FINISHED_BUT_ICOHP_OK``.
    * no DFT output but a complete ICOHPLIST and unfinished LOBSTER: ``LOB_NOT_FINISHED_BUT_ICOHP_OK``.
    * SCF converged, ICOHPLIST missing/corrupt: ``SCF_CONVERGED_BUT_NO_ICOHP``.
    * SCF not converged: ``SCF_NOT_CONVERGED`` (an ICOHPLIST exists but is not trusted) or
      ``SCF_NOT_CONVERGED_AND_NO_ICOHP``.
    * nothing ran yet: ``NEW``.

    ``files`` (any layout, see :mod:`bondml.io.runs`) replaces the study's file names; the SCF
    verdict comes from pw.x or VASP (``vasprun.xml``/``OUTCAR``) alike. ``target`` picks the
    pair list (``icohp``: ICOHPLIST, ``icoop``: ICOOPLIST, ``icobi``: ICOBILIST).
    """
    if files is None:
        folder = Path(folder)
        if nc is None:
            xyzs = sorted(folder.glob("*.xyz"))
            nc = xyzs[0].stem if xyzs else folder.name
        files = study_files(folder, nc)
    return classify_files(files, target)


def classify_files(files: RunFiles, target: str = "icohp") -> StatusReport:
    """:func:`classify` for the files of a run in any layout."""
    details: dict[str, object] = {}
    scf_conv: bool | None = None
    code_name = "VASP" if files.code == "vasp" else "pw.x"
    scf_reason = f"no {code_name} output"
    if files.dft_output is not None:
        out = read_vasp_output(files.dft_output) if files.code == "vasp" else read_pw_output(files.dft_output)
        scf_conv = out.converged
        scf_reason = out.reason
        details.update(total_energy_ev=out.total_energy_ev, fermi_energy_ev=out.fermi_energy_ev,
                       scf_wall_time_s=out.wall_time_s)
        if files.code == "vasp":
            details["dft_code"] = "vasp"
    lob_fin: bool | None = None
    n_expected: int | None = None
    if files.lobsterout is not None:
        lo = read_lobsterout(files.lobsterout)
        lob_fin = lo.finished
        n_expected = lo.n_interactions
        details.update(charge_spilling_percent=lo.charge_spilling_percent, lobster_version=lo.version)
    icohp_ok = False
    n_icohp = 0
    list_name = TARGET_FILES[target]
    short = list_name.split(".")[0]
    icohp_reason = f"no {list_name}"
    lst_path = files.pair_list(target)
    if lst_path is not None:
        try:
            n_icohp = len(read_icohplist(lst_path))
            if n_expected is not None and n_icohp != n_expected:
                raise InputFileError(lst_path, f"has {n_icohp} interactions but lobsterout reports "
                                               f"{n_expected} (truncated?)")
            icohp_ok = True
            icohp_reason = f"{short} has {n_icohp} interactions"
        except InputFileError as exc:
            icohp_reason = f"{short} unreadable: {exc.problem}"
            details["icohp_error"] = str(exc)
    if scf_conv is None and not icohp_ok and lob_fin is None:
        return StatusReport(STATUS_NEW, "no DFT output yet", None, None, False, 0, details)
    if scf_conv is False:
        if icohp_ok:
            st = "SCF_NOT_CONVERGED"
            reason = f"{scf_reason}; {icohp_reason} but it is not trusted"
        else:
            st = "SCF_NOT_CONVERGED_AND_NO_ICOHP"
            reason = f"{scf_reason}; {icohp_reason}"
        return StatusReport(st, reason, scf_conv, lob_fin, icohp_ok, n_icohp, details)
    if not icohp_ok:
        lob = "LOBSTER did not finish" if lob_fin is False else (
            "no lobsterout" if lob_fin is None else "LOBSTER finished")
        return StatusReport("SCF_CONVERGED_BUT_NO_ICOHP", f"{scf_reason}; {icohp_reason} ({lob})",
                            scf_conv, lob_fin, False, 0, details)
    if scf_conv is None:
        return StatusReport("LOB_NOT_FINISHED_BUT_ICOHP_OK" if not lob_fin else "DONE",
                            f"no {code_name} output; {icohp_reason}", None, lob_fin, True, n_icohp, details)
    if lob_fin:
        return StatusReport("DONE", f"{scf_reason}; {icohp_reason}", True, True, True, n_icohp, details)
    return StatusReport("SCF_CONVERGED_LOB_NOT_FINISHED_BUT_ICOHP_OK",
                        f"{scf_reason}; LOBSTER did not finish; {icohp_reason}", True, lob_fin, True, n_icohp,
                        details)


def classify_tree(root: str | Path) -> dict[CellId, StatusReport]:
    """Status of every sub-run of a GETL tree."""
    top = tree_root(root)
    return {c: classify(subrun_path(top, c), c.nc) for c in discover(root)}


def tree_root(root: str | Path) -> Path:
    """The folder that holds ``ML/big-data-full`` for a root given either way."""
    base = _base(Path(root))
    return base.parent.parent
