"""Computed code versions: editing a constant, the bond finder or the kernel in a copy of the
package changes the cache key of exactly the stages that can run that code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import bondml
from bondml.pipeline.dag import stage_entries
from bondml.pipeline.fingerprint import closure, code_fingerprint
from bondml.pipeline.stages import build_stages

STAGES = build_stages()
ALL = {s.name for s in STAGES}


@pytest.fixture()
def pkg(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    shutil.copytree(Path(bondml.__file__).parent, root / "bondml", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _keys(root: Path) -> dict[str, str]:
    return {s.name: code_fingerprint(stage_entries(s), root) for s in STAGES}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {path}"
    path.write_text(text.replace(old, new))


def _changed(root: Path, before: dict[str, str]) -> set[str]:
    after = _keys(root)
    return {n for n in ALL if after[n] != before[n]}


def test_every_stage_has_computed_code() -> None:
    for s in STAGES:
        assert stage_entries(s), s.name
        whole, parts = closure(stage_entries(s))
        assert all(p.startswith("bondml.pipeline.stages:") for p in parts)
        assert "bondml" in whole and "bondml.errors" in whole
    assert "ETL_CODE" not in vars(__import__("bondml.pipeline.stages", fromlist=["x"]))


def test_constant_edit_reruns_train_and_deploy(pkg: Path) -> None:
    before = _keys(pkg)
    # the paper's Zr-Cu sigma (the example: train did not hash bondml.constants)
    _edit(pkg / "bondml/constants.py", '"Zr-Cu": {"zeta": 1.0, "sigma": 1.0, "gamma": 0.04}',
          '"Zr-Cu": {"zeta": 1.0, "sigma": 1.1, "gamma": 0.04}')
    assert _changed(pkg, before) == ALL  # every stage reads constants (bond types, windows...)


def test_bond_finder_edit(pkg: Path) -> None:
    before = _keys(pkg)
    _edit(pkg / "bondml/structure/bonds.py", "from __future__ import annotations\n",
          "from __future__ import annotations\n\n_EDITED = True\n")
    # tracking logs files only; it never runs the bond finder
    assert _changed(pkg, before) == ALL - {"track"}


def test_kernel_edit(pkg: Path) -> None:
    before = _keys(pkg)
    _edit(pkg / "bondml/model/kernel.py", "from __future__ import annotations\n",
          "from __future__ import annotations\n\n_EDITED = True\n")
    # ingest (store, SOAP, bonds) and tracking never import the model
    assert _changed(pkg, before) == ALL - {"ingest", "track"}


def test_one_stage_function_edit_reruns_only_it(pkg: Path) -> None:
    before = _keys(pkg)
    _edit(pkg / "bondml/pipeline/stages.py", '"""Log the training to MLflow',
          '"""Edited. Log the training to MLflow')
    assert _changed(pkg, before) == {"track"}
    before = _keys(pkg)
    _edit(pkg / "bondml/pipeline/stages.py", "# Each stage's code version", "X_EDITED = 1\n# Each stage's code version")
    assert _changed(pkg, before) == ALL  # module-level statements count for every stage


def test_unrelated_module_edit_changes_nothing(pkg: Path) -> None:
    before = _keys(pkg)
    (pkg / "bondml/cli/main.py").write_text((pkg / "bondml/cli/main.py").read_text() + "\n_X = 1\n")
    assert _changed(pkg, before) == set()


def test_package_data_edit_reruns_md(pkg: Path) -> None:
    before = _keys(pkg)
    eam = pkg / "bondml/data/ZrCuAl-2011.lammps.eam"
    eam.write_bytes(eam.read_bytes() + b"\n")
    assert {"deploy", "generate"} <= _changed(pkg, before)
