"""The reliability contract, proved on a catalogue of bad inputs over every command.

Each case runs the real CLI entry point (``bondml.cli.main.run``, the same top-level handler as
the ``bondml`` script) in this process and asserts

* the exit status (2 = bad input, nothing changed; 1 = done but some items failed),
* exactly one line on stderr, ``error: ...``, naming the file or value (no traceback),
* that the store, model and output folders are byte-identical afterwards (every file hashed).

The fault-injection tests (SIGKILL at random moments, disk full, contending processes) live in
``tests/test_reliability_faults.py``. The numbers are in docs/reliability.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bondml.cli.main import run

from conftest import copy_subruns


# ------------------------------------------------------------------------------------------ helpers
def tree_digest(*roots: Path) -> dict[str, str]:
    """{path: sha256 | 'dir' | 'link -> target'} of every entry under ``roots`` (missing: absent)."""
    out: dict[str, str] = {}
    for root in roots:
        if not root.exists():
            out[str(root)] = "absent"
            continue
        if root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
            continue
        for p in sorted(root.rglob("*")):
            if p.is_symlink():
                out[str(p)] = f"link -> {os.readlink(p)}"
            elif p.is_dir():
                out[str(p)] = "dir"
            else:
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def call(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    import logging

    rc = run([str(a) for a in argv])
    for h in list(logging.getLogger().handlers):  # train's basicConfig handler: keep cases apart
        logging.getLogger().removeHandler(h)
    out, err = capsys.readouterr()
    return rc, out, err


def flip_byte(path: Path, where: float = 0.5) -> None:
    b = bytearray(path.read_bytes())
    b[int(len(b) * where)] ^= 0xFF
    path.write_bytes(bytes(b))


@dataclass
class Case:
    id: str
    argv: Callable[[SimpleNamespace], list[object]]
    code: int
    needle: Callable[[SimpleNamespace], str]
    protect: tuple[str, ...] = ("store", "model", "pred")
    setup: Callable[[SimpleNamespace], object] | None = None
    env: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A real store (2 cells of run 21), a model trained on it, a predict folder, bad files."""
    from bondml.deploy.infer import PredictConfig, predict_trajectory
    from bondml.md.compress import cut_cell
    from bondml.store.db import BondStore

    d = tmp_path_factory.mktemp("catalogue")
    c = SimpleNamespace(dir=d)
    c.tree = copy_subruns(d / "tree", [0, 1])
    c.store = d / "store"
    BondStore(c.store, create=True).ingest(c.tree)
    c.model = d / "model"
    assert run(["train", "--store", str(c.store), "--out", str(c.model), "--max-train", "20"]) == 0
    c.model2 = d / "model2"
    assert run(["train", "--store", str(c.store), "--out", str(c.model2), "--max-train", "25"]) == 0
    c.cell = cut_cell(d / "cell.data", side=12.0)
    c.pred = d / "pred"
    predict_trajectory(c.model, c.cell, c.pred, PredictConfig(in_process=True, progress=False))
    c.binary = d / "binary.bin"
    c.binary.write_bytes(bytes(range(256)) * 8)
    c.nan_cell = d / "nan.data"
    c.nan_cell.write_text(_nan_data(c.cell))
    # a damaged copy of the store (one flipped byte in one object) and of the model
    c.bad_store = d / "bad store"
    shutil.copytree(c.store, c.bad_store)
    flip_byte(next(c.bad_store.glob("cells/*/*/bonds.parquet")))
    c.bad_model = d / "bad model"
    shutil.copytree(c.model, c.bad_model)
    flip_byte(sorted((c.bad_model / "arrays").glob("*.npy"))[0])
    c.corrupt_store = d / "corrupt_store"
    c.corrupt_store.mkdir()
    (c.corrupt_store / "store.json").write_text("{not json")
    c.newer_store = d / "newer_store"
    c.newer_store.mkdir()
    (c.newer_store / "store.json").write_text(json.dumps({"format": 99, "settings": {}}))
    c.empty = d / "empty"
    c.empty.mkdir()
    c.a_file = d / "a_file.txt"
    c.a_file.write_text("x\n")
    c.hyper = lambda text, name="hyper.json": _write(d / name, text)
    c.toml = lambda text, name="cfg.toml": _write(d / name, text)
    return c


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def _nan_data(cell: Path) -> str:
    lines = cell.read_text().splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.strip().startswith("Atoms")) + 2
    parts = lines[k].split()
    parts[2] = "nan"
    lines[k] = " ".join(parts)
    return "\n".join(lines) + "\n"


TINY = """[pipeline]
name = "tiny"
[data]
roots = ["@reference"]
runs = [21]
[executor]
kind = "local"
workers = 1
[tracking]
enabled = false
"""

# ------------------------------------------------------------------------------------------ catalogue
S, M, P = ("store",), ("model",), ("pred",)

