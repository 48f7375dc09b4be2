"""Write the hand-made VASP outputs of this folder (run once; the files are committed).

They follow the layout of VASP 6 ``vasprun.xml`` and ``OUTCAR`` in the parts bondml reads:
NELM, the electronic steps of the last ionic step, the free energy TOTEN, E-fermi, NIONS, the
closing ``</modeling>`` tag / the timing block. Numbers are made up.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def vasprun(n_scf: int, nelm: int = 60, complete: bool = True) -> str:
    steps = "".join(f"  <scstep>\n   <energy>\n    <i name=\"e_fr_energy\">   {-600.0 - k:.8f} </i>\n"
                    f"   </energy>\n  </scstep>\n" for k in range(n_scf))
    text = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<modeling>\n <generator>\n'
            '  <i name="program" type="string">vasp </i>\n  <i name="version" type="string">6.3.2 </i>\n'
            ' </generator>\n <parameters>\n  <separator name="electronic">\n'
            f'   <i type="int" name="NELM">     {nelm}</i>\n  </separator>\n </parameters>\n'
            ' <atominfo>\n  <atoms>     100 </atoms>\n </atominfo>\n <calculation>\n' + steps +
            '  <energy>\n   <i name="e_fr_energy">   -612.34567000 </i>\n'
            '   <i name="e_0_energy">   -612.30000000 </i>\n  </energy>\n'
            '  <dos>\n   <i name="efermi">      4.12345678 </i>\n  </dos>\n </calculation>\n')
    return text + "</modeling>\n" if complete else text


def outcar(n_scf: int, nelm: int = 60, reached: bool = True, finished: bool = True) -> str:
    out = [" vasp.6.3.2 18Jan22 (build Mar 01 2022) complex", "   NIONS =    100",
           f"   NELM   =     {nelm};   NELMIN=  2; NELMDL= -5     # of ELM steps"]
    for k in range(1, n_scf + 1):
        out.append(f"----------------------------------------- Iteration      1({k:4d})  "
                   "---------------------------------------")
        out.append(f"  free energy    TOTEN  =      {-600.0 - k:.8f} eV")
    if reached:
        out.append("------------------------ aborting loop because EDIFF is reached ----------------------------------------")  # noqa: E501 - verbatim OUTCAR line
    else:
        out.append("------------------------ aborting loop EDIFF was not reached (unconverged)  ----------------------------")  # noqa: E501 - verbatim OUTCAR line
    out += ["  free  energy   TOTEN  =      -612.34567000 eV", " E-fermi :   4.1235     XC(G=0):  -9.9234"]
    if finished:
        out += ["", " General timing and accounting informations for this job:",
                " ========================================================", "",
                "                  Total CPU time used (sec):      100.000",
                "                            Elapsed time (sec):      123.456"]
    return "\n".join(out) + "\n"


def main() -> None:
    (HERE / "vasprun_converged.xml").write_text(vasprun(18))
    (HERE / "vasprun_nelm.xml").write_text(vasprun(60))
    (HERE / "vasprun_killed.xml").write_text(vasprun(12, complete=False))
    (HERE / "OUTCAR_converged").write_text(outcar(18))
    (HERE / "OUTCAR_unconverged").write_text(outcar(60, reached=False))
    (HERE / "OUTCAR_killed").write_text(outcar(7, reached=False, finished=False).replace(
        "aborting loop EDIFF was not reached (unconverged)", "Iteration      1(   8)"))


if __name__ == "__main__":
    main()
