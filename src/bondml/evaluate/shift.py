"""Model selection and calibration under shift: descriptor x zeta x sigma x gamma x mean function
per bond type, scored by leave-deformation-group-out (LDGO) inside a run, with the label-only
tables (PBSSDB, DB4, DB8) for what no structure can tell (leave-composition-out, leave-run-out).

The sweep evaluates the exact GP of :class:`bondml.model.gpr.BondGPR` (same kernel, the same
regularisation ``gamma * std(y)``, the same profiled amplitude) from one Gram matrix of SOAP dot
products per (type, descriptor), so every (zeta, sigma, gamma, mean) point costs one Cholesky
factorisation per fold; ``test_shift`` checks it against BondGPR. Energies in eV, distances in
Angstrom. Every random draw takes a seed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular

from ..constants import BOND_TYPES
from ..model.distance import DistanceModel, al_fraction
from ..store.dataset import BondDataset
from .metrics import regression_metrics
from .splits import Split, leave_composition_out, leave_deformation_group_out, leave_one_group_out
from .tables import LabelTable, read_all_tables

#: Mean functions of the sweep: the paper's zero mean, a distance-only prior from the label
#: tables, and the same with the composition (Al fraction) term.
MEANS = ("zero", "distance", "distance+composition")
#: Fraction of a Gaussian within 1 sigma: the std scale puts this quantile of |error| / std at 1.
ONE_SIGMA = 0.6826894921370859


def default_sweep_grid() -> list[dict[str, float]]:
    """zeta x sigma x gamma of the sweep (18 points)."""
    return [{"zeta": z, "sigma": s, "gamma": g}
            for z, s, g in itertools.product((1.0, 2.0), (0.25, 0.5, 1.0), (0.005, 0.01, 0.04))]


# ----------------------------------------------------------------------------- exact GP on a Gram
@dataclass
class TypeSample:
    """One bond type's seeded sample of a dataset, with its SOAP Gram matrix (n, n)."""

    bond_type: str
    data: BondDataset
    gram: np.ndarray  # pbar_a . pbar_b (atom) or q_a . q_b (bond)
    descriptor: str

    @classmethod
    def of(cls, ds: BondDataset, bt: str, max_bonds: int | None = 1600, seed: int = 0) -> TypeSample:
        sub = ds.of_type(bt)
        if max_bonds and len(sub) > max_bonds:
            sub = sub.select(np.sort(np.random.default_rng(seed).choice(len(sub), max_bonds, replace=False)))
        pbar = 0.5 * (sub.atom_soap[sub.atom_i] + sub.atom_soap[sub.atom_j])
        return cls(bt, sub, pbar @ pbar.T, ds.settings.kind)


