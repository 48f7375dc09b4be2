"""``bondml ui``: a small local dashboard of a pipeline output folder (Flask, server-rendered).

It shows the stages and their cache state, the data inventory and statuses, the accuracy per
bond type with its calibration, and every active-learning batch with each candidate's
uncertainty and why it was picked; a proposed batch can be approved or rejected from the page,
which writes the same ``<out>/al/batch-<n>.json`` as ``bondml al approve`` (who and when
recorded). Everything else is read-only. The page is served on 127.0.0.1 by default; another
interface needs an explicit ``allow_remote`` (there is no login). Form posts carry a per-process
token, so another web page cannot approve a batch through the user's browser.
"""

from __future__ import annotations

import getpass
import ipaddress
import json
import secrets
from pathlib import Path
from typing import Any

from .constants import BOND_TYPES
from .errors import BondmlError, ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_host(host: str, allow_remote: bool) -> str:
    """``host`` when it is a loopback address, or when ``allow_remote``; else a ConfigError."""
    if host in LOOPBACK:
        return host
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    if not allow_remote:
        raise ConfigError(f"host {host!r} is not a loopback address: the dashboard has no login and "
                          "serves 127.0.0.1 only unless remote access is allowed explicitly")
    return host


def _json(p: Path) -> dict[str, Any] | None:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _latest(out: Path, stage: str) -> tuple[Path | None, dict[str, Any] | None, int]:
    """The most recently finished version of a stage: (folder, manifest, number of versions)."""
    d = out / "stages" / stage
    if not d.is_dir():
        return None, None, 0
    mans = [(m.parent, _json(m)) for m in d.glob("*/manifest.json")]
    mans = [(p, m) for p, m in mans if m]
    if not mans:
        return None, None, 0
    p, m = max(mans, key=lambda pm: str(pm[1].get("finished", "")))
    return p, m, len(mans)


def _fmt(v: Any, nd: int = 3) -> str:
    if isinstance(v, float):
        return "-" if v != v else f"{v:.{nd}f}"
    return "-" if v is None else str(v)


def stages_view(out: Path) -> list[dict[str, Any]]:
    rows = []
    d = out / "stages"
    for s in sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []:
        _, m, n = _latest(out, s)
        if m is None:
            continue
        summ = m.get("summary") or {}
        text = ", ".join(f"{k}={_fmt(v) if not isinstance(v, (dict, list)) else '...'}"
                         for k, v in list(summ.items())[:4])
        rows.append({"name": s, "key": str(m.get("key", ""))[:16], "finished": m.get("finished", ""), "versions": n,
                     "summary": text})
    return rows


def inventory_view(out: Path) -> dict[str, Any] | None:
    p, _, _ = _latest(out, "ingest")
    inv = _json(p / "inventory.json") if p else None
    if not inv:
        return None
    return {"version": inv.get("version", "?"), "cells_by_status": sorted(inv.get("cells_by_status", {}).items()),
            "bonds": [(t, inv.get("bonds", {}).get(t, 0)) for t in BOND_TYPES],
            "not_done": [{"cell": f"{c['nc']}/{c['run']}/{c['sub_run']}", "status": c.get("status"),
                          "reason": c.get("reason", "")} for c in inv.get("cells", []) if c.get("status") != "DONE"]}


def accuracy_view(out: Path) -> dict[str, Any] | None:
    from .reporting import data_uri

    p, _, _ = _latest(out, "validate")
    v = _json(p / "validation.json") if p else None
    if not v:
        return None
    rows = [{"type": t, "n": int(m.get("n", 0)), **{k: _fmt(m.get(k)) for k in ("rmse", "mae", "r2", "cov1", "cov2")}}
            for t, m in v.get("metrics", {}).items()]
    cal = p / "calibration.png" if p else None
    return {"protocol": v.get("protocol", "?"), "rows": rows,
            "calibration": data_uri(cal) if cal is not None and cal.is_file() else None}


