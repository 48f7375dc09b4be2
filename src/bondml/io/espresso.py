"""Quantum ESPRESSO ``pw.x`` output reader (convergence, energies, wall time)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ase.units import Ry

from ..errors import InputFileError

_WALL_RE = re.compile(r"PWSCF\s*:.*?CPU\s+(.*?)\s+WALL")


@dataclass(frozen=True)
class DftOutput:
    """What a DFT code's output says (pw.x, VASP): convergence, energies in eV, time in s."""

    path: str
    converged: bool
    job_done: bool
    n_iterations: int | None
    total_energy_ev: float | None
    fermi_energy_ev: float | None
    wall_time_s: float | None
    n_atoms: int | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.converged


#: pw.x output (the name used by the readers and the job runner).
PwOutput = DftOutput


def _parse_duration(s: str) -> float | None:
    """Parse QE durations such as ``2h 1m``, ``1h55m``, ``12m34.5s``, ``3.21s``, ``1d 2h``."""
    total = 0.0
    found = False
    for val, unit in re.findall(r"([\d.]+)\s*([dhms])", s):
        found = True
        total += float(val) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[unit]
    return total if found else None


def read_pw_output(path: str | Path) -> PwOutput:
    """Parse a pw.x output: SCF convergence, total energy (eV), Fermi energy (eV), wall time (s).

    A missing file raises :class:`InputFileError`; an unfinished or non-converged run is *not* an
    error: it is reported through ``converged=False`` and ``reason``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    text = path.read_text(errors="replace")
    if not text.strip():
        return PwOutput(str(path), False, False, None, None, None, None, None, "empty pw.x output")
    conv = re.findall(r"convergence has been achieved in\s+(\d+)\s+iterations", text)
    not_conv = "convergence NOT achieved" in text
    job_done = "JOB DONE" in text
    energies = re.findall(r"^!\s+total energy\s+=\s+(-?[\d.]+)\s+Ry", text, re.M)
    fermi = re.findall(r"the Fermi energy is\s+(-?[\d.]+)\s+ev", text)
    if not fermi:
        fermi = re.findall(r"highest occupied(?:, lowest unoccupied)? level \(ev\):\s+(-?[\d.]+)", text)
    wall = None
    wm = _WALL_RE.findall(text)
    if wm:
        wall = _parse_duration(wm[-1])
    nat = re.search(r"number of atoms/cell\s*=\s*(\d+)", text)
    iters = re.findall(r"iteration #\s*(\d+)", text)
    converged = bool(conv) and not not_conv
    if converged:
        reason = f"SCF converged in {conv[-1]} iterations"
    elif not_conv:
        reason = "pw.x reports convergence NOT achieved"
    elif iters:
        reason = f"SCF stopped at iteration {iters[-1]} without convergence (killed or still running)"
    else:
        reason = "pw.x output has no SCF iterations (crashed at start?)"
    return PwOutput(
        path=str(path),
        converged=converged,
        job_done=job_done,
        n_iterations=int(conv[-1]) if conv else (int(iters[-1]) if iters else None),
        total_energy_ev=float(energies[-1]) * Ry if energies else None,
        fermi_energy_ev=float(fermi[-1]) if fermi else None,
        wall_time_s=wall,
        n_atoms=int(nat.group(1)) if nat else None,
        reason=reason,
    )
