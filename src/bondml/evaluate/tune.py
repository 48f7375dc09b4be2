"""Grouped cross-validation, LOCO, hyper-parameter search (CV and log marginal likelihood),
learning curves and the augmentation study. Energies in eV, distances in Angstrom.

Every random choice takes ``seed``. Leave-one-cell-out inside one run is optimistic (the cells
of a run are the same atoms, deformed); results carry the protocol name they come from.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import BOND_TYPES, PAPER_HYPERPARAMETERS
from ..core.dataset import BondDataset
from ..errors import ConfigError
from ..model.bondmodel import cv_std_scale
from ..model.distance import DistanceModel, al_fraction
from ..model.gpr import BondGPR
from ..model.presets import TUNED_HYPERPARAMETERS  # noqa: F401 - re-exported (moved to model.presets)
from .metrics import regression_metrics
from .splits import (
    Split,
    bond_level_split,
    group_holdout,
    group_kfold,
    leave_deformation_group_out,
    leave_one_group_out,
)
from .tables import LabelTable, read_all_tables


def distance_model_from_tables(root: str | Path, exclude: Iterable[tuple[str, int]] = (),
                               exclude_nc: Iterable[str] = (), composition: bool = True) -> DistanceModel:
    """Distance(+composition) model from PBSSDB+DB4+DB8 under ``root`` without the (nc, run)
    pairs in ``exclude`` and the compositions in ``exclude_nc`` (to keep test cells unseen)."""
    t = read_all_tables(root)
    keep = np.ones(len(t), bool)
    for nc, run in exclude:
        keep &= ~((t.nc == nc) & (t.run == int(run)))
    for nc in exclude_nc:
        keep &= t.nc != nc
    return DistanceModel(composition=composition).fit(t.select(keep))


def distance_model_for(ds: BondDataset, root: str | Path | None = None, composition: bool = True) -> DistanceModel:
    """The fallback/prior distance model for training on ``ds``: fitted on the label tables under
    ``root`` (default: the tables shipped as package data) without any (nc, run) present in
    ``ds``, so that cells of those runs stay unseen by it (``bondml train``, :class:`bondml.BondModel`)."""
    from ..data import label_tables_root

    runs = {(str(a), int(b)) for a, b in zip(ds.nc, ds.run, strict=True)}
    return distance_model_from_tables(root or label_tables_root(), exclude=sorted(runs), composition=composition)


def _prior(dm: DistanceModel | None, bt: str, ds: BondDataset) -> np.ndarray:
    if dm is None or bt not in dm.fits or not dm.is_prior_for(bt):
        return np.zeros(len(ds))
    return dm.fits[bt].predict(ds.distance, al_fraction(ds.nc))[0]


#: Std calibrations of the validation folds, as the trainer does them
#: (:func:`bondml.evaluate.shift.calibration_of_preset`): ``cell`` (the ``paper``/``tuned``
#: presets: one factor from a cell-grouped 5-fold CV, :func:`~bondml.model.bondmodel.cv_std_scale`),
#: ``shift`` (the ``default`` preset: the type's own calibration method,
#: :data:`bondml.model.domain.CALIBRATION_BY_TYPE`, and its ``q95_factor``, learnt on held-out
#: deformation groups of the training data, :func:`~bondml.model.domain.held_out_statistics`).
FOLD_CALIBRATIONS = ("cell", "shift")


def fit_predict_calibrated(train: BondDataset, test: BondDataset, bt: str, params: dict[str, Any] | None = None,
                           prior: DistanceModel | None = None, max_train: int | None = None, seed: int = 0,
                           calibrate: bool = False, calibration: str = "cell"
                           ) -> tuple[np.ndarray, np.ndarray, float, str, BondGPR]:
    """Fit one type's GP on ``train`` (seeded subset of ``max_train``), predict ``test`` with the
    std calibrated as the trainer would calibrate a model trained on that subset.

    Parameters
    ----------
    train, test : BondDataset
        Bonds of type ``bt`` (-ICOHP in eV, lengths in Angstrom).
    calibrate : bool
        Calibrate the std on ``train`` only (nested: the test bonds never set it).
    calibration : str
        ``cell`` or ``shift`` (:data:`FOLD_CALIBRATIONS`). ``shift`` runs exactly the calibration
        of :meth:`BondModel.fit(calibration="shift") <bondml.model.bondmodel.BondModel.fit>`
        (:func:`~bondml.model.domain.held_out_statistics` + :func:`~bondml.model.domain.learn_domain`):
        inner leave-deformation-group-out on the training bonds when they span at least two
        deformation groups, else 5 seeded folds of whole cells.

    Returns
    -------
    (mean (n,), std (n,), q95_factor, method, estimator)
        Mean and calibrated std in eV; ``q95_factor`` the calibrated 95 % interval half-width in
        units of the std (nan when not learnt: ``cell`` calibration, or nothing to calibrate on);
        ``method`` the calibration used (``"none"``, ``"cell"``, or one of
        :data:`bondml.model.domain.CALIBRATIONS`).
    """
    if calibration not in FOLD_CALIBRATIONS:
        raise ConfigError(f"unknown std calibration {calibration!r}; use {', '.join(FOLD_CALIBRATIONS)}")
    if max_train and len(train) > max_train:
        train = train.select(np.sort(np.random.default_rng(seed).choice(len(train), max_train, replace=False)))

    def make() -> BondGPR:
        return BondGPR.paper(bt, **(params or {}))

    def prior_of(x: BondDataset) -> np.ndarray:
        return _prior(prior, bt, x)

    est = make().fit(train.features(), train.y - prior_of(train))
    mu, sd = est.predict(test.features(), return_std=True)
    q95, method = float("nan"), "none"
    if calibrate and calibration == "cell":
        sd, method = sd * cv_std_scale(train, make, prior_of, seed=seed), "cell"
    elif calibrate:
        from ..errors import ModelError
        from ..model.domain import held_out_statistics, learn_domain

        try:
            z, sim, raw, proto, extra = held_out_statistics(train, make, prior_of, seed=seed, details=True)
            info = learn_domain(z, sim, raw, protocol=proto, bond_type=bt, **extra)
        except ModelError:  # as BondModel.fit: nothing to calibrate on (one cell only), std as is
            pass
        else:
            sd, q95, method = info.calibrated_std(sd, test.distance), info.q95_factor, info.calibration
    return mu + prior_of(test), sd, q95, method, est


def fit_predict_type(train: BondDataset, test: BondDataset, bt: str, params: dict[str, Any] | None = None,
                     prior: DistanceModel | None = None, max_train: int | None = None, seed: int = 0,
                     calibrate: bool = False, calibration: str = "cell") -> tuple[np.ndarray, np.ndarray, BondGPR]:
    """Fit one type's GP on ``train`` (seeded subset of ``max_train``), predict ``test``: (mean, std, est).

    ``calibrate`` calibrates the std on ``train`` only (nested, no leak): ``calibration="cell"``
    by an inner cell-grouped CV (one factor), ``"shift"`` as the default model does
    (:func:`fit_predict_calibrated`).
    """
    mu, sd, _, _, est = fit_predict_calibrated(train, test, bt, params, prior, max_train, seed, calibrate, calibration)
    return mu, sd, est


@dataclass
class CVResult:
    """Pooled out-of-fold predictions of one type and their metrics, with the protocol name.

    ``q95`` (per held-out bond, nan where unknown) is the calibrated 95 % interval half-width in
    units of ``std`` learnt in that bond's fold; ``calibration`` the std calibration of the folds."""

    bond_type: str
    protocol: str
    y: np.ndarray
    pred: np.ndarray
    std: np.ndarray
    distance: np.ndarray
    nc: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)
    q95: np.ndarray | None = None
    calibration: str = "none"


