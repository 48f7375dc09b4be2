"""pw.x and LOBSTER input writers against the shipped inputs of run 21."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from ase.io import read
from ase.io.espresso import read_fortran_namelist

from bondml.constants import LOBSTER_WINDOW
from bondml.errors import InputFileError
from bondml.generate.dft import (
    QUIPPY_WINDOW,
    QESettings,
    format_pw_input,
    n_basis_functions,
    study_nbnd,
    write_lobsterin,
    write_pw_input,
)
from bondml.io.lobster import read_icohplist, read_lobsterin
from bondml.structure.bonds import _canonical

NC = "Zr49Cu49Al2"
SUBRUNS = range(15)


def _parse_pw(text: str) -> dict:
    """Namelists + cards of a pw.x input, as plain values."""
    nl, cards = read_fortran_namelist(io.StringIO(text))
    out: dict = {"nl": {k: dict(v) for k, v in nl.items()}, "species": {}, "symbols": [], "frac": [],
                 "cell": []}
    section = None
    for line in cards:
        head = line.split()[0].upper()
        if head in ("CELL_PARAMETERS", "ATOMIC_SPECIES", "ATOMIC_POSITIONS", "K_POINTS"):
            section = head
            out[head + "_opt"] = line.split(None, 1)[1].strip("{}() ") if len(line.split()) > 1 else ""
            continue
        parts = line.split()
        if section == "CELL_PARAMETERS":
            out["cell"].append([float(x) for x in parts])
        elif section == "ATOMIC_SPECIES":
            out["species"][parts[0]] = (float(parts[1]), parts[2])
        elif section == "ATOMIC_POSITIONS":
            out["symbols"].append(parts[0])
            out["frac"].append([float(x) for x in parts[1:4]])
        elif section == "K_POINTS":
            out["kpoints"] = [int(x) for x in parts]
    out["cell"], out["frac"] = np.array(out["cell"]), np.array(out["frac"])
    return out


@pytest.mark.parametrize("k", SUBRUNS)
def test_pw_input_equals_shipped(run21: Path, tmp_path: Path, k: int) -> None:
    d = run21 / "2000" / str(k)
    atoms = read(d / f"{NC}.xyz")
    path = write_pw_input(atoms, tmp_path / f"{NC}.scf.in", tmp_path, prefix=NC, outdir=str(d), check=False)
    got, ref = _parse_pw(path.read_text()), _parse_pw((d / f"{NC}.scf.in").read_text())
    # every setting that matters: functional (from the PAW files), cutoffs, smearing, bands, k-grid
    assert got["nl"]["system"] == ref["nl"]["system"]
    assert got["nl"]["electrons"] == ref["nl"]["electrons"]
    for key in ("title", "calculation", "restart_mode", "prefix", "verbosity", "tprnfor", "wf_collect"):
        assert got["nl"]["control"][key] == ref["nl"]["control"][key]
    assert "input_dft" not in got["nl"]["system"]
    assert got["species"] == ref["species"]
    assert got["kpoints"] == ref["kpoints"] == [2, 2, 2, 1, 1, 1]
    assert got["CELL_PARAMETERS_opt"] == ref["CELL_PARAMETERS_opt"] == "angstrom"
    assert got["ATOMIC_POSITIONS_opt"] == ref["ATOMIC_POSITIONS_opt"] == "crystal"
    assert got["symbols"] == ref["symbols"]
    assert np.abs(got["cell"] - ref["cell"]).max() < 1e-5
    # the shipped fractions have 6 decimals (rounding 5e-7) and ours come from the 6-decimal xyz
    assert np.abs(got["frac"] - ref["frac"]).max() < 2e-6


def test_nbnd_rule_matches_lobster_basis(run21: Path) -> None:
    """nbnd = n + int(0.1 n), n = LOBSTER basis functions; LOBSTER itself reports n in lobsterout."""
    for k in SUBRUNS:
        d = run21 / "2000" / str(k)
        symbols = read(d / f"{NC}.xyz").get_chemical_symbols()
        if (d / "lobsterout").is_file():  # sub-run 13: LOBSTER failed early
            m = re.search(r"PAW bands from (\d+) and upwards will be ignored", (d / "lobsterout").read_text())
            assert m, k
            assert n_basis_functions(symbols) == int(m.group(1)) - 1 == 988
        nbnd = int(re.search(r"nbnd\s*=\s*(\d+)", (d / f"{NC}.scf.in").read_text()).group(1))
        assert study_nbnd(symbols) == nbnd == 1086
    # other compositions of the study follow the same rule
    assert study_nbnd(["Zr"] * 47 + ["Cu"] * 47 + ["Al"] * 6) == 964 + 96
    assert study_nbnd(["Zr"] * 45 + ["Cu"] * 45 + ["Al"] * 10) == 940 + 94


def test_missing_pseudopotential_is_one_line(run21: Path, tmp_path: Path) -> None:
    atoms = read(run21 / "2000" / "0" / f"{NC}.xyz")
    (tmp_path / "Al.aryjr-1.0.0-ld1.UPF").write_text("x")
    (tmp_path / "Zr.aryjr-1.0.0-ld1.UPF").write_text("x")
    with pytest.raises(InputFileError) as exc:
        write_pw_input(atoms, tmp_path / "scf.in", tmp_path)
    msg = str(exc.value)
    assert "Cu.aryjr-1.0.0-ld1.UPF" in msg and "\n" not in msg
    assert not (tmp_path / "scf.in").exists()
    (tmp_path / "Cu.aryjr-1.0.0-ld1.UPF").write_text("x")
    assert write_pw_input(atoms, tmp_path / "scf.in", tmp_path).is_file()


def test_settings_override() -> None:
    from ase.build import bulk

    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    s = QESettings(ecutwfc=30, ecutrho=240, kpoints=(3, 3, 3), kshift=(0, 0, 0)).with_pseudopotentials(
        {"Cu": "Cu.pbe-kjpaw.UPF"})
    got = _parse_pw(format_pw_input(cu, "/pp", s, prefix="cu"))
    assert got["nl"]["system"]["ecutwfc"] == 30 and got["nl"]["system"]["ntyp"] == 1
    assert got["nl"]["system"]["nbnd"] == 4 * 10 + 4
    assert got["species"] == {"Cu": (63.5463, "Cu.pbe-kjpaw.UPF")}
    assert got["kpoints"] == [3, 3, 3, 0, 0, 0]


@pytest.mark.parametrize("k", SUBRUNS)
def test_lobsterin_generator_equals_shipped(run21: Path, tmp_path: Path, k: int) -> None:
    d = run21 / "2000" / str(k)
    atoms = read(d / f"{NC}.xyz")
    got = read_lobsterin(write_lobsterin(atoms, tmp_path / "lobsterin"))
    ref = read_lobsterin(d / "lobsterin")
    assert got.keywords == ref.keywords
    assert got.basis == ref.basis
    assert got.generator == ref.generator == (LOBSTER_WINDOW,)
    assert (tmp_path / "lobsterin").read_text() == (d / "lobsterin").read_text()


def _oriented(pairs: np.ndarray) -> set[tuple[int, ...]]:
    return set(map(tuple, np.asarray(pairs).tolist()))


def _canonical_set(i, j, shift) -> set[tuple[int, ...]]:
    a, b, s = _canonical(np.asarray(i), np.asarray(j), np.asarray(shift).reshape(-1, 3))
    return set(map(tuple, np.column_stack([a, b, s]).tolist()))


@pytest.mark.parametrize("k", SUBRUNS)
def test_lobsterin_pairs_equal_quippy_file(run21: Path, tmp_path: Path, k: int) -> None:
    """lobsterin-quippy = every pair with d <= 3.75 A (SOAP cutoff), written from both atoms."""
    d = run21 / "2000" / str(k)
    atoms = read(d / f"{NC}.xyz")
    ref = read_lobsterin(d / "lobsterin-quippy").pairs
    one = read_lobsterin(write_lobsterin(atoms, tmp_path / "a", QUIPPY_WINDOW, style="pairs")).pairs
    want = _canonical_set(ref[:, 0], ref[:, 1], ref[:, 2:])
    assert _canonical_set(one[:, 0], one[:, 1], one[:, 2:]) == want
    assert len(one) * 2 == len(ref)
    both = read_lobsterin(write_lobsterin(atoms, tmp_path / "b", QUIPPY_WINDOW, style="pairs",
                                          both_directions=True)).pairs
    assert _oriented(both) == _oriented(ref) and len(both) == len(ref)


@pytest.mark.parametrize("k", [k for k in SUBRUNS if k != 13])  # 13: LOBSTER failed, no ICOHPLIST
def test_lobsterin_pairs_equal_icohplist(run21: Path, tmp_path: Path, k: int) -> None:
    """The explicit 1.80-4.20 A pair list is exactly what LOBSTER's cohpGenerator computed."""
    d = run21 / "2000" / str(k)
    atoms = read(d / f"{NC}.xyz")
    got = read_lobsterin(write_lobsterin(atoms, tmp_path / "lobsterin", style="pairs")).pairs
    ic = read_icohplist(d / "ICOHPLIST.lobster")
    assert _canonical_set(got[:, 0], got[:, 1], got[:, 2:]) == _canonical_set(ic.i, ic.j, ic.shift)
