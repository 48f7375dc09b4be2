"""The stages of the study's loop as plain functions ``fn(ctx) -> summary`` (see :mod:`.dag`).

ingest -> train -> validate -> track            (ETL, Train, Tune; MLflow)
       -> al_benchmark                          (uncertainty vs random cell selection)
generate (xTB or DFT; approved AL batches)      (Generate, labels kept apart from LOBSTER's)
train + generate -> xtb_check                   (model vs approximate labels, never mixed)
train -> deploy                                 (compression MD, per-frame inference, analysis)
train + ingest + generate -> al_propose         (next batch: exploit / explore)
everything -> report

Each stage writes only inside ``ctx.dir`` (published atomically by the DAG runner). Per-cell
and per-frame work goes through ``ctx.runner`` (parsl / dask). Units: Angstrom, eV, ps.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import BOND_TYPES
from ..errors import BondmlError
from ..types import CellId
from ..util import atomic_write_json, sha256_file, sha256_json
from .dag import Stage, StageContext, StageResult

# Each stage's code version is computed from the import closure of its functions below
# (bondml.pipeline.fingerprint): nothing here lists modules by hand.


# ---------------------------------------------------------------------------- helpers
def feature_settings(cfg: Any):
    """The descriptor settings of the ``[features]`` section (:class:`FeatureSettings`): ``kind``
    bond or atom; an empty backend is featomic for the bond-centred SOAP, quippy for the atom one."""
    from ..features.soap import FeatureSettings

    f = cfg.features
    backend = f.backend or ("featomic" if f.kind == "bond" else "quippy")
    return FeatureSettings(cutoff=f.cutoff, l_max=f.l_max, n_max=f.n_max, atom_sigma=f.atom_sigma, backend=backend,
                           kind=f.kind)


def store_path(cfg: Any, out: Path) -> Path:
    """The bond store folder: ``data.store``, else ``<out>/store`` for atom-centred descriptors and
    ``<out>/store-bond`` for bond-centred ones (a store holds one descriptor: switching
    ``features.kind`` in one output folder must not meet the other kind's store)."""
    if cfg.data.store:
        return cfg.resolve_path(cfg.data.store)
    return out / ("store" if cfg.features.kind == "atom" else f"store-{cfg.features.kind}")


def _getl_files(root: Path) -> list[Path]:
    base = root / "ML" / "big-data-full"
    return sorted(p for p in base.glob("*/c/**/*") if p.is_file())


def roots_fingerprint(ctx: StageContext) -> dict[str, str]:
    """SHA-256 over the files of each GETL root (path + content): the raw data's identity."""
    out = {}
    for r in ctx.config.data.roots:
        root = ctx.config.resolve_path(r)
        files = _getl_files(root)
        if not files:
            raise BondmlError(f"{root}: no GETL tree (ML/big-data-full/<NC>/c/...) found")
        out[r] = sha256_json([[p.relative_to(root).as_posix(), sha256_file(p)] for p in files])
    return out


def _rel(path: Path, out: Path) -> str:
    """``path`` relative to the output folder when inside it (outputs stay relocatable)."""
    import os

    p, o = Path(path).resolve(), Path(out).resolve()
    return os.path.relpath(p, o) if p.is_relative_to(o) else str(p)


def _read(res: StageResult, name: str) -> Any:
    return json.loads(res.path(name).read_text())


def load_training_dataset(ctx: StageContext, extra_cells: list[str] = ()):  # -> BondDataset
    """Labelled LOBSTER bonds of the configured cells, without the held-out sub-runs
    (unless an approved AL batch released them: ``extra_cells`` keys NC-run-sub)."""
    from ..store.db import BondStore

    cfg = ctx.config
    ing = ctx.inputs["ingest"].summary
    store = BondStore(ing["store"])
    ds = store.load_dataset(version=ing["version"], ncs=list(cfg.data.ncs) or None, runs=list(cfg.data.runs) or None)
    if cfg.data.holdout_sub_runs:
        keys = np.array([f"{a}-{r}-{s}" for a, r, s in zip(ds.nc, ds.run, ds.sub_run, strict=True)])
        keep = ~np.isin(ds.sub_run, cfg.data.holdout_sub_runs) | np.isin(keys, list(extra_cells))
        ds = ds.select(np.flatnonzero(keep))
    return ds


def approved_items(out: Path, origin: str) -> list[dict[str, Any]]:
    """Items of approved AL batches whose origin kind is ``origin`` (held-out, augmentation, new-run)."""
    from .active import approved_batches

    return [dict(it, batch=b["batch"]) for b in approved_batches(out) for it in b["items"]
            if it["origin"].get("kind") == origin]


# ---------------------------------------------------------------------------- ingest
def ingest_stage(ctx: StageContext) -> dict[str, Any]:
    """Ingest every GETL root into the (incremental, versioned) store; write the inventory."""
    from ..store.db import BondStore

    cfg = ctx.config
    path = store_path(cfg, ctx.out)
    store = BondStore(path, create=True, settings=feature_settings(cfg))
    reports = [store.ingest(cfg.resolve_path(r)) for r in cfg.data.roots]
    info = store.info(reports[-1].version)
    info["store"] = _rel(path, ctx.out)
    atomic_write_json(ctx.dir / "inventory.json", info)
    errors = {k: v for r in reports for k, v in r.errors.items()}
    ctx.log(f"  store {path}: version {reports[-1].version}, {len(info['cells'])} cells, "
            f"{sum(info['bonds'].values())} labelled bonds")
    return {"store": str(path.resolve()), "version": reports[-1].version, "cells_by_status": info["cells_by_status"],
            "bonds": info["bonds"], "errors": errors}


def ingest_valid(res: StageResult) -> bool:
    """A cached ingest is only valid while its store version still exists."""
    try:
        from ..store.db import BondStore

        BondStore(res.summary["store"]).read_version(res.summary["version"])
        return True
    except (BondmlError, KeyError, OSError):
        return False


# ---------------------------------------------------------------------------- train
def _distance_model(cfg: Any):
    if not cfg.model.fallback_tables:
        return None
    from ..evaluate.tune import distance_model_from_tables

    return distance_model_from_tables(cfg.resolve_path(cfg.model.fallback_tables))


def _search(ds, cfg: Any, runner: Any) -> dict[str, dict[str, float]]:
    from ..evaluate.tune import types_with_data

    types = types_with_data(ds)
    res = runner.map(_tune_task, [(ds, t, cfg.model.search_max_train, cfg.pipeline.seed) for t in types],
                     label=lambda a: a[1])
    return {t: {k: r["best_cv"][k] for k in ("sigma", "gamma", "zeta")} for t, r in zip(types, res, strict=True)}


def _tune_task(args: tuple) -> dict[str, Any]:
    from ..evaluate.tune import tune_type

    ds, t, max_train, seed = args
    return tune_type(ds, t, max_train=max_train, seed=seed)


def held_out_released(ctx: StageContext) -> list[str]:
    """Cell keys of held-out sub-runs released for training by approved AL batches."""
    return sorted(it["origin"]["cell"] for it in approved_items(ctx.out, "held-out"))


def train_stage(ctx: StageContext) -> dict[str, Any]:
    """Fit the per-type bond GPs (preset + config overrides, or a grouped-CV search first):
    :func:`bondml.evaluate.shift.train_model`, as ``bondml train``."""
    from ..evaluate.shift import train_model

    cfg = ctx.config
    ds = load_training_dataset(ctx, held_out_released(ctx))
    searched = _search(ds, cfg, ctx.runner) if cfg.model.search else {}
    tables = cfg.resolve_path(cfg.model.fallback_tables) if cfg.model.fallback_tables else ""
    model = train_model(ds, tables, preset=cfg.model.preset, hyperparameters=cfg.model.hyperparameters or None,
                        prior=cfg.model.use_prior, max_train_per_type=cfg.model.max_train_per_type,
                        seed=cfg.pipeline.seed, searched=searched or None)
    if isinstance(model.lineage.get("data"), dict) and "store" in model.lineage["data"]:
        model.lineage["data"]["store"] = _rel(Path(model.lineage["data"]["store"]), ctx.out)
    model.lineage["pipeline"] = {"data_version": ctx.inputs["ingest"].summary["version"],
                                 "cells": sorted({f"{a}-{r}-{s}"
                                                  for a, r, s in zip(ds.nc, ds.run, ds.sub_run, strict=True)})}
    model.save(ctx.dir / "model")
    types = {t: {k: v for k, v in d.items() if k != "params"} for t, d in model.lineage.get("types", {}).items()}
    summary = {"data_version": ctx.inputs["ingest"].summary["version"], "n_bonds": len(ds), "counts": ds.counts(),
               "preset": cfg.model.preset, "descriptor": model.settings.kind,
               "settings_digest": model.settings.digest,
               "cells": model.lineage["pipeline"]["cells"],
               "hyperparameters": {t: est.get_params() for t, est in model.estimators.items()},
               "searched": searched, "types": types,
               "fallback_types": [t for t, d in types.items() if d.get("kind") == "fallback"],
               "label_source": sorted(set(ds.label_source.tolist()))}
    atomic_write_json(ctx.dir / "train.json", summary)
    return {k: summary[k] for k in ("data_version", "n_bonds", "counts", "fallback_types", "label_source", "preset",
                                    "descriptor")}


# ---------------------------------------------------------------------------- validate
def _lc_task(args: tuple) -> dict[str, Any]:
    from ..evaluate.tune import learning_curve

    ds, t, sizes, seeds, level, hp, prior = args
    return learning_curve(ds, t, sizes, seeds, level=level, params=hp, prior=prior)


def calibration_plot(z_by_type: dict[str, np.ndarray], path: Path, protocol: str = "held-out cells") -> Path:
    """Fraction of |error| within k predicted sigma vs k, per type, against the Gaussian ideal."""
    from scipy.special import erf

    from ..plotting import new_figure, save

    k = np.linspace(0, 3, 61)
    fig, ax = new_figure(figsize=(5, 4))
    ax.plot(k, erf(k / np.sqrt(2)), "k--", label="calibrated Gaussian")
    for t, z in z_by_type.items():
        ax.plot(k, [np.mean(np.abs(z) <= kk) for kk in k], label=t)
    ax.set_xlabel("k (predicted sigma)")
    ax.set_ylabel("fraction of |error| <= k sigma")
    ax.set_title(f"calibration ({protocol})", fontsize=9)
    ax.legend(fontsize=8)
    return save(fig, path, dpi=110)


def validate_stage(ctx: StageContext) -> dict[str, Any]:
    """Grouped validation (whole deformation families / cells / runs / compositions out),
    calibration and learning curves, of the model the train stage fits (same preset, descriptor,
    hyper-parameters, mean function and std calibration).

    The numbers come from :func:`bondml.evaluate.shift.validate_preset`, the function behind
    ``bondml evaluate --preset`` (same protocol, seed and cap -> same figures); folds run on
    ``ctx.runner``. Each fold's std is calibrated on its training cells only, as the trainer
    calibrates the shipped model (default preset: each type's own method and 95 % interval
    factor, on an inner leave-deformation-group-out), so the coverage reported is that of the
    std users get. ``validation.json`` names the protocol of every figure (``figures``).
    """
    from ..evaluate.metrics import per_type_metrics
    from ..evaluate.plots import learning_curve_plot, parity_plot
    from ..evaluate.shift import validate_preset
    from ..evaluate.splits import deformation_group
    from ..evaluate.tune import interval_metrics, types_with_data

    cfg, v = ctx.config, ctx.config.validation
    ds = load_training_dataset(ctx, held_out_released(ctx))
    if v.protocol == "leave-deformation-group-out":
        kind, what, n_groups = "ldgo", "deformation group", np.unique(deformation_group(ds.sub_run)).size
    else:
        kind = "leave-one-group-out" if v.protocol == "leave-one-cell-out" else "group-kfold"
        what, n_groups = v.level, np.unique(ds.groups(v.level)).size
    if n_groups < 2:
        raise BondmlError(f"validation needs at least 2 {what}s, the training data has {n_groups}")
    tables = cfg.resolve_path(cfg.model.fallback_tables) if cfg.model.fallback_tables else ""
    res, info = validate_preset(ds, kind, cfg.model.preset, tables, cfg.model.hyperparameters, cfg.model.use_prior,
                                v.level, v.n_splits, v.max_train, cfg.pipeline.seed,
                                map_fn=lambda f, tasks: ctx.runner.map(
                                    f, list(tasks), label=lambda a: f"{a[3]} fold of {len(a[2])} bonds"))
    hp, dm = info["hyperparameters"], info["distance_model"]
    protocol = next(iter(res.values())).protocol if res else kind
    types = [t for t in BOND_TYPES if t in res]
    bt = np.concatenate([np.full(len(res[t].y), t) for t in types]) if types else np.array([], str)
    cat = {k: np.concatenate([getattr(res[t], k) for t in types]) if types else np.array([])
           for k in ("y", "pred", "std")}
    metrics = per_type_metrics(bt, cat["y"], cat["pred"], cat["std"])
    for t in types:  # the calibrated 95 % interval (prediction +- q95_factor * std), where learnt
        metrics[t].update(interval_metrics(res[t].y, res[t].pred, res[t].std, res[t].q95))
    parity_plot({t: (res[t].y, res[t].pred) for t in types}, ctx.dir / "parity.png", protocol)
    calibration_plot({t: (res[t].pred - res[t].y) / res[t].std for t in types}, ctx.dir / "calibration.png",
                     protocol)
    lc_types = types_with_data(ds, min_bonds=max(v.learning_curve_sizes, default=50))
    curves = ctx.runner.map(_lc_task, [(ds, t, v.learning_curve_sizes, v.learning_curve_seeds, v.level, hp.get(t),
                                        dm) for t in lc_types], label=lambda a: a[1])
    lc_protocol = curves[0]["protocol"] if curves else f"hold-out {v.level}s"
    if curves:
        learning_curve_plot(curves, ctx.dir / "learning_curves.png", f"learning curves ({lc_protocol})")
    n_folds = (n_groups if kind in ("leave-one-group-out", "ldgo") else min(v.n_splits, n_groups))
    if info["calibration"] == "shift":
        how = ("std calibrated on each training fold as the model's own: per type "
               + ", ".join(f"{t} {info['calibration_by_type'][t]}" for t in types)
               + ", learnt on an inner leave-deformation-group-out of the fold's training cells (5 folds of "
               "cells when they span one group; none: one cell, left uncalibrated as by the trainer)")
    else:
        how = "std scaled by an inner cell-grouped CV on each training fold (as the preset's model)"
    out = {"protocol": protocol, "level": v.level, "n_folds": n_folds, "metrics": metrics,
           "model": {"preset": cfg.model.preset, "descriptor": ds.settings.kind, "mean": info["mean"]},
           "std_calibration": {"method": info["calibration"], "by_type": info["calibration_by_type"],
                               "description": how},
           "figures": {"metrics": protocol, "parity.png": protocol, "calibration.png": f"{protocol}; {how}",
                       "learning_curves.png": lc_protocol},
           "learning_curves": curves, "note": "cells of one MD run are the same atoms deformed: "
           "every protocol inside a run is optimistic (leave-one-cell-out most); judge on other runs / compositions"}
    atomic_write_json(ctx.dir / "validation.json", out)
    ctx.log("  " + ", ".join(f"{t} {metrics[t]['rmse']:.3f}" for t in types) + f" eV RMSE ({protocol})")
    return {"protocol": protocol, "rmse": {t: metrics[t]["rmse"] for t in metrics},
            "cov1": {t: metrics[t].get("cov1") for t in metrics},
            "cov2": {t: metrics[t].get("cov2") for t in metrics},
            "cov95": {t: metrics[t]["cov95"] for t in metrics if "cov95" in metrics[t]}}


# ---------------------------------------------------------------------------- generate
def generate_key(ctx: StageContext) -> Any:
    """Approved AL batches that ask for new runs or augmentations (part of generate's key)."""
    return {kind: [it["origin"] for it in approved_items(ctx.out, kind)]
            for kind in ("new-run", "augmentation", "generated")}


def generate_stage(ctx: StageContext) -> dict[str, Any]:
    """Grow new runs (melt-quench, augment, label with xTB or DFT) in a resumable workspace,
    plus what approved AL batches ask for; publish the resulting GETL tree."""
    from ..generate.grow import GrowOptions, grow
    cfg, g = ctx.config, ctx.config.generate
    # one resumable workspace per generate settings (not per approval state): approving a batch
    # adds to it without redoing the runs already there (grow skips what is finished)
    work = ctx.out / "work" / f"generate-{sha256_json(cfg.section('generate'))[:16]}"
    root = work / "getl"
    exc = cfg.executor  # the same executor config (and kind) as every other stage
    reports = []
    wanted = [(nc, g.first_run, g.runs, g.sub_runs) for nc in g.compositions] if g.enabled else []
    for it in approved_items(ctx.out, "new-run"):
        wanted.append((it["origin"]["nc"], int(it["origin"]["run"]), 1, g.sub_runs))
    for nc, first, runs, subs in wanted:
        opts = GrowOptions(nc=nc, root=root, runs=runs, first_run=first, seed=g.seed, labeler=g.labeler,
                           executor=exc, dry_run=g.dry_run, scaled=g.scaled, n_atoms=g.n_atoms, subruns=tuple(subs),
                           md_threads=1, engine=ctx.runner,
                           pseudo_dir=cfg.resolve_path(g.pseudo_dir) if g.pseudo_dir else None)
        rep = grow(opts)
        reports.append({"nc": nc, "first_run": first, "runs": runs, "done": rep.done, "skipped": rep.skipped,
                        "jobs": [getattr(j, "status", str(j)) for j in rep.jobs]})
    aug = _generate_augmentations(ctx, root, g.labeler)
    dft = _dft_for_generated(ctx, root, exc)
    if root.is_dir():
        shutil.copytree(root, ctx.dir / "getl")
    cells = _generated_cells(ctx.dir / "getl") if (ctx.dir / "getl").is_dir() else []
    summary = {"labeler": g.labeler, "label_source": "xtb-gfn1" if g.labeler == "xtb" else "lobster",
               "approximate": g.labeler == "xtb", "scaled_md": g.scaled, "grown": reports, "augmentations": aug,
               "dft_requested": dft, "cells": cells}
    atomic_write_json(ctx.dir / "generate.json", summary)
    return {"cells": len(cells), "labeler": g.labeler, "approximate": g.labeler == "xtb"}


def _generate_augmentations(ctx: StageContext, root: Path, labeler: str) -> list[dict[str, Any]]:
    """Approved exploit augmentations: written as their own cells under ``root/al-augmentations``
    and labelled with xTB (DFT: inputs only, see docs)."""
    from ase.io import read

    from ..generate.augment import parse_augmentation, write_xyz

    done = []
    for it in approved_items(ctx.out, "augmentation"):
        o = it["origin"]
        src = Path(o["source_xyz"])
        folder = root / "al-augmentations" / f"batch-{it['batch']}" / it["id"]
        xyz = folder / f"{o['nc']}.xyz"
        if not xyz.is_file():
            write_xyz(parse_augmentation(o["transform"])(read(src)), xyz)
        state = "written"
        if labeler == "xtb":
            from ..generate.xtb import label_subrun

            state = label_subrun(folder, o["nc"])
        done.append({"id": it["id"], "folder": str(folder.relative_to(root)), "state": state})
    return done


def _dft_for_generated(ctx: StageContext, root: Path, exc: Any) -> dict[str, Any]:
    """Approved generated (xTB-only) cells get DFT: pw.x + lobsterin inputs and job scripts
    (submitted by the user or the scheduler; ~800 core-hours per 100-atom cell)."""
    from ..generate.jobs import default_pseudo_dir, plan_jobs, prepare_inputs, write_job_scripts
    from ..io.getl import subrun_path

    items = approved_items(ctx.out, "generated")
    if not items:
        return {}
    g = ctx.config.generate
    pseudo = ctx.config.resolve_path(g.pseudo_dir) if g.pseudo_dir else default_pseudo_dir()
    cells = []
    for it in items:
        nc, run, sub = it["origin"]["cell"].rsplit("-", 2)
        cells.append(CellId(nc, int(run), int(sub)))
    if pseudo is None:
        return {"cells": [str(c) for c in cells], "state": "waiting: set generate.pseudo_dir to write the DFT inputs"}
    try:
        for c in cells:
            prepare_inputs(subrun_path(root, c), c.nc, pseudo)
        todo, _ = plan_jobs(root, cells)
        script = write_job_scripts(todo, exc, root)
    except BondmlError as e:  # e.g. a missing pseudopotential: reported, the rest of the loop goes on
        ctx.log(f"  DFT inputs for approved cells not written: {e}")
        return {"cells": [str(c) for c in cells], "state": f"not written: {e}"}
    return {"cells": [str(c) for c in cells], "state": "inputs and job scripts written",
            "submit_script": str(script.relative_to(root))}


def _generated_cells(root: Path) -> list[dict[str, Any]]:
    from ..generate.xtb import has_xtb_labels
    from ..io.getl import discover, subrun_path

    out = []
    try:
        cells = discover(root)
    except BondmlError:
        return out
    for c in cells:
        f = subrun_path(root, c)
        out.append({"cell": c.key, "nc": c.nc, "run": c.run, "sub_run": c.sub_run,
                    "xyz": str((f / f"{c.nc}.xyz").relative_to(root.parent)), "xtb_labels": has_xtb_labels(f, c.nc)})
    return out


# ---------------------------------------------------------------------------- xTB check
def xtb_check_stage(ctx: StageContext) -> dict[str, Any]:
    """The LOBSTER-trained model against the approximate xTB labels of the generated cells:
    correlation and RMSE after a linear fit per type. The two label sources are never mixed."""
    from ..evaluate.label_sources import compare_with_labels
    from ..model.bondmodel import BondModel
    from ..store.extract import extract_cell, extracts_to_dataset

    gen = ctx.inputs["generate"]
    cells = [c for c in _read(gen, "generate.json")["cells"] if c["xtb_labels"]]
    if not cells:
        atomic_write_json(ctx.dir / "xtb_check.json", {"cells": 0})
        return {"cells": 0}
    model = BondModel.load(ctx.inputs["train"].path("model"))
    root = gen.path("getl")
    from ..io.getl import subrun_path

    ids = [CellId(c["nc"], c["run"], c["sub_run"]) for c in cells]
    exs = [extract_cell(subrun_path(root, cid), cid, model.settings, icohp_file="ICOHPLIST.xtb",
                        label_source="xtb-gfn1") for cid in ids]
    ds = extracts_to_dataset(exs, model.settings)
    rows = compare_with_labels(model, ds)
    res = {"cells": len(cells), "label_source": "xtb-gfn1 (approximate)", "per_type": rows,
           "note": "xTB labels are approximate and never mixed with LOBSTER labels in training"}
    atomic_write_json(ctx.dir / "xtb_check.json", res)
    return {"cells": len(cells), "pearson_r": {t: r["pearson_r"] for t, r in rows.items()}}


# ---------------------------------------------------------------------------- deploy
def deploy_stage(ctx: StageContext) -> dict[str, Any]:
    """Scaled (or full) compression MD of (a cut of) the 10k cell, per-frame inference, analysis."""
    from dataclasses import replace

    from ..analysis.report import analyze
    from ..deploy.infer import PredictConfig, predict_trajectory
    from ..md.compress import CompressionProtocol, cut_cell, run_compression, scaled_protocol

    cfg, d = ctx.config, ctx.config.deploy
    cell = cfg.resolve_path(d.cell)
    if d.cut_side > 0:
        cell = cut_cell(ctx.dir / "cell.data", side=d.cut_side, source=cell)
    threads = d.threads or None
    if d.protocol == "scaled":
        p = scaled_protocol(str(cell), threads=threads)
    else:
        p = CompressionProtocol(cell_file=str(cell), threads=threads)
    over = {k: getattr(d, k) for k in ("strain_rate_per_s", "final_strain", "frame_ps") if getattr(d, k)}
    over.update({k: getattr(d, k) for k in ("nvt_ps", "nve_ps") if getattr(d, k) >= 0})
    p = replace(p, seed=d.seed, **over)
    md_dir = run_compression(p, ctx.dir / "md")
    # frames as tasks of the pipeline's engine (parsl / Dask), at most 2 x workers in flight; with
    # no runner (direct calls) the own process pool. QUIP's SOAP leak is not bounded by worker
    # recycling on the engine (see bondml.deploy.infer): fine for the scaled runs, for a full
    # 728-frame trajectory on long-lived HTEX workers keep the blocks' walltime short.
    workers = ctx.runner.workers if ctx.runner is not None else (
        max(1, min(cfg.executor.workers, 4)) if cfg.executor.kind == "local" else 1)
    summary = predict_trajectory(ctx.inputs["train"].path("model"), md_dir / "compression.dump", ctx.dir / "predict",
                                 PredictConfig(workers=max(1, workers), progress=False), executor=ctx.runner)
    html = analyze(ctx.dir / "predict", ctx.dir / "analysis", thermo_csv=md_dir / "thermo.csv")
    # wall-clock figures are volatile: keep them out of the output hash
    for name in ("summary.json",):
        src = ctx.dir / "predict" / name
        if src.is_file():
            src.rename(ctx.dir / "predict" / "summary.volatile.json")
    proto = {k: (_rel(Path(v), ctx.dir) if k == "cell_file" and v else v) for k, v in p.__dict__.items()}
    atomic_write_json(ctx.dir / "deploy.json", {"protocol": proto,
                                                 "frames": summary.get("frames"), "bonds": summary.get("bonds"),
                                                 "approximate": d.protocol == "scaled"})
    return {"frames": summary.get("frames"), "bonds_first_frame": summary.get("bonds"),
            "seconds_per_frame": summary.get("seconds_per_frame"), "report": str(Path(html).relative_to(ctx.dir))}


# ---------------------------------------------------------------------------- active learning
def _score_task(args: tuple) -> dict[str, Any]:
    from ..evaluate.active import cell_bonds, score_cell

    model_dir, xyz = args
    from ..model.bondmodel import BondModel

    model = BondModel.load(model_dir)
    cb = cell_bonds(xyz, model.settings)
    s, per, desc = score_cell(model, cb)
    return {"score": s, "per_type": per, "descriptor": desc, "n_bonds": int(cb.distance.size)}


def _md_task(args: tuple) -> str:
    from ..md.quench import QuenchProtocol, melt_quench

    nc, folder, seed, scale = args
    res = melt_quench(nc, folder, seed, protocol=QuenchProtocol.scaled(scale), threads=1, overwrite=True)
    return str(Path(folder) / f"{nc}.xyz") if res else ""


def al_propose_stage(ctx: StageContext) -> dict[str, Any]:
    """Build the candidate pool, score it with the model's uncertainty, pick a diverse batch."""
    from ase.io import read

    from ..evaluate.active import EXPLOIT, EXPLORE, Candidate, rank_and_split
    from ..generate.augment import parse_augmentation, write_xyz
    from ..io.getl import subrun_path

    cfg, al = ctx.config, ctx.config.active_learning
    train = _read(ctx.inputs["train"], "train.json")
    trained = set(train["cells"])
    inv = _read(ctx.inputs["ingest"], "inventory.json")
    roots = [cfg.resolve_path(r) for r in cfg.data.roots]
    cands: list[Candidate] = []

    def cell_xyz(c: dict[str, Any]) -> Path | None:
        for r in roots:
            p = subrun_path(r, CellId(c["nc"], c["run"], c["sub_run"])) / f"{c['nc']}.xyz"
            if p.is_file():
                return p
        return None

    cand_dir = ctx.dir / "candidates"
    for c in inv["cells"]:
        key = f"{c['nc']}-{c['run']}-{c['sub_run']}"
        xyz = cell_xyz(c)
        if xyz is None:
            continue
        if key not in trained and c.get("status") in ("DONE", "LOB_NOT_FINISHED_BUT_ICOHP_OK",
                                                       "SCF_CONVERGED_LOB_NOT_FINISHED_BUT_ICOHP_OK"):
            cands.append(Candidate(f"held-out-{key}", EXPLOIT, {"kind": "held-out", "cell": key}, str(xyz)))
        if c["sub_run"] == 0 and (not cfg.data.runs or c["run"] in cfg.data.runs):
            atoms = read(xyz)
            for name in al.augmentations:
                p = cand_dir / f"aug-{key}-{name}" / f"{c['nc']}.xyz"
                write_xyz(parse_augmentation(name)(atoms), p)
                origin = {"kind": "augmentation", "nc": c["nc"], "transform": name, "source_cell": key,
                          "source_xyz": str(xyz)}
                cands.append(Candidate(f"aug-{key}-{name}", EXPLOIT, origin, str(p)))
    gen = ctx.inputs["generate"]
    if not gen.skipped:
        for c in _read(gen, "generate.json")["cells"]:
            cands.append(Candidate(f"generated-{c['cell']}", EXPLORE, {"kind": "generated", "cell": c["cell"],
                                   "note": "xTB-labelled only; needs DFT"}, str(gen.dir / c["xyz"])))
    md = []
    for nc in al.explore_compositions:
        for k in range(al.explore_runs):
            run = 1000 + k
            md.append((nc, str(cand_dir / f"md-{nc}-{run}"), cfg.pipeline.seed * 7919 + run, al.explore_md_scale, run))
    xyzs = ctx.runner.map(_md_task, [m[:4] for m in md], label=lambda a: f"melt-quench {a[0]}")
    for (nc, _, seed, _, run), x in zip(md, xyzs, strict=True):
        cands.append(Candidate(f"new-run-{nc}-{run}", EXPLORE,
                               {"kind": "new-run", "nc": nc, "run": run, "seed": seed}, x))
    done_ids = set(approved_ids(ctx))
    cands = [c for c in cands if c.id not in done_ids]  # already approved: being labelled
    model_dir = str(ctx.inputs["train"].path("model"))
    scores = ctx.runner.map(_score_task, [(model_dir, c.xyz) for c in cands], label=lambda a: Path(a[1]).parent.name)
    for c, s in zip(cands, scores, strict=True):
        c.score, c.per_type_std, c.descriptor, c.n_bonds = s["score"], s["per_type"], s["descriptor"], s["n_bonds"]
    picked = rank_and_split(cands, al.batch_size, al.explore_fraction, al.top_fraction)
    rel = lambda p: str(Path(p).relative_to(ctx.dir)) if str(p).startswith(str(ctx.dir)) else str(p)  # noqa: E731
    rows = [{"id": c.id, "kind": c.kind, "origin": c.origin, "xyz": rel(c.xyz), "uncertainty_eV": c.score,
             "n_bonds": c.n_bonds, "per_type_std_eV": c.per_type_std, "picked": c in picked} for c in cands]
    res = {"n_candidates": len(cands), "picked": [c.id for c in picked],
           "candidates": sorted(rows, key=lambda r: -np.nan_to_num(r["uncertainty_eV"], nan=-1)),
           "batch_size": al.batch_size, "explore_fraction": al.explore_fraction, "criterion":
           "mean predictive std (eV) of the cell's bonds; greedy max-min mean-SOAP distance among the top "
           f"{al.top_fraction:.0%}"}
    atomic_write_json(ctx.dir / "proposal.json", res)
    batch = publish_proposal(ctx.out, ctx.out / "stages" / "al_propose" / ctx.key, res, ctx.key,
                             ctx.inputs["train"].key, ctx.inputs["ingest"].summary["version"])
    return {"n_candidates": len(cands), "picked": res["picked"], "batch": batch["batch"]}


def publish_proposal(out: Path, final_dir: Path, proposal: dict[str, Any], key: str, model_key: str,
                     data_version: str) -> dict[str, Any]:
    """Write (idempotently, by proposal key) the proposal as ``<out>/al/batch-<n>.json``."""
    from ..evaluate.active import Candidate
    from .active import write_batch

    picked = [c for c in proposal["candidates"] if c["picked"]]
    cands = []
    for c in picked:
        x = Path(c["xyz"])
        cands.append(Candidate(c["id"], c["kind"], c["origin"], str(x if x.is_absolute() else final_dir / x),
                               c["uncertainty_eV"], c["n_bonds"], None, c["per_type_std_eV"]))
    return write_batch(out, cands, {"proposal_key": key, "model_stage_key": model_key, "data_version": data_version,
                                    "criterion": proposal["criterion"]})


def approved_ids(ctx: StageContext) -> list[str]:
    """Candidate ids in approved batches (left out of later proposals)."""
    from .active import approved_batches

    return sorted(it["id"] for b in approved_batches(ctx.out) for it in b["items"])


def _bench_task(args: tuple) -> dict[str, Any]:
    from ..evaluate.active import selection_curve

    ds, strategy, seed, n_test, max_train = args
    return selection_curve(ds, strategy, seed, n_test, max_train)


def al_benchmark_stage(ctx: StageContext) -> dict[str, Any]:
    """Uncertainty-driven vs random cell selection on the labelled cells, several seeds."""
    from ..evaluate.active import plot_benchmark, summarise_benchmark

    al = ctx.config.active_learning
    ds = load_training_dataset(ctx, held_out_released(ctx))
    jobs = [(ds, s, seed, al.benchmark_test_cells, al.benchmark_max_train)
            for seed in al.benchmark_seeds for s in ("uncertainty", "random")]
    curves = ctx.runner.map(_bench_task, jobs, label=lambda a: f"{a[1]} seed {a[2]}")
    summ = summarise_benchmark(curves)
    plot_benchmark(summ, ctx.dir / "al_benchmark.png")
    atomic_write_json(ctx.dir / "al_benchmark.json", summ)
    ctx.log(f"  cells needed at equal error, uncertainty / random: median ratio {summ['ratio_median']:.2f}")
    return {"ratio_median": summ["ratio_median"], "seeds": list(al.benchmark_seeds)}


# ---------------------------------------------------------------------------- tracking
def track_stage(ctx: StageContext) -> dict[str, Any]:
    """Log the training to MLflow (params, per-type metrics, plots, model) and register it."""
    from .tracking import log_training

    info = log_training(ctx.config, ctx.out, ctx.inputs["train"], ctx.inputs["validate"],
                        ctx.inputs["ingest"].summary["version"])
    atomic_write_json(ctx.dir / "tracking.volatile.json", info)
    return info


# ---------------------------------------------------------------------------- report
def report_stage(ctx: StageContext) -> dict[str, Any]:
    from .report import write_report

    return write_report(ctx)


def released_key(ctx: StageContext) -> dict[str, Any]:
    """Held-out cells released by approved AL batches (part of the training stages' keys)."""
    return {"released": held_out_released(ctx)}


def approved_key(ctx: StageContext) -> dict[str, Any]:
    """Candidates already approved (part of al_propose's key)."""
    return {"approved": approved_ids(ctx)}


def build_stages() -> list[Stage]:
    """The pipeline's stages, wired. Code versions: the import closure of each stage's functions."""
    return [
        Stage("ingest", ingest_stage, (), ("data", "features"), extra=roots_fingerprint, valid=ingest_valid),
        Stage("train", train_stage, ("ingest",), ("pipeline", "data", "model"), extra=released_key),
        Stage("validate", validate_stage, ("ingest",), ("pipeline", "data", "model", "validation"), extra=released_key),
        Stage("track", track_stage, ("ingest", "train", "validate"), ("pipeline", "tracking", "model"),
              enabled=lambda c: c.tracking.enabled),
        Stage("generate", generate_stage, (), ("generate",), extra=generate_key),
        Stage("xtb_check", xtb_check_stage, ("train", "generate"), (), enabled=lambda c: c.generate.labeler == "xtb"),
        Stage("deploy", deploy_stage, ("train",), ("deploy",), enabled=lambda c: c.deploy.enabled),
        Stage("al_propose", al_propose_stage, ("ingest", "train", "generate"), ("pipeline", "data", "active_learning"),
              extra=approved_key, enabled=lambda c: c.active_learning.enabled),
        Stage("al_benchmark", al_benchmark_stage, ("ingest",), ("pipeline", "data", "active_learning"),
              extra=released_key, enabled=lambda c: c.active_learning.benchmark),
        Stage("report", report_stage, ("ingest", "train", "validate", "track", "generate", "xtb_check", "deploy",
                                       "al_propose", "al_benchmark"), ("pipeline",)),
    ]