def interval_metrics(y: np.ndarray, pred: np.ndarray, std: np.ndarray, q95: np.ndarray | None) -> dict[str, float]:
    """``q95`` (mean factor) and ``cov95`` (fraction of |error| <= q95 * std) where every bond has
    a finite factor; empty otherwise."""
    if q95 is None or q95.size == 0 or not np.all(np.isfinite(q95)):
        return {}
    e = np.abs(np.asarray(pred, float) - np.asarray(y, float))
    return {"q95": float(np.mean(q95)), "cov95": float(np.mean(e <= q95 * np.asarray(std, float)))}


def _fold_task(args: tuple) -> tuple[np.ndarray, np.ndarray, float, str]:
    """One fold of :func:`cross_validate_type` (a picklable task for parallel maps)."""
    sub, train, test, bt, params, prior, max_train, seed, calibrate, *rest = args
    mu, sd, q95, method, _ = fit_predict_calibrated(sub.select(train), sub.select(test), bt, params, prior,
                                                    max_train, seed, calibrate, *rest)
    return mu, sd, q95, method


def cross_validate_type(ds: BondDataset, bt: str, splits: Iterable[Split], params: dict[str, Any] | None = None,
                        prior: DistanceModel | None = None, max_train: int | None = None, seed: int = 0,
                        calibrate: bool = False, map_fn: Callable[..., Iterable[Any]] = map,
                        calibration: str = "cell") -> CVResult:
    """Out-of-fold predictions for bond type ``bt`` over ``splits`` (indices into ``ds.of_type(bt)``).

    Fold k is fitted with seed ``seed + k``; ``calibrate`` / ``calibration`` as in
    :func:`fit_predict_calibrated` (learnt inside each fold's training bonds). ``map_fn(task,
    tasks)`` runs the folds (builtin ``map`` by default; a pipeline passes its parallel runner's
    map): results do not depend on it.
    """
    sub = ds.of_type(bt)
    pred = np.full(len(sub), np.nan)
    std = np.full(len(sub), np.nan)
    q95 = np.full(len(sub), np.nan)
    protocol = ""
    tasks = []
    for k, sp in enumerate(splits):
        protocol = sp.protocol.split(" (fold")[0]
        if sp.test.size == 0 or sp.train.size < 2:
            continue
        tasks.append((sub, sp.train, sp.test, bt, params, prior, max_train, seed + k, calibrate, calibration))
    methods = set()
    for t, (mu, sd, q, method) in zip(tasks, map_fn(_fold_task, tasks), strict=True):
        pred[t[2]], std[t[2]], q95[t[2]] = mu, sd, q
        methods.add(method)
    ok = np.isfinite(pred)
    res = CVResult(bt, protocol, sub.y[ok], pred[ok], std[ok], sub.distance[ok], sub.nc[ok], q95=q95[ok],
                   calibration="/".join(sorted(methods)) or "none")
    res.metrics = {**regression_metrics(res.y, res.pred, res.std), **interval_metrics(res.y, res.pred, res.std,
                                                                                      res.q95)}
    return res