CASES: list[Case] = [
    # ---- ingest
    Case("ingest-root-missing", lambda c: ["ingest", c.dir / "nope", "--store", c.store], 2, lambda c: str(c.dir / "nope")),
    Case("ingest-root-is-file", lambda c: ["ingest", c.a_file, "--store", c.store], 2, lambda c: str(c.a_file)),
    Case("ingest-root-not-getl", lambda c: ["ingest", c.empty, "--store", c.store], 2, lambda c: str(c.empty)),
    Case("ingest-store-is-file", lambda c: ["ingest", c.tree, "--store", c.a_file], 2, lambda c: str(c.a_file)),
    Case("ingest-store-json-corrupt", lambda c: ["ingest", c.tree, "--store", c.corrupt_store], 2,
         lambda c: str(c.corrupt_store / "store.json"), ("corrupt_store",)),
    Case("ingest-store-newer-format", lambda c: ["ingest", c.tree, "--store", c.newer_store], 2,
         lambda c: "newer", ("newer_store",)),
    Case("ingest-store-locked", lambda c: ["ingest", c.tree, "--store", c.store], 2, lambda c: str(c.store),
         S, setup=lambda c: _hold_lock(c.store / ".lock"), env={"BONDML_LOCK_WAIT": "0.2"}),
    # ---- db
    Case("db-info-no-store", lambda c: ["db", "info", "--store", c.dir / "nostore"], 2, lambda c: str(c.dir / "nostore")),
    Case("db-info-bad-version", lambda c: ["db", "info", "--store", c.store, "--version", "deadbeef"], 2, lambda c: "deadbeef"),
    Case("db-query-bad-sql", lambda c: ["db", "query", "SELEC nonsense", "--store", c.store], 2, lambda c: "SELEC nonsense"),
    Case("db-query-unknown-table", lambda c: ["db", "query", "select * from nothere", "--store", c.store], 2,
         lambda c: "nothere"),
    Case("db-query-damaged-table", lambda c: ["db", "query", "select count(*) from bonds", "--store", c.dir / "tstore"],
         2, lambda c: "Zr-Cu.parquet: stored object is damaged", ("tstore",), setup=lambda c: _damaged_table(c)),
    Case("db-select-zero", lambda c: ["db", "select", "s", "--store", c.store, "--n-per-type", "0"], 2, lambda c: "--n-per-type"),
    Case("db-select-negative-seed", lambda c: ["db", "select", "s", "--store", c.store, "--seed", "-1"], 2, lambda c: "--seed"),
    Case("db-select-bad-stratify", lambda c: ["db", "select", "s", "--store", c.store, "--stratify", "atom"], 2, lambda c: "atom"),
    Case("db-select-bad-name", lambda c: ["db", "select", "a/b", "--store", c.store], 2, lambda c: "a/b"),
    Case("db-export-missing-selection", lambda c: ["db", "export-bnd", "--store", c.store, "--out", c.dir / "exp",
                                                   "--selection", "nosuch"], 2, lambda c: "nosuch", ("store", "exp")),
    Case("db-import-empty-folder", lambda c: ["db", "import-tables", c.empty, "--store", c.store], 2, lambda c: str(c.empty)),
    Case("db-import-missing-folder", lambda c: ["db", "import-tables", c.dir / "nofolder", "--store", c.store], 2,
         lambda c: str(c.dir / "nofolder")),
    Case("db-import-binary-bnd", lambda c: ["db", "import-tables", c.dir / "binbnd", "--store", c.store], 2,
         lambda c: str(c.dir / "binbnd"), setup=lambda c: _binary_bnd(c)),
    Case("db-verify-damaged", lambda c: ["db", "verify", "--store", c.bad_store], 1, lambda c: "bonds.parquet",
         ("bad_store",)),
    Case("db-versions-corrupt-version", lambda c: ["db", "versions", "--store", c.dir / "vstore"], 2, lambda c: ".json",
         ("vstore",), setup=lambda c: _corrupt_version(c)),
    Case("db-info-head-damaged", lambda c: ["db", "info", "--store", c.dir / "hstore"], 2, lambda c: "HEAD",
         ("hstore",), setup=lambda c: _damaged_head(c)),
    # ---- train
    Case("train-no-source", lambda c: ["train", "--out", c.dir / "m-new"], 2, lambda c: "--store", ("m-new",)),
    Case("train-two-sources", lambda c: ["train", "--out", c.dir / "m-new", "--store", c.store, "--getl", c.tree], 2,
         lambda c: "--getl", ("store", "m-new")),
    Case("train-max-train-zero", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--max-train", "0"], 2,
         lambda c: "--max-train = 0: must be > 0", ("store", "m-new")),
    Case("train-max-train-negative", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--max-train", "-5"],
         2, lambda c: "--max-train = -5", ("store", "m-new")),
    Case("train-max-train-text", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--max-train", "abc"],
         2, lambda c: "--max-train", ("store", "m-new")),
    Case("train-seed-negative", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--seed", "-1"], 2,
         lambda c: "--seed = -1", ("store", "m-new")),
    Case("train-min-bonds-zero", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--min-bonds", "0"], 2,
         lambda c: "--min-bonds", ("store", "m-new")),
    Case("train-bad-preset", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--preset", "best"], 2,
         lambda c: "best", ("store", "m-new")),
    Case("train-tuned-without-prior", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--preset", "tuned"],
         2, lambda c: "--prior", ("store", "m-new")),
    Case("train-hyper-missing", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--hyper",
                                           c.dir / "run[bold]2.json"], 2, lambda c: "run[bold]2.json", ("store", "m-new")),
    Case("train-hyper-invalid-json", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--hyper",
                                                c.hyper("{sigma: 1", "h1.json")], 2, lambda c: "h1.json", ("store", "m-new")),
    Case("train-hyper-binary", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--hyper", c.binary], 2,
         lambda c: str(c.binary), ("store", "m-new")),
    Case("train-hyper-misspelt-key", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--hyper",
                                                c.hyper('{"Zr-Zr": {"sigmaa": 1}}', "h2.json")], 2,
         lambda c: "Zr-Zr.sigmaa", ("store", "m-new")),
    Case("train-hyper-unknown-type", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--hyper",
                                                c.hyper('{"Zr-Xe": {"sigma": 1}}', "h3.json")], 2,
         lambda c: "Zr-Xe", ("store", "m-new")),
    Case("train-hyper-negative", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--hyper",
                                            c.hyper('{"Cu-Cu": {"gamma": -0.1}}', "h4.json")], 2,
         lambda c: "Cu-Cu.gamma", ("store", "m-new")),
    Case("train-out-holds-model", lambda c: ["train", "--store", c.store, "--out", c.model, "--max-train", "20"], 2,
         lambda c: f"{c.model}: already holds a model"),
    Case("train-out-is-file", lambda c: ["train", "--store", c.store, "--out", c.a_file], 2, lambda c: str(c.a_file),
         ("store", "a_file")),
    Case("train-damaged-store", lambda c: ["train", "--store", c.bad_store, "--out", c.dir / "m-new", "--max-train", "20"],
         2, lambda c: "bonds.parquet: stored object is damaged", ("bad_store", "m-new")),
    Case("train-missing-selection", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--selection", "zz"],
         2, lambda c: "'zz'", ("store", "m-new")),
    Case("train-missing-version", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--version", "0bad"],
         2, lambda c: "0bad", ("store", "m-new")),
    Case("train-getl-missing", lambda c: ["train", "--getl", c.dir / "nogetl", "--out", c.dir / "m-new"], 2,
         lambda c: str(c.dir / "nogetl"), ("m-new",)),
    Case("train-no-matching-bonds", lambda c: ["train", "--store", c.store, "--out", c.dir / "m-new", "--nc", "Zr50Cu50"],
         2, lambda c: "no labelled bonds", ("store", "m-new")),
    # ---- evaluate / tune / learning-curve
    Case("evaluate-bad-protocol", lambda c: ["evaluate", "--store", c.store, "--protocol", "magic"], 2, lambda c: "magic"),
    Case("evaluate-bad-preset", lambda c: ["evaluate", "--store", c.store, "--preset", "magic"], 2, lambda c: "magic"),
    Case("evaluate-tuned-preset-without-prior", lambda c: ["evaluate", "--store", c.store, "--preset", "tuned"], 2,
         lambda c: "tuned"),
    Case("evaluate-negative-max-train", lambda c: ["evaluate", "--store", c.store, "--max-train", "-1"], 2,
         lambda c: "--max-train = -1"),
    Case("tune-one-split", lambda c: ["tune", "--store", c.store, "--n-splits", "1"], 2, lambda c: "--n-splits = 1"),
    Case("tune-bad-type", lambda c: ["tune", "--store", c.store, "--type", "Xx-Yy"], 2, lambda c: "Xx-Yy"),
    Case("learning-curve-bad-sizes", lambda c: ["learning-curve", "--store", c.store, "--sizes", "50,abc",
                                                "--out", c.dir / "lc"], 2, lambda c: "'abc'", ("store", "lc")),
    Case("learning-curve-negative-seed", lambda c: ["learning-curve", "--store", c.store, "--seeds", "0,-2",
                                                    "--out", c.dir / "lc"], 2, lambda c: "--seeds = -2", ("store", "lc")),
    # ---- validate
    Case("validate-max-distance-zero", lambda c: ["validate", "--model", c.model, "--cell", c.tree, "--json",
                                                  c.dir / "v.json", "--max-distance", "0"], 2,
         lambda c: "--max-distance = 0", ("model", "v.json")),
    Case("validate-max-distance-negative", lambda c: ["validate", "--model", c.model, "--cell", c.tree, "--json",
                                                      c.dir / "v.json", "--max-distance", "-2"], 2,
         lambda c: "--max-distance = -2", ("model", "v.json")),
    Case("validate-model-missing", lambda c: ["validate", "--model", c.dir / "nomodel", "--cell", c.tree, "--json",
                                              c.dir / "v.json"], 2, lambda c: str(c.dir / "nomodel"), ("v.json",)),
    Case("validate-model-json-corrupt", lambda c: ["validate", "--model", c.dir / "jmodel", "--cell", c.tree, "--json",
                                                   c.dir / "v.json"], 2, lambda c: "model.json", ("jmodel", "v.json"),
         setup=lambda c: _corrupt_model_json(c)),
    Case("validate-cell-missing", lambda c: ["validate", "--model", c.model, "--cell", c.dir / "nocell", "--json",
                                             c.dir / "v.json"], 2, lambda c: str(c.dir / "nocell"), ("model", "v.json")),
    # ---- predict
    Case("predict-model-missing", lambda c: ["predict", "--model", c.dir / "nomodel", "--structure", c.cell,
                                             "--out", c.dir / "p-new"], 2, lambda c: str(c.dir / "nomodel"), ("p-new",)),
    Case("predict-model-damaged", lambda c: ["predict", "--model", c.bad_model, "--structure", c.cell,
                                             "--out", c.dir / "p-new"], 2, lambda c: str(c.bad_model / "arrays"), ("bad_model", "p-new")),
    Case("predict-structure-missing", lambda c: ["predict", "--model", c.model, "--structure", c.dir / "nostruct.data",
                                                 "--out", c.dir / "p-new"], 2, lambda c: "nostruct.data", ("model", "p-new")),
    Case("predict-structure-binary", lambda c: ["predict", "--model", c.model, "--structure", c.binary,
                                                "--out", c.dir / "p-new"], 2, lambda c: str(c.binary), ("model", "p-new")),
    Case("predict-structure-nan", lambda c: ["predict", "--model", c.model, "--structure", c.nan_cell,
                                             "--out", c.dir / "p-new"], 2, lambda c: str(c.nan_cell), ("model", "p-new")),
    Case("predict-recycle-zero", lambda c: ["predict", "--model", c.model, "--structure", c.cell, "--out", c.dir / "p-new",
                                            "--recycle-every", "0"], 2, lambda c: "--recycle-every = 0", ("model", "p-new")),
    Case("predict-recycle-negative", lambda c: ["predict", "--model", c.model, "--structure", c.cell, "--out",
                                                c.dir / "p-new", "--recycle-every", "-3"], 2,
         lambda c: "--recycle-every = -3", ("model", "p-new")),
    Case("predict-max-frames-zero", lambda c: ["predict", "--model", c.model, "--structure", c.cell, "--out",
                                               c.dir / "p-new", "--max-frames", "0"], 2, lambda c: "--max-frames",
         ("model", "p-new")),
    Case("predict-workers-negative", lambda c: ["predict", "--model", c.model, "--structure", c.cell, "--out",
                                                c.dir / "p-new", "--workers", "-1"], 2, lambda c: "--workers = -1",
         ("model", "p-new")),
    Case("predict-bad-precision", lambda c: ["predict", "--model", c.model, "--structure", c.cell, "--out",
                                             c.dir / "p-new", "--precision", "float16"], 2, lambda c: "float16",
         ("model", "p-new")),
    Case("predict-out-is-file", lambda c: ["predict", "--model", c.model, "--structure", c.cell, "--out", c.a_file], 2,
         lambda c: str(c.a_file), ("model", "a_file")),
    Case("predict-out-other-model", lambda c: ["predict", "--model", c.model2, "--structure", c.cell, "--out", c.pred],
         2, lambda c: "predictions of another run (model was", ("model2", "pred")),
    Case("predict-out-other-input", lambda c: ["predict", "--model", c.model, "--structure", c.dir / "cell2.data",
                                               "--out", c.pred], 2, lambda c: "input was", ("model", "pred"),
         setup=lambda c: (c.dir / "cell2.data").write_text(c.cell.read_text() + "\n")),
    Case("predict-out-locked", lambda c: ["predict", "--model", c.model, "--structure", c.cell, "--out", c.pred], 2,
         lambda c: "another bondml predict", ("model", "pred"), setup=lambda c: _hold_lock(c.pred / ".lock")),
    Case("predict-bad-type-map", lambda c: ["predict", "--model", c.model, "--structure", c.cell, "--out", c.dir / "p-new",
                                            "--type-map", "1=Xx,2=Cu,3=Al"], 2, lambda c: "Xx", ("model", "p-new")),
    Case("predict-out-foreign-bonds", lambda c: ["predict", "--model", c.model, "--structure", c.cell, "--out",
                                                 c.dir / "foreign"], 2, lambda c: "without a manifest",
         ("model", "foreign"), setup=lambda c: (c.dir / "foreign" / "bonds").mkdir(parents=True, exist_ok=True)),
    Case("evaluate-out-is-file", lambda c: ["evaluate", "--store", c.store, "--out", c.a_file], 2, lambda c: str(c.a_file),
         ("store", "a_file")),
    Case("learning-curve-out-is-file", lambda c: ["learning-curve", "--store", c.store, "--out", c.a_file], 2,
         lambda c: str(c.a_file), ("store", "a_file")),
    # ---- analyze / compress
    Case("analyze-not-a-predict-folder", lambda c: ["analyze", c.empty, "--out", c.dir / "rep"], 2,
         lambda c: "not a bondml predict output folder", ("empty", "rep")),
    Case("analyze-out-locked", lambda c: ["analyze", c.pred, "--out", c.dir / "rep2"], 2,
         lambda c: "another bondml command", ("pred",), setup=lambda c: _hold_lock(c.dir / "rep2" / ".lock")),
    Case("analyze-missing-run", lambda c: ["analyze", c.dir / "norun", "--out", c.dir / "rep"], 2,
         lambda c: str(c.dir / "norun"), ("rep",)),
    Case("compress-cut-side-zero", lambda c: ["compress", "--out", c.dir / "comp", "--scaled", "--cut-side", "0"], 2,
         lambda c: "--cut-side = 0", ("comp",)),
    Case("compress-negative-rate", lambda c: ["compress", "--out", c.dir / "comp", "--scaled", "--strain-rate", "-1"], 2,
         lambda c: "--strain-rate = -1", ("comp",)),
    Case("compress-positive-strain", lambda c: ["compress", "--out", c.dir / "comp", "--scaled", "--final-strain", "0.1"],
         2, lambda c: "--final-strain = 0.1", ("comp",)),
    Case("compress-cell-missing", lambda c: ["compress", "--out", c.dir / "comp", "--cell", c.dir / "nocell.data"], 2,
         lambda c: "nocell.data", ("comp",)),
    Case("compress-existing-run", lambda c: ["compress", "--out", c.dir / "done comp", "--scaled", "--cut-side", "14"], 2,
         lambda c: "already holds a compression run", ("done comp",), setup=lambda c: _fake_compression(c)),
    Case("compress-out-is-file", lambda c: ["compress", "--out", c.a_file, "--scaled"], 2, lambda c: str(c.a_file),
         ("a_file",)),
    # ---- augment / md / generate
    Case("augment-cell-missing", lambda c: ["augment", c.dir / "Zr49Cu49Al2.xyz", "--out", c.dir / "aug"], 2,
         lambda c: "Zr49Cu49Al2.xyz", ("aug",)),
    Case("augment-bad-composition-name", lambda c: ["augment", c.a_file, "--out", c.dir / "aug"], 2,
         lambda c: "a_file", ("aug",)),
    Case("augment-binary-cell", lambda c: ["augment", c.dir / "Zr50Cu50.xyz", "--out", c.dir / "aug"], 2,
         lambda c: "Zr50Cu50.xyz", ("aug",), setup=lambda c: shutil.copy(c.binary, c.dir / "Zr50Cu50.xyz")),
    Case("md-quench-bad-composition", lambda c: ["md", "quench", "--nc", "Zr50Cu49", "--seed", "1", "--out", c.dir / "q"],
         2, lambda c: "Zr50Cu49", ("q",)),
    Case("generate-unknown-element", lambda c: ["generate", "--nc", "Zr47Cu47Xe6", "--root", c.dir / "g"], 2,
         lambda c: "Xe", ("g",)),
    Case("generate-bad-labeler", lambda c: ["generate", "run", "--nc", "Zr47Cu47Al6", "--labeler", "gaussian", "--root",
                                            c.dir / "g"], 2, lambda c: "gaussian", ("g",)),
    # ---- run / models / al
    Case("run-config-missing", lambda c: ["run", c.dir / "nocfg.toml", "--out", c.dir / "r"], 2, lambda c: "nocfg.toml",
         ("r",)),
    Case("run-config-binary", lambda c: ["run", c.binary, "--out", c.dir / "r"], 2, lambda c: str(c.binary), ("r",)),
    Case("run-config-not-toml", lambda c: ["run", c.toml("[pipeline\nname = 1", "bad1.toml"), "--out", c.dir / "r"], 2,
         lambda c: "bad1.toml", ("r",)),
    Case("run-unknown-section", lambda c: ["run", c.toml(TINY + "[modle]\nx = 1\n", "bad2.toml"), "--out", c.dir / "r"], 2,
         lambda c: "[modle]", ("r",)),
    Case("run-misspelt-key", lambda c: ["run", c.toml(TINY + "[model]\nmax_train_per_typ = 5\n", "bad3.toml"), "--out",
                                        c.dir / "r"], 2, lambda c: "max_train_per_type", ("r",)),
    Case("run-missing-executor", lambda c: ["run", c.toml("[pipeline]\nname = 'x'\n", "bad4.toml"), "--out", c.dir / "r"],
         2, lambda c: "missing [executor] section", ("r",)),
    Case("run-soap-cutoff-negative", lambda c: ["run", c.toml(TINY + "[features]\ncutoff = -1.0\n", "bad5.toml"), "--out",
                                                c.dir / "r"], 2, lambda c: "features.cutoff = -1.0: must be > 0", ("r",)),
    Case("run-soap-n-max-zero", lambda c: ["run", c.toml(TINY + "[features]\nn_max = 0\n", "bad6.toml"), "--out",
                                           c.dir / "r"], 2, lambda c: "features.n_max = 0: must be >= 1", ("r",)),
    Case("run-soap-l-max-negative", lambda c: ["run", c.toml(TINY + "[features]\nl_max = -1\n", "bad7.toml"), "--out",
                                               c.dir / "r"], 2, lambda c: "features.l_max = -1", ("r",)),
    Case("run-negative-seed", lambda c: ["run", c.toml(TINY.replace('name = "tiny"', 'name = "tiny"\nseed = -4'),
                                                       "bad8.toml"), "--out", c.dir / "r"], 2,
         lambda c: "pipeline.seed = -4", ("r",)),
    Case("run-out-is-file", lambda c: ["run", c.toml(TINY, "ok.toml"), "--out", c.a_file], 2, lambda c: str(c.a_file),
         ("a_file",)),
    Case("run-out-of-other-pipeline", lambda c: ["run", c.toml(TINY, "ok.toml"), "--out", c.dir / "other run"], 2,
         lambda c: "holds the run of another pipeline", ("other run",), setup=lambda c: _other_pipeline(c)),
    Case("run-out-locked", lambda c: ["run", c.toml(TINY, "ok.toml"), "--out", c.dir / "locked run"], 2,
         lambda c: "another bondml run", ("locked run",), setup=lambda c: _hold_lock(c.dir / "locked run" / ".lock")),
    Case("run-unknown-stage", lambda c: ["run", c.toml(TINY, "ok.toml"), "--out", c.dir / "r", "--stage", "trian"], 2,
         lambda c: "trian", ("r",)),
    Case("models-list-no-registry", lambda c: ["models", "list", "--out", c.empty], 2, lambda c: str(c.empty), ("empty",)),
    Case("al-approve-missing-batch", lambda c: ["al", "approve", "7", "--out", c.empty], 2, lambda c: "batch-7.json",
         ("empty",)),
    Case("al-approve-corrupt-batch", lambda c: ["al", "approve", "1", "--out", c.dir / "al run"], 2,
         lambda c: "batch-1.json", ("al run",), setup=lambda c: _corrupt_batch(c)),
    Case("al-status-corrupt-batch", lambda c: ["al", "status", "--out", c.dir / "al run"], 2, lambda c: "batch-1.json",
         ("al run",), setup=lambda c: _corrupt_batch(c)),
    # ---- usage
    Case("unknown-command", lambda c: ["trian"], 2, lambda c: "trian", ()),
    Case("unknown-option", lambda c: ["ingest", c.tree, "--stroe", c.store], 2, lambda c: "--stroe", S),
]


