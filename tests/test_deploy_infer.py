"""Per-frame inference with a real (small) BondModel: outputs, resume, parallel, bad input, analysis, CLI."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from ase.io import read

from bondml.deploy.infer import PredictConfig, predict_trajectory
from bondml.deploy.outputs import read_bonds, read_peratom
from bondml.errors import BondmlError, FeatureMismatchError, ModelError, UnknownElementError
from bondml.features.soap import FeatureSettings, compute_soap
from bondml.io.lammps import read_lammps_data
from bondml.io.lobster import read_icohplist
from bondml.model.bondmodel import BondModel
from bondml.structure.bonds import find_bonds

QUIET = dict(progress=False, in_process=True)


@pytest.fixture(scope="session")
def traj_run(model_dir, trajectory, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    summary = predict_trajectory(model_dir, trajectory, out, PredictConfig(icohplist=True, **QUIET))
    return out, summary


def test_single_data_file(model_dir, small_cell, tmp_path):
    out = tmp_path / "one"
    s = predict_trajectory(model_dir, small_cell, out, PredictConfig(**QUIET))
    atoms = read_lammps_data(small_cell).atoms
    ref = find_bonds(atoms, windows=BondModel.load(model_dir).windows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 1 and s["frames"] == 1
    assert summary["bonds"] == ref.counts()
    assert summary["seconds_per_frame"] > 0
    t = read_bonds(out)
    assert t.num_rows == len(ref)
    assert set(t.column_names) >= {"frame", "strain", "i", "j", "element_i", "element_j", "type", "shift_x",
                                   "distance", "minus_icohp", "std", "fallback", "out_of_domain"}
    assert np.all(np.isfinite(t["minus_icohp"].to_numpy()))
    # Al-Al has no GP (run 21 has none): flagged fallback, and only there
    fb = t["fallback"].to_numpy()
    types = t["type"].to_numpy(zero_copy_only=False).astype(str)
    assert np.array_equal(fb, types == "Al-Al")
    # per-atom ext-xyz: ASE reads it; sums count each bond for both atoms
    x = read(out / "peratom" / "frame_00000.xyz", format="extxyz")
    assert len(x) == len(atoms)
    assert np.isclose(x.arrays["sum_micohp"].sum(), 2 * t["minus_icohp"].to_numpy().astype(float).sum(), rtol=1e-5)
    assert x.arrays["coordination"].sum() == 2 * len(ref)


def test_trajectory_soap_recomputed_each_frame(model_dir, trajectory, traj_run):
    out, s = traj_run
    assert s["frames"] == 4
    assert np.allclose(s["strain"], [0, -0.01, -0.02, -0.03], atol=1e-9)
    model = BondModel.load(model_dir)
    from bondml.io.lammps import iter_dump

    frames = list(iter_dump(trajectory))
    assert all(f.unwrapped for f in frames)
    f3 = frames[3].atoms
    b = find_bonds(f3, windows=model.windows)
    direct = model.predict_bonds(b.type, b.distance, compute_soap(f3, model.settings), b.i, b.j, model.settings,
                                   precision="float32")  # the deployment default
    t = read_bonds(out, [3])
    assert np.allclose(t["minus_icohp"].to_numpy(), direct["minus_icohp"], atol=1e-5)
    # with frame 0's SOAP (the original's bug) the predictions would differ
    stale = model.predict_bonds(b.type, b.distance, compute_soap(frames[0].atoms, model.settings), b.i, b.j,
                                model.settings)
    assert np.max(np.abs(stale["minus_icohp"] - direct["minus_icohp"])) > 1e-3
    # per-atom stress carried to the per-atom table, pressure = -trace/3
    pa = read_peratom(out, [3])
    trace = pa["sxx"].to_numpy() + pa["syy"].to_numpy() + pa["szz"].to_numpy()
    assert np.allclose(pa["pressure"].to_numpy(), -trace / 3)


def test_icohplist_written_in_lobster_format(traj_run):
    out, _ = traj_run
    ic = read_icohplist(out / "icohplist" / "frame_00002.ICOHPLIST.lobster")
    t = read_bonds(out, [2])
    assert len(ic) == t.num_rows
    assert np.allclose(ic.minus_icohp, t["minus_icohp"].to_numpy(), atol=1e-5)
    assert np.array_equal(ic.shift[:, 0], t["shift_x"].to_numpy())


def test_resume_continues_after_last_complete_frame(model_dir, trajectory, traj_run, tmp_path):
    out = tmp_path / "resume"
    s1 = predict_trajectory(model_dir, trajectory, out, PredictConfig(max_frames=2, **QUIET))
    assert s1["frames"] == 2 and not s1["complete"]
    # simulate a crash while frame 2 was being written: a stray temp file and no manifest entry
    (out / "bonds" / "frame=2").mkdir(parents=True)
    (out / "bonds" / "frame=2" / ".part-0.parquet.123.tmp").write_bytes(b"partial")
    s2 = predict_trajectory(model_dir, trajectory, out, PredictConfig(**QUIET))
    assert s2["frames"] == 4 and s2["complete"]
    man = json.loads((out / "manifest.json").read_text())
    assert [f["frame"] for f in man["frames"]] == [0, 1, 2, 3]
    full = read_bonds(traj_run[0]).sort_by([("frame", "ascending"), ("i", "ascending"), ("j", "ascending")])
    res = read_bonds(out).sort_by([("frame", "ascending"), ("i", "ascending"), ("j", "ascending")])
    assert np.allclose(full["minus_icohp"].to_numpy(), res["minus_icohp"].to_numpy())


def test_other_run_in_out_dir_needs_overwrite(model_dir, trajectory, small_cell, traj_run):
    out, _ = traj_run
    before = pq.read_table(out / "bonds" / "frame=0" / "part-0.parquet")
    with pytest.raises(BondmlError, match="holds the predictions of another run"):
        predict_trajectory(model_dir, small_cell, out, PredictConfig(**QUIET))
    assert pq.read_table(out / "bonds" / "frame=0" / "part-0.parquet").equals(before)


def test_overwrite_replaces(model_dir, small_cell, trajectory, tmp_path):
    out = tmp_path / "ow"
    predict_trajectory(model_dir, trajectory, out, PredictConfig(max_frames=1, **QUIET))
    s = predict_trajectory(model_dir, small_cell, out, PredictConfig(overwrite=True, **QUIET))
    assert s["frames"] == 1
    assert json.loads((out / "manifest.json").read_text())["input"]["path"] == str(small_cell.resolve())


def test_bad_model_and_elements(model_dir, small_cell, tmp_path):
    with pytest.raises(FeatureMismatchError, match="cutoff"):
        predict_trajectory(model_dir, small_cell, tmp_path / "a",
                           PredictConfig(settings=FeatureSettings(cutoff=4.0), **QUIET))
    m = BondModel.load(model_dir)
    m.distance_model = None  # no fallback ...
    del m.estimators["Zr-Al"]  # ... and no Zr-Al GP: Zr-Al has no model at all
    no_al = m.save(tmp_path / "no_zral")
    with pytest.raises(ModelError, match="Zr-Al"):
        predict_trajectory(no_al, small_cell, tmp_path / "b", PredictConfig(**QUIET))
    text = small_cell.read_text().replace("# Al", "# Ni").replace(" 26.9815 ", " 58.69 ")
    ni = tmp_path / "ni.data"
    ni.write_text(text)
    with pytest.raises(UnknownElementError):
        predict_trajectory(model_dir, ni, tmp_path / "c", PredictConfig(**QUIET))


@pytest.mark.slow
def test_parallel_workers_match_serial(model_dir, trajectory, traj_run, tmp_path):
    out = tmp_path / "par"
    cfg = PredictConfig(workers=2, icohplist=True, progress=False, recycle_every=1)  # a new process per frame
    s = predict_trajectory(model_dir, trajectory, out, cfg)
    assert s["frames"] == 4
    a = read_bonds(traj_run[0])
    b = read_bonds(out)
    assert a.num_rows == b.num_rows
    # workers run 1 BLAS thread each (cores // workers), the serial run all cores: float32 sums in
    # another order, ~1e-6 eV (the float32 path's documented bound is 1e-4 eV)
    d = np.abs(a["minus_icohp"].to_numpy().astype(float) - b["minus_icohp"].to_numpy())
    assert d.max() < 1e-5, d.max()
    man = json.loads((out / "manifest.json").read_text())
    assert [f["frame"] for f in man["frames"]] == [0, 1, 2, 3]
    assert all(f["cpu_seconds"] > 0 for f in man["frames"])


def test_analyze_report(traj_run, tmp_path):
    from bondml.analysis.report import analyze

    out, _ = traj_run
    html = analyze(out, tmp_path / "report")
    rep = tmp_path / "report"
    for png in ("stress_strain.png", "distributions.png", "distribution_trends.png", "peratom_stress.png",
                "exchange.png", "slice_maps.png", "slice_change.png", "extreme_bonds.png"):
        assert (rep / png).stat().st_size > 1000, png
    md = (rep / "report.md").read_text()
    assert "Bond exchange" in md and "matched by shift" in md and "flicker" in md
    assert "Strongest and weakest bonds" in md
    text = html.read_text()
    assert text.count('src="data:image/png;base64,') >= 8 and '.png"' not in text  # one file
    an = json.loads((rep / "analysis.json").read_text())
    ex = an["Bond exchange"]
    for t in ex["broken"]:  # flicker is a part of the exchange, never more
        assert 0 <= ex["broken_flicker"][t] <= ex["broken"][t] and 0 <= ex["formed_flicker"][t] <= ex["formed"][t]
    ext = an["Strongest and weakest bonds"]["Zr-Cu"]
    strongest, weakest = ext["strongest"], ext["weakest"]
    assert strongest[0]["minus_icohp_eV"] >= strongest[-1]["minus_icohp_eV"] > weakest[-1]["minus_icohp_eV"]


def test_cli_predict_and_errors(model_dir, small_cell, tmp_path):
    from typer.testing import CliRunner

    from bondml.cli.main import build_app

    runner = CliRunner()
    app = build_app()
    out = tmp_path / "cli"
    r = runner.invoke(app, ["predict", "--model", str(model_dir), "--structure", str(small_cell), "--out", str(out),
                            "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "summary.json").read_text())["frames"] == 1
    r = runner.invoke(app, ["predict", "--model", str(model_dir), "--structure", str(tmp_path / "nope.dump"),
                            "--out", str(out), "--quiet"])
    assert r.exit_code != 0


def test_progress_callback_and_logging(model_dir, trajectory, tmp_path, caplog, capsys):
    """Library code reports progress through the callback and logging, and prints nothing."""
    import logging

    calls: list[tuple[int, int | None]] = []
    out = tmp_path / "prog"
    with caplog.at_level(logging.INFO, logger="bondml.deploy"):
        predict_trajectory(model_dir, trajectory, out, PredictConfig(in_process=True, max_frames=3),
                           progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert [r.getMessage().split()[1] for r in caplog.records if "recorded" in r.getMessage()] == ["0", "1", "2"]
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""  # no bar drawn by the library (even with the default config)
    # resume: the callback starts from the frames already done; total = every frame of the input
    calls.clear()
    predict_trajectory(model_dir, trajectory, out, PredictConfig(in_process=True),
                       progress=lambda done, total: calls.append((done, total)))
    assert calls == [(3, 4), (4, 4)]


def test_cli_predict_plain_output_in_a_pipe(model_dir, trajectory, tmp_path):
    """`bondml predict ... 2>&1 | cat`: the CLI's bar and summary, no escape codes or rich markup."""
    import os
    import subprocess
    import sys

    out = tmp_path / "pipe"
    r = subprocess.run([sys.executable, "-m", "bondml.cli.main", "predict", "--model", str(model_dir),
                        "--structure", str(trajectory), "--out", str(out), "--workers", "1", "--max-frames", "2"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "TERM": "xterm"})
    assert r.returncode == 0, r.stdout
    assert "\x1b" not in r.stdout and "[bold]" not in r.stdout
    first = r.stdout.splitlines()[0]
    assert first.startswith("predict") and "2/2" in first and "frames/s" in first
    assert "2 frame(s)" in r.stdout and f"wrote {out / 'summary.json'}" in r.stdout


