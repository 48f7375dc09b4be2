"""LOBSTER readers on the real run-21 files and on synthetic variants of every supported layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bondml.data import run21_dir
from bondml.errors import InputFileError
from bondml.io.lobster import read_icohplist, read_lobsterin, read_lobsterout

LABELLED = [k for k in range(15) if k != 13]
HEADER8 = "  COHP#  atomMU  atomNU     distance     translation      ICOHP (at) eF   for spin  1"


def sub(k: int) -> Path:
    return run21_dir() / "2000" / str(k)


def write(tmp_path: Path, text: str, name: str = "ICOHPLIST.lobster") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --------------------------------------------------------------------------- real files
@pytest.mark.parametrize("k", LABELLED)
def test_real_icohplist_counts(k: int) -> None:
    path = sub(k) / "ICOHPLIST.lobster"
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    ic = read_icohplist(path)
    assert len(ic) == len(lines) - 1
    assert ic.n_spin == 1 and ic.has_translation and ic.kind == "ICOHP"
    assert np.array_equal(ic.index, np.arange(1, len(ic) + 1))
    assert np.all(ic.i >= 0) and np.all(ic.j < 100)
    assert np.all((ic.distance >= 1.80) & (ic.distance <= 4.20))
    assert np.array_equal(ic.shift, -ic.translation)
    np.testing.assert_array_equal(ic.minus_icohp, -ic.icohp)


def test_real_icohplist_values_subrun0() -> None:
    ic = read_icohplist(sub(0) / "ICOHPLIST.lobster")
    assert len(ic) == 738
    # first line:       1     Cu1     Zr2      3.26048       0   0   0           -0.41728
    assert (ic.index[0], ic.i[0], ic.j[0], ic.element_i[0], ic.element_j[0]) == (1, 0, 1, "Cu", "Zr")
    assert ic.distance[0] == pytest.approx(3.26048, abs=1e-12)
    assert ic.icohp[0] == pytest.approx(-0.41728, abs=1e-12)
    assert ic.translation[0].tolist() == [0, 0, 0]
    # third line has a lattice translation:  3  Cu1  Cu7  2.58171  0 0 1  -0.41301
    assert (ic.i[2], ic.j[2]) == (0, 6) and ic.translation[2].tolist() == [0, 0, 1]
    assert ic.icohp[2] == pytest.approx(-0.41301)
    # last line:      738    Cu99   Zr100      2.57934       0   0   0           -1.62844
    assert (ic.index[-1], ic.i[-1], ic.j[-1], ic.element_j[-1]) == (738, 98, 99, "Zr")
    assert ic.distance[-1] == pytest.approx(2.57934)
    assert ic.minus_icohp[-1] == pytest.approx(1.62844)


def test_real_lobsterout_subrun0() -> None:
    lo = read_lobsterout(sub(0) / "lobsterout")
    assert lo.finished
    assert lo.version == "3.0.0"
    assert lo.charge_spilling_percent == pytest.approx(1.60)
    assert lo.total_spilling_percent == pytest.approx(3.73)
    assert lo.n_interactions == 738
    # the three WARNING: lines of LOBSTER are one message
    assert lo.warnings == (
        "Cannot use the tetrahedron method for k-space integration and must fall back to Gaussian "
        "smearing which can take significantly longer. Make sure to use the tetrahedron method "
        "whenever applicable.",
    )
    assert len(lo.infos) == 1 and "PAW bands from 989 and upwards will be ignored" in lo.infos[0]
    assert lo.wall_time_s == pytest.approx(17 * 3600 + 10 * 60 + 28 + 0.097)
    assert lo.basis["Zr"] == ("4s", "5s", "4p_y", "4p_z", "4p_x", "4d_xy", "4d_yz", "4d_z^2", "4d_xz", "4d_x^2-y^2")


@pytest.mark.parametrize("k", LABELLED)
def test_real_lobsterout_interactions_match_icohplist(k: int) -> None:
    lo = read_lobsterout(sub(k) / "lobsterout")
    assert lo.version == "3.0.0" and lo.charge_spilling_percent is not None
    assert lo.n_interactions == len(read_icohplist(sub(k) / "ICOHPLIST.lobster"))


def test_unfinished_lobsterout(tmp_path: Path) -> None:
    text = (sub(0) / "lobsterout").read_text()
    cut = text[: text.index("calculating pCOHPs")]
    lo = read_lobsterout(write(tmp_path, cut, "lobsterout"))
    assert not lo.finished and lo.wall_time_s is None
    assert lo.charge_spilling_percent == pytest.approx(1.60)


def test_missing_lobsterout(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="lobsterout"):
        read_lobsterout(tmp_path / "lobsterout")


def test_real_lobsterin() -> None:
    li = read_lobsterin(sub(0) / "lobsterin")
    assert li.generator == ((1.80, 4.20),)
    assert li.pairs.shape == (0, 5)
    assert li.basis == {"Al": ("3s", "3p"), "Cu": ("3s", "4s", "3p", "3d"), "Zr": ("4s", "5s", "4p", "4d")}
    assert li.keywords["basisSet"] == "Bunge"
    lq = read_lobsterin(sub(0) / "lobsterin-quippy")
    assert lq.generator == ()
    assert lq.pairs.shape == (1284, 5)
    # first line: cohpbetween atom 1 atom 7 offset 0 0 -1
    assert lq.pairs[0].tolist() == [0, 6, 0, 0, -1]


def test_lobsterin_bad_line(tmp_path: Path) -> None:
    p = write(tmp_path, "cohpbetween atom x atom 2\n", "lobsterin")
    with pytest.raises(InputFileError, match=r"lobsterin: line 1"):
        read_lobsterin(p)


# --------------------------------------------------------------------------- synthetic layouts
ROWS = [
    (1, "Cu1", "Zr2", 3.26048, (0, 0, 0), -0.41728),
    (2, "Cu1", "Cu7", 2.58171, (0, 0, 1), -0.41301),
    (3, "Al5", "Zr2", 2.90000, (-1, 0, 1), -0.80000),
]


def lines8(rows=ROWS, scale: float = 1.0) -> list[str]:
    return [
        f"{n:7d} {a:>7s} {b:>7s} {d:12.5f} {t[0]:7d} {t[1]:3d} {t[2]:3d} {v * scale:18.5f} "
        for n, a, b, d, t, v in rows
    ]


# the 2.x six-column and the orbital-resolved layouts: tests/test_io_lobster_layouts.py


def test_spin_polarised_channels_are_summed(tmp_path: Path) -> None:
    up = [HEADER8, *lines8()]
    down = [HEADER8.replace("spin  1", "spin  2"), *lines8(scale=0.5)]
    ic = read_icohplist(write(tmp_path, "\n".join(up + down) + "\n"))
    assert ic.n_spin == 2 and len(ic) == 3
    np.testing.assert_allclose(ic.icohp, 1.5 * np.array([-0.41728, -0.41301, -0.8]), atol=1e-5)


def test_icooplist_header(tmp_path: Path) -> None:
    header = "  COOP#  atomMU  atomNU     distance     translation      ICOOP (at) eF   for spin  1"
    ic = read_icohplist(write(tmp_path, "\n".join([header, *lines8()]) + "\n", "ICOOPLIST.lobster"))
    assert ic.kind == "ICOOP" and len(ic) == 3


def _raises_one_line(path: Path, match: str) -> None:
    with pytest.raises(InputFileError, match=match) as info:
        read_icohplist(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg


def test_truncated_mid_line(tmp_path: Path) -> None:
    text = (sub(0) / "ICOHPLIST.lobster").read_text()
    cut = text[: text.index("Cu99   Zr100") + 20]  # stops inside the last line
    _raises_one_line(write(tmp_path, cut), "line 739")


def test_truncated_missing_second_spin_block(tmp_path: Path) -> None:
    up = [HEADER8, *lines8()]
    down = [HEADER8.replace("spin  1", "spin  2"), *lines8()[:2]]
    _raises_one_line(write(tmp_path, "\n".join(up + down) + "\n"), "spin blocks differ")


def test_header_only(tmp_path: Path) -> None:
    _raises_one_line(write(tmp_path, HEADER8 + "\n"), "no interactions")


def test_corrupt_number(tmp_path: Path) -> None:
    body = lines8()
    body[1] = body[1].replace("-0.41301", "-0.4x301")
    _raises_one_line(write(tmp_path, "\n".join([HEADER8, *body]) + "\n"), "line 3")


def test_corrupt_label(tmp_path: Path) -> None:
    body = lines8()
    body[0] = body[0].replace("Zr2", "2Zr")
    _raises_one_line(write(tmp_path, "\n".join([HEADER8, *body]) + "\n"), "atom label")


def test_non_finite_value(tmp_path: Path) -> None:
    body = lines8()
    body[0] = body[0].replace("-0.41728", "nan")
    _raises_one_line(write(tmp_path, "\n".join([HEADER8, *body]) + "\n"), "non-finite")


def test_empty_file(tmp_path: Path) -> None:
    _raises_one_line(write(tmp_path, ""), "empty")


def test_missing_file(tmp_path: Path) -> None:
    _raises_one_line(tmp_path / "ICOHPLIST.lobster", "not found")


def test_not_an_icohplist(tmp_path: Path) -> None:
    _raises_one_line(write(tmp_path, "hello world\n"), "header")
