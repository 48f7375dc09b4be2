"""The 14 augmentations against the 15 real cells of Zr49Cu49Al2 run 21."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer
from ase.io import read
from typer.testing import CliRunner

from bondml.errors import BondmlError, InputFileError
from bondml.generate.augment import (
    AUGMENTATIONS,
    CellTransform,
    augment,
    axial,
    format_xyz,
    isotropic,
    shear,
    write_augmented,
)

NC = "Zr49Cu49Al2"
TOL = 1e-5  # Angstrom; the files carry 6 decimals


def _ref(run21: Path, k: int):
    return read(run21 / "2000" / str(k) / f"{NC}.xyz")


def test_numbering_and_names() -> None:
    names = [t.name for t in AUGMENTATIONS]
    assert names == [
        "shear_xy", "shear_xz", "shear_yx", "shear_yz", "shear_zx", "shear_zy",
        "tension_x", "compression_x", "tension_y", "compression_y", "tension_z", "compression_z",
        "iso_1.01", "iso_0.90",
    ]
    assert all(t.description for t in AUGMENTATIONS)


@pytest.mark.parametrize("k", range(15))
def test_reproduces_real_subrun(run21: Path, k: int) -> None:
    cells = augment(_ref(run21, 0))
    assert len(cells) == 15
    ref = _ref(run21, k)
    got = cells[k]
    assert got.get_chemical_symbols() == ref.get_chemical_symbols()
    assert np.abs(got.cell.array - ref.cell.array).max() < TOL
    # positions are not wrapped: fractional coordinates kept exactly, some slightly outside [0, 1)
    assert np.abs(got.positions - ref.positions).max() < TOL


def test_fractional_coordinates_kept(run21: Path) -> None:
    a0 = _ref(run21, 0)
    f0 = a0.get_scaled_positions(wrap=False)
    assert (f0 < 0).any()  # the reference is not wrapped
    for c in augment(a0)[1:]:
        assert np.allclose(c.get_scaled_positions(wrap=False), f0, atol=1e-12)


def test_format_xyz_is_the_original_layout(run21: Path) -> None:
    path = run21 / "2000" / "0" / f"{NC}.xyz"
    assert format_xyz(read(path)) == path.read_text()


def test_write_augmented_and_no_silent_overwrite(run21: Path, tmp_path: Path) -> None:
    a0 = _ref(run21, 0)
    paths = write_augmented(a0, tmp_path, NC)
    assert paths == [tmp_path / str(k) / f"{NC}.xyz" for k in range(15)]
    for k, p in enumerate(paths):
        assert np.abs(read(p).positions - _ref(run21, k).positions).max() < TOL
    # same content again: fine, nothing changes
    before = paths[5].stat().st_mtime_ns
    write_augmented(a0, tmp_path, NC)
    assert paths[5].stat().st_mtime_ns == before
    # a different existing cell is never replaced silently, and nothing else is written
    paths[3].write_text("changed\n")
    (tmp_path / "14" / f"{NC}.xyz").unlink()
    with pytest.raises(InputFileError, match="overwrite") as exc:
        write_augmented(a0, tmp_path, NC)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "14" / f"{NC}.xyz").exists()
    write_augmented(a0, tmp_path, NC, overwrite=True)
    assert paths[3].read_text() == format_xyz(augment(a0)[3])


def test_user_extension(run21: Path) -> None:
    a0 = _ref(run21, 0)
    extra = (*AUGMENTATIONS, shear("xy", 0.25), axial("z", 1.1), isotropic(0.95))
    cells = augment(a0, extra)
    assert len(cells) == 18
    assert np.allclose(cells[15].cell[0], [a0.cell[0, 0], 0.25 * a0.cell[1, 1], 0.0])
    assert np.isclose(cells[17].get_volume(), 0.95**3 * a0.get_volume())


def test_bad_transforms() -> None:
    with pytest.raises(BondmlError, match="positive determinant"):
        CellTransform("flip", ((-1, 0, 0), (0, 1, 0), (0, 0, 1)))
    with pytest.raises(BondmlError, match="two different axes"):
        shear("xx", 0.5)
    with pytest.raises(BondmlError, match="x, y or z"):
        axial("w", 1.1)


def _cli() -> typer.Typer:
    from bondml.cli.augment import register

    app = typer.Typer()
    register(app)
    return app


def test_cli_augment(run21: Path, tmp_path: Path) -> None:
    src = run21 / "2000" / "0" / f"{NC}.xyz"
    res = CliRunner().invoke(_cli(), ["augment", str(src), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for k in range(15):
        got = read(tmp_path / str(k) / f"{NC}.xyz")
        assert np.abs(got.cell.array - _ref(run21, k).cell.array).max() < TOL
    res = CliRunner().invoke(_cli(), ["augment", str(tmp_path / "missing.xyz"), "--out", str(tmp_path)])
    assert isinstance(res.exception, InputFileError)
