"""The real pipeline on a tiny config (run 21, few cells): caching, selective re-runs, local
multi-worker execution through parsl, the MLflow registry round trip, active-learning approval,
and a run killed at a random point then resumed giving the same results."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bondml.errors import BondmlError, ModelError
from bondml.pipeline import run_pipeline
from bondml.pipeline.active import BatchError, approve_batch, list_batches
from bondml.pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "pipeline_tiny.toml"

pytestmark = pytest.mark.slow


def _quiet(msg: str) -> None:
    pass


def _fingerprint(out: Path) -> dict[str, tuple[str, str]]:
    """{stage: (key, output hash)} of the latest complete folder of each stage."""
    res = {}
    for d in sorted((out / "stages").iterdir()):
        mans = [json.loads(m.read_text()) for m in d.glob("*/manifest.json")]
        if mans:
            m = max(mans, key=lambda m: m["finished"])
            res[d.name] = (m["key"], m["output_hash"])
    return res


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One tiny run with MLflow tracking on (2 local parsl workers)."""
    out = tmp_path_factory.mktemp("tracked")
    cfg = load_config(TINY)
    cfg = replace(cfg, tracking=replace(cfg.tracking, enabled=True))
    t0 = time.perf_counter()
    res = run_pipeline(cfg, out, log=_quiet)
    res["first_seconds"] = time.perf_counter() - t0
    res["cfg"] = cfg
    return out, res


def test_first_run_through_parsl_workers(tracked: tuple[Path, dict]) -> None:
    out, res = tracked
    assert res["tasks"] >= 6  # LOCO folds, learning curves, candidate scoring as parsl tasks
    st = res["stages"]
    assert all(r.ran for n, r in st.items() if not r.skipped)
    v = json.loads(st["validate"].path("validation.json").read_text())
    assert v["protocol"] == "leave-one-cell-out" and v["n_folds"] == 6
    assert 0.0 < v["metrics"]["Cu-Cu"]["rmse"] < 0.3
    html = (out / "report" / "report.html").read_text()
    assert "Data inventory" in html and "leave-one-cell-out" in html and "<img" in html
    assert 'src="data:image/png;base64,' in html and 'src="img/' not in html  # one file, images embedded
    assert "<table>" in html and ".tmp-" not in html
    assert "SCF_NOT_CONVERGED_AND_NO_ICOHP" in html  # sub-run 13 of run 21


def test_unchanged_rerun_is_cached_and_fast(tracked: tuple[Path, dict]) -> None:
    out, res = tracked
    t0 = time.perf_counter()
    again = run_pipeline(res["cfg"], out, log=_quiet)
    dt = time.perf_counter() - t0
    assert not any(r.ran for r in again["stages"].values())
    assert again["tasks"] == 0
    assert dt < 0.25 * res["first_seconds"], (dt, res["first_seconds"])


def test_one_setting_reruns_only_dependents(tracked: tuple[Path, dict]) -> None:
    out, res = tracked
    cfg = res["cfg"]
    cfg2 = replace(cfg, validation=replace(cfg.validation, learning_curve_seeds=(0, 1)))
    st = run_pipeline(cfg2, out, log=_quiet)["stages"]
    ran = {n for n, r in st.items() if r.ran}
    assert ran == {"validate", "track", "report"}


