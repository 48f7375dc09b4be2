"""MLflow tracking and the model registry (offline by default).

Default store: ``sqlite:///<out>/mlflow.db`` with artifacts under ``<out>/mlartifacts`` (MLflow 3
keeps its file-system backend in maintenance mode and needs a database for the registry; SQLite
works offline). A tracking server is a configuration: ``[tracking] uri = "http://host:5000"``.

Per training: parameters (hyper-parameters per type, training sizes, SOAP settings, data
version, validation protocol), per-type metrics of the honest protocol (RMSE, MAE, R^2, 1/2-sigma
coverage, eV), the plots, and the model folder as an artifact; then a registered model version
tagged with the data version it came from. ``bondml models list / promote / show`` read it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..errors import ModelError

#: Tag names on registered model versions.
DATA_VERSION_TAG = "data_version"
STAGE_TAG = "stage"


def default_uri(out: str | Path) -> str:
    """``sqlite:///<out>/mlflow.db`` (absolute)."""
    return f"sqlite:///{Path(out).resolve() / 'mlflow.db'}"


def resolve_uri(uri: str, out: str | Path) -> str:
    return uri or default_uri(out)


def _quiet() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def client(uri: str):  # -> mlflow.tracking.MlflowClient
    """An MlflowClient for tracking and registry at ``uri``."""
    _quiet()
    from mlflow.tracking import MlflowClient

    _quiet()  # mlflow sets its logger up on import
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _experiment(c: Any, name: str, out: Path) -> str:
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    art = (out / "mlartifacts").resolve()
    art.mkdir(parents=True, exist_ok=True)
    return c.create_experiment(name, artifact_location=art.as_uri())


def _flat_params(train: dict[str, Any], cfg: Any) -> dict[str, str]:
    p: dict[str, Any] = {"data_version": train["data_version"], "n_bonds": train["n_bonds"],
                         "max_train_per_type": cfg.model.max_train_per_type, "use_prior": cfg.model.use_prior,
                         "preset": cfg.model.preset, "search": cfg.model.search, "seed": cfg.pipeline.seed,
                         "label_source": ",".join(train["label_source"]),
                         "fallback_types": ",".join(train["fallback_types"]) or "none"}
    for t, hp in train["hyperparameters"].items():
        for k in ("sigma", "gamma", "zeta"):
            if k in hp:
                p[f"{t}.{k}"] = hp[k]
    for k, v in cfg.section("features").items():
        p[f"soap.{k}"] = v
    return {k: str(v) for k, v in p.items()}


def log_training(cfg: Any, out: Path, train_res: Any, validate_res: Any, data_version: str) -> dict[str, Any]:
    """Log one training (params, per-type metrics, plots, model) and register a model version."""
    uri = resolve_uri(cfg.tracking.uri, out)
    c = client(uri)
    exp = _experiment(c, cfg.tracking.experiment or cfg.pipeline.name, out)
    train = json.loads(train_res.path("train.json").read_text())
    val = json.loads(validate_res.path("validation.json").read_text())
    run = c.create_run(exp, run_name=f"train-{train_res.key[:8]}",
                       tags={DATA_VERSION_TAG: data_version, "train_stage_key": train_res.key,
                             "validation_protocol": val["protocol"]})
    rid = run.info.run_id
    for k, v in _flat_params(train, cfg).items():
        c.log_param(rid, k, v)
    c.log_param(rid, "validation_protocol", val["protocol"])
    for t, m in val["metrics"].items():
        for k in ("rmse", "mae", "r2", "cov1", "cov2", "n"):
            if k in m and m[k] == m[k]:
                c.log_metric(rid, f"{k}_{t}", float(m[k]))
    for png in ("parity.png", "calibration.png", "learning_curves.png"):
        if validate_res.path(png).is_file():
            c.log_artifact(rid, str(validate_res.path(png)), "plots")
    c.log_artifacts(rid, str(train_res.path("model")), "model")
    c.log_artifact(rid, str(train_res.path("train.json")))
    c.set_terminated(rid)
    info: dict[str, Any] = {"tracking_uri": uri, "experiment_id": exp, "run_id": rid}
    if cfg.tracking.register:
        from mlflow.exceptions import MlflowException

        name = cfg.model.name
        with contextlib.suppress(MlflowException):  # already registered
            c.create_registered_model(name, description="bondml per-type bond GPR (-ICOHP, eV)")
        src = f"{run.info.artifact_uri}/model"
        mv = c.create_model_version(name, src, rid,
                                    tags={DATA_VERSION_TAG: data_version, "validation": val["protocol"]})
        info.update(model_name=name, model_version=int(mv.version))
    return info


# ------------------------------------------------------------------------------- registry
def _local_path(source: str) -> Path | None:
    u = urlparse(source)
    if u.scheme in ("", "file"):
        return Path(unquote(u.path))
    return None


def list_models(uri: str) -> list[dict[str, Any]]:
    """Every registered model version: name, version, aliases, data version, run, source, artifact present."""
    c = client(uri)
    rows = []
    for rm in c.search_registered_models():
        aliases: dict[str, list[str]] = {}
        for a, v in (rm.aliases or {}).items():
            aliases.setdefault(str(v), []).append(a)
        for mv in c.search_model_versions(f"name='{rm.name}'"):
            p = _local_path(mv.source)
            rows.append({"name": mv.name, "version": int(mv.version),
                         "aliases": sorted(aliases.get(str(mv.version), [])),
                         "data_version": mv.tags.get(DATA_VERSION_TAG, ""), "stage": mv.tags.get(STAGE_TAG, ""),
                         "run_id": mv.run_id, "source": mv.source,
                         "artifact_present": bool(p and (p / "model.json").is_file())})
    return sorted(rows, key=lambda r: (r["name"], r["version"]))


def _version(c: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        if version.isdigit():
            return c.get_model_version(name, version)
        return c.get_model_version_by_alias(name, version)
    except MlflowException:
        raise ModelError(f"no registered model {name!r} version/alias {version!r} (see 'bondml models list')") from None


def show_model(uri: str, name: str, version: str) -> dict[str, Any]:
    """Details of one version (number or alias); ModelError (one line) if its artifact is gone."""
    c = client(uri)
    mv = _version(c, name, version)
    p = _local_path(mv.source)
    if p is None:
        raise ModelError(f"{name} v{mv.version}: artifact {mv.source} is not on a local file system")
    if not (p / "model.json").is_file():
        raise ModelError(f"{name} v{mv.version}: model artifact {p} was deleted or moved "
                         "(registry entry points at nothing)")
    meta = json.loads((p / "model.json").read_text())
    run = c.get_run(mv.run_id)
    return {"name": name, "version": int(mv.version), "source": mv.source, "path": str(p), "tags": dict(mv.tags),
            "run_id": mv.run_id, "metrics": dict(run.data.metrics), "types": sorted(meta.get("types", {})),
            "settings": meta.get("settings")}


def registered_model_path(uri: str, name: str, version: str) -> Path:
    """Local folder of a registered version (checked like :func:`show_model`)."""
    return Path(show_model(uri, name, version)["path"])


def promote(uri: str, name: str, version: str, alias: str) -> dict[str, Any]:
    """Point ``alias`` (e.g. ``production``, ``staging``) at ``version`` and tag it; artifact must exist."""
    show_model(uri, name, version)
    c = client(uri)
    mv = _version(c, name, version)
    c.set_registered_model_alias(name, alias, mv.version)
    c.set_model_version_tag(name, mv.version, STAGE_TAG, alias)
    return {"name": name, "version": int(mv.version), "alias": alias}
