"""Every ICOHPLIST/ICOOPLIST/ICOBILIST layout LOBSTER writes, plain and gzip-compressed, read by
bondml and by pymatgen's ``Icohplist`` on the same hand-written files (tests/data/lobster); the
COHPCAR reader against pymatgen's ``Cohpcar``; strict parsing at every cut point of a real file."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest

from bondml.data import run21_dir
from bondml.errors import InputFileError
from bondml.io.lobster import find_list, read_cohpcar, read_icohplist

DATA = Path(__file__).parent / "data" / "lobster"
REAL = run21_dir() / "2000" / "0" / "ICOHPLIST.lobster"
TOTALS = np.array([-0.41728, -0.48810, -0.41301, -0.02055])

# file, kind, spins, translation?, orbital lines per spin (Cu-Zr 100, Cu-Cu 100, Cu-Cu 100, Cu-Al 40)
CASES = [
    ("ICOHPLIST_2x.lobster", "ICOHP", 1, False, 0),
    ("ICOHPLIST_2x_spin.lobster", "ICOHP", 2, False, 0),
    ("ICOHPLIST_3x.lobster", "ICOHP", 1, True, 0),
    ("ICOHPLIST_3x_spin.lobster", "ICOHP", 2, True, 0),
    ("ICOOPLIST_3x.lobster", "ICOOP", 1, True, 0),
    ("ICOBILIST_3x.lobster", "ICOBI", 1, True, 0),
    ("ICOHPLIST_4x_orbitalwise_spin.lobster", "ICOHP", 2, True, 340),
    ("ICOHPLIST_5x_orbitalwise.lobster", "ICOHP", 1, True, 340),
    ("ICOHPLIST_5x_spin.lobster", "ICOHP", 2, True, 0),
    ("ICOHPLIST_5x_spin_orbitalwise.lobster", "ICOHP", 2, True, 340),
    ("ICOBILIST_5x_spin.lobster", "ICOBI", 2, True, 0),
]


@pytest.mark.parametrize(("name", "kind", "n_spin", "has_t", "n_orb"), CASES)
def test_every_layout(name: str, kind: str, n_spin: int, has_t: bool, n_orb: int) -> None:
    ic = read_icohplist(DATA / name)
    assert (ic.kind, ic.n_spin, ic.has_translation, len(ic)) == (kind, n_spin, has_t, 4)
    assert ic.index.tolist() == [1, 2, 3, 4]
    assert ic.i.tolist() == [0, 0, 0, 0] and ic.j.tolist() == [1, 2, 6, 33]
    assert ic.element_j.tolist() == ["Zr", "Cu", "Cu", "Al"]
    np.testing.assert_array_equal(ic.distance, [3.26048, 2.47778, 2.58171, 4.09130])
    assert ic.icohp_spin.shape == (4, n_spin)
    np.testing.assert_allclose(ic.icohp, ic.icohp_spin.sum(axis=1))
    if kind == "ICOHP":  # spin channels add up to the real run-21 totals
        np.testing.assert_allclose(ic.icohp, TOTALS, atol=1.1e-5)
    expected_t = [[0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]] if has_t else [[0, 0, 0]] * 4
    assert ic.translation.tolist() == expected_t
    assert len(ic.orbitals.get("index", [])) == n_orb
    if n_orb:
        o = ic.orbitals
        assert o["orbital_i"][0] == "3s" and o["orbital_j"][0] == "4s"  # Cu1_3s - Zr2_4s
        assert "4d_x^2-y^2" in set(o["orbital_j"][o["index"] == 1])
        assert o["value"].shape == (n_orb, n_spin)
        for k in range(1, 5):
            np.testing.assert_allclose(o["value"][o["index"] == k].sum(axis=0), ic.icohp_spin[k - 1], atol=5e-4)


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("ICO*LIST*.lobster.gz")))
def test_gzip_equals_plain(name: str) -> None:
    a = read_icohplist(DATA / name)
    b = read_icohplist(DATA / name[:-3])
    for f in ("index", "i", "j", "distance", "translation", "icohp_spin"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert find_list(DATA, name[:-3]) == DATA / name[:-3]


def test_find_list_prefers_plain_then_gz(tmp_path: Path) -> None:
    assert find_list(tmp_path) is None
    (tmp_path / "ICOHPLIST.lobster.gz").write_bytes(gzip.compress(REAL.read_bytes()))
    assert find_list(tmp_path) == tmp_path / "ICOHPLIST.lobster.gz"
    assert len(read_icohplist(find_list(tmp_path))) == 738


@pytest.mark.parametrize(("name", "kind", "n_spin", "has_t", "n_orb"), CASES)
def test_same_as_pymatgen(name: str, kind: str, n_spin: int, has_t: bool, n_orb: int) -> None:
    pytest.importorskip("pymatgen")
    from pymatgen.electronic_structure.core import Spin
    from pymatgen.io.lobster import Icohplist

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm = Icohplist(filename=str(DATA / name), are_coops=kind == "ICOOP", are_cobis=kind == "ICOBI")
    ours = read_icohplist(DATA / name)
    d = pm.icohplist
    assert len(d) == len(ours)
    assert pm.is_spin_polarized == (n_spin == 2)
    for k in range(len(ours)):
        e = d[str(k + 1)]
        assert e["length"] == ours.distance[k]
        assert list(e["translation"]) == ours.translation[k].tolist()
        assert e["icohp"][Spin.up] == ours.icohp_spin[k, 0]
        if n_spin == 2:
            assert e["icohp"][Spin.down] == ours.icohp_spin[k, 1]
    labels = pm.icohpcollection._list_atom1, pm.icohpcollection._list_atom2
    assert list(labels[0]) == [f"{a}{i + 1}" for a, i in zip(ours.element_i, ours.i, strict=True)]
    assert list(labels[1]) == [f"{a}{i + 1}" for a, i in zip(ours.element_j, ours.j, strict=True)]
    if n_orb and n_spin == 1:  # pymatgen's orbital reader: same values per orbital pair
        orb = pm.icohpcollection._list_orb_icohp
        o = ours.orbitals
        for k in range(len(ours)):
            sel = o["index"] == k + 1
            assert sorted(v["icohp"][Spin.up] for v in orb[k].values()) == pytest.approx(
                sorted(o["value"][sel, 0].tolist()), abs=0)


def test_real_file_same_as_pymatgen() -> None:
    from pymatgen.electronic_structure.core import Spin
    from pymatgen.io.lobster import Icohplist

    pm = Icohplist(filename=str(REAL)).icohplist
    ours = read_icohplist(REAL)
    assert len(pm) == len(ours) == 738
    np.testing.assert_array_equal([pm[str(k + 1)]["icohp"][Spin.up] for k in range(738)], ours.icohp)
    np.testing.assert_array_equal([list(pm[str(k + 1)]["translation"]) for k in range(738)], ours.translation)


def _reject(path: Path, match: str) -> None:
    with pytest.raises(InputFileError, match=match) as info:
        read_icohplist(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_value_cut_inside_its_last_number(tmp_path: Path) -> None:
    text = REAL.read_text()
    body = text.rstrip("\n").rstrip()
    assert body.endswith("-1.62844")
    for cut, _shown in ((body[:-4] + " \n", "-1.6"), (body[:-5] + "\n", "-1."), (body[:-7] + "\n", "-")):
        p = tmp_path / "ICOHPLIST.lobster"
        p.write_text(cut)
        _reject(p, "line 739")
    p.write_text(body[:-4])  # no final newline
    _reject(p, "incomplete")


def test_every_cut_point_of_a_real_file_is_refused_or_exact(tmp_path: Path) -> None:
    """Cut the real file at many byte positions: each result is refused or gives exactly the
    records of the original that are wholly in the cut (nothing altered)."""
    raw = REAL.read_bytes()
    full = read_icohplist(REAL)
    rng = np.random.default_rng(0)
    cuts = sorted(set(rng.integers(1, len(raw), 400).tolist()) | set(range(len(raw) - 120, len(raw))))
    accepted = 0
    p = tmp_path / "ICOHPLIST.lobster"
    for c in cuts:
        p.write_bytes(raw[:c])
        try:
            ic = read_icohplist(p)
        except InputFileError:
            continue
        accepted += 1
        n = len(ic)
        assert raw[:c].endswith(b"\n")
        np.testing.assert_array_equal(ic.icohp, full.icohp[:n])
        np.testing.assert_array_equal(ic.distance, full.distance[:n])
        np.testing.assert_array_equal(ic.translation, full.translation[:n])
    assert accepted < len(cuts) // 10  # only cuts right after a newline parse (then the count check)


def test_orbital_block_cut_at_line_boundary_is_refused(tmp_path: Path) -> None:
    lines = (DATA / "ICOHPLIST_5x_orbitalwise.lobster").read_text().splitlines(keepends=True)
    p = tmp_path / "ICOHPLIST.lobster"
    p.write_text("".join(lines[:-3]))  # last pair loses 3 of its orbital lines
    _reject(p, "orbital lines")


def test_spin_row_cut_and_wrong_decimals(tmp_path: Path) -> None:
    lines = (DATA / "ICOHPLIST_5x_spin.lobster").read_text().splitlines(keepends=True)
    p = tmp_path / "ICOHPLIST.lobster"
    p.write_text("".join(lines[:-1]) + lines[-1].rstrip().rsplit(None, 1)[0] + "\n")  # spin-2 column lost
    _reject(p, "expected 9 columns")
    bad = lines[2].replace("3.26048", "3.2605")
    p.write_text("".join([*lines[:2], bad, *lines[3:]]))
    _reject(p, "has 4 decimals")


def test_gap_in_numbering_and_foreign_orbital_line(tmp_path: Path) -> None:
    lines = (DATA / "ICOHPLIST_3x.lobster").read_text().splitlines(keepends=True)
    p = tmp_path / "ICOHPLIST.lobster"
    p.write_text("".join([lines[0], lines[1], lines[3]]))
    _reject(p, "COHP# 3 where 2 was expected")
    lines = (DATA / "ICOHPLIST_5x_orbitalwise.lobster").read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("Zr2_4s", "Zr9_4s")
    p.write_text("".join(lines))
    _reject(p, "another pair")


def test_damaged_gzip(tmp_path: Path) -> None:
    raw = (DATA / "ICOHPLIST_3x.lobster.gz").read_bytes()
    p = tmp_path / "ICOHPLIST.lobster.gz"
    p.write_bytes(raw[: len(raw) // 2])
    _reject(p, "gzip")


# --------------------------------------------------------------------------- COHPCAR
@pytest.mark.parametrize("name", ["COHPCAR.lobster", "COHPCAR.lobster.gz"])
def test_cohpcar_same_as_pymatgen(name: str) -> None:
    from pymatgen.electronic_structure.core import Spin
    from pymatgen.io.lobster import Cohpcar

    c = read_cohpcar(DATA / name)
    assert c.labels == ("Cu1->Zr2", "Cu1->Cu3") and c.atoms.tolist() == [[0, 1], [0, 2]]
    np.testing.assert_array_equal(c.distance, [3.26048, 2.47778])
    assert c.cohp.shape == (2, 2, 7) and c.n_spin == 2 and c.efermi == 0.0
    np.testing.assert_allclose(c.energy, np.linspace(-3, 3, 7))
    np.testing.assert_allclose(c.cohp[1, 0], -0.02 * np.arange(1, 8))
    np.testing.assert_allclose(c.icohp[0, 1], 0.5 * -0.02 * np.arange(1, 8))
    np.testing.assert_allclose(c.minus_cohp(0), 1.5 * 0.01 * np.arange(1, 8))
    pm = Cohpcar(filename=str(DATA / name))
    np.testing.assert_array_equal(pm.energies, c.energy)
    for k in range(2):
        e = pm.cohp_data[str(k + 1)]
        assert e["length"] == c.distance[k] and tuple(e["sites"]) == tuple(c.atoms[k])
        for s, spin in enumerate((Spin.up, Spin.down)):
            np.testing.assert_array_equal(e["COHP"][spin], c.cohp[k, s])
            np.testing.assert_array_equal(e["ICOHP"][spin], c.icohp[k, s])
    np.testing.assert_array_equal(pm.cohp_data["average"]["COHP"][Spin.up], c.average_cohp[0])


def test_cohpcar_truncated(tmp_path: Path) -> None:
    lines = (DATA / "COHPCAR.lobster").read_text().splitlines(keepends=True)
    p = tmp_path / "COHPCAR.lobster"
    p.write_text("".join(lines[:-1]))
    with pytest.raises(InputFileError, match="6 energy rows, line 2 announces 7"):
        read_cohpcar(p)
    p.write_text("".join(lines)[:-10])
    with pytest.raises(InputFileError, match="incomplete"):
        read_cohpcar(p)


def test_cohp_plot(tmp_path: Path) -> None:
    from bondml.analysis.cohp import plot_cohp

    p = plot_cohp(DATA / "COHPCAR.lobster.gz", [1, "Cu1->Cu3"], tmp_path / "cohp.png")
    assert p.stat().st_size > 5000
    with pytest.raises(InputFileError, match="no pair No.3"):
        plot_cohp(DATA / "COHPCAR.lobster", [3], tmp_path / "x.png")
