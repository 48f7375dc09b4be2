"""VASP outputs of a LOBSTER run: convergence, energies and wall time from ``vasprun.xml`` or
``OUTCAR`` (plain or gzip-compressed), with the same fields as the pw.x reader.

A LOBSTER run starts from a static VASP run (NSW = 0). Its SCF is converged when the electronic
loop of the last ionic step stopped before ``NELM`` iterations (the criterion VASP itself and
pymatgen use) and VASP did not write "EDIFF was not reached"; a ``vasprun.xml`` without its
closing ``</modeling>`` tag (VASP killed or still running) is not converged.
"""

from __future__ import annotations

import re
from pathlib import Path

from .espresso import DftOutput
from .lobster import read_text

#: File names looked for, in order of preference.
VASP_OUTPUTS: tuple[str, ...] = ("vasprun.xml", "vasprun.xml.gz", "OUTCAR", "OUTCAR.gz")
VASP_STRUCTURES: tuple[str, ...] = ("POSCAR", "CONTCAR", "POSCAR.gz", "CONTCAR.gz")


#: VASP output: the same fields as a pw.x output.
VaspOutput = DftOutput


def _float(pattern: str, text: str) -> float | None:
    m = re.findall(pattern, text)
    return float(m[-1]) if m else None


def _read_vasprun(path: Path, text: str) -> VaspOutput:
    nelm_m = re.search(r'<i type="int" name="NELM">\s*(\d+)\s*</i>', text)
    nelm = int(nelm_m.group(1)) if nelm_m else 60
    calcs = text.split("<calculation>")[1:]
    done = "</modeling>" in text
    n_scf = calcs[-1].count("<scstep>") if calcs else 0
    energy = None
    if calcs:
        # total energy of the last ionic step: the <energy> block after its last <scstep>
        tail = calcs[-1].rsplit("</scstep>", 1)[-1]
        energy = _float(r'<i name="e_fr_energy">\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\s*</i>', tail)
    fermi = _float(r'<i name="efermi">\s*(-?[\d.]+)\s*</i>', text)
    nat = re.search(r"<atoms>\s*(\d+)\s*</atoms>", text)
    if not calcs or n_scf == 0:
        converged, reason = False, "vasprun.xml has no electronic steps (crashed at start?)"
    elif not done:
        converged, reason = False, f"vasprun.xml is incomplete after {n_scf} electronic steps (killed or still running)"
    elif n_scf >= nelm:
        converged, reason = False, f"SCF not converged: {n_scf} electronic steps = NELM {nelm}"
    else:
        converged, reason = True, f"SCF converged in {n_scf} electronic steps"
    return VaspOutput(str(path), converged, done, n_scf or None, energy, fermi, None,
                      int(nat.group(1)) if nat else None, reason)


def _read_outcar(path: Path, text: str) -> VaspOutput:
    nelm_m = re.search(r"NELM\s*=\s*(\d+)", text)
    nelm = int(nelm_m.group(1)) if nelm_m else 60
    iters = re.findall(r"Iteration\s+(\d+)\(\s*(\d+)\)", text)
    last_ionic = iters[-1][0] if iters else None
    n_scf = max((int(e) for i, e in iters if i == last_ionic), default=0)
    done = "General timing and accounting informations for this job" in text
    unconverged = "EDIFF was not reached" in text
    reached = "aborting loop because EDIFF is reached" in text
    energy = _float(r"free\s+energy\s+TOTEN\s+=\s+(-?[\d.]+)\s+eV", text)
    fermi = _float(r"E-fermi\s*:\s*(-?[\d.]+)", text)
    wall = _float(r"Elapsed time \(sec\):\s*([\d.]+)", text)
    nat = re.search(r"NIONS\s*=\s*(\d+)", text)
    if n_scf == 0:
        converged, reason = False, "OUTCAR has no electronic steps (crashed at start?)"
    elif unconverged or (n_scf >= nelm and not reached):
        converged, reason = False, f"SCF not converged: EDIFF not reached in {n_scf} steps (NELM {nelm})"
    elif not done:
        converged, reason = False, f"OUTCAR stops after {n_scf} electronic steps (killed or still running)"
    elif reached:
        converged, reason = True, f"SCF converged in {n_scf} electronic steps"
    else:
        converged, reason = False, "OUTCAR does not say EDIFF is reached"
    return VaspOutput(str(path), converged, done, n_scf or None, energy, fermi, wall,
                      int(nat.group(1)) if nat else None, reason)


def read_vasp_output(path: str | Path) -> VaspOutput:
    """Parse ``vasprun.xml`` or ``OUTCAR`` (either plain or ``.gz``): SCF convergence, free energy
    TOTEN (eV), Fermi energy (eV), wall time (s, OUTCAR only).

    A missing file raises :class:`InputFileError`; an unconverged or unfinished run is not an
    error: it is ``converged=False`` with a ``reason``.
    """
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        return VaspOutput(str(path), False, False, None, None, None, None, None, "empty VASP output")
    if path.name.startswith("vasprun") or text.lstrip().startswith("<?xml"):
        return _read_vasprun(path, text)
    return _read_outcar(path, text)


def find_vasp_output(folder: str | Path) -> Path | None:
    """The first of ``vasprun.xml``/``OUTCAR`` (plain or .gz) in ``folder``, or None."""
    for n in VASP_OUTPUTS:
        p = Path(folder) / n
        if p.is_file():
            return p
    return None