#: Protocol names of :func:`grouped_validation` (CLI spellings and the pipeline's config values).
PROTOCOLS = ("loco", "ldgo", "cell-kfold", "run-out", "paper", "leave-one-group-out", "group-kfold")


def grouped_validation(ds: BondDataset, protocol: str = "loco", level: str = "cell", n_splits: int = 5,
                       params: dict[str, dict[str, Any]] | None = None, prior: DistanceModel | None = None,
                       max_train: int | None = None, seed: int = 0, types: list[str] | None = None,
                       map_fn: Callable[..., Iterable[Any]] = map, calibration: str = "cell") -> dict[str, CVResult]:
    """Validation without leakage, per bond type: the one implementation behind ``bondml
    evaluate`` and the pipeline's validate stage (both through
    :func:`bondml.evaluate.shift.validate_preset` for a preset's model).

    Parameters
    ----------
    ds : BondDataset
        Labelled bonds (-ICOHP, eV).
    protocol : str
        ``leave-one-group-out`` (whole ``level`` groups out, one fold per group), ``group-kfold``
        (``n_splits`` folds of whole groups, seeded), ``paper`` (the paper's bond-level random
        split; leaky, for comparison only), ``ldgo`` (leave-deformation-group-out: the four
        deformation families of a run, the shift protocol), or the CLI shorthands ``loco`` (leave-one-cell-out),
        ``cell-kfold`` (5 folds by cell) and ``run-out`` (leave-one-run-out), which fix ``level``.
    level : str
        ``cell``, ``run`` or ``nc``.
    params : dict, optional
        {bond type: {sigma, gamma, zeta}} overriding the paper's.
    prior : DistanceModel, optional
        Distance(+composition) prior mean; the GP fits the residual.
    max_train : int, optional
        Cap on training bonds per type per fold (seeded).
    seed : int
        Seed of the fold draws and subsets (fold k uses ``seed + k``).
    types : list of str, optional
        Bond types (default: every type with at least 30 bonds).
    map_fn : callable
        ``map``-like runner of the folds (parallel in the pipeline; same results).
    calibration : str
        How each fold's std is calibrated on its training bonds only (nested), as the trainer
        calibrates the model it ships (:data:`FOLD_CALIBRATIONS`): ``cell`` (the ``paper`` and
        ``tuned`` presets: one factor, inner cell-grouped 5-fold CV) or ``shift`` (the ``default``
        preset: each type's own method of :data:`bondml.model.domain.CALIBRATION_BY_TYPE` and its
        95 % interval factor, on an inner leave-deformation-group-out of the training cells).

    Returns
    -------
    dict
        {bond type: :class:`CVResult`} with pooled out-of-fold predictions (std calibrated inside
        each training fold except for ``paper``) and metrics (``cov95``/``q95`` with ``shift``).
    """
    if calibration not in FOLD_CALIBRATIONS:
        raise ConfigError(f"unknown std calibration {calibration!r}; use {', '.join(FOLD_CALIBRATIONS)}")
    if protocol == "paper":
        return paper_protocol(ds, seed=seed, params=params, prior=prior, types=types)
    if protocol == "ldgo":
        return {bt: cross_validate_type(ds, bt, leave_deformation_group_out(ds.of_type(bt).sub_run),
                                        (params or {}).get(bt), prior, max_train, seed, calibrate=True, map_fn=map_fn,
                                        calibration=calibration)
                for bt in types or types_with_data(ds)}
    kind, level = {"loco": ("leave-one-group-out", "cell"), "cell-kfold": ("group-kfold", "cell"),
                   "run-out": ("leave-one-group-out", "run")}.get(protocol, (protocol, level))
    if protocol == "cell-kfold":
        n_splits = 5
    if kind not in ("leave-one-group-out", "group-kfold"):
        raise ConfigError(f"unknown validation protocol {protocol!r}; use {', '.join(PROTOCOLS)}")
    if level not in ("cell", "run", "nc"):
        raise ConfigError(f"unknown group level {level!r}; use cell, run or nc")
    out = {}
    for bt in types or types_with_data(ds):
        g = ds.of_type(bt).groups(level)
        sp = leave_one_group_out(g, level) if kind == "leave-one-group-out" else group_kfold(g, n_splits, seed, level)
        out[bt] = cross_validate_type(ds, bt, sp, (params or {}).get(bt), prior, max_train, seed, calibrate=True,
                                      map_fn=map_fn, calibration=calibration)
    return out