# ------------------------------------------------------------------------------------------ set-ups
_HELD: list[int] = []


def _hold_lock(path: Path) -> None:
    """Another process holds this lock (an flock on another open file description)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _HELD.append(fd)


def _binary_bnd(c: SimpleNamespace) -> None:
    d = c.dir / "binbnd"
    d.mkdir(exist_ok=True)
    (d / "DB4_Zr-Cu.bnd").write_bytes(b"\xff\xfe\x00" + bytes(range(256)) * 4)


def _corrupt_version(c: SimpleNamespace) -> None:
    d = c.dir / "vstore"
    if not d.exists():
        shutil.copytree(c.store, d)
        (next(d.glob("versions/*.json"))).write_text("{truncated")


def _damaged_table(c: SimpleNamespace) -> None:
    d = c.dir / "tstore"
    if not d.exists():
        shutil.copytree(c.store, d)
        flip_byte(next(d.glob("tables/*/Zr-Cu.parquet")))


def _damaged_head(c: SimpleNamespace) -> None:
    d = c.dir / "hstore"
    if not d.exists():
        shutil.copytree(c.store, d)
        (d / "HEAD").write_bytes(b"\x00\xffgarbage\n")


def _corrupt_model_json(c: SimpleNamespace) -> None:
    d = c.dir / "jmodel"
    if not d.exists():
        shutil.copytree(c.model, d)
        (d / "model.json").write_text('{"format": ')


def _fake_compression(c: SimpleNamespace) -> None:
    d = c.dir / "done comp"
    d.mkdir(exist_ok=True)
    (d / "compression.dump").write_text("ITEM: TIMESTEP\n0\n")
    (d / "cut.data").write_text("the cut cell of the earlier run\n")


def _other_pipeline(c: SimpleNamespace) -> None:
    from bondml.pipeline import PROVENANCE

    d = c.dir / "other run"
    d.mkdir(exist_ok=True)
    other = TINY.replace('roots = ["@reference"]', f'roots = ["{c.tree}"]')
    import tomllib

    from bondml.pipeline import check_provenance
    from bondml.pipeline.config import parse_config
    from bondml.util import atomic_write_json

    atomic_write_json(d / PROVENANCE, check_provenance(parse_config(tomllib.loads(other), str(c.dir / "a.toml")), d))


def _corrupt_batch(c: SimpleNamespace) -> None:
    d = c.dir / "al run" / "al"
    d.mkdir(parents=True, exist_ok=True)
    (d / "batch-1.json").write_text('{"batch": 1, "status": "prop')


# ------------------------------------------------------------------------------------------ the test
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_catalogue(case: Case, ctx: SimpleNamespace, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    if case.setup is not None:
        case.setup(ctx)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    watched = [getattr(ctx, name) if hasattr(ctx, name) else ctx.dir / name for name in case.protect]
    before = tree_digest(*watched)
    try:
        rc, out, err = call(case.argv(ctx), capsys)
    finally:
        while _HELD:
            os.close(_HELD.pop())
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == case.code, (rc, err[-2000:], out[-1000:])
    assert "Traceback" not in err
    if case.code == 2:
        assert len(lines) == 1, err
        assert lines[0].startswith("error: "), lines[0]
        assert case.needle(ctx) in lines[0], (case.needle(ctx), lines[0])
    elif case.code == 1:
        assert lines and all(ln.startswith("error: ") for ln in lines), err
        assert any(case.needle(ctx) in ln for ln in lines), err
    assert tree_digest(*watched) == before, "a failed command changed what was there"


def test_catalogue_size() -> None:
    """The contract asks for at least 60 distinct bad inputs over every command."""
    assert len({c.id for c in CASES}) == len(CASES) >= 60
    commands = {c.argv(SimpleNamespace(**{k: Path("x") for k in ("dir", "tree", "store", "model", "model2", "cell",
                                                                   "pred", "binary", "nan_cell", "bad_store", "bad_model",
                                                                   "corrupt_store", "newer_store", "empty", "a_file")},
                                          hyper=lambda *a: Path("h"), toml=lambda *a: Path("t")))[0] for c in CASES}
    assert {"ingest", "db", "train", "evaluate", "tune", "learning-curve", "validate", "predict", "analyze", "compress",
            "augment", "md", "generate", "run", "models", "al"} <= commands


def test_damaged_store_is_repaired_by_reingest(ctx: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Flipped bytes in a stored object: re-ingest says 'repaired', re-extracts it from the source,
    and the store is byte-identical to the undamaged one; db verify then passes."""
    store = tmp_path / "s"
    shutil.copytree(ctx.store, store)
    clean = tree_digest(store)
    obj = next(store.glob("cells/*/*/atoms.parquet"))
    flip_byte(obj, 0.3)
    rc, out, err = call(["db", "verify", "--store", store], capsys)
    assert rc == 1 and str(obj) in err
    rc, out, err = call(["ingest", ctx.tree, "--store", store, "--json"], capsys)
    assert rc == 0, err
    assert len(json.loads(out)["repaired"]) == 1
    assert {k.replace(str(store), ""): v for k, v in tree_digest(store).items()} == \
        {k.replace(str(store), ""): v for k, v in clean.items()}
    assert call(["db", "verify", "--store", store], capsys)[0] == 0