def test_registry_round_trip(tracked: tuple[Path, dict]) -> None:
    from bondml.pipeline.tracking import default_uri, list_models, promote, registered_model_path, show_model

    out, res = tracked
    uri = default_uri(out)
    rows = list_models(uri)
    assert rows and rows[0]["name"] == "bondml-bond-model"
    dv = res["stages"]["ingest"].summary["version"]
    assert rows[0]["data_version"] == dv and rows[0]["artifact_present"]
    v = str(rows[0]["version"])
    promote(uri, "bondml-bond-model", v, "production")
    info = show_model(uri, "bondml-bond-model", "production")
    assert info["version"] == int(v) and "rmse_Cu-Cu" in info["metrics"] and info["tags"]["data_version"] == dv
    from bondml.model.bondmodel import BondModel

    assert "Cu-Cu" in BondModel.load(registered_model_path(uri, "bondml-bond-model", v)).estimators
    with pytest.raises(ModelError, match="no registered model"):
        show_model(uri, "bondml-bond-model", "99")
    # a registry entry whose artifact was deleted: one-line error, nothing else touched
    art = Path(info["path"])
    backup = art.with_name("model-backup")
    shutil.move(art, backup)
    try:
        with pytest.raises(ModelError) as e:
            show_model(uri, "bondml-bond-model", v)
        assert "deleted or moved" in str(e.value) and "\n" not in str(e.value)
        assert not list_models(uri)[0]["artifact_present"]
    finally:
        shutil.move(backup, art)


def test_models_cli(tracked: tuple[Path, dict]) -> None:
    from typer.testing import CliRunner

    from bondml.cli.main import build_app

    out, _ = tracked
    r = CliRunner().invoke(build_app(), ["models", "list", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["name"] == "bondml-bond-model"


def test_al_approve_then_generate(tracked: tuple[Path, dict]) -> None:
    out, res = tracked
    batches = list_batches(out)
    assert len(batches) == 1 and batches[0]["status"] == "proposed"
    with pytest.raises(BatchError) as e:
        approve_batch(out, 7)
    assert "no active-learning batch 7" in str(e.value) and "\n" not in str(e.value)
    b = approve_batch(out, 1, by="test")
    assert b["status"] == "approved" and list_batches(out)[0]["status"] == "approved"
    held = [it["origin"]["cell"] for it in b["items"] if it["origin"]["kind"] == "held-out"]
    st = run_pipeline(res["cfg"], out, log=_quiet)["stages"]
    if held:  # approved held-out cells join the training data: train and validate re-run
        assert st["train"].ran and st["validate"].ran
        cells = json.loads(st["train"].path("train.json").read_text())["cells"]
        assert set(held) <= set(cells)
    assert not st["ingest"].ran
    approved = {it["id"] for it in b["items"]}
    for later in list_batches(out)[1:]:  # approved cells are not proposed again
        assert approved.isdisjoint(it["id"] for it in later["items"])


def test_killed_run_resumes_to_same_results(tmp_path: Path) -> None:
    """A ``bondml run`` killed at a random point, restarted, ends equal to an uninterrupted run."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cmd = [sys.executable, "-m", "bondml.cli.main", "run", str(TINY), "--out"]
    ref = tmp_path / "ref"
    t0 = time.perf_counter()
    subprocess.run([*cmd, str(ref)], check=True, capture_output=True, env=env)
    total = time.perf_counter() - t0
    want = _fingerprint(ref)
    delay = random.Random(7).uniform(0.4, 0.85) * total  # seeded random point inside the run
    killed = False
    for attempt in range(4):  # a run faster than the reference (a busy machine then idle): kill earlier
        out = tmp_path / f"killed-{attempt}"
        p = subprocess.Popen([*cmd, str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                             start_new_session=True)
        time.sleep(delay)
        killed = p.poll() is None
        if killed:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        if killed:
            break
        delay /= 2
    assert killed, f"the run finished before the kill at {delay:.1f} s of {total:.1f} s (4 tries)"
    partial = _fingerprint(out) if (out / "stages").is_dir() else {}
    assert partial != want  # it was really interrupted
    run_pipeline(TINY, out, log=_quiet)
    assert _fingerprint(out) == want
    assert not list((out / "stages").glob("*/.tmp-*"))


def test_bad_config_cli_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[executor]\nkind = "local"\n[model]\nmax_trian_per_type = 3\n')
    r = subprocess.run([sys.executable, "-m", "bondml.cli.main", "run", str(bad), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert r.returncode == 2
    assert "did you mean 'max_train_per_type'" in r.stderr.replace("\n", " ") or "did you mean" in r.stderr
    assert not (tmp_path / "o").exists()
    assert issubclass(BatchError, BondmlError)