def types_with_data(ds: BondDataset, min_bonds: int = 30) -> list[str]:
    c = ds.counts()
    return [t for t in c if c[t] >= min_bonds]


def loco(ds: BondDataset, params: dict[str, dict[str, Any]] | None = None, prior: DistanceModel | None = None,
         max_train: int | None = None, seed: int = 0, types: list[str] | None = None,
         calibrate: bool = True) -> dict[str, CVResult]:
    """Leave-one-cell-out per type (optimistic inside one run: same atoms, deformed cells);
    with ``calibrate`` the std scale is learnt inside each training fold (nested CV)."""
    if calibrate:
        return grouped_validation(ds, "loco", params=params, prior=prior, max_train=max_train, seed=seed, types=types)
    out = {}
    for bt in types or types_with_data(ds):
        sub = ds.of_type(bt)
        out[bt] = cross_validate_type(ds, bt, leave_one_group_out(sub.groups("cell"), "cell"),
                                      (params or {}).get(bt), prior, max_train, seed, calibrate)
    return out


def paper_protocol(ds: BondDataset, n_train: int = 2000, n_test: int = 1000, seed: int = 0,
                   params: dict[str, dict[str, Any]] | None = None, prior: DistanceModel | None = None,
                   types: list[str] | None = None) -> dict[str, CVResult]:
    """The paper's bond-level random split per type: n_train/n_test, or 2/3 : 1/3 when fewer bonds."""
    out = {}
    for bt in types or types_with_data(ds):
        n = int((ds.bond_type == bt).sum())
        ntr = min(n_train, (2 * n) // 3)
        sp = bond_level_split(n, ntr, min(n_test, n - ntr), seed)
        out[bt] = cross_validate_type(ds, bt, [sp], (params or {}).get(bt), prior, None, seed)
    return out


def default_grid(bond_type: str) -> list[dict[str, float]]:
    """sigma x gamma x zeta grid around the paper's values."""
    hp = PAPER_HYPERPARAMETERS.get(bond_type, {"sigma": 0.5, "gamma": 0.01, "zeta": 1.0})
    sig = sorted({0.25, 0.5, 1.0, hp["sigma"]})
    gam = sorted({0.0025, 0.01, 0.04, hp["gamma"]})
    return [{"sigma": s, "gamma": g, "zeta": z} for s, g, z in itertools.product(sig, gam, (1.0, 2.0, 4.0))]


def tune_type(ds: BondDataset, bt: str, grid: list[dict[str, float]] | None = None, level: str = "cell",
              n_splits: int = 5, max_train: int | None = 800, seed: int = 0,
              prior: DistanceModel | None = None) -> dict[str, Any]:
    """Grouped-CV RMSE and log marginal likelihood for each grid point; best by each criterion."""
    sub = ds.of_type(bt)
    grid = grid or default_grid(bt)
    rows = []
    rng_idx = np.arange(len(sub))
    if max_train and len(sub) > max_train:
        rng_idx = np.sort(np.random.default_rng(seed).choice(len(sub), max_train, replace=False))
    lml_data = sub.select(rng_idx)
    for p in grid:
        cv = cross_validate_type(ds, bt, list(group_kfold(sub.groups(level), n_splits, seed, level)), p, prior,
                                 max_train, seed)
        est = BondGPR.paper(bt, **p).fit(lml_data.features(), lml_data.y - _prior(prior, bt, lml_data))
        rows.append({**p, "cv_rmse": cv.metrics["rmse"], "cv_cov1": cv.metrics["cov1"],
                     "lml": est.log_marginal_likelihood()})
    best_cv = min(rows, key=lambda r: r["cv_rmse"])
    best_lml = max(rows, key=lambda r: r["lml"])
    return {"bond_type": bt, "protocol": f"group-{n_splits}-fold by {level}", "rows": rows,
            "best_cv": best_cv, "best_lml": best_lml}


def learning_curve(ds: BondDataset, bt: str, sizes: Iterable[int], seeds: Iterable[int] = (0, 1, 2),
                   level: str = "cell", test_fraction: float = 0.25, prior: DistanceModel | None = None,
                   params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Held-out-group RMSE vs training size, mean and std over seeds (a new group split per seed)."""
    sub = ds.of_type(bt)
    res: dict[int, list[float]] = {}
    for s in seeds:
        sp = group_holdout(sub.groups(level), None, test_fraction, s, level)
        for n in sizes:
            if n > sp.train.size:
                continue
            mu, _, _ = fit_predict_type(sub.select(sp.train), sub.select(sp.test), bt, params, prior, n, s)
            res.setdefault(int(n), []).append(float(np.sqrt(np.mean((mu - sub.y[sp.test]) ** 2))))
    return {"bond_type": bt, "protocol": f"hold-out {test_fraction:.0%} of {level}s, per seed",
            "sizes": sorted(res), "rmse_mean": [float(np.mean(res[n])) for n in sorted(res)],
            "rmse_std": [float(np.std(res[n])) for n in sorted(res)], "n_seeds": [len(res[n]) for n in sorted(res)]}


def augmentation_study(ds: BondDataset, bt: str, budget: int | None = None, seeds: Iterable[int] = (0, 1, 2),
                       prior: DistanceModel | None = None) -> dict[str, Any]:
    """Same training budget with and without augmented sub-runs (1..14), tested on unseen cells.

    For each augmented cell c: "without" trains on sub-run 0 only; "with" trains on every
    labelled sub-run except c (0 included); both draw ``budget`` bonds (default: all of
    sub-run 0) with the seed, and are tested on c, which neither saw.
    """
    sub = ds.of_type(bt)
    base = np.flatnonzero(sub.sub_run == 0)
    budget = int(min(budget or base.size, base.size))
    err = {"without": [], "with": []}
    for s in seeds:
        for c in np.unique(sub.sub_run[sub.sub_run > 0]):
            te = sub.select(sub.sub_run == c)
            pool_with = np.flatnonzero(sub.sub_run != c)
            for name, pool in (("without", base), ("with", pool_with)):
                idx = np.random.default_rng(s).choice(pool, budget, replace=False)
                mu, _, _ = fit_predict_type(sub.select(np.sort(idx)), te, bt, None, prior, None, s)
                err[name].append(mu - te.y)
    out = {k: float(np.sqrt(np.mean(np.concatenate(v) ** 2))) for k, v in err.items() if v}
    return {"bond_type": bt, "budget": budget, "rmse_without_augmentation": out.get("without"),
            "rmse_with_augmentation": out.get("with"),
            "protocol": "test on each augmented cell, trained without it; seeds " + ",".join(map(str, seeds))}


def table_transfer(table: LabelTable, test_mask: np.ndarray, composition: bool, exclude_train: np.ndarray | None = None
                   ) -> dict[str, dict[str, float]]:
    """Distance(-composition) model trained on table rows not in ``test_mask`` (nor
    ``exclude_train``), evaluated on the ``test_mask`` rows at their own composition."""
    train = ~test_mask if exclude_train is None else (~test_mask & ~exclude_train)
    dm = DistanceModel(composition=composition).fit(table.select(train))
    te = table.select(test_mask)
    out = {}
    for bt in BOND_TYPES:
        s = te.of_type(bt)
        if len(s) == 0 or bt not in dm.fits:
            continue
        mu, sd = dm.fits[bt].predict(s.distance, al_fraction(s.nc))
        out[bt] = regression_metrics(s.y, mu, sd)
    return out


def composition_transfer_study(root: str | Path,
                               test_nc: str = "Zr45Cu45Al10") -> dict[str, dict[str, dict[str, float]]]:
    """What the label tables buy under composition shift: distance models evaluated on the
    odd-numbered runs of ``test_nc`` (whole runs never seen), trained four ways:
    composition-blind on Zr49Cu49Al2 only (what a run-21-only prior knows), with a composition
    term but ``test_nc`` left out entirely (composition transfer), and run-out with all
    compositions, without and with the composition term."""
    tb = read_all_tables(root)
    in_nc = tb.nc == test_nc
    test = in_nc & (tb.run % 2 == 1)
    return {
        "Zr49Cu49Al2 only, no composition term": table_transfer(tb, test, False, exclude_train=tb.nc != "Zr49Cu49Al2"),
        f"{test_nc} left out, composition term": table_transfer(tb, test, True, exclude_train=in_nc),
        "runs left out, distance only": table_transfer(tb, test, False),
        "runs left out, distance + composition": table_transfer(tb, test, True),
    }
