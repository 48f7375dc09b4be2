"""pw.x output reader on the real outputs of run 21."""

from __future__ import annotations

from pathlib import Path

import pytest
from ase.units import Ry

from bondml.errors import InputFileError
from bondml.io.espresso import read_pw_output


def test_converged_subrun0(run21: Path) -> None:
    pw = read_pw_output(run21 / "2000/0/Zr49Cu49Al2.scf.out")
    assert pw.converged and pw.job_done
    assert pw.n_iterations == 61
    assert pw.total_energy_ev == pytest.approx(-38989.80301770 * Ry, abs=1e-6)
    assert pw.fermi_energy_ev == pytest.approx(14.7678)
    assert pw.wall_time_s == pytest.approx(2 * 3600 + 1 * 60)
    assert pw.n_atoms == 100


def test_killed_subrun13(run21: Path) -> None:
    pw = read_pw_output(run21 / "2000/13/Zr49Cu49Al2.scf.out")
    assert not pw.converged and not pw.job_done
    assert pw.total_energy_ev is None and pw.n_iterations == 80
    assert "iteration 80" in pw.reason


def test_not_achieved_and_missing(tmp_path: Path) -> None:
    p = tmp_path / "x.out"
    p.write_text("     iteration #  1\n     convergence NOT achieved after 100 iterations: stopping\n")
    pw = read_pw_output(p)
    assert not pw.converged and "NOT achieved" in pw.reason
    with pytest.raises(InputFileError, match="missing.out: file not found"):
        read_pw_output(tmp_path / "missing.out")
