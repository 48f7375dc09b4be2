"""``bondml ui`` in a real browser: Debian's chromium, headless, driven by selenium through the
system chromedriver. Clicking approve writes the batch file; the next run trains on the cells."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from bondml.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "pipeline_tiny.toml"


def test_only_loopback_unless_allowed() -> None:
    from bondml.ui import check_host

    assert check_host("127.0.0.1", False) == "127.0.0.1" and check_host("::1", False) == "::1"
    with pytest.raises(ConfigError, match="not a loopback"):
        check_host("0.0.0.0", False)
    assert check_host("0.0.0.0", True) == "0.0.0.0"


def test_foreign_post_is_refused(tmp_path: Path) -> None:
    from bondml.ui import create_app

    (tmp_path / "al").mkdir()
    (tmp_path / "al" / "batch-1.json").write_text(json.dumps({"batch": 1, "status": "proposed", "items": []}))
    c = create_app(tmp_path).test_client()
    assert c.get("/").status_code == 200
    assert c.post("/batch/1/approve", data={"token": "guess", "by": "x"}).status_code == 403
    assert json.loads((tmp_path / "al" / "batch-1.json").read_text())["status"] == "proposed"


def _browser_or_skip():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium / chromedriver missing: run scripts/install-system-deps.sh as root "
                    "(Debian packages chromium, chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"):
        opts.add_argument(a)
    service = Service(executable_path=driver)
    return webdriver.Chrome(service=service, options=opts), service


@pytest.mark.slow
def test_click_approve_then_run_trains_on_the_cells(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from bondml.pipeline import run_pipeline
    from bondml.pipeline.active import list_batches
    from bondml.pipeline.config import load_config
    from bondml.ui import make_server

    cfg = load_config(TINY)
    cfg = replace(cfg, validation=replace(cfg.validation, learning_curve_sizes=(20,)))
    out = tmp_path / "out"
    run_pipeline(cfg, out, log=lambda m: None)
    (b,) = list_batches(out)
    assert b["status"] == "proposed"
    srv = make_server(out, "127.0.0.1", 0)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    browser, service = _browser_or_skip()
    pid = service.process.pid if service.process else None
    try:
        browser.get(f"http://127.0.0.1:{srv.server_port}/")
        assert "bondml dashboard" in browser.title or "bondml" in browser.title
        page = browser.find_element(By.TAG_NAME, "body").text
        assert "Pipeline stages and cache" in page and "validate" in page
        assert "SCF_NOT_CONVERGED_AND_NO_ICOHP" in page  # the inventory's failed sub-run 13
        assert "Cu-Cu" in browser.find_element(By.ID, "accuracy").text
        assert "uncertainty rank" in page  # why each candidate was picked
        who = browser.find_element(By.ID, "by-1")
        who.clear()
        who.send_keys("dr-tester")
        browser.find_element(By.ID, "approve-1").click()
        assert "batch 1 approved by dr-tester" in browser.find_element(By.ID, "message").text
        assert browser.find_element(By.ID, "status-1").text == "approved"
    finally:
        browser.quit()
        srv.shutdown()
        srv.server_close()
        if pid is not None:  # chromedriver (and the browser under it) gone, by PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    (b,) = list_batches(out)  # the same file as 'bondml al approve' writes
    assert b["status"] == "approved" and b["approved_by"] == "dr-tester" and b["approved"]
    held = [it["origin"]["cell"] for it in b["items"] if it["origin"]["kind"] == "held-out"]
    assert held
    st = run_pipeline(cfg, out, targets=["train"], log=lambda m: None)["stages"]  # the next run, up to train
    assert st["train"].ran and not st["ingest"].ran
    cells = json.loads(st["train"].path("train.json").read_text())["cells"]
    assert set(held) <= set(cells)  # the approved cells are in the next model's training data


def test_reject_from_the_page_and_cli_status(tmp_path: Path) -> None:
    import re

    from typer.testing import CliRunner

    from bondml.cli.main import build_app
    from bondml.pipeline.active import approved_batches
    from bondml.ui import create_app

    (tmp_path / "al").mkdir()
    for n in (1, 2):
        (tmp_path / "al" / f"batch-{n}.json").write_text(json.dumps(
            {"batch": n, "status": "proposed", "created": "t", "n_exploit": 1, "n_explore": 0,
             "items": [{"id": f"held-out-c{n}", "kind": "exploit", "origin": {"kind": "held-out", "cell": f"c{n}"},
                        "uncertainty_eV": 0.1 * n, "per_type_std_eV": {"Zr-Zr": 0.2}}]}))
    c = create_app(tmp_path).test_client()
    page = c.get("/").get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    r = c.post("/batch/2/reject", data={"token": token, "by": "pi"}, follow_redirects=True)
    assert "batch 2 rejected by pi" in r.get_data(as_text=True)
    b2 = json.loads((tmp_path / "al" / "batch-2.json").read_text())
    assert b2["status"] == "rejected" and b2["rejected_by"] == "pi" and b2["rejected"]
    res = CliRunner().invoke(build_app(), ["al", "approve", "1", "--out", str(tmp_path), "--by", "cli"])
    assert res.exit_code == 0
    assert [b["batch"] for b in approved_batches(tmp_path)] == [1]  # the rejected batch is never generated
    page = c.get("/").get_data(as_text=True)
    assert 'id="approve-1"' not in page and "approved" in page and "rejected" in page