def test_db_verify_repair_and_damaged_frame(ctx: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``db verify --repair`` re-extracts from the recorded source; a damaged predicted frame is
    not counted as complete: the resumed predict recomputes it to the same bytes."""
    store = tmp_path / "s"
    shutil.copytree(ctx.store, store)
    clean = {k.replace(str(store), ""): v for k, v in tree_digest(store).items()}
    flip_byte(next(store.glob("cells/*/*/bonds.parquet")))
    rc, out, err = call(["db", "verify", "--store", store, "--repair"], capsys)
    assert rc == 0, err
    assert {k.replace(str(store), ""): v for k, v in tree_digest(store).items()} == clean
    pred = tmp_path / "pred"
    shutil.copytree(ctx.pred, pred)
    want = {k.replace(str(pred), ""): v for k, v in tree_digest(pred).items()}
    flip_byte(pred / "bonds" / "frame=0" / "part-0.parquet")
    rc, out, err = call(["predict", "--model", ctx.model, "--structure", ctx.cell, "--out", pred, "--quiet",
                         "--workers", "1"], capsys)
    assert rc == 0, err
    got = {k.replace(str(pred), ""): v for k, v in tree_digest(pred).items()}
    for k in ("/bonds/frame=0/part-0.parquet", "/peratom/frame=0/part-0.parquet"):
        assert got[k] == want[k]


def test_messages_are_plain_and_unwrapped(ctx: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Paths with markup-like text, spaces and non-ASCII, longer than any terminal, come out as they are."""
    long = tmp_path / ("a b é [bold]x[/] " + "y" * 150) / "hyper.json"
    rc, out, err = call(["train", "--store", ctx.store, "--out", tmp_path / "m", "--hyper", long], capsys)
    assert rc == 2 and err.count("\n") == 1 and str(long) in err
    rc, out, err = call(["db", "info", "--store", ctx.store], capsys)  # stdout is not a terminal here
    assert rc == 0 and all(len(ln) < 400 for ln in out.splitlines())
    assert "│ Zr-Cu │" in out.replace("  ", " ") or "Zr-Cu" in out
    assert not any(ln.rstrip().endswith("…") for ln in out.splitlines())


def test_validate_sees_training_cells(ctx: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The model records store keys (Zr49Cu49Al2-21-0); validate of that cell warns 'in training data'."""
    cell = next(ctx.tree.rglob("2000/0"))
    rc, out, err = call(["validate", "--model", ctx.model, "--cell", cell, "--json", tmp_path / "v.json"], capsys)
    assert rc == 0, err
    assert json.loads((tmp_path / "v.json").read_text())["in_training_data"] is True
    assert "in the model's training data" in err


def test_files_honour_the_umask(ctx: SimpleNamespace, tmp_path: Path) -> None:
    from bondml.util import atomic_write_text

    old = os.umask(0o002)
    try:
        atomic_write_text(tmp_path / "g.txt", "x")
        assert (tmp_path / "g.txt").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)
    for p in (ctx.model / "model.json", next(ctx.store.glob("cells/*/*/cell.json"))):
        assert p.stat().st_mode & 0o777 == 0o666 & ~old


def test_train_out_overwrite_and_query_path_with_quote(ctx: SimpleNamespace, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    m = tmp_path / "m"
    shutil.copytree(ctx.model, m)
    assert call(["train", "--store", ctx.store, "--out", m, "--max-train", "25", "--overwrite"], capsys)[0] == 0
    assert json.loads((m / "model.json").read_text())["arrays"] == \
        json.loads((ctx.model2 / "model.json").read_text())["arrays"]
    q = tmp_path / "it's a store"
    shutil.copytree(ctx.store, q)
    rc, out, err = call(["db", "query", "select count(*) from cells", "--store", q], capsys)
    assert rc == 0 and out.strip() == "2", err


def test_ingest_exits_1_when_a_cell_fails(ctx: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = copy_subruns(tmp_path / "tree", [0])
    ic = next(tree.rglob("ICOHPLIST.lobster"))
    ic.write_bytes(bytes(range(256)) * 16)
    rc, out, err = call(["ingest", tree, "--store", tmp_path / "s"], capsys)
    lines = err.splitlines()
    assert rc == 1, err
    assert any("Zr49Cu49Al2" in ln for ln in lines) and lines[-1].startswith("error: ") and "not ingested" in lines[-1]


def test_compress_and_quench_in_a_folder_with_space_and_accent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """LAMMPS reads and writes in 'a b/é' (paths relative to the run folder, quoted)."""
    base = tmp_path / "a b" / "é"
    base.mkdir(parents=True)
    rc, out, err = call(["compress", "--out", base / "c run", "--scaled", "--cut-side", "14", "--final-strain",
                         "-0.004"], capsys)
    assert rc == 0, err
    assert (base / "c run" / "compression.dump").stat().st_size > 0
    rc, out, err = call(["md", "quench", "--nc", "Zr50Cu50", "--seed", "1", "--out", base / "q run", "--atoms", "20",
                         "--scaled"], capsys)
    assert rc == 0, err
    assert (base / "q run" / "Zr50Cu50.xyz").is_file()
    np.testing.assert_equal(True, "read_data \"start.data\"" in (base / "q run" / "Zr50Cu50.lmp.inp").read_text())


def test_predict_bad_frame_after_good_ones_exits_1(ctx: SimpleNamespace, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Frame 1 of 3 has a NaN coordinate: frame 0 is kept, exit 1 with the frame's line and a
    summary; the folder stays resumable (the same command continues after a fix)."""
    from bondml.io.lammps import format_dump_frame, read_lammps_data

    a = read_lammps_data(ctx.cell).atoms
    traj = tmp_path / "t.dump"
    with open(traj, "w") as fh:
        for k in range(3):
            b = a.copy()
            if k == 1:
                b.positions[3, 1] = np.nan
            fh.write(format_dump_frame(b, timestep=k))
    out = tmp_path / "o"
    rc, _, err = call(["predict", "--model", ctx.model, "--structure", traj, "--out", out, "--quiet", "--workers", "1"],
                      capsys)
    lines = err.strip().splitlines()
    assert rc == 1, err
    assert "frame 1" in lines[0] and "non-finite" in lines[0] and "after 1 frame(s)" in lines[-1]
    assert len(json.loads((out / "manifest.json").read_text())["frames"]) == 1
