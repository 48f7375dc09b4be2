"""The per-run report (Markdown, rendered by :mod:`bondml.reporting` into one self-contained HTML
file with the PNG plots embedded): what a group shows at a lab meeting.

Sections: run and lineage, data inventory and statuses, model, accuracy per type under the
honest grouped protocol (parity, calibration, learning curves), tracking, generated data (xTB,
approximate), deployment analysis (embedded), active learning (proposal, benchmark).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..constants import BOND_TYPES, PAPER_RMSE
from ..util import atomic_write_json, atomic_write_text
from .dag import StageContext, StageResult


def _j(res: StageResult, name: str) -> dict[str, Any] | None:
    if res.skipped or res.dir is None or not res.path(name).is_file():
        return None
    return json.loads(res.path(name).read_text())


def _img(ctx: StageContext, res: StageResult, name: str, caption: str) -> list[str]:
    if res.skipped or res.dir is None or not res.path(name).is_file():
        return []
    dst = ctx.dir / "img" / f"{res.name}-{name}"
    dst.parent.mkdir(exist_ok=True)
    shutil.copyfile(res.path(name), dst)
    return [f"![{caption}](img/{dst.name})", ""]


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "-" if v != v else f"{v:.3f}"
        return str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return out + [""]


def _run_section(ctx: StageContext) -> list[str]:
    cfg = ctx.config
    lines = [f"# bondml pipeline report: {cfg.pipeline.name}", "",
             f"Config `{cfg.source or '<inline>'}`; seed {cfg.pipeline.seed}. Units: Angstrom, eV, GPa, ps.", "",
             "## Stages", ""]
    rows = [[n, r.key if not r.skipped else "disabled", r.output_hash[:16] or "-"] for n, r in ctx.inputs.items()]
    return lines + _table(["stage", "cache key", "output hash"], rows)


def _data_section(ctx: StageContext) -> list[str]:
    inv = _j(ctx.inputs["ingest"], "inventory.json") or {}
    lines = ["## Data inventory", "", f"Store version `{inv.get('version', '?')}` ({inv.get('store', '')}).", ""]
    lines += _table(["status", "cells"], [[k, v] for k, v in sorted(inv.get("cells_by_status", {}).items())])
    bad = [c for c in inv.get("cells", []) if c.get("status") != "DONE"]
    if bad:
        lines += (["Cells not DONE:", ""]
                  + [f"- {c['nc']}/{c['run']}/{c['sub_run']}: {c['status']} ({c.get('reason', '')})" for c in bad]
                  + [""])
    st = inv.get("label_stats", {})
    lines += ["Labelled LOBSTER bonds (1.80 <= d <= 3.75 A):", ""]
    lines += _table(["type", "bonds", "mean -ICOHP (eV)", "d min (A)", "d max (A)"],
                    [[t, inv.get("bonds", {}).get(t, 0), st.get(t, {}).get("mean", float("nan")),
                      st.get(t, {}).get("d_min", float("nan")), st.get(t, {}).get("d_max", float("nan"))]
                     for t in BOND_TYPES])
    return lines


def _model_section(ctx: StageContext) -> list[str]:
    tr = _j(ctx.inputs["train"], "train.json") or {}
    lines = ["## Model", "",
             f"Per-type bond GPR trained on {tr.get('n_bonds', 0)} bonds of {len(tr.get('cells', []))} cells, "
             f"label source {', '.join(tr.get('label_source', []))}, data version `{tr.get('data_version', '')}`.", ""]
    if tr.get("preset"):
        desc = {"bond": "bond-centred SOAP (at the bond midpoint)", "atom": "atom-centred SOAP (the paper's)"}
        lines += [f"Preset **{tr['preset']}**, descriptor {desc.get(tr.get('descriptor'), tr.get('descriptor'))} "
                  f"(settings `{tr.get('settings_digest', '')}`).", ""]
    rows = []
    for t in BOND_TYPES:
        d = tr.get("types", {}).get(t)
        if d is None:
            rows.append([t, "none", 0, "-", "-", "-"])
            continue
        hp = tr.get("hyperparameters", {}).get(t, {})
        rows.append([t, d.get("kind"), d.get("n_train", d.get("n_available", 0)), hp.get("sigma", "-"),
                     hp.get("gamma", "-"), hp.get("zeta", "-")])
    lines += _table(["type", "model", "training bonds", "sigma (A)", "gamma", "zeta"], rows)
    if tr.get("fallback_types"):
        lines += ["Fallback (distance-only model, flagged in every prediction): "
                  f"{', '.join(tr['fallback_types'])}.", ""]
    return lines


def _accuracy_section(ctx: StageContext) -> list[str]:
    v = _j(ctx.inputs["validate"], "validation.json")
    if not v:
        return []
    fig = v.get("figures", {})
    lines = ["## Accuracy (honest grouped protocol)", "",
             f"Protocol: **{v['protocol']}**, {v['n_folds']} folds. {v['note']}.", ""]
    if v.get("model"):
        m = v["model"]
        lines += [f"Validated model: preset {m['preset']}, {m['descriptor']}-centred SOAP, mean function {m['mean']}.",
                  ""]
    lines += [f"Table and parity plot: {fig.get('metrics', v['protocol'])}.", ""]
    q95 = any("cov95" in m for m in v["metrics"].values())  # the model's calibrated 95 % interval
    rows = [[t, int(m["n"]), m.get("rmse", float("nan")), m.get("mae", float("nan")), m.get("r2", float("nan")),
             m.get("cov1", float("nan")), m.get("cov2", float("nan")),
             *([m.get("cov95", float("nan"))] if q95 else []), PAPER_RMSE.get(t, float("nan"))]
            for t, m in v["metrics"].items()]
    lines += _table(["type", "n", "RMSE (eV)", "MAE (eV)", "R^2", "within 1 sigma", "within 2 sigma",
                     *(["within the 95 % interval (q95 x sigma)"] if q95 else []), "paper RMSE (bond-level split)"],
                    rows)
    lines += _img(ctx, ctx.inputs["validate"], "parity.png", "parity per type")
    lines += ["### Calibration", "", "Fraction of errors within k predicted sigma (ideal: 0.683 at 1, 0.954 at 2); "
              f"protocol: {fig.get('calibration.png', v['protocol'])}.", ""]
    lines += _img(ctx, ctx.inputs["validate"], "calibration.png", "calibration")
    lines += ["### Learning curves", ""]
    if fig.get("learning_curves.png"):
        lines += [f"Protocol: {fig['learning_curves.png']}.", ""]
    rows = []
    for c in v.get("learning_curves", []):
        rows.append([c["bond_type"], ", ".join(str(s) for s in c["sizes"]),
                     ", ".join(f"{r:.3f}" for r in c["rmse_mean"])])
    lines += _table(["type", "training bonds", "RMSE (eV), mean over seeds"], rows)
    lines += _img(ctx, ctx.inputs["validate"], "learning_curves.png", "learning curves")
    return lines


def _tracking_section(ctx: StageContext) -> list[str]:
    t = ctx.inputs["track"]
    if t.skipped:
        return ["## Tracking", "", "MLflow tracking disabled in the config.", ""]
    s = t.summary
    return ["## Tracking", "", f"MLflow `{s.get('tracking_uri')}`, run `{s.get('run_id')}`; registered "
            f"`{s.get('model_name', '-')}` version {s.get('model_version', '-')} (tagged with the data version). "
            "`bondml models list --out <out>` shows the registry.", ""]


def _generate_section(ctx: StageContext) -> list[str]:
    g = _j(ctx.inputs["generate"], "generate.json")
    if not g or not g.get("cells"):
        return ["## Generated data", "", "Nothing generated in this run.", ""]
    approx = (" **APPROXIMATE xTB labels (GFN1-xTB), kept apart from LOBSTER labels, never used for training.**"
              if g["approximate"] else "")
    lines = ["## Generated data", "", f"Labeler `{g['labeler']}` (label source `{g['label_source']}`), "
             f"{'scaled (short) melt-quench MD' if g['scaled_md'] else 'study MD protocol'}.{approx}", ""]
    lines += _table(["cell", "xTB labels"], [[c["cell"], c["xtb_labels"]] for c in g["cells"]])
    if g.get("dft_requested"):
        d = g["dft_requested"]
        lines += [f"DFT requested by approved AL batches for {', '.join(d['cells'])}: {d['state']}.", ""]
    x = _j(ctx.inputs["xtb_check"], "xtb_check.json")
    if x and x.get("per_type"):
        lines += ["LOBSTER-trained model vs approximate xTB labels on the generated cells "
                  "(agreement, not accuracy):", ""]
        lines += _table(["type", "n", "Pearson r", "RMSE after linear fit (eV)", "slope"],
                        [[t, r["n"], r["pearson_r"], r["rmse_after_linear_fit"], r["slope"]]
                         for t, r in x["per_type"].items()])
    return lines


def _deploy_section(ctx: StageContext) -> list[str]:
    d = ctx.inputs["deploy"]
    if d.skipped:
        return ["## Deployment", "", "Deployment disabled in the config.", ""]
    dep = _j(d, "deploy.json") or {}
    an = d.path("analysis")
    dst = ctx.dir / "deploy"
    if an.is_dir():
        shutil.copytree(an, dst, dirs_exist_ok=True)
    p = dep.get("protocol", {})
    protocol = "scaled-down, approximate protocol" if dep.get("approximate") else "study protocol"
    lines = ["## Deployment (SS-ML)", "",
             f"Compression MD of `{Path(p.get('cell_file', '')).name}` ({protocol}): "
             f"strain rate {p.get('strain_rate_per_s', 0):.3g} 1/s to strain {p.get('final_strain', 0)}, a frame every "
             f"{p.get('frame_ps')} ps; {dep.get('frames')} frames predicted.", ""]
    lines += _table(["type", "bonds in frame 0"], [[t, n] for t, n in (dep.get("bonds") or {}).items()])
    lines += ["Full analysis: [deploy/report.html](deploy/report.html).", ""]
    for name in ("stress_strain.png", "distributions.png", "exchange.png", "extreme_bonds.png", "slice_maps.png",
                 "slice_change.png"):
        if (dst / name).is_file():
            lines += [f"![{name[:-4]}](deploy/{name})", ""]
    return lines


def _al_section(ctx: StageContext) -> list[str]:
    lines = ["## Active learning", ""]
    p = _j(ctx.inputs["al_propose"], "proposal.json")
    if p:
        s = ctx.inputs["al_propose"].summary
        lines += [f"{p['n_candidates']} candidate cells scored by {p['criterion']}. Proposed batch "
                  f"{s.get('batch', '?')} (status `{s.get('status', 'proposed')}`): approve with "
                  f"`bondml al approve {s.get('batch', '<n>')} --out <out>`; only approved batches are generated.", ""]
        lines += _table(["candidate", "kind", "origin", "mean std (eV)", "bonds", "picked"],
                        [[c["id"], c["kind"], c["origin"]["kind"], c["uncertainty_eV"], c["n_bonds"],
                          "yes" if c["picked"] else ""]
                         for c in p["candidates"][:20]])
    from .active import list_batches

    batches = list_batches(ctx.out)
    if batches:
        lines += ["Batches so far:", ""]
        lines += _table(["batch", "status", "cells (exploit / explore)"],
                        [[b["batch"], b["status"], f"{b['n_exploit']} / {b['n_explore']}"] for b in batches])
    b = _j(ctx.inputs["al_benchmark"], "al_benchmark.json")
    if b:
        lines += ["### Uncertainty-driven vs random cell selection", "",
                  f"Same budget, {len(b['curves']) // 2} seeds; test cells held out per seed. "
                  "Median ratio of labelled cells "
                  f"needed at equal error (uncertainty / random): **{b['ratio_median']:.2f}**.", ""]
        lines += _table(["target RMSE (eV)", "cells (random)", "cells (uncertainty)", "ratio"],
                        [[r["target_rmse"], r["cells_random"], r["cells_uncertainty"], r["ratio"]]
                         for r in b["equal_error"]])
        lines += _img(ctx, ctx.inputs["al_benchmark"], "al_benchmark.png", "uncertainty vs random selection")
    return lines


def write_report(ctx: StageContext) -> dict[str, Any]:
    """Write ``report.md``, ``report.html`` and ``img/`` into the stage folder."""
    md: list[str] = []
    for part in (_run_section, _data_section, _model_section, _accuracy_section, _tracking_section,
                 _generate_section, _deploy_section, _al_section):
        md += part(ctx)
    text = "\n".join(md) + "\n"
    atomic_write_text(ctx.dir / "report.md", text)
    from ..reporting import render_page

    atomic_write_text(ctx.dir / "report.html", render_page(
        text, f"bondml report: {ctx.config.pipeline.name}", base_dir=ctx.dir,
        footer="One self-contained file: figures embedded. Units: Angstrom, eV, GPa, ps."))
    atomic_write_json(ctx.dir / "report.json", {"sections": [ln for ln in md if ln.startswith("## ")]})
    return {"report": "report.html"}
