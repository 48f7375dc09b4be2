"""A second chemistry end to end with real programs: Cu-Ni cells driven by ASE's EMT, labelled
with the GFN1-xTB labeler (tblite; approximate, label source ``xtb-gfn1``), written as VASP-style
folders with arbitrary names, then ``bondml ingest`` / ``train``, leave-one-cell-out validation
and ``bondml predict`` on a larger cell. Nothing of the Zr-Cu-Al study is used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write
from typer.testing import CliRunner

pytest.importorskip("tblite")


def _emt_cell(seed: int, repeat: int = 2, steps: int = 100):
    """fcc Cu50Ni50 (4 repeat^3 atoms), random occupation, EMT Langevin at 1200 K (seeded)."""
    from ase import units
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin

    rng = np.random.default_rng(seed)
    a = bulk("Cu", "fcc", a=3.58, cubic=True).repeat((repeat, repeat, repeat))
    n = len(a)
    sym = np.array(["Cu"] * (n // 2) + ["Ni"] * (n - n // 2))
    rng.shuffle(sym)
    a.set_chemical_symbols(sym.tolist())
    a.calc = EMT()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        Langevin(a, 2 * units.fs, temperature_K=1200, friction=0.02, rng=np.random.default_rng(seed + 100)).run(steps)
    a.calc = None
    a.wrap()
    return a


@pytest.fixture(scope="module")
def cuni_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bondml.chemistry import Chemistry
    from bondml.generate.xtb import XtbSettings, write_xtb_labels, xtb_labels

    root = tmp_path_factory.mktemp("cuni") / "my CuNi runs"
    chem = Chemistry.from_elements(["Cu", "Ni"])
    for r, melt in enumerate(("melt-A", "melt-B")):
        for k in range(2):
            d = root / melt / f"snap{k + 1}"
            d.mkdir(parents=True)
            atoms = _emt_cell(seed=10 * r + k)
            write(d / "POSCAR", atoms, format="vasp")
            labels = xtb_labels(atoms, XtbSettings(threads=1, electronic_temperature_K=1000.0),
                                window=chem.lobster_window)
            write_xtb_labels(d, atoms, labels)
    return root


@pytest.mark.slow
def test_cuni_ingest_train_validate_predict(cuni_runs: Path, tmp_path: Path) -> None:
    from bondml.cli.main import build_app
    from bondml.evaluate.tune import loco
    from bondml.model.bondmodel import BondModel
    from bondml.store.db import BondStore

    app = build_app()
    run = CliRunner().invoke
    r = run(app, ["ingest", str(cuni_runs), "--store", str(tmp_path / "db"), "--labels", "xtb"])
    assert r.exit_code == 0, r.output
    s = BondStore(tmp_path / "db")
    assert s.chemistry.elements == ("Cu", "Ni") and s.settings.species_z == (28, 29)
    assert s.label_source == "xtb-gfn1" and s.target == "icohp"
    cells = s.cells()
    assert [(c["nc"], c["run"], c["sub_run"], c["path"]) for c in cells] == [
        ("Cu50Ni50", 1, 1, "melt-A/snap1"), ("Cu50Ni50", 1, 2, "melt-A/snap2"),
        ("Cu50Ni50", 2, 1, "melt-B/snap1"), ("Cu50Ni50", 2, 2, "melt-B/snap2")]
    assert all(c["labelled"] for c in cells)
    ds = s.load_dataset()
    counts = ds.counts()
    assert set(counts) == {"Cu-Cu", "Cu-Ni", "Ni-Ni"} and min(counts.values()) > 100
    assert set(ds.label_source.tolist()) == {"xtb-gfn1"}
    # grouped validation: leave one cell out, per type
    res = loco(ds)
    for t, cv in res.items():
        assert cv.metrics["n"] == counts[t]
        # measured: 0.06-0.09 eV against label std 0.38-0.56 eV
        assert cv.metrics["rmse"] < 0.3 * float(np.std(cv.y)), (t, cv.metrics)
    # train from the store, then predict a 4x larger cell
    (tmp_path / "w.json").write_text('{"Ni-Ni": [1.9, 3.1]}')
    r = run(app, ["train", "--store", str(tmp_path / "db"), "--out", str(tmp_path / "model"),
                  "--windows", str(tmp_path / "w.json")])
    assert r.exit_code == 0, r.output
    m = BondModel.load(tmp_path / "model")
    assert m.bond_types == ("Cu-Cu", "Cu-Ni", "Ni-Ni") and m.lineage["label_source"] == "xtb-gfn1"
    # covalent-radius rule, one window overridden
    assert m.windows == {"Cu-Cu": (2.0, 3.45), "Cu-Ni": (1.9, 3.35), "Ni-Ni": (1.9, 3.1)}
    # the study's store refuses these cells with one line per cell
    from bondml.store.db import BondStore

    rep = BondStore(tmp_path / "study-db", create=True).ingest(cuni_runs)
    assert len(rep.errors) == 4 and all("Ni outside the SOAP species" in e and "\n" not in e
                                        for e in rep.errors.values())
    # validate on a cell the model has not seen (own xTB labels, VASP-style folder)
    from bondml.chemistry import Chemistry
    from bondml.generate.xtb import XtbSettings, write_xtb_labels, xtb_labels

    new = tmp_path / "held-out cell"
    new.mkdir()
    atoms = _emt_cell(seed=50)
    write(new / "POSCAR", atoms, format="vasp")
    write_xtb_labels(new, atoms, xtb_labels(atoms, XtbSettings(threads=1, electronic_temperature_K=1000.0),
                                            window=Chemistry.from_elements(["Cu", "Ni"]).lobster_window))
    r = run(app, ["validate", "--model", str(tmp_path / "model"), "--cell", str(new),
                  "--json", str(tmp_path / "v.json")])
    assert r.exit_code == 0, r.output
    v = json.loads((tmp_path / "v.json").read_text())
    assert v["composition"] == "Cu50Ni50" and set(v["rmse"]) == {"Cu-Cu", "Cu-Ni", "Ni-Ni"}
    assert v["n_total"] > 150 and v["overall_rmse"] < 0.3 * float(np.std(ds.y)), v
    big = _emt_cell(seed=99, repeat=3, steps=50)  # 108 atoms
    write(tmp_path / "big.xyz", big, format="extxyz")
    r = run(app, ["predict", "--model", str(tmp_path / "model"), "--structure", str(tmp_path / "big.xyz"),
                  "--out", str(tmp_path / "pred"), "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "pred" / "summary.json").read_text())
    assert summary["frames"] == 1 and summary["n_atoms"] == 108 and summary["complete"]
    assert set(summary["bonds"]) == {"Cu-Cu", "Cu-Ni", "Ni-Ni"} and summary["fraction_fallback"] == 0.0
    import pyarrow.parquet as pq

    tabs = list((tmp_path / "pred").rglob("*.parquet"))
    assert tabs
    t = pq.read_table(tabs[0]).to_pydict()
    y = np.asarray(t["minus_icohp"], float)
    assert len(y) > 500 and np.isfinite(y).all()
    assert abs(float(np.mean(y)) - float(np.mean(ds.y))) < 0.5 * float(np.std(ds.y))
    # a structure with an element the model was not trained on is refused with one line
    big.symbols[0] = "Zr"
    with pytest.raises(Exception, match="Zr outside this model's elements"):
        m.check_elements(big.get_chemical_symbols())