def test_model_check_remembered_until_a_file_changes(model_dir, small_cell, tmp_path, monkeypatch):
    """The SHA-256 check of the model arrays runs once per model; a changed file is hashed again."""
    import shutil

    from bondml.deploy.infer import _ArrayCheck, model_digest

    monkeypatch.setenv("BONDML_CACHE_DIR", str(tmp_path / "cache"))
    m = tmp_path / "m"
    shutil.copytree(model_dir, m)
    digest = model_digest(m)
    first = _ArrayCheck(m, digest)
    first.result()
    assert not first.cached and (tmp_path / "cache" / "verified-models" / f"{digest}.json").is_file()
    again = _ArrayCheck(m, digest)
    again.result()
    assert again.cached
    arr = sorted((m / "arrays").glob("*.npy"))[-1]
    data = bytearray(arr.read_bytes())
    data[-1] ^= 0xFF  # same size, same name
    arr.write_bytes(bytes(data))
    damaged = _ArrayCheck(m, digest)
    with pytest.raises(ModelError, match="content does not match model.json"):
        damaged.result()
    assert not damaged.cached
    with pytest.raises(ModelError, match="content does not match model.json"):
        predict_trajectory(m, small_cell, tmp_path / "o", PredictConfig(**QUIET))
    assert not (tmp_path / "o").exists()  # refused before anything is written
