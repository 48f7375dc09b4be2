"""``bondml train | evaluate | tune | learning-curve | validate``: the Train and Tune stages."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from ..constants import BOND_TYPES, LABEL_WINDOW, PAPER_RMSE
from ..errors import ConfigError, InputFileError
from ._io import Table, check_range, console, int_list, output_lock

StoreOpt = Annotated[Path | None, typer.Option("--store", help="bond store folder (bondml ingest)")]
GetlOpt = Annotated[Path | None, typer.Option("--getl", help="read a GETL tree directly (no store)")]
NcOpt = Annotated[list[str] | None, typer.Option("--nc", help="composition(s) to select")]
RunOpt = Annotated[list[int] | None, typer.Option("--run", help="MD run(s) to select")]
SubOpt = Annotated[list[int] | None, typer.Option("--sub-run", help="sub-run(s) to select")]
VersionOpt = Annotated[str | None, typer.Option("--version", help="store version (default current)")]
SelOpt = Annotated[str | None, typer.Option("--selection", help="named store selection")]
TablesOpt = Annotated[Path | None, typer.Option("--tables", help="root holding ML/big-data-full label tables "
                                                   "(default: the tables shipped with bondml)")]
PriorOpt = Annotated[bool, typer.Option("--prior/--no-prior", help="distance+composition prior mean from the "
                                        "label tables, SOAP GP on the residual")]


def load_dataset(store: Path | None, getl: Path | None, nc: list[str] | None = None, run: list[int] | None = None,
                 sub_run: list[int] | None = None, version: str | None = None, selection: str | None = None,
                 settings: Any = None) -> Any:
    """BondDataset from a store (with selection) or straight from a GETL tree (SOAP ``settings``,
    default the paper's; a store has its own)."""
    if (store is None) == (getl is None):
        raise ConfigError("give exactly one of --store <dir> or --getl <root>")
    if store is not None:
        from ..store.db import BondStore

        return BondStore(store).load_dataset(version=version, selection=selection, ncs=nc or None,
                                             runs=run or None, sub_runs=sub_run or None)
    from ..io.getl import discover
    from ..store.extract import dataset_from_getl

    cells = [c for c in discover(getl) if (not nc or c.nc in nc) and (not run or c.run in run)
             and (not sub_run or c.sub_run in sub_run)]
    if settings is None:
        return dataset_from_getl(getl, cells=cells)
    return dataset_from_getl(getl, settings=settings, cells=cells)


def _folder_ok(out: Path) -> None:
    """Refuse an --out that is a file before any work is done."""
    if out.exists() and not out.is_dir():
        raise InputFileError(out, "is a file, not a folder; give a folder for --out")


def read_hyper(path: Path) -> dict[str, dict[str, float]]:
    """``--hyper`` JSON ``{type: {sigma, gamma, zeta}}``, checked (types, keys, positive numbers)."""
    if not path.is_file():
        raise InputFileError(path, "hyper-parameter file not found" if not path.exists() else "is not a file")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputFileError(path, "not a text file; give a JSON file {type: {sigma, gamma, zeta}}") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(d, dict):
        raise InputFileError(path, "must be a JSON object {type: {sigma, gamma, zeta}}")
    for t, v in d.items():
        a_, _, b_ = str(t).partition("-")
        if not b_ or not a_.isalpha() or not b_.isalpha():
            raise InputFileError(path, f"unknown bond type {t!r}; write types as A-B, e.g. {', '.join(BOND_TYPES)}")
        if not isinstance(v, dict):
            raise InputFileError(path, f"{t} must map to an object {{sigma, gamma, zeta}}")
        for k, x in v.items():
            if k not in ("sigma", "gamma", "zeta"):
                raise InputFileError(path, f"{t}.{k}: unknown hyper-parameter; use sigma, gamma or zeta")
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not x > 0 or x != x or x == float("inf"):
                raise InputFileError(path, f"{t}.{k} = {x!r}: must be a finite number > 0")
    return d


def refuse_existing_model(out: Path, overwrite: bool) -> None:
    """A model folder is immutable: refuse one that holds a model (``model.json``) or anything that
    is not a model, unless ``overwrite``. What a train killed before ``model.json`` was written
    leaves (``arrays.npz``, temporary files) is no model and is replaced."""
    from ..errors import BondmlError

    if out.exists() and not out.is_dir():
        raise BondmlError(f"{out}: is a file, not a folder; give a folder for the model")
    if overwrite or not out.is_dir():
        return
    names = {p.name for p in out.iterdir()}
    if "model.json" in names:
        raise BondmlError(f"{out}: already holds a model; use --overwrite to replace it or choose another --out")
    other = sorted(n for n in names if n != "arrays.npz" and not (n.startswith(".") and n.endswith(".tmp")))
    if other:
        raise BondmlError(f"{out}: is not empty and holds no model ({', '.join(other[:3])}); "
                          "choose another --out or use --overwrite")


def model_lock(out: Path) -> Any:
    """Exclusive lock of a model folder while it is written (``.<name>.lock`` beside it, so the
    lock survives the folder being swapped for a new one)."""
    from ..errors import BondmlError
    from ..util import file_lock, lock_wait_seconds

    out.parent.mkdir(parents=True, exist_ok=True)
    return file_lock(out.parent / f".{out.name}.lock", lambda: BondmlError(
        f"{out}: another bondml train is writing this model folder; wait for it or choose another --out"),
        wait=lock_wait_seconds(0.0))


def _read_windows(path: Path) -> dict[str, tuple[float, float]]:
    """``{type: [lo, hi]}`` from a JSON file, checked (0 <= lo < hi, Angstrom; known bond type form)."""
    from ..errors import InputFileError
    from ..types import bond_type

    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(path, f"cannot read windows JSON ({exc})") from None
    out: dict[str, tuple[float, float]] = {}
    for t, w in (d.items() if isinstance(d, dict) else []):
        a, _, b = str(t).partition("-")
        ok = isinstance(w, list) and len(w) == 2 and all(isinstance(x, (int, float)) for x in w)
        if not b or not ok or not 0 <= w[0] < w[1] or bond_type(a, b) != t:
            raise InputFileError(path, f"window {t!r}: {w!r} is not [lo, hi] with 0 <= lo < hi for a type A-B "
                                       "written heavier element first")
        out[str(t)] = (float(w[0]), float(w[1]))
    if not isinstance(d, dict):
        raise InputFileError(path, "expected a JSON object {type: [lo, hi]}")
    return out


def _tables_root(tables: Path | None) -> Path:
    from ..data import label_tables_root

    return tables or label_tables_root()


def _distance_model(ds: Any, tables: Path | None, composition: bool = True) -> Any:
    """Distance model from the label tables without any run present in ``ds`` (keeps tests unseen);
    None for another chemistry than the study's (the tables are Zr-Cu-Al)."""
    from ..chemistry import Chemistry
    from ..evaluate.tune import distance_model_for

    if not Chemistry.from_species_z(ds.settings.species_z).is_study:
        return None
    return distance_model_for(ds, _tables_root(tables), composition=composition)


def _print_metrics(title: str, rows: dict[str, dict[str, float]], extra: dict[str, dict[str, float]] | None = None,
                   extra_name: str = "distance-only RMSE") -> None:
    t = Table(title=title)
    cols = ["type", "n", "RMSE (eV)", "MAE (eV)", "R^2", "1-sigma cov", "2-sigma cov"]
    q95 = any("cov95" in m for m in rows.values())
    if q95:
        cols.append("95 % interval cov")
    if extra is not None:
        cols.append(extra_name)
    cols.append("paper RMSE")
    for c in cols:
        t.add_column(c, justify="left" if c == "type" else "right")
    for bt, m in rows.items():
        r = [bt, str(m["n"]), f"{m['rmse']:.3f}", f"{m['mae']:.3f}", f"{m['r2']:.3f}",
             f"{m.get('cov1', float('nan')):.0%}", f"{m.get('cov2', float('nan')):.0%}"]
        if q95:
            r.append(f"{m['cov95']:.0%}" if "cov95" in m else "-")
        if extra is not None:
            r.append(f"{extra[bt]['rmse']:.3f}" if bt in extra else "-")
        r.append(f"{PAPER_RMSE[bt]:.3f}" if bt in PAPER_RMSE else "-")
        t.add_row(*r)
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add the model commands to the bondml CLI."""

    @app.command()
    def train(
        out: Annotated[Path, typer.Option("--out", help="model folder to write")],
        store: StoreOpt = None, getl: GetlOpt = None, nc: NcOpt = None, run: RunOpt = None, sub_run: SubOpt = None,
        version: VersionOpt = None, selection: SelOpt = None, tables: TablesOpt = None,
        prior: Annotated[bool | None, typer.Option("--prior/--no-prior", help="distance(+composition) prior "
                         "mean from the label tables on every type (default: as the preset says)")] = None,
        max_train: Annotated[int | None, typer.Option(help="at most this many bonds per type (seeded)")] = None,
        seed: Annotated[int, typer.Option(help="seed of the subset draw")] = 0,
        min_bonds: Annotated[int, typer.Option(help="fewest bonds for a GP; fewer -> distance-only fallback")] = 30,
        hyper: Annotated[Path | None, typer.Option(
            help="JSON {type: {sigma, gamma, zeta}} overriding the preset")] = None,
        preset: Annotated[str, typer.Option(help="default (chosen by the shift protocols: bond-centred SOAP, "
                                                  "per-type prior, shift-calibrated std), paper (the paper's "
                                                  "model exactly), or tuned (needs --prior)")] = "default",
        descriptor: Annotated[str | None, typer.Option(help="bond (SOAP at the bond midpoint) or atom (the "
                                                              "paper's per-atom SOAP); default: bond, atom for "
                                                              "--preset paper, the store's own with --store")] = None,
        windows: Annotated[Path | None, typer.Option(help="JSON {type: [lo, hi]} (Angstrom) overriding the "
                                                             "chemistry's per-type prediction windows")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="replace a model already in --out")] = False,
    ) -> None:
        """Train one GP per bond type and save the model folder (default: the most accurate model
        under the shift protocols; --preset paper reproduces the paper)."""
        from ..constants import DEFAULT_DESCRIPTOR
        from ..evaluate.shift import PRESETS, train_model
        from ..features.soap import settings_for
        from ..model.presets import resolve_hyperparameters

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        check_range("--max-train", max_train, 0, low_open=True)
        check_range("--seed", seed, 0)
        check_range("--min-bonds", min_bonds, 1)
        if descriptor is not None and descriptor not in ("atom", "bond"):
            raise ConfigError(f"--descriptor {descriptor!r}: unknown descriptor; use bond or atom")
        if preset not in PRESETS:
            raise ConfigError(f"--preset {preset!r}: unknown preset; use {', '.join(PRESETS)}")
        if preset == "tuned" and not prior:
            raise ConfigError("--preset tuned was chosen with the prior mean; add --prior")
        user_hp = read_hyper(hyper) if hyper else {}
        if user_hp:  # types of the data's chemistry only (the study's without a store)
            from ..store.db import BondStore

            valid = BondStore(store).chemistry.bond_types if store is not None else BOND_TYPES
            for t in user_hp:
                if t not in valid:
                    raise InputFileError(hyper, f"bond type {t!r} is not in the data (types: {', '.join(valid)})")
        win = _read_windows(windows) if windows is not None else None
        resolve_hyperparameters(preset, user_hp or None, use_prior=True)  # bad input: refuse before any work
        refuse_existing_model(out, overwrite)
        with model_lock(out):
            from ..util import clean_temp_files

            clean_temp_files(out, recursive=False)
            want = descriptor or ("atom" if preset in ("paper", "tuned") else DEFAULT_DESCRIPTOR)
            ds = load_dataset(store, getl, nc, run, sub_run, version, selection,
                              settings=settings_for(want) if getl is not None else None)
            if store is not None and descriptor is not None and ds.settings.kind != descriptor:
                raise ConfigError(f"{store}: the store holds {ds.settings.kind}-centred descriptors, not "
                                  f"{descriptor}; ingest into a store made with the {descriptor} descriptor")
            model = train_model(ds, _tables_root(tables), preset=preset, hyperparameters=user_hp or None,
                                prior=prior if prior else None, max_train_per_type=max_train, seed=seed,
                                min_bonds=min_bonds)
            if win is not None:
                model.windows.update(win)
            refuse_existing_model(out, overwrite)  # another train finished meanwhile
            model.save(out)
        prior = model.use_prior
        t = Table(title=f"model {out} (preset {preset}, {model.settings.kind}-centred SOAP {model.settings.digest}, "
                  f"prior: {'yes' if prior else 'no'})")
        for c in ("type", "kind", "bonds used", "bonds available", "sigma", "gamma", "zeta", "prior",
                  "std x", "new nc std x"):
            t.add_column(c, min_width=8 if c == "kind" else None, overflow="fold")
        from ..chemistry import types_in_order

        for bt in types_in_order(model.lineage["types"]):
            info = model.lineage["types"].get(bt)
            if info is None:
                t.add_row(bt, "none", "0", "0", *[""] * 6)
            elif info["kind"] == "fallback":
                t.add_row(bt, "fallback (distance only)", "-", str(info["n_available"]), *[""] * 6)
            else:
                p = info["params"]
                dom = model.domain.get(bt)
                dmod = model.distance_model
                pr = bool(model.use_prior and dmod is not None and bt in dmod.fits and dmod.is_prior_for(bt))
                t.add_row(bt, "GP", str(info["n_train"]), str(info["n_available"]), f"{p['sigma']:g}",
                          f"{p['gamma']:g}", f"{p['zeta']:g}", "distance" if pr else "zero",
                          f"{model.std_scale.get(bt, 1.0):.2f}",
                          f"{dom.composition_inflation:.2f}" if dom else "-")
        console.print(t)
        none = {t: i["calibration"] for t, i in model.lineage["types"].items() if "calibration" in i}
        cal = {d.protocol for d in model.domain.values()} or (set() if none else {"cell-grouped 5-fold CV"})
        if cal:
            ood = "; out-of-domain thresholds learnt on held-out deformation groups" if model.domain else ""
            console.print(f"std calibrated by {', '.join(sorted(cal))}{ood}")
        for t, why in none.items():
            console.print(f"{t}: std {why}")

    @app.command()
    def evaluate(
        store: StoreOpt = None, getl: GetlOpt = None, nc: NcOpt = None, run: RunOpt = None, sub_run: SubOpt = None,
        version: VersionOpt = None, selection: SelOpt = None, tables: TablesOpt = None, prior: PriorOpt = False,
        protocol: Annotated[str, typer.Option(help="loco (leave-one-cell-out, optimistic), ldgo (leave-"
                                                   "deformation-group-out: the shift protocol), paper (bond-level, "
                                                   "leaky), cell-kfold, run-out (leave-one-run-out)")] = "loco",
        max_train: Annotated[int | None, typer.Option(help="cap on training bonds per type per fold")] = None,
        seed: int = 0,
        out: Annotated[Path | None, typer.Option(help="folder for metrics.json and PNG plots")] = None,
        preset: Annotated[str | None, typer.Option(
            help="validate the model bondml train --preset fits (default, paper or tuned): its hyper-parameters, "
                 "mean function and std calibration, learnt inside each fold (as the pipeline's validate "
                 "stage); without it: the paper's hyper-parameters, zero mean (or --prior), cell-CV std")] = None,
    ) -> None:
        """Validate without leakage; SOAP GP and distance-only side by side per type."""
        check_range("--max-train", max_train, 0, low_open=True)
        check_range("--seed", seed, 0)
        if protocol not in ("paper", "loco", "ldgo", "cell-kfold", "run-out"):
            raise ConfigError(f"--protocol {protocol!r}: unknown protocol; "
                              "use loco, ldgo, paper, cell-kfold or run-out")
        from ..evaluate.shift import PRESETS, validate_preset

        if preset is not None and preset not in PRESETS:
            raise ConfigError(f"--preset {preset!r}: unknown preset; use {', '.join(PRESETS)}")
        if preset == "tuned" and not prior:
            raise ConfigError("--preset tuned was chosen with the prior mean; add --prior")
        if out is not None:
            _folder_ok(out)
        from ..evaluate import tune as tn
        from ..evaluate.metrics import regression_metrics
        from ..evaluate.plots import error_vs_distance_plot, parity_plot
        settings = None
        if preset is not None and getl is not None:
            from ..constants import DEFAULT_DESCRIPTOR
            from ..features.soap import settings_for

            settings = settings_for("atom" if preset in ("paper", "tuned") else DEFAULT_DESCRIPTOR)
        ds = load_dataset(store, getl, nc, run, sub_run, version, selection, settings=settings)
        dm = _distance_model(ds, tables)
        if prior and dm is None:
            raise ConfigError("--prior needs the study's label tables: not available for this chemistry")
        pr = dm if prior else None
        info: dict = {}
        if preset is None:
            res = tn.grouped_validation(ds, protocol, prior=pr, max_train=max_train, seed=seed)
        else:
            res, info = validate_preset(ds, protocol, preset, _tables_root(tables), prior=True if prior else None,
                                        max_train=max_train, seed=seed)
        dist = {}
        for bt, r in res.items():
            if dm is not None and bt in dm.fits:
                from ..model.distance import al_fraction

                x = al_fraction(r.nc)
                dist[bt] = regression_metrics(r.y, dm.fits[bt].predict(r.distance, x)[0])
        proto = next(iter(res.values())).protocol if res else protocol
        what = (f"preset {preset}, mean {info['mean']}, std calibrated per fold as the model's own "
                f"({', '.join(f'{k} {v}' for k, v in info['calibration_by_type'].items())})" if info
                else ("distance prior" if prior else ""))
        _print_metrics(f"{proto}{', ' + what if what else ''}", {k: v.metrics for k, v in res.items()}, dist)
        if out:
            with output_lock(out, "evaluation folder"):
                parity_plot({k: (v.y, v.pred) for k, v in res.items()}, out / "parity.png", proto)
                error_vs_distance_plot({k: (v.distance, v.y, v.pred) for k, v in res.items()},
                                       out / "error_vs_distance.png", proto)
                from ..util import atomic_write_json

                atomic_write_json(out / "metrics.json", {"protocol": proto, "prior": prior,
                                                         "soap_gp": {k: v.metrics for k, v in res.items()},
                                                         "distance_only": dist,
                                                         **({"model": {k: info[k] for k in (
                                                             "preset", "descriptor", "mean", "calibration",
                                                             "calibration_by_type")}} if info else {})})
            console.print(f"wrote {out}/metrics.json, parity.png, error_vs_distance.png")

    @app.command("composition-transfer")
    def composition_transfer(
        tables: TablesOpt = None,
        test_nc: Annotated[str, typer.Option(help="composition whose odd-numbered runs are held out")] = "Zr45Cu45Al10",
        out: Annotated[Path | None, typer.Option(help="JSON file")] = None,
    ) -> None:
        """Distance(+composition) prior on the label tables (PBSSDB, DB4, DB8) under run/composition shift."""
        from ..evaluate.tune import composition_transfer_study

        res = composition_transfer_study(_tables_root(tables), test_nc)
        t = Table(title=f"RMSE / bias (eV) on held-out {test_nc} runs, distance-only models from the label tables")
        t.add_column("training")
        for bt in BOND_TYPES:
            t.add_column(bt, justify="right")
        for name, r in res.items():
            t.add_row(name, *[f"{r[bt]['rmse']:.3f} / {r[bt]['bias']:+.3f}" if bt in r else "-" for bt in BOND_TYPES])
        console.print(t)
        if out:
            from ..util import atomic_write_json

            atomic_write_json(out, res)

    @app.command()
    def tune(
        store: StoreOpt = None, getl: GetlOpt = None, nc: NcOpt = None, run: RunOpt = None, sub_run: SubOpt = None,
        version: VersionOpt = None, selection: SelOpt = None, tables: TablesOpt = None, prior: PriorOpt = False,
        types: Annotated[list[str] | None, typer.Option("--type", help="bond type(s); default all with data")] = None,
        level: Annotated[str, typer.Option(help="group level of the CV: cell or run")] = "cell",
        n_splits: int = 5, max_train: int = 600, seed: int = 0,
        out: Annotated[Path | None, typer.Option(help="JSON file with every grid point")] = None,
    ) -> None:
        """Grid over sigma x gamma x zeta per type: grouped-CV RMSE and log marginal likelihood."""
        check_range("--max-train", max_train, 0, low_open=True)
        check_range("--seed", seed, 0)
        check_range("--n-splits", n_splits, 2)
        if level not in ("cell", "run"):
            raise ConfigError(f"--level {level!r}: use cell or run")
        for t in types or []:
            if t not in BOND_TYPES:
                raise ConfigError(f"--type {t!r}: unknown bond type; use one of {', '.join(BOND_TYPES)}")
        from ..evaluate import tune as tn

        ds = load_dataset(store, getl, nc, run, sub_run, version, selection)
        pr = _distance_model(ds, tables) if prior else None
        results = {}
        t = Table(title=f"tuning ({level}-grouped {n_splits}-fold CV, <= {max_train} bonds; "
                  "CV inside one run is optimistic)")
        for c in ("type", "best by CV (sigma/gamma/zeta)", "CV RMSE", "best by LML", "CV RMSE there",
                  "paper's CV RMSE"):
            t.add_column(c)
        for bt in types or tn.types_with_data(ds):
            r = tn.tune_type(ds, bt, level=level, n_splits=n_splits, max_train=max_train, seed=seed, prior=pr)
            results[bt] = r
            from ..constants import PAPER_HYPERPARAMETERS as P

            paper_row = next((x for x in r["rows"] if all(x[k] == P[bt][k] for k in ("sigma", "gamma", "zeta"))), None)
            f = lambda x: f"{x['sigma']:g}/{x['gamma']:g}/{x['zeta']:g}"  # noqa: E731
            t.add_row(bt, f(r["best_cv"]), f"{r['best_cv']['cv_rmse']:.3f}", f(r["best_lml"]),
                      f"{r['best_lml']['cv_rmse']:.3f}", f"{paper_row['cv_rmse']:.3f}" if paper_row else "-")
        console.print(t)
        if out:
            from ..util import atomic_write_json

            atomic_write_json(out, results)

    @app.command("learning-curve")
    def learning_curve(
        store: StoreOpt = None, getl: GetlOpt = None, nc: NcOpt = None, run: RunOpt = None, sub_run: SubOpt = None,
        version: VersionOpt = None, selection: SelOpt = None, tables: TablesOpt = None, prior: PriorOpt = False,
        sizes: Annotated[str, typer.Option(help="comma-separated training sizes")] = "50,100,200,400,800,1600,3200",
        seeds: Annotated[str, typer.Option(help="comma-separated seeds")] = "0,1,2",
        augmentation: Annotated[bool, typer.Option(help="also run the with/without augmentation study")] = True,
        out: Annotated[Path, typer.Option(help="output folder (PNG + JSON)")] = Path("learning-curve"),
    ) -> None:
        """RMSE on held-out cells vs training bonds per type (over seeds), and what augmentation buys."""
        from ..evaluate import tune as tn
        from ..evaluate.plots import learning_curve_plot
        from ..util import atomic_write_json

        sz = int_list("--sizes", sizes, 1)
        sd = int_list("--seeds", seeds, 0)
        _folder_ok(out)
        ds = load_dataset(store, getl, nc, run, sub_run, version, selection)
        pr = _distance_model(ds, tables) if prior else None
        curves = [tn.learning_curve(ds, bt, sz, sd, prior=pr) for bt in tn.types_with_data(ds)]
        with output_lock(out, "learning-curve folder"):
            learning_curve_plot(curves, out / "learning_curve.png")
            t = Table(title="learning curves: RMSE (eV) on held-out cells, mean over seeds")
            t.add_column("type")
            for s in sz:
                t.add_column(str(s), justify="right")
            for c in curves:
                vals = dict(zip(c["sizes"], c["rmse_mean"], strict=True))
                t.add_row(c["bond_type"], *[f"{vals[s]:.3f}" if s in vals else "-" for s in sz])
            console.print(t)
            aug = []
            if augmentation:
                aug = [tn.augmentation_study(ds, bt, seeds=sd, prior=pr) for bt in tn.types_with_data(ds)
                       if (ds.of_type(bt).sub_run == 0).sum() >= 10]
                t = Table(title="augmentation: same budget, tested on each augmented cell left out")
                for c in ("type", "budget", "RMSE without sub-runs 1..14", "RMSE with"):
                    t.add_column(c)
                for a in aug:
                    t.add_row(a["bond_type"], str(a["budget"]), f"{a['rmse_without_augmentation']:.3f}",
                              f"{a['rmse_with_augmentation']:.3f}")
                console.print(t)
            atomic_write_json(out / "learning_curve.json", {"curves": curves, "augmentation": aug})
        console.print(f"wrote {out}/learning_curve.png and learning_curve.json")

    @app.command()
    def validate(
        model: Annotated[Path, typer.Option("--model", help="model folder (bondml train)")],
        cell: Annotated[Path, typer.Option("--cell", help="sub-run folder (study layout) or run folder of any layout")],
        json_path: Annotated[Path, typer.Option("--json", help="report JSON to write")],
        max_distance: Annotated[float, typer.Option(help="largest bond length predicted (Angstrom)")] = LABEL_WINDOW[1],
        out: Annotated[Path | None, typer.Option(help="folder for ML_ICOHPLIST.lobster and parity.png")] = None,
    ) -> None:
        """Predict every LOBSTER bond of one cell and compare with LOBSTER, per type."""
        from ..evaluate.validate import validate_cell, write_report
        from ..model.bondmodel import BondModel

        check_range("--max-distance", max_distance, 0, low_open=True)
        m = BondModel.load(model)
        rep = validate_cell(m, cell, max_distance, out)
        write_report(rep, json_path)
        if rep["in_training_data"]:
            from ._io import warn

            warn(f"{cell}: this cell is in the model's training data; its errors are not a test of the model")
        seen = " [in training data]" if rep["in_training_data"] else ""
        t = Table(title=f"{rep['cell']} (d <= {max_distance:g} A){seen}")
        for c in ("type", "n", "RMSE (eV)", "1-sigma cov", "fallback"):
            t.add_column(c)
        for bt, n in rep["n"].items():
            t.add_row(bt, str(n), f"{rep['rmse'][bt]:.3f}", f"{rep['coverage_1sigma'][bt]:.0%}",
                      "yes" if rep["fallback"][bt] else "")
        t.add_row("all", str(rep["n_total"]), f"{rep['overall_rmse']:.3f}", "", "")
        console.print(t)
        console.print(f"protocol: {rep['protocol']}; {rep['fraction_out_of_domain']:.0%} of the GP bonds out of domain"
                      + (" -> [red]the cell is out of the model's domain[/]" if rep["cell_out_of_domain"] else ""))
