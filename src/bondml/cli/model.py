"""``bondml train | evaluate | tune | learning-curve | validate``: the Train and Tune stages."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from . import make_console
from rich.table import Table

from ..constants import BOND_TYPES, LABEL_WINDOW, PAPER_RMSE
from ..errors import ConfigError

console = make_console()

StoreOpt = Annotated[Optional[Path], typer.Option("--store", help="bond store folder (bondml ingest)")]
GetlOpt = Annotated[Optional[Path], typer.Option("--getl", help="read a GETL tree directly (no store)")]
NcOpt = Annotated[Optional[list[str]], typer.Option("--nc", help="composition(s) to select")]
RunOpt = Annotated[Optional[list[int]], typer.Option("--run", help="MD run(s) to select")]
SubOpt = Annotated[Optional[list[int]], typer.Option("--sub-run", help="sub-run(s) to select")]
VersionOpt = Annotated[Optional[str], typer.Option("--version", help="store version (default current)")]
SelOpt = Annotated[Optional[str], typer.Option("--selection", help="named store selection")]
TablesOpt = Annotated[Optional[Path], typer.Option("--tables", help="root holding ML/big-data-full label tables "
                                                   "(default: the reference data)")]
PriorOpt = Annotated[bool, typer.Option("--prior/--no-prior", help="distance+composition prior mean from the "
                                        "label tables, SOAP GP on the residual")]


def load_dataset(store: Path | None, getl: Path | None, nc: list[str] | None = None, run: list[int] | None = None,
                 sub_run: list[int] | None = None, version: str | None = None, selection: str | None = None) -> Any:
    """BondDataset from a store (with selection) or straight from a GETL tree."""
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
    return dataset_from_getl(getl, cells=cells)


def _tables_root(tables: Path | None) -> Path:
    from ..data import reference_root

    return tables or reference_root()


def _distance_model(ds: Any, tables: Path | None, composition: bool = True) -> Any:
    """Distance model from the label tables without any run present in ``ds`` (keeps tests unseen)."""
    from ..evaluate.tune import distance_model_from_tables

    runs = {(str(a), int(b)) for a, b in zip(ds.nc, ds.run, strict=True)}
    return distance_model_from_tables(_tables_root(tables), exclude=sorted(runs), composition=composition)


def _print_metrics(title: str, rows: dict[str, dict[str, float]], extra: dict[str, dict[str, float]] | None = None,
                   extra_name: str = "distance-only RMSE") -> None:
    t = Table(title=title)
    cols = ["type", "n", "RMSE (eV)", "MAE (eV)", "R^2", "1-sigma cov", "2-sigma cov"]
    if extra is not None:
        cols.append(extra_name)
    cols.append("paper RMSE")
    for c in cols:
        t.add_column(c, justify="left" if c == "type" else "right")
    for bt, m in rows.items():
        r = [bt, str(m["n"]), f"{m['rmse']:.3f}", f"{m['mae']:.3f}", f"{m['r2']:.3f}",
             f"{m.get('cov1', float('nan')):.0%}", f"{m.get('cov2', float('nan')):.0%}"]
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
        version: VersionOpt = None, selection: SelOpt = None, tables: TablesOpt = None, prior: PriorOpt = False,
        max_train: Annotated[Optional[int], typer.Option(help="at most this many bonds per type (seeded)")] = None,
        seed: Annotated[int, typer.Option(help="seed of the subset draw")] = 0,
        min_bonds: Annotated[int, typer.Option(help="fewest bonds for a GP; fewer -> distance-only fallback")] = 30,
        hyper: Annotated[Optional[Path], typer.Option(help="JSON {type: {sigma, gamma, zeta}} overriding the preset")] = None,
        preset: Annotated[str, typer.Option(help="hyper-parameters: paper, or tuned (needs --prior)")] = "paper",
    ) -> None:
        """Train one GP per bond type (paper kernel and hyper-parameters) and save the model folder."""
        from ..model.bondmodel import BondModel

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        ds = load_dataset(store, getl, nc, run, sub_run, version, selection)
        dm = _distance_model(ds, tables)
        from ..evaluate.tune import TUNED_HYPERPARAMETERS

        if preset not in ("paper", "tuned"):
            raise ConfigError(f"unknown preset {preset!r}; use paper or tuned")
        if preset == "tuned" and not prior:
            raise ConfigError("--preset tuned was chosen with the prior mean; add --prior")
        hp = {k: dict(v) for k, v in TUNED_HYPERPARAMETERS.items()} if preset == "tuned" else {}
        for k, v in (json.loads(hyper.read_text()) if hyper else {}).items():
            hp.setdefault(k, {}).update(v)
        model = BondModel.fit(ds, hyperparameters=hp or None, distance_model=dm, use_prior=prior,
                              max_train_per_type=max_train, seed=seed, min_bonds=min_bonds)
        model.save(out)
        t = Table(title=f"model {out} (SOAP {model.settings.digest}, prior: {'yes' if prior else 'no'})")
        for c in ("type", "kind", "bonds used", "bonds available", "sigma", "gamma", "zeta"):
            t.add_column(c)
        for bt in BOND_TYPES:
            info = model.lineage["types"].get(bt)
            if info is None:
                t.add_row(bt, "[red]none[/]", "0", "0", "", "", "")
            elif info["kind"] == "fallback":
                t.add_row(bt, "[yellow]distance-only fallback[/]", "-", str(info["n_available"]), "", "", "")
            else:
                p = info["params"]
                t.add_row(bt, "GP", str(info["n_train"]), str(info["n_available"]), f"{p['sigma']:g}",
                          f"{p['gamma']:g}", f"{p['zeta']:g}")
        console.print(t)

    @app.command()
    def evaluate(
        store: StoreOpt = None, getl: GetlOpt = None, nc: NcOpt = None, run: RunOpt = None, sub_run: SubOpt = None,
        version: VersionOpt = None, selection: SelOpt = None, tables: TablesOpt = None, prior: PriorOpt = False,
        protocol: Annotated[str, typer.Option(help="loco (leave-one-cell-out), paper (bond-level, leaky), "
                                                   "cell-kfold, run-out (leave-one-run-out)")] = "loco",
        max_train: Annotated[Optional[int], typer.Option(help="cap on training bonds per type per fold")] = None,
        seed: int = 0,
        out: Annotated[Optional[Path], typer.Option(help="folder for metrics.json and PNG plots")] = None,
    ) -> None:
        """Validate without leakage; SOAP GP and distance-only side by side per type."""
        from ..evaluate import tune as tn
        from ..evaluate.metrics import regression_metrics
        from ..evaluate.plots import error_vs_distance_plot, parity_plot
        from ..evaluate.splits import group_kfold, leave_one_group_out

        ds = load_dataset(store, getl, nc, run, sub_run, version, selection)
        dm = _distance_model(ds, tables)
        pr = dm if prior else None
        if protocol == "paper":
            res = tn.paper_protocol(ds, seed=seed, prior=pr)
        elif protocol == "loco":
            res = tn.loco(ds, prior=pr, max_train=max_train, seed=seed)
        elif protocol in ("cell-kfold", "run-out"):
            level = "cell" if protocol == "cell-kfold" else "run"
            res = {}
            for bt in tn.types_with_data(ds):
                g = ds.of_type(bt).groups(level)
                sp = group_kfold(g, 5, seed, level) if level == "cell" else leave_one_group_out(g, level)
                res[bt] = tn.cross_validate_type(ds, bt, sp, None, pr, max_train, seed, calibrate=True)
        else:
            raise ConfigError(f"unknown protocol {protocol!r}; use loco, paper, cell-kfold or run-out")
        dist = {}
        for bt, r in res.items():
            if bt in dm.fits:
                from ..model.distance import al_fraction

                x = al_fraction(r.nc)
                dist[bt] = regression_metrics(r.y, dm.fits[bt].predict(r.distance, x)[0])
        proto = next(iter(res.values())).protocol if res else protocol
        _print_metrics(f"{proto}{' + distance prior' if prior else ''}", {k: v.metrics for k, v in res.items()}, dist)
        if out:
            out.mkdir(parents=True, exist_ok=True)
            parity_plot({k: (v.y, v.pred) for k, v in res.items()}, out / "parity.png", proto)
            error_vs_distance_plot({k: (v.distance, v.y, v.pred) for k, v in res.items()}, out / "error_vs_distance.png", proto)
            from ..util import atomic_write_json

            atomic_write_json(out / "metrics.json", {"protocol": proto, "prior": prior,
                                                     "soap_gp": {k: v.metrics for k, v in res.items()},
                                                     "distance_only": dist})
            console.print(f"wrote {out}/metrics.json, parity.png, error_vs_distance.png")

    @app.command("composition-transfer")
    def composition_transfer(
        tables: TablesOpt = None,
        test_nc: Annotated[str, typer.Option(help="composition whose odd-numbered runs are held out")] = "Zr45Cu45Al10",
        out: Annotated[Optional[Path], typer.Option(help="JSON file")] = None,
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
        types: Annotated[Optional[list[str]], typer.Option("--type", help="bond type(s); default all with data")] = None,
        level: Annotated[str, typer.Option(help="group level of the CV: cell or run")] = "cell",
        n_splits: int = 5, max_train: int = 600, seed: int = 0,
        out: Annotated[Optional[Path], typer.Option(help="JSON file with every grid point")] = None,
    ) -> None:
        """Grid over sigma x gamma x zeta per type: grouped-CV RMSE and log marginal likelihood."""
        from ..evaluate import tune as tn

        ds = load_dataset(store, getl, nc, run, sub_run, version, selection)
        pr = _distance_model(ds, tables) if prior else None
        results = {}
        t = Table(title=f"tuning ({level}-grouped {n_splits}-fold CV, <= {max_train} bonds; "
                  "CV inside one run is optimistic)")
        for c in ("type", "best by CV (sigma/gamma/zeta)", "CV RMSE", "best by LML", "CV RMSE there", "paper's CV RMSE"):
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

        ds = load_dataset(store, getl, nc, run, sub_run, version, selection)
        pr = _distance_model(ds, tables) if prior else None
        sz = [int(s) for s in sizes.split(",")]
        sd = [int(s) for s in seeds.split(",")]
        curves = [tn.learning_curve(ds, bt, sz, sd, prior=pr) for bt in tn.types_with_data(ds)]
        out.mkdir(parents=True, exist_ok=True)
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
        cell: Annotated[Path, typer.Option("--cell", help="sub-run folder in the original layout")],
        json_path: Annotated[Path, typer.Option("--json", help="report JSON to write")],
        max_distance: Annotated[float, typer.Option(help="largest bond length predicted (Angstrom)")] = LABEL_WINDOW[1],
        out: Annotated[Optional[Path], typer.Option(help="folder for ML_ICOHPLIST.lobster and parity.png")] = None,
    ) -> None:
        """Predict every LOBSTER bond of one cell and compare with LOBSTER, per type."""
        from ..evaluate.validate import validate_cell, write_report
        from ..model.bondmodel import BondModel

        m = BondModel.load(model)
        rep = validate_cell(m, cell, max_distance, out)
        write_report(rep, json_path)
        t = Table(title=f"{rep['cell']} (d <= {max_distance:g} A){' [in training data]' if rep['in_training_data'] else ''}")
        for c in ("type", "n", "RMSE (eV)", "1-sigma cov", "fallback"):
            t.add_column(c)
        for bt, n in rep["n"].items():
            t.add_row(bt, str(n), f"{rep['rmse'][bt]:.3f}", f"{rep['coverage_1sigma'][bt]:.0%}",
                      "yes" if rep["fallback"][bt] else "")
        t.add_row("all", str(rep["n_total"]), f"{rep['overall_rmse']:.3f}", "", "")
        console.print(t)