def gp_fold(sample: TypeSample, train: np.ndarray, test: np.ndarray, y: np.ndarray, sigma: float, zeta: float,
            gamma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BondGPR (mean "zero", std without noise) fitted on ``train`` rows of ``y``, predicting
    ``test``: (mean, std, rho) with rho = posterior variance / prior variance in [0, 1] (the
    kernel distance of each test bond to the training bonds)."""
    d = sample.data.distance
    G = sample.gram
    kd = lambda a, b: np.exp(-(d[a][:, None] - d[b][None, :]) ** 2 / (2 * sigma * sigma))  # noqa: E731
    K = kd(train, train) * G[np.ix_(train, train)] ** zeta
    yt = y[train]
    lam = gamma * max(float(np.std(yt)), 1e-12)
    K[np.diag_indices_from(K)] += lam
    L = cho_factor(K, lower=True, check_finite=False)
    alpha = cho_solve(L, yt, check_finite=False)
    s2 = max(float(yt @ alpha) / yt.size, 1e-300)
    ks = kd(test, train) * G[np.ix_(test, train)] ** zeta
    mu = ks @ alpha
    v = solve_triangular(L[0], ks.T, lower=True, check_finite=False)
    kss = np.diag(G)[test] ** zeta
    var = np.clip(kss - np.einsum("ij,ij->j", v, v), 0.0, None)
    return mu, np.sqrt(var * s2), var / np.maximum(kss, 1e-300)


# ------------------------------------------------------------------------------------ priors
def table_priors(root: str | Path, exclude_runs: Iterable[tuple[str, int]] = ()) -> dict[str, DistanceModel]:
    """Distance-only and distance+composition models from the label tables without ``exclude_runs``."""
    t = read_all_tables(root)
    keep = np.ones(len(t), bool)
    for nc, run in exclude_runs:
        keep &= ~((t.nc == nc) & (t.run == int(run)))
    t = t.select(keep)
    return {"distance": DistanceModel(composition=False).fit(t),
            "distance+composition": DistanceModel(composition=True).fit(t)}


def prior_values(priors: dict[str, DistanceModel], mean: str, bt: str, ds: BondDataset) -> np.ndarray:
    """Prior mean (eV) of the bonds of ``ds`` (all of type ``bt``) for a mean-function name."""
    if mean == "zero" or bt not in priors[mean].fits:
        return np.zeros(len(ds))
    return priors[mean].fits[bt].predict(ds.distance, al_fraction(ds.nc))[0]


# ------------------------------------------------------------------------------------- sweep
@dataclass
class SweepRow:
    bond_type: str
    descriptor: str
    mean: str
    params: dict[str, float]
    protocol: str
    metrics: dict[str, float]
    z: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))  # |e| / std per held-out bond
    rho: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    err: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    std: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


def protocol_splits(sample: TypeSample, protocol: str) -> list[Split]:
    """Splits of a sample: ``ldgo`` (leave-deformation-group-out) or ``loco`` (leave-one-cell-out)."""
    if protocol == "ldgo":
        return list(leave_deformation_group_out(sample.data.sub_run, sample.data.groups("cell")))
    if protocol == "loco":
        return list(leave_one_group_out(sample.data.groups("cell"), "cell"))
    raise ValueError(f"unknown protocol {protocol!r}; use ldgo or loco")


def evaluate_config(sample: TypeSample, params: dict[str, float], mean: str, priors: dict[str, DistanceModel],
                    protocol: str = "ldgo", max_train: int | None = 1200, seed: int = 0) -> SweepRow:
    """Pooled held-out metrics of one configuration under ``protocol`` (training draws seeded)."""
    prior = prior_values(priors, mean, sample.bond_type, sample.data) if mean != "zero" else np.zeros(len(sample.data))
    y = sample.data.y
    resid = y - prior
    n = len(y)
    pred = np.full(n, np.nan)
    std = np.full(n, np.nan)
    rho = np.full(n, np.nan)
    for k, sp in enumerate(protocol_splits(sample, protocol)):
        tr = sp.train
        if max_train and tr.size > max_train:
            tr = np.sort(np.random.default_rng(seed + k).choice(tr, max_train, replace=False))
        mu, sd, r = gp_fold(sample, tr, sp.test, resid, params["sigma"], params["zeta"], params["gamma"])
        pred[sp.test], std[sp.test], rho[sp.test] = mu + prior[sp.test], sd, r
    ok = np.isfinite(pred)
    e = pred[ok] - y[ok]
    m = regression_metrics(y[ok], pred[ok], std[ok])
    return SweepRow(sample.bond_type, sample.descriptor, mean, dict(params), protocol, m,
                    np.abs(e) / np.maximum(std[ok], 1e-12), rho[ok], e, std[ok])


def sweep_type(samples: dict[str, TypeSample], priors: dict[str, DistanceModel],
               grid: list[dict[str, float]] | None = None, means: Iterable[str] = MEANS, protocol: str = "ldgo",
               max_train: int | None = 1200, seed: int = 0) -> list[SweepRow]:
    """Every descriptor (key of ``samples``) x grid point x mean function of one type."""
    rows = []
    for s in samples.values():
        for p in grid or default_sweep_grid():
            for mean in means:
                rows.append(evaluate_config(s, p, mean, priors, protocol, max_train, seed))
    return rows


def best(rows: list[SweepRow], key: str = "rmse") -> SweepRow:
    return min(rows, key=lambda r: r.metrics[key])


def std_scale(row: SweepRow) -> float:
    """Factor making the std calibrated on held-out data: the 68.3 % quantile of |e| / std."""
    return float(np.quantile(row.z, ONE_SIGMA)) if row.z.size else 1.0


# ---------------------------------------------------------------------- label-table protocols
def table_protocol(table: LabelTable, protocol: str, composition: bool, seed: int = 0,
                   n_run_folds: int = 5) -> dict[str, dict[str, float]]:
    """Distance-only (``composition`` False) or distance+composition model of the label tables under
    ``leave-composition-out`` or ``leave-run-out`` (``n_run_folds`` seeded folds of whole runs),
    pooled per type: RMSE, bias, ... of every held-out bond at its own composition."""
    if protocol == "leave-composition-out":
        splits = list(leave_composition_out(table.nc))
    elif protocol == "leave-run-out":
        from .splits import leave_run_out

        splits = list(leave_run_out(table.groups("run"), n_run_folds, seed))
    else:
        raise ValueError(f"unknown table protocol {protocol!r}")
    err: dict[str, list[np.ndarray]] = {}
    ys: dict[str, list[np.ndarray]] = {}
    for sp in splits:
        dm = DistanceModel(composition=composition).fit(table.select(sp.train))
        te = table.select(sp.test)
        for bt in BOND_TYPES:
            s = te.of_type(bt)
            if len(s) == 0 or bt not in dm.fits:
                continue
            mu = dm.fits[bt].predict(s.distance, al_fraction(s.nc))[0]
            err.setdefault(bt, []).append(mu - s.y)
            ys.setdefault(bt, []).append(s.y)
    out = {}
    for bt in err:
        y = np.concatenate(ys[bt])
        out[bt] = regression_metrics(y, y + np.concatenate(err[bt]))
    return out


def table_lco_by_composition(table: LabelTable, composition: bool = False) -> dict[str, dict[str, dict[str, float]]]:
    """Leave-composition-out on the label tables, metrics per held-out composition and type."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for sp in leave_composition_out(table.nc):
        dm = DistanceModel(composition=composition).fit(table.select(sp.train))
        te = table.select(sp.test)
        nc = sp.held_out[0]
        for bt in BOND_TYPES:
            s = te.of_type(bt)
            if len(s) and bt in dm.fits:
                pred = dm.fits[bt].predict(s.distance, al_fraction(s.nc))[0]
                out.setdefault(nc, {})[bt] = regression_metrics(s.y, pred)
    return out


def composition_inflation(lco_by_nc: dict[str, dict[str, dict[str, float]]], in_run_rmse: dict[str, float],
                          min_bonds: int = 100) -> dict[str, float]:
    """Per type, the largest ratio over held-out compositions (with >= ``min_bonds`` bonds) of the
    distance-only error across compositions (leave-composition-out on the tables) to the
    distance-only error inside one run (``in_run_rmse``, leave-one-cell-out in the run): >= 1."""
    out = {}
    for bt, base in in_run_rmse.items():
        r = [m[bt]["rmse"] / base for m in lco_by_nc.values() if bt in m and m[bt]["n"] >= min_bonds and base > 0]
        if r:
            out[bt] = max(1.0, float(max(r)))
    return out


def in_run_distance_rmse(ds: BondDataset, types: Iterable[str], protocol: str = "loco") -> dict[str, float]:
    """Distance-only P-spline fitted inside the run, RMSE on held-out cells per type:
    ``loco`` (each cell left out: the error of the distance model inside one run) or ``ldgo``."""
    from ..model.distance import fit_distance_type

    out = {}
    for bt in types:
        sub = ds.of_type(bt)
        if protocol == "ldgo":
            splits = list(leave_deformation_group_out(sub.sub_run))
        else:
            splits = list(leave_one_group_out(sub.groups("cell"), "cell"))
        e = []
        for sp in splits:
            tr = sub.select(sp.train)
            if len(tr) < 10:
                continue
            f = fit_distance_type(tr.distance, tr.y, al_fraction(tr.nc), composition=False)
            te = sub.select(sp.test)
            e.append(f.predict(te.distance, al_fraction(te.nc))[0] - te.y)
        if e:
            out[bt] = float(np.sqrt(np.mean(np.concatenate(e) ** 2)))
    return out


def summarise(rows: list[SweepRow]) -> list[dict[str, Any]]:
    """JSON-able rows (metrics and settings; no per-bond arrays)."""
    return [{"bond_type": r.bond_type, "descriptor": r.descriptor, "mean": r.mean, **r.params,
             "protocol": r.protocol, **{k: r.metrics.get(k) for k in ("n", "rmse", "bias", "cov1", "cov2")},
             "std_scale": std_scale(r)} for r in rows]


# ------------------------------------------------------------------------- the default model
PRESETS = ("default", "paper", "tuned")


def mean_function(ds: BondDataset, tables_root: str | Path | None = None, preset: str = "default",
                  prior: bool | None = None) -> tuple[DistanceModel | None, Any]:
    """The distance model :func:`train_model` fits for ``ds`` (and the label table it was fitted on).

    The label tables under ``tables_root`` (default: the shipped ones; ``""``: none) without the
    runs of ``ds``; ``default`` preset: the distance prior on DEFAULT_PRIOR_TYPES with the
    composition term on DEFAULT_COMPOSITION_TYPES (``prior=True``: on every type); other presets:
    distance + composition on every type (the GP uses it only when ``prior`` is true). ``(None,
    None)`` for a chemistry other than the study's or without tables. The pipeline's validate
    stage uses it so that it validates the model the train stage fits.

    Returns
    -------
    (DistanceModel or None, LabelTable or None)
    """
    from ..chemistry import Chemistry
    from ..constants import DEFAULT_COMPOSITION_TYPES, DEFAULT_PRIOR_TYPES
    from ..data import label_tables_root

    if not Chemistry.from_species_z(ds.settings.species_z).is_study or tables_root == "":
        return None, None
    runs = sorted({(str(a), int(b)) for a, b in zip(ds.nc, ds.run, strict=True)})
    table = read_all_tables(tables_root or label_tables_root())
    keep = np.ones(len(table), bool)
    for nc, run in runs:
        keep &= ~((table.nc == nc) & (table.run == run))
    table = table.select(keep)
    if preset == "default":
        prior_types = DEFAULT_PRIOR_TYPES if prior is None else None
        return DistanceModel(composition=DEFAULT_COMPOSITION_TYPES, prior_types=prior_types).fit(table), table
    return DistanceModel(composition=True).fit(table), table


def train_model(ds: BondDataset, tables_root: str | Path | None = None, preset: str = "default",
                hyperparameters: dict[str, dict[str, float]] | None = None, prior: bool | None = None,
                max_train_per_type: int | None = None, seed: int = 0, min_bonds: int = 30,
                searched: dict[str, dict[str, float]] | None = None) -> Any:
    """Train a :class:`~bondml.model.bondmodel.BondModel` with a preset: the one trainer behind
    ``bondml train``, the pipeline's train stage and :class:`bondml.BondModel`.

    ``default``: the choice of the shift protocols (constants.DEFAULT_HYPERPARAMETERS for the
    bond-centred descriptor, ATOM_SHIFT_HYPERPARAMETERS for the atom-centred one), the distance
    prior on DEFAULT_PRIOR_TYPES with the composition term on DEFAULT_COMPOSITION_TYPES, the std
    calibrated by leave-deformation-group-out and inflated at other compositions by the
    label-table ratio (:func:`composition_inflation`), out-of-domain thresholds learnt on held-out
    groups. ``paper``: the paper's hyper-parameters, zero mean, std calibrated by cell-grouped CV
    (the behaviour of earlier versions). ``tuned``: the run-21 cell-CV choice (needs ``prior``).
    Hyper-parameters are resolved by :func:`bondml.model.presets.resolve_hyperparameters`
    (preset, then ``searched``, then ``hyperparameters``, key by key). The label tables under
    ``tables_root`` (default: the shipped ones; ``False``-like empty string: none) never contain
    the runs of ``ds``. ``prior`` overrides the preset's mean function (True: distance prior on
    every type). For a chemistry other than the study's the tables do not apply: no prior, no
    fallback, no composition inflation.
    """
    from ..errors import ConfigError
    from ..model.bondmodel import BondModel
    from ..model.presets import resolve_hyperparameters

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; use {', '.join(PRESETS)}")
    use_prior = (preset == "default") if prior is None else bool(prior)
    hp = resolve_hyperparameters(preset, searched, hyperparameters, use_prior=use_prior, kind=ds.settings.kind)
    dm, table = mean_function(ds, tables_root, preset, prior)
    infl = {}
    calibration = calibration_of_preset(preset)
    if calibration == "shift" and table is not None:
        counts = ds.counts()
        types = [t for t in BOND_TYPES if counts.get(t, 0) >= min_bonds]
        if types:
            infl = composition_inflation(table_lco_by_composition(table), in_run_distance_rmse(ds, types))
    model = BondModel.fit(ds, hyperparameters=hp or None, distance_model=dm, use_prior=use_prior and dm is not None,
                          max_train_per_type=max_train_per_type, seed=seed, min_bonds=min_bonds,
                          calibration=calibration, composition_inflation=infl)
    model.lineage["preset"] = preset
    model.lineage["composition_inflation"] = infl
    return model


def calibration_of_preset(preset: str) -> str:
    """How :func:`train_model` calibrates the std of a preset's model (``BondModel.fit``'s
    ``calibration``): ``shift`` for ``default`` (each type's method of
    :data:`bondml.model.domain.CALIBRATION_BY_TYPE` on held-out deformation groups), ``cell`` for
    ``paper`` and ``tuned`` (one factor from a cell-grouped CV). Validation calibrates its folds
    the same way (:func:`validate_preset`)."""
    return "shift" if preset == "default" else "cell"


def describe_mean(dm: DistanceModel | None) -> str:
    """Plain name of a model's mean function (reports)."""
    if dm is None:
        return "zero"
    if dm.composition is False:
        return "distance prior"
    if isinstance(dm.composition, tuple):
        return f"distance prior (composition term: {', '.join(dm.composition)})"
    return "distance + composition prior"


def validate_preset(ds: BondDataset, protocol: str = "ldgo", preset: str = "default",
                    tables_root: str | Path | None = None, hyperparameters: dict[str, dict[str, float]] | None = None,
                    prior: bool | None = None, level: str = "cell", n_splits: int = 5, max_train: int | None = None,
                    seed: int = 0, map_fn: Any = map, types: list[str] | None = None
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Grouped validation of the model :func:`train_model` fits with the same arguments: the one
    library function behind the pipeline's validate stage and ``bondml evaluate --preset``.

    Same hyper-parameters (:func:`bondml.model.presets.resolve_hyperparameters`), same mean
    function (:func:`mean_function`), and each fold's std calibrated on that fold's training
    bonds exactly as the trainer calibrates the model it ships (:func:`calibration_of_preset`):
    for ``default``, each type's own calibration (variance model, ML scale or quantile scale)
    and its ``q95_factor``, learnt on an inner leave-deformation-group-out of the fold's
    training cells, so the reported coverage is that of the std users get. (The composition
    inflation, which applies only at another composition, is not applied.)

    Parameters
    ----------
    ds : BondDataset
        Labelled bonds (-ICOHP in eV).
    protocol, level, n_splits, max_train, seed, map_fn, types
        As :func:`bondml.evaluate.tune.grouped_validation` (``ldgo``: leave-deformation-group-out).
    preset, tables_root, hyperparameters, prior
        As :func:`train_model`.

    Returns
    -------
    (dict, dict)
        {bond type: :class:`bondml.evaluate.tune.CVResult`} and a description
        ``{"preset", "descriptor", "mean", "calibration", "calibration_by_type", "hyperparameters",
        "distance_model"}`` (the prior mean's DistanceModel or None).
    """
    from ..errors import ConfigError
    from ..model.presets import resolve_hyperparameters
    from .tune import grouped_validation

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; use {', '.join(PRESETS)}")
    use_prior = (preset == "default") if prior is None else bool(prior)
    dm = mean_function(ds, tables_root, preset, prior)[0] if use_prior else None
    hp = resolve_hyperparameters(preset, hyperparameters, use_prior=dm is not None, kind=ds.settings.kind)
    calibration = calibration_of_preset(preset)
    res = grouped_validation(ds, protocol, level, n_splits, params=hp, prior=dm, max_train=max_train, seed=seed,
                             types=types, map_fn=map_fn, calibration=calibration)
    return res, {"preset": preset, "descriptor": ds.settings.kind, "mean": describe_mean(dm),
                 "calibration": calibration, "calibration_by_type": {t: r.calibration for t, r in res.items()},
                 "hyperparameters": hp, "distance_model": dm}


#: zeta 2 must beat zeta 1 by this fraction of the LDGO RMSE to be chosen: inside one run it
#: cannot show what it costs on a new composition (DOMAIN.md: the most harmful choice there).
ZETA2_MARGIN = 0.05
#: a prior mean must beat the zero mean by this fraction to be kept.
PRIOR_MARGIN = 0.0


def choose(rows: list[dict[str, Any]], bond_type: str, descriptor: str,
           composition_types: Iterable[str] = ()) -> dict[str, Any]:
    """The configuration of one type and descriptor chosen from summarised LDGO sweep rows:
    lowest RMSE, zeta 2 only when it gains more than ZETA2_MARGIN, the composition term only for
    ``composition_types`` (the label tables decide it under leave-composition-out)."""
    comp = set(composition_types)
    cand = [r for r in rows if r["bond_type"] == bond_type and r["descriptor"] == descriptor
            and (r["mean"] != "distance+composition" or bond_type in comp)
            and (r["mean"] != "distance" or bond_type not in comp)]
    if not cand:
        raise ValueError(f"no sweep rows for {bond_type} / {descriptor}")
    b1 = min((r for r in cand if r["zeta"] == 1.0), key=lambda r: r["rmse"])
    b2 = min((r for r in cand if r["zeta"] != 1.0), key=lambda r: r["rmse"], default=None)
    pick = b2 if b2 is not None and b2["rmse"] < (1 - ZETA2_MARGIN) * b1["rmse"] else b1
    return pick


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (no ties correction needed for continuous data)."""
    from scipy.stats import spearmanr

    if len(a) < 3:
        return float("nan")
    return float(spearmanr(a, b).statistic)


#: Std calibrations of :func:`nested_calibrated_ldgo`: ``scale`` (one factor per type, the
#: 68.3 % quantile of |e|/std), ``ml-scale`` (their root mean square), ``variance`` (the
#: log-linear variance model), on every type; ``default``: what BondModel does
#: (:data:`bondml.model.domain.CALIBRATION_BY_TYPE`, else the scale).
CALIBRATIONS = ("default", "scale", "ml-scale", "variance")


def nested_calibrated_ldgo(sample: TypeSample, params: dict[str, float], mean: str,
                           priors: dict[str, DistanceModel], max_train: int | None = 1200, seed: int = 0,
                           protocol: str = "ldgo", calibration: str = "default") -> dict[str, Any]:
    """``protocol`` (LDGO by default, or ``loco``) with the std calibration learnt without the
    held-out bonds: for each outer split, an inner LDGO on the training bonds gives held-out
    residuals, on which :func:`bondml.model.domain.fit_calibration` learns the ``calibration``
    (see :data:`CALIBRATIONS`) and the 95 % interval factor, applied to the held-out bonds.
    Returns pooled metrics (RMSE, bias, cov1, cov2 of the calibrated std, Spearman correlation of
    |error| with the std, mean q95 factor and cov95: the fraction within q95 * std) and the
    held-out errors, stds and rho."""
    from ..model.domain import CALIBRATION_BY_TYPE, fit_calibration, variance_model_std
    from .splits import deformation_group

    if calibration not in CALIBRATIONS:
        raise ValueError(f"unknown calibration {calibration!r}; use {', '.join(CALIBRATIONS)}")
    method = CALIBRATION_BY_TYPE.get(sample.bond_type, "scale") if calibration == "default" else calibration
    y = sample.data.y
    dist = sample.data.distance
    prior = prior_values(priors, mean, sample.bond_type, sample.data)
    resid = y - prior
    outer = protocol_splits(sample, protocol)
    e_all, s_all, r_all, q_all = [], [], [], []
    for k, sp in enumerate(outer):
        ie, isd, ig = [], [], []
        tr_sub = sp.train
        g = deformation_group(sample.data.sub_run[tr_sub])
        for u in np.unique(g):
            itr, ite = tr_sub[g != u], tr_sub[g == u]
            if max_train and itr.size > max_train:
                itr = np.sort(np.random.default_rng(seed + 100 + k).choice(itr, max_train, replace=False))
            mu, sd, _ = gp_fold(sample, itr, ite, resid, params["sigma"], params["zeta"], params["gamma"])
            ie.append(mu - resid[ite])
            isd.append(sd)
            ig.append(ite)
        tr = sp.train
        if max_train and tr.size > max_train:
            tr = np.sort(np.random.default_rng(seed + k).choice(tr, max_train, replace=False))
        mu, sd, r = gp_fold(sample, tr, sp.test, resid, params["sigma"], params["zeta"], params["gamma"])
        if ie:
            rows = np.concatenate(ig)
            groups = np.concatenate([np.full(x.size, j) for j, x in enumerate(ig)])
            scale, coef, q95 = fit_calibration(np.concatenate(ie), np.concatenate(isd), dist[rows], groups,
                                               method if method != "variance" or rows.size >= 10 else "scale")
        else:
            scale, coef, q95 = 1.0, (), float("nan")
        e_all.append(mu - resid[sp.test])
        s_all.append(variance_model_std(coef, sd, dist[sp.test]) if coef else sd * scale)
        r_all.append(r)
        q_all.append(np.full(sp.test.size, q95))
    e, s, r, q = np.concatenate(e_all), np.concatenate(s_all), np.concatenate(r_all), np.concatenate(q_all)
    m = {"n": int(e.size), "rmse": float(np.sqrt(np.mean(e ** 2))), "bias": float(np.mean(e)),
         "cov1": float(np.mean(np.abs(e) <= s)), "cov2": float(np.mean(np.abs(e) <= 2 * s)),
         "spearman": spearman(np.abs(e), s), "q95": float(np.mean(q)), "cov95": float(np.mean(np.abs(e) <= q * s)),
         "calibration": method}
    return {"metrics": m, "err": e, "std": s, "rho": r}