def _why(item: dict[str, Any], group: list[dict[str, Any]], criterion: str) -> str:
    """Why a candidate was picked: its uncertainty rank in its group, and the selection rule."""
    scores = sorted((c.get("uncertainty_eV") or float("-inf") for c in group), reverse=True)
    u = item.get("uncertainty_eV")
    rank = scores.index(u) + 1 if u in scores else None
    kind = ("exploit (augment / label an existing cell)" if item["kind"] == "exploit"
            else "explore (new run / composition)")
    where = f"uncertainty rank {rank} of {len(group)} {item['kind']} candidates" if rank else "uncertainty not ranked"
    if rank == 1:
        return f"{kind}: {where}, the most uncertain of its kind (always picked first)"
    if criterion:
        return (f"{kind}: {where}; among the most uncertain, the one farthest (mean-SOAP distance) from the "
                "cells picked before it (greedy max-min diversity)")
    return f"{kind}: {where}"


def batches_view(out: Path) -> list[dict[str, Any]]:
    from .pipeline.active import list_batches

    p, _, _ = _latest(out, "al_propose")
    prop = _json(p / "proposal.json") if p else None
    cands = (prop or {}).get("candidates", [])
    criterion = (prop or {}).get("criterion", "")
    rows = []
    for b in reversed(list_batches(out)):
        items = []
        for it in b.get("items", []):
            group = [c for c in cands if c.get("kind") == it["kind"]] or [it]
            o = it.get("origin", {})
            std = it.get("per_type_std_eV") or {}
            worst = max(std.items(), key=lambda kv: kv[1] if kv[1] == kv[1] else -1) if std else None
            items.append({"id": it["id"], "kind": it["kind"],
                          "origin_text": ", ".join(f"{k}={v}" for k, v in o.items()),
                          "uncertainty": _fmt(it.get("uncertainty_eV"), 4),
                          "worst_type": f"{worst[0]} ({_fmt(worst[1], 4)} eV)" if worst else "-",
                          "why": _why(it, group, criterion)})
        rows.append({**{k: b.get(k) for k in ("batch", "status", "created", "approved", "approved_by", "rejected",
                                             "rejected_by", "n_exploit", "n_explore")},
                     "criterion": criterion, "items": items})
    return rows


def create_app(out: str | Path, host: str = "127.0.0.1") -> Any:
    """The Flask app of the dashboard of the pipeline output ``out``."""
    from flask import Flask, redirect, render_template, request, url_for

    from .pipeline.active import approve_batch, reject_batch
    from .reporting import TEMPLATES

    out = Path(out)
    app = Flask("bondml.ui", template_folder=str(TEMPLATES))
    token = secrets.token_urlsafe(24)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""

    @app.get("/")
    def index() -> Any:
        return render_template("ui.html.j2", out=str(out), out_name=out.name, stages=stages_view(out),
                               inventory=inventory_view(out), accuracy=accuracy_view(out),
                               batches=batches_view(out), token=token, user=user, host=host,
                               message=request.args.get("message", ""), error=request.args.get("error", ""))

    @app.post("/batch/<int:n>/<action>")
    def decide(n: int, action: str) -> Any:
        if request.form.get("token") != token:
            return "forbidden: stale or foreign form (reload the page)", 403
        by = (request.form.get("by") or user).strip()
        try:
            if action == "approve":
                approve_batch(out, n, by=by)
                msg = f"batch {n} approved by {by}; the next 'bondml run' generates it"
            elif action == "reject":
                reject_batch(out, n, by=by)
                msg = f"batch {n} rejected by {by}"
            else:
                return f"unknown action {action!r}", 404
        except BondmlError as exc:
            return redirect(url_for("index", error=str(exc)))
        return redirect(url_for("index", message=msg))

    return app


def make_server(out: str | Path, host: str = "127.0.0.1", port: int = 8050, allow_remote: bool = False) -> Any:
    """A werkzeug server for the dashboard (``serve_forever()`` / ``shutdown()``; ``server_port``)."""
    from werkzeug.serving import make_server as _make

    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"{out}: not a folder (a pipeline output written by 'bondml run --out')")
    host = check_host(host, allow_remote)
    return _make(host, port, create_app(out, host), threaded=True)


__all__ = ["create_app", "make_server", "check_host"]
