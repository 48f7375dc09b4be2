"""``bondml run <config>``, ``bondml models list|promote|show``, ``bondml al propose|approve|reject|status``,
``bondml ui``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._io import Table, console

OutOpt = Annotated[Path, typer.Option(
    "--out", help="pipeline output folder (holds stages/, store/, mlflow.db, al/, report/)")]
UriOpt = Annotated[str, typer.Option("--tracking-uri", help="MLflow URI (default: sqlite:///<out>/mlflow.db)")]


def _uri(out: Path, uri: str) -> str:
    from ..errors import BondmlError
    from ..pipeline.tracking import resolve_uri

    if not uri and not (out / "mlflow.db").is_file():
        raise BondmlError(f"{out}: no MLflow registry here (no mlflow.db: tracking disabled or no run yet); "
                          "pass --out <pipeline output> or --tracking-uri")
    return resolve_uri(uri, out)


def _print_stage(res) -> None:  # res: StageResult
    if res.skipped:
        console.print(f"  - {res.name:13s} disabled")
    elif res.ran:
        console.print(f"  \u2713 {res.name:13s} ran in {res.seconds:7.1f} s  {res.key}")
    else:
        console.print(f"  \u2713 {res.name:13s} cached           {res.key}")


def _print_results(out: Path, res: dict) -> None:
    """After a run: the data inventory (cells by status, bonds per type, label statistics) and the
    per-type accuracy of the honest validation protocol."""
    from ..constants import BOND_TYPES, PAPER_RMSE
    from ..store.db import BondStore
    from .etl import print_summary

    ing = res["stages"].get("ingest")
    store = Path((getattr(ing, "summary", None) or {}).get("store") or out / "store")  # the stage's own store
    if (store / "store.json").is_file() and (store / "HEAD").is_file():
        print_summary(BondStore(store).info())
    val = res["stages"].get("validate")
    summ = getattr(val, "summary", None) or {}
    if "rmse" in summ:
        t = Table(title=f"-ICOHP accuracy, {summ.get('protocol', '?')} (eV)")
        for col in ("type", "RMSE", "within 1 sigma", "paper RMSE (bond-level split)"):
            t.add_column(col, justify="left" if col == "type" else "right")
        for bt in (*BOND_TYPES, "all"):
            if bt in summ["rmse"]:
                cov = summ.get("cov1", {}).get(bt)
                t.add_row(bt, f"{summ['rmse'][bt]:.3f}", "-" if cov is None else f"{100 * cov:.0f}%",
                          f"{PAPER_RMSE[bt]:.3f}" if bt in PAPER_RMSE else "-")
        console.print(t)


def register(app: typer.Typer) -> None:
    """Add ``run``, ``models`` and ``al`` to the CLI."""

    @app.command("run")
    def run_cmd(
        config: Annotated[Path, typer.Argument(help="pipeline TOML file (e.g. configs/demo.toml)")],
        out: OutOpt = Path("bondml-output"),
        stage: Annotated[list[str] | None, typer.Option("--stage", help="run only up to these stages")] = None,
        force: Annotated[list[str] | None, typer.Option("--force", help="re-run these stages even if cached")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="reuse --out made by a pipeline reading other data "
                                                "(its store is rebuilt)")] = False,
    ) -> None:
        """Run the whole loop (ingest, train, validate, track, generate, deploy, active learning, report)
        as a DAG with content-hash caching: unchanged stages are skipped, an interrupted run resumes."""
        from ..pipeline import load_config, run_pipeline

        cfg = load_config(config)
        console.print(f"bondml run {config} -> {out}")

        def log(msg: str) -> None:
            console.print(msg)

        with console.status("running stages...", spinner="dots"):
            res = run_pipeline(cfg, out, targets=stage or None, force=force or (), log=log, on_stage=_print_stage,
                               overwrite=overwrite)
        _print_results(out, res)
        n_ran = sum(r.ran for r in res["stages"].values())
        console.print(f"{n_ran} stage(s) ran, {res['tasks']} task(s), {res['seconds']:.1f} s"
                      + (f"; report: {res['report']}" if res["report"] else ""))

    models = typer.Typer(help="The MLflow model registry of a pipeline output (list, promote, show).",
                         no_args_is_help=True)
    app.add_typer(models, name="models")

    @models.command("list")
    def models_list(out: OutOpt = Path("bondml-output"), tracking_uri: UriOpt = "",
                    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
        """Every registered model version with its aliases and the data version it came from."""
        from ..pipeline.tracking import list_models

        rows = list_models(_uri(out, tracking_uri))
        if as_json:
            print(json.dumps(rows, indent=2))
            return
        t = Table("name", "version", "aliases", "data version", "artifact", "run")
        for r in rows:
            t.add_row(r["name"], str(r["version"]), ",".join(r["aliases"]), r["data_version"],
                      "ok" if r["artifact_present"] else "MISSING", r["run_id"][:8])
        console.print(t)

    @models.command("promote")
    def models_promote(name: str, version: str, out: OutOpt = Path("bondml-output"), tracking_uri: UriOpt = "",
                       alias: Annotated[str, typer.Option(
                           "--alias", "--stage", help="alias / stage, e.g. production")] = "production") -> None:
        """Point an alias (stage) such as ``production`` at a model version."""
        from ..pipeline.tracking import promote

        r = promote(_uri(out, tracking_uri), name, version, alias)
        console.print(f"{r['name']} version {r['version']} is now '{r['alias']}'")

    @models.command("show")
    def models_show(name: str, version: Annotated[str, typer.Argument(help="version number or alias")],
                    out: OutOpt = Path("bondml-output"), tracking_uri: UriOpt = "") -> None:
        """Details of one model version (metrics, tags, artifact path); error if its artifact is gone."""
        from ..pipeline.tracking import show_model

        print(json.dumps(show_model(_uri(out, tracking_uri), name, version), indent=2, default=str))

    al = typer.Typer(help="Active learning: propose the next batch, approve it, show batches.", no_args_is_help=True)
    app.add_typer(al, name="al")

    @al.command("propose")
    def al_propose(config: Path, out: OutOpt = Path("bondml-output")) -> None:
        """Run the pipeline up to the active-learning proposal and write ``<out>/al/batch-<n>.json``."""
        from ..pipeline import run_pipeline

        with console.status("scoring candidates...", spinner="dots"):
            res = run_pipeline(config, out, targets=["al_propose"], log=lambda m: None, on_stage=_print_stage)
        b = res["stages"]["al_propose"].summary.get("batch")
        _show_batches(out, only=b)
        console.print(f"approve with: bondml al approve {b} --out {out}")

    @al.command("approve")
    def al_approve(batch: int, out: OutOpt = Path("bondml-output"),
                   by: Annotated[str, typer.Option(help="who approves (recorded)")] = "") -> None:
        """Mark a proposed batch approved; the next ``bondml run`` generates it."""
        from ..pipeline.active import approve_batch

        b = approve_batch(out, batch, by)
        console.print(f"batch {b['batch']} approved ({len(b['items'])} cells); "
                      f"run 'bondml run <config> --out {out}' to generate it")

    @al.command("reject")
    def al_reject(batch: int, out: OutOpt = Path("bondml-output"),
                  by: Annotated[str, typer.Option(help="who rejects (recorded)")] = "",
                  reason: Annotated[str, typer.Option(help="why (recorded)")] = "") -> None:
        """Mark a proposed batch rejected: it is never generated."""
        from ..pipeline.active import reject_batch

        b = reject_batch(out, batch, by, reason)
        console.print(f"batch {b['batch']} rejected ({len(b['items'])} cells)")

    @app.command("ui")
    def ui_cmd(out: OutOpt = Path("bondml-output"),
               host: Annotated[str, typer.Option(
                   help="interface to serve on (loopback only unless --allow-remote)")] = "127.0.0.1",
               port: Annotated[int, typer.Option(help="TCP port")] = 8050,
               allow_remote: Annotated[bool, typer.Option(
                   "--allow-remote", help="serve a non-loopback --host (no login!)")] = False) -> None:
        """A local dashboard of a pipeline output: stages, data, accuracy, AL batches with approve/reject."""
        from ..ui import make_server

        srv = make_server(out, host, port, allow_remote)
        console.print(f"bondml dashboard of {out} on http://{host}:{srv.server_port}/ (Ctrl-C stops it)")
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            srv.server_close()

    @al.command("status")
    def al_status(out: OutOpt = Path("bondml-output")) -> None:
        """Every batch with its status and cells."""
        _show_batches(out)


def _show_batches(out: Path, only: int | None = None) -> None:
    from ..pipeline.active import list_batches

    t = Table("batch", "status", "cell", "kind", "origin", "mean std (eV)")
    for b in list_batches(out):
        if only is not None and b["batch"] != only:
            continue
        for it in b["items"]:
            t.add_row(str(b["batch"]), b["status"], it["id"], it["kind"], it["origin"]["kind"],
                      f"{it['uncertainty_eV']:.4f}")
    console.print(t)
