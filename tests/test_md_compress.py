"""The compression protocol: full settings match the reference input; a scaled-down run works."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bondml.errors import ConfigError
from bondml.io.lammps import iter_dump, per_atom_stress_gpa, read_lammps_data
from bondml.md.compress import (
    CompressionProtocol,
    cut_cell,
    lammps_commands,
    read_thermo,
    run_compression,
    scaled_protocol,
)


def test_full_protocol_is_the_reference_input(tmp_path):
    p = CompressionProtocol().resolved()
    assert p.n_frames == 728  # the original's frames at 20 ps to -14.5 % strain
    cmds = lammps_commands(p, tmp_path)
    text = "\n".join(cmds)
    assert "run 100000" in text and "run 150000" in text  # NVT 100 ps, NVE 150 ps at 1 fs
    assert "fix 1 all nvt temp 300.0 300.0 1.0" in text
    assert "y 0 0 1.0 z 0 0 1.0 drag 1" in text
    assert "deform 1 x erate -1e-05" in text  # 1e7 1/s in 1/ps
    assert "dump d all custom 20000" in text and "ix iy iz" in text
    assert f"run {p.steps(p.compression_ps)}" in text
    assert "velocity all create 300.0 12345" in text


def test_protocol_validation():
    with pytest.raises(ConfigError):
        CompressionProtocol(final_strain=0.1)
    with pytest.raises(ConfigError):
        CompressionProtocol(axis="w")


def test_cut_cell_keeps_density(tmp_path):
    src = read_lammps_data(cut_cell(tmp_path / "c.data", side=20.0)).atoms
    full = 10000 / 55.969**3
    assert abs(len(src) / src.cell.volume - full) / full < 1e-6
    assert 300 < len(src) < 500


@pytest.mark.slow
def test_scaled_compression_runs(tmp_path):
    cell = cut_cell(tmp_path / "cut.data", side=18.0)
    p = replace(scaled_protocol(str(cell)), nvt_ps=0.5, nve_ps=0.2, final_strain=-0.02, frame_ps=0.5, thermo_ps=0.5)
    out = run_compression(p, tmp_path / "md")
    with pytest.raises(ConfigError, match="already holds"):
        run_compression(p, tmp_path / "md")
    th = read_thermo(out / "thermo.csv")
    frames = list(iter_dump(out / "compression.dump"))
    assert len(frames) == p.n_frames == 5
    assert all(f.unwrapped for f in frames)
    l0 = frames[0].atoms.cell.array[0, 0]
    strain = np.array([f.atoms.cell.array[0, 0] / l0 - 1 for f in frames])
    assert np.allclose(strain, np.linspace(0, -0.02, 5), atol=1e-6)
    assert np.allclose(th["strain"], strain, atol=1e-6)
    # per-atom stress (GPa, V_cell/N volume): its mean is the global stress, i.e. -pxx of the thermo table
    mean_sxx = np.array([per_atom_stress_gpa(f)[:, 0].mean() for f in frames])
    assert np.allclose(-mean_sxx, th["pxx_gpa"], atol=1e-4)
    assert np.all((th["temperature_k"] > 150) & (th["temperature_k"] < 450))


def test_scaled_protocol_equilibrates_before_compressing(tmp_path):
    """The scaled demo: minimise, NVT at 300 K, zero-pressure NPT, and only then compress."""
    p = scaled_protocol()
    text = "\n".join(lammps_commands(p.resolved(), tmp_path))
    assert text.index("aniso 0 0 0.5 drag 1") < text.index("fix 2 all deform")  # NPT at 0 GPa first
    assert "fix 1 all nve" not in text  # no NVE drift between the equilibration and the compression
    assert p.nvt_ps + p.npt_ps + p.compression_ps <= 10.0  # demo runtime about the same as before (9 ps)


@pytest.mark.slow
def test_scaled_compression_starts_at_300k_and_zero_pressure(tmp_path):
    """Measured: the first 1 ps of the compression averages 300 +- 30 K and |p| < 0.25 GPa on every
    axis (a ~450-atom cut, whose instantaneous pressure fluctuates by ~0.3 GPa)."""
    cell = cut_cell(tmp_path / "cut.data", side=20.0)
    p = replace(scaled_protocol(str(cell)), final_strain=-0.01, frame_ps=0.5, thermo_ps=0.05)
    th = read_thermo(run_compression(p, tmp_path / "md") / "thermo.csv")
    first = th["time_ps"] <= 1.0
    assert abs(th["temperature_k"][first].mean() - 300.0) < 30.0
    for ax in ("pxx_gpa", "pyy_gpa", "pzz_gpa"):
        assert abs(th[ax][first].mean()) < 0.25, (ax, th[ax][first].mean())
