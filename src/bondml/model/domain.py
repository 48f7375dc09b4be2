"""Calibrated predictive std and an out-of-domain flag that means out of domain.

Per bond type a :class:`DomainInfo` learnt from held-out data (leave-deformation-group-out
inside the training run, :func:`learn_domain`) holds

* ``std_scale``: factor making the GP std calibrated on held-out deformation groups: 68.3 % of
  the held-out |error| / std fall below 1 (errors are heavier-tailed than a Gaussian, so this is
  set on the 1-sigma quantile itself rather than on the median);
  (``calibration = "scale"``), or the maximum-likelihood scale, the root mean square of
  |error| / std (``"ml-scale"``, larger than the quantile because the errors are heavy-tailed);
* ``variance_model`` (``calibration = "variance"``; empty otherwise): a log-linear variance model
  replacing the single scale, fitted by Gaussian likelihood on the held-out residuals,
  log var_cal = c0 + c1 log var_GP + c2 (d - d0) / d_scale (:func:`fit_variance_model`): shorter
  bonds have larger errors at equal GP variance, which one scale cannot express. Which of the
  three a type gets is :data:`CALIBRATION_BY_TYPE`;
* ``q95_factor``: the calibrated 95 % interval half-width in units of the calibrated std
  (prediction +- q95_factor * std holds 95.45 % of the held-out errors, each held-out group
  weighted equally): the errors are heavier-tailed than a Gaussian, so 2 std is not a 95 %
  interval (docs/accuracy.md);
* ``composition_inflation``: a further factor used when the model predicts a composition it was
  not trained on: the ratio of the distance-only error across compositions (leave-composition-out
  on the label-only tables) to the distance-only error inside one run (>= 1);
* ``sim_min``: threshold on the descriptor's similarity to the training bonds,
  s(x) = max_t (P pbar_x) . (P pbar_t), with P the projection on the ``n_components`` leading
  principal directions of the training descriptors (an exact cosine up to the part of the
  vectors outside that subspace, which lowers s: a descriptor unlike every training one has a
  small projection). A bond is out of domain when s is below the smallest s met on held-out
  deformation groups (a low quantile of it), or its length is outside the training range. The
  GP's own posterior-variance fraction rho is reported too but is not used: with zeta = 1 the
  kernel is linear in the descriptor and the span of a few hundred training vectors covers a
  crystalline fcc Cu bond (rho ~ 0.04) although no training bond resembles it (s ~ 0.8 against
  ~ 0.95 for a held-out glass bond);
* ``std_max``: calibrated std (eV, before the composition inflation) above which a bond is also
  flagged (a high quantile of the held-out calibrated std).

Energies in eV, distances in Angstrom.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..constants import DEFORMATION_GROUPS
from ..errors import ModelError
from .gpr import _derived

#: Quantile of the held-out similarity (low end) / calibrated std (high end) used as the
#: out-of-domain thresholds.
OOD_QUANTILE = 0.995
#: Principal directions of the training descriptors used for the similarity.
N_COMPONENTS = 48
#: Fraction of a Gaussian within 1 sigma.
ONE_SIGMA = 0.6826894921370859
#: Fraction of a Gaussian within 2 sigma (the coverage the 95 % interval half-width is set to).
TWO_SIGMA = 0.9544997361036416
#: Std calibrations: ``scale`` (68.3 % quantile of |e|/std), ``ml-scale`` (root mean square of
#: |e|/std, the Gaussian maximum-likelihood scale), ``variance`` (:func:`fit_variance_model`).
CALIBRATIONS = ("scale", "ml-scale", "variance")
#: The calibration of each bond type (others: ``scale``): where, nested under
#: leave-deformation-group-out on run 21, it brought both the 1- and the 2-sigma coverage closer
#: to 0.683 / 0.954 than the quantile scale without lowering the rank correlation of |error| with
#: the std (bench/uncertainty_calibration.py; docs/accuracy.md). The variance model: Zr-Zr, Zr-Cu
#: (Cu-Cu: coverage +0.01 and its 95 % interval worse; Zr-Al: rank 0.41 -> 0.27; Cu-Al: 1-sigma
#: 0.66 -> 0.75). The ML scale: Cu-Cu (Zr-Al: rank 0.406 -> 0.396; Cu-Al: 1-sigma 0.66 -> 0.74).
CALIBRATION_BY_TYPE: dict[str, str] = {"Zr-Zr": "variance", "Zr-Cu": "variance", "Cu-Cu": "ml-scale"}
#: Types whose calibrated std is the variance model.
VARIANCE_MODEL_TYPES: tuple[str, ...] = tuple(t for t, c in CALIBRATION_BY_TYPE.items() if c == "variance")


def deformation_group(sub_run: np.ndarray) -> np.ndarray:
    """Deformation family name of each sub-run number (ValueError for one outside 0..14)."""
    s = np.asarray(sub_run).astype(np.int64)
    out = np.empty(s.shape, dtype=object)
    for name, subs in DEFORMATION_GROUPS.items():
        out[np.isin(s, subs)] = name
    bad = np.flatnonzero(out == None)  # noqa: E711 - object array
    if bad.size:
        raise ValueError(f"sub-run {int(s[bad[0]])} is in no deformation group (0..14)")
    return out.astype(str)


@dataclass(frozen=True)
class DomainInfo:
    """Per-type calibration and domain thresholds (JSON-able through :meth:`to_dict`)."""

    std_scale: float
    sim_min: float
    std_max: float
    composition_inflation: float = 1.0
    train_composition: str = "Zr49Cu49Al2"
    protocol: str = "leave-deformation-group-out"
    n_components: int = N_COMPONENTS
    #: (c0, c1, c2, d0, d_scale) of :func:`fit_variance_model`; empty: std = raw std * std_scale
    variance_model: tuple[float, ...] = ()
    #: 95 % interval half-width / calibrated std (0: not known, models of earlier versions)
    q95_factor: float = 0.0
    #: how std_scale / variance_model were learnt (one of CALIBRATIONS)
    calibration: str = "scale"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["variance_model"] = list(self.variance_model)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DomainInfo:
        return cls(float(d["std_scale"]), float(d["sim_min"]), float(d["std_max"]),
                   float(d.get("composition_inflation", 1.0)), str(d.get("train_composition", "Zr49Cu49Al2")),
                   str(d.get("protocol", "leave-deformation-group-out")), int(d.get("n_components", N_COMPONENTS)),
                   tuple(float(x) for x in d.get("variance_model", ())), float(d.get("q95_factor", 0.0)),
                   str(d.get("calibration", "scale")))

    def calibrated_std(self, std_raw: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """Calibrated std (eV, before the composition inflation) from the GP's raw std (eV) and
        the bond length (Angstrom): the variance model when there is one, else ``std_raw * std_scale``."""
        if self.variance_model:
            return variance_model_std(self.variance_model, std_raw, distance)
        return np.asarray(std_raw, float) * self.std_scale


@dataclass(frozen=True)
class Assessment:
    """Calibrated std (eV), similarity to the training bonds, rho in [0, 1], and the
    out-of-domain flag of n bonds."""

    std: np.ndarray
    similarity: np.ndarray
    rho: np.ndarray
    out_of_domain: np.ndarray


def training_basis(est: Any, n_components: int = N_COMPONENTS) -> tuple[np.ndarray, np.ndarray]:
    """(V (p, k), Z (n_train, k)): an orthonormal basis of the leading k-dimensional principal
    subspace of the training descriptors ``est.pbar_train_`` and their projections.

    The similarity only depends on the subspace (dot products of projections), not on the basis
    chosen in it. V is computed once per estimator from the smaller Gram matrix (eigh) and kept as
    ``est.domain_basis_``, which the model saves with the estimator: deployment never repeats it.
    """
    cache = _derived(est)  # per estimator, cleared by its fit: never a previous fit's basis
    hit = cache.get("domain_basis")
    if hit is not None and hit[0].shape[1] == min(n_components, hit[0].shape[1]):
        return hit
    P = np.asarray(est.pbar_train_, float)
    k = int(min(n_components, *P.shape))
    V = getattr(est, "domain_basis_", None)
    if V is None or V.shape != (P.shape[1], k):
        if P.shape[0] >= P.shape[1]:  # p x p covariance
            w, U = np.linalg.eigh(P.T @ P)
            V = U[:, ::-1][:, :k]
        else:  # n x n Gram: right singular vectors V = P^T u / s
            w, U = np.linalg.eigh(P @ P.T)
            w, U = w[::-1][:k], U[:, ::-1][:, :k]
            V = (P.T @ U) / np.sqrt(np.maximum(w, 1e-300))
        V = np.ascontiguousarray(V)
        est.domain_basis_ = V
    V = np.asarray(V, float)
    Z = P @ V
    cache["domain_basis"] = (V, Z)
    return V, Z


#: Similarities within this of the threshold are recomputed in float64 (the float32 products
#: elsewhere are within ~1e-6 of it), and a bond is flagged below threshold + ``SIM_TOL``: the
#: flags are then those of a float64 evaluation or a superset of them (and of a float32 one).
SIM_RECHECK = 1e-4
SIM_TOL = 1e-6


def _basis32(est: Any, V: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 copies of (V, Z), cached next to the float64 basis."""
    hit = _derived(est).get("domain_basis32")
    if hit is not None and hit[0] is V:
        return hit[1], hit[2]
    out = (np.ascontiguousarray(V, dtype=np.float32), np.ascontiguousarray(Z.T, dtype=np.float32))
    _derived(est)["domain_basis32"] = (V, *out)
    return out


def _project(rows: np.ndarray, row_i: np.ndarray, row_j: np.ndarray, V: np.ndarray, chunk: int) -> np.ndarray:
    """pbar @ V (n, k) in the dtype of V: per bond row (row_i == row_j) gathered chunk by chunk,
    else per atom and averaged."""
    n = row_i.size
    if np.array_equal(row_i, row_j):
        zb = np.empty((n, V.shape[1]), V.dtype)
        for s in range(0, n, chunk):
            zb[s:s + chunk] = np.asarray(rows[row_i[s:s + chunk]]).astype(V.dtype, copy=False) @ V
        return zb
    u, inv = np.unique(np.concatenate([row_i, row_j]), return_inverse=True)
    R = np.asarray(rows[u]).astype(V.dtype, copy=False) @ V
    return 0.5 * (R[inv[:n]] + R[inv[n:]])


#: Training bonds tried first by a thresholded similarity (at most), and the float32 margin of
#: that first test: a bond whose similarity to one of them exceeds the threshold by
#: ``SIM_RECHECK`` + ``_COVER_MARGIN`` is in domain whatever the other training bonds give.
_COVER_MAX = 256
_COVER_MARGIN = 1e-5
#: Training bonds (at most) over which the cover of :func:`_cover` is chosen.
_COVER_UNIVERSE = 2048


def _cover(est: Any, Zt32: np.ndarray, threshold: float) -> np.ndarray:
    """Projections (k, c) of a few training bonds that between them have a similarity above
    ``threshold`` + ``SIM_RECHECK`` + ``_COVER_MARGIN`` with nearly every training bond (greedy
    set cover over up to ``_COVER_UNIVERSE`` of them, seeded; at most ``_COVER_MAX``, stopping at
    99.9 % covered). Bonds like the training ones then pass on these few products; cached per
    estimator (cleared by its fit) and threshold."""
    hit = _derived(est).get("domain_cover")
    if hit is not None and hit[0] == threshold and hit[1] is Zt32:
        return hit[2]
    n = Zt32.shape[1]
    rows = np.arange(n)
    if n > _COVER_UNIVERSE:
        rows = np.sort(np.random.default_rng(0).choice(n, _COVER_UNIVERSE, replace=False))
    Zu = np.ascontiguousarray(Zt32[:, rows].T)  # (u, k)
    lim = np.float32(threshold + SIM_RECHECK + _COVER_MARGIN)
    C = np.empty((rows.size, n), bool)  # C[i, j]: training bond j covers universe bond i
    for s in range(0, rows.size, 1024):
        np.greater_equal(Zu[s:s + 1024] @ Zt32, lim, out=C[s:s + 1024])
    gain = C.sum(axis=0, dtype=np.int64)
    covered = np.zeros(rows.size, bool)
    picks: list[int] = []
    while len(picks) < _COVER_MAX and covered.mean() < 0.999:
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            break
        picks.append(j)
        new = C[:, j] & ~covered
        covered |= new
        gain -= C[new].sum(axis=0, dtype=np.int64)
    Zc = np.ascontiguousarray(Zt32[:, picks])
    _derived(est)["domain_cover"] = (threshold, Zt32, Zc)
    return Zc


def similarity(est: Any, rows: np.ndarray, row_i: np.ndarray, row_j: np.ndarray,
               n_components: int = N_COMPONENTS, chunk: int = 8192, threshold: float | None = None,
               projected: np.ndarray | None = None, bound_ok: bool = False) -> np.ndarray:
    """s(x) = max over training bonds t of (P pbar_x) . (P pbar_t), shape (n,) (see module doc).

    Rows are projected once (the projection of pbar is the mean of the rows' projections).
    ``threshold`` given (the out-of-domain ``sim_min``): the products are float32 and the bonds
    within ``SIM_RECHECK`` of it are recomputed in float64, so that a comparison with the
    threshold is that of the float64 evaluation. ``projected`` (n, k): pbar @ V already made
    (float32, by the GP's fused product, :meth:`BondGPR._predict_fast`). ``bound_ok`` (with a
    threshold): a bond whose similarity to one of a few covering training bonds (:func:`_cover`)
    is already above threshold + ``SIM_RECHECK`` (+ float32 margin) gets that lower bound instead
    of the maximum over all training bonds: the same comparisons with the threshold, at a
    fraction of the cost (only the other bonds are compared with every training bond)."""
    V, Z = training_basis(est, n_components)
    n = row_i.size
    out = np.empty(n)
    if threshold is None and projected is None:  # float64 (calibration: values as before)
        zb = _project(rows, row_i, row_j, V, chunk)
        for s in range(0, n, chunk):
            out[s:s + chunk] = (zb[s:s + chunk] @ Z.T).max(axis=1)
        return out
    V32, Zt32 = _basis32(est, V, Z)
    zb = projected if projected is not None else _project(rows, row_i, row_j, V32, chunk)
    todo = np.arange(n)
    if threshold is not None and bound_ok and n:
        Zc = _cover(est, Zt32, float(threshold))
        if Zc.shape[1]:
            lim = threshold + SIM_RECHECK + _COVER_MARGIN
            for s in range(0, n, chunk):
                out[s:s + chunk] = (zb[s:s + chunk].astype(np.float32, copy=False) @ Zc).max(axis=1)
            todo = np.flatnonzero(out < lim)
    step = 512  # (step, n_train) float32 products per block: cache-sized
    for s in range(0, todo.size, step):
        t = todo[s:s + step]
        out[t] = (zb[t].astype(np.float32, copy=False) @ Zt32).max(axis=1)
    if threshold is not None:
        near = np.flatnonzero(np.abs(out - threshold) <= SIM_RECHECK)
        if near.size:
            z64 = _project(rows, row_i[near], row_j[near], V, chunk)
            out[near] = (z64 @ Z.T).max(axis=1)
    return out


def prior_variance(est: Any, rows: np.ndarray, row_i: np.ndarray, row_j: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """k(x, x) = (pbar . pbar)^zeta of each bond (pbar = (rows[i] + rows[j]) / 2), shape (n,)."""
    n = row_i.size
    out = np.empty(n)
    same = np.array_equal(row_i, row_j)
    for s in range(0, n, chunk):
        a = rows[row_i[s:s + chunk]]
        if same:
            out[s:s + chunk] = np.einsum("ij,ij->i", a, a)
        else:
            b = rows[row_j[s:s + chunk]]
            out[s:s + chunk] = 0.25 * (np.einsum("ij,ij->i", a, a) + np.einsum("ij,ij->i", b, b)
                                       + 2.0 * np.einsum("ij,ij->i", a, b))
    return np.power(np.clip(out, 0.0, None), float(est.zeta))


def posterior_fraction(est: Any, std_raw: np.ndarray, kxx: np.ndarray) -> np.ndarray:
    """rho = var / k(x, x) from the GP's uncalibrated std (eV): in [0, 1]."""
    var = np.asarray(std_raw, float) ** 2 / max(float(est.s2_), 1e-300)
    if getattr(est, "std_includes_noise", False):
        var = var - float(est.lam_)
    return np.clip(var / np.maximum(kxx, 1e-300), 0.0, 1.0)


def assess(info: DomainInfo, est: Any, rows: np.ndarray, row_i: np.ndarray, row_j: np.ndarray,
           distance: np.ndarray, std_raw: np.ndarray, composition: str, kxx: np.ndarray | None = None,
           projected: np.ndarray | None = None, similarity_values: bool = True) -> Assessment:
    """Calibrated std and out-of-domain flags of bonds given the GP's raw std (eV).

    The std is :meth:`DomainInfo.calibrated_std` (``std_raw * std_scale``, or the variance
    model), times ``composition_inflation`` when ``composition``
    differs from the training composition. Out of domain: length outside the training range,
    similarity < ``sim_min`` (+ ``SIM_TOL``), or the (uninflated) calibrated std > ``std_max``.
    ``kxx`` (k(x, x)) and ``projected`` (the rows' projection on the training basis) may come from
    the GP's own products (:meth:`BondGPR._predict_fast`); otherwise they are computed here.
    ``similarity_values`` False: the flags only are needed, and ``similarity`` holds, for bonds
    clearly above ``sim_min``, a lower bound above it (:func:`similarity` with ``bound_ok``; much
    cheaper, same flags).
    """
    ri, rj = np.asarray(row_i, np.int64), np.asarray(row_j, np.int64)
    if kxx is None:
        kxx = prior_variance(est, rows, ri, rj)
    rho = posterior_fraction(est, std_raw, kxx)
    sim = similarity(est, rows, ri, rj, info.n_components, threshold=info.sim_min, projected=projected,
                     bound_ok=not similarity_values)
    d = np.asarray(distance, float)
    sd = info.calibrated_std(std_raw, d)
    lo, hi = est.distance_range_
    ood = (d < lo) | (d > hi) | (sim < info.sim_min + SIM_TOL) | (sd > info.std_max)
    if composition != info.train_composition:
        sd = sd * info.composition_inflation
    return Assessment(sd, sim, rho, ood)


def _design(std_raw: np.ndarray, distance: np.ndarray, d0: float, d_scale: float) -> np.ndarray:
    ls = np.log(np.maximum(np.asarray(std_raw, float), 1e-12) ** 2)
    return np.column_stack([np.ones_like(ls), ls, (np.asarray(distance, float) - d0) / d_scale])


def fit_variance_model(error: np.ndarray, std_raw: np.ndarray, distance: np.ndarray) -> tuple[float, ...]:
    """Log-linear variance model of held-out errors, fitted by Gaussian likelihood.

    log var_cal = c0 + c1 log std_raw^2 + c2 (d - d0) / d_scale, with d0 and d_scale the mean and
    std of the held-out bond lengths; the negative log likelihood
    0.5 sum(log var + e^2 / var) is convex in (c0, c1, c2) (Newton's method).

    Parameters
    ----------
    error : (n,) array
        Held-out errors (eV; only e^2 enters).
    std_raw : (n,) array
        The GP's raw std of the same bonds (eV).
    distance : (n,) array
        Their bond lengths (Angstrom).

    Returns
    -------
    tuple
        (c0, c1, c2, d0, d_scale) for :func:`variance_model_std`.
    """
    e2 = np.asarray(error, float) ** 2
    if e2.size < 10:
        raise ModelError(f"only {e2.size} held-out bonds to fit the variance model")
    d = np.asarray(distance, float)
    d0, ds = float(d.mean()), float(max(d.std(), 1e-6))
    X = _design(std_raw, d, d0, ds)
    c = np.array([np.log(max(float(e2.mean()), 1e-300)), 0.0, 0.0])
    for _ in range(100):  # Newton on f(c) = 0.5 mean(Xc + e2 exp(-Xc)); Hessian 0.5 X^T diag(r) X / n
        r = e2 * np.exp(-(X @ c))
        g = 0.5 * X.T @ (1.0 - r) / e2.size
        H = 0.5 * (X * r[:, None]).T @ X / e2.size + 1e-9 * np.eye(3)
        step = np.linalg.solve(H, g)
        f0 = 0.5 * np.mean(X @ c + r)
        t = 1.0
        while t > 1e-6 and 0.5 * np.mean(X @ (c - t * step) + e2 * np.exp(-(X @ (c - t * step)))) > f0:
            t *= 0.5
        c = c - t * step
        if np.max(np.abs(t * step)) < 1e-10:
            break
    return (float(c[0]), float(c[1]), float(c[2]), d0, ds)


def variance_model_std(coef: tuple[float, ...], std_raw: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Calibrated std (eV) of the log-linear variance model ``coef`` (:func:`fit_variance_model`)."""
    c0, c1, c2, d0, ds = coef
    return np.sqrt(np.exp(_design(std_raw, distance, d0, ds) @ np.array([c0, c1, c2])))


def interval_factor(z: np.ndarray, groups: np.ndarray | None = None, coverage: float = TWO_SIGMA) -> float:
    """Quantile ``coverage`` of held-out |error| / calibrated std, each held-out group weighted
    equally (the half-width of the calibrated ``coverage`` interval in units of the std)."""
    z = np.asarray(z, float)
    if groups is None:
        return float(np.quantile(z, coverage))
    g = np.asarray(groups)
    _, inv, counts = np.unique(g, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inv]
    o = np.argsort(z)
    cum = np.cumsum(w[o]) / w.sum()
    return float(z[o][min(int(np.searchsorted(cum, coverage)), z.size - 1)])


def fit_calibration(abs_error: np.ndarray, std_raw: np.ndarray, distance: np.ndarray | None = None,
                    groups: np.ndarray | None = None, method: str = "scale"
                    ) -> tuple[float, tuple[float, ...], float]:
    """The std calibration learnt from held-out bonds: (std_scale, variance_model, q95_factor).

    ``method`` (:data:`CALIBRATIONS`): ``scale``: std_scale = the 68.3 % quantile of
    |error| / std_raw; ``ml-scale``: their root mean square; ``variance``: the coefficients of
    :func:`fit_variance_model` (needs ``distance``; std_scale is then the 68.3 % quantile, for
    the record). ``q95_factor`` is the group-weighted 95.45 % quantile of |error| / calibrated
    std (:func:`interval_factor`). Used by :func:`learn_domain` and by the nested benchmark
    (:func:`bondml.evaluate.shift.nested_calibrated_ldgo`).
    """
    if method not in CALIBRATIONS:
        raise ValueError(f"unknown std calibration {method!r}; use {', '.join(CALIBRATIONS)}")
    ae, raw = np.abs(np.asarray(abs_error, float)), np.asarray(std_raw, float)
    z = ae / np.maximum(raw, 1e-12)
    scale = float(np.sqrt(np.mean(z * z))) if method == "ml-scale" else float(np.quantile(z, ONE_SIGMA))
    coef: tuple[float, ...] = ()
    if method == "variance":
        if distance is None:
            raise ValueError("the variance model needs the held-out bond lengths")
        coef = fit_variance_model(ae, raw, distance)
        sd = variance_model_std(coef, raw, distance)
    else:
        sd = raw * scale
    return scale, coef, interval_factor(ae / np.maximum(sd, 1e-12), groups)


def learn_domain(held_out_z: np.ndarray, held_out_sim: np.ndarray, held_out_std: np.ndarray,
                 composition_inflation: float = 1.0, train_composition: str = "Zr49Cu49Al2",
                 quantile: float = OOD_QUANTILE, protocol: str = "leave-deformation-group-out",
                 held_out_distance: np.ndarray | None = None, held_out_group: np.ndarray | None = None,
                 bond_type: str | None = None) -> DomainInfo:
    """DomainInfo from held-out bonds: |error| / raw std (``held_out_z``), similarity, raw std (eV),
    and (optional) their lengths (Angstrom) and held-out group labels. ``bond_type`` picks the
    calibration (:data:`CALIBRATION_BY_TYPE`; the variance model only with the lengths and at
    least 10 bonds, else the quantile scale); the groups weight the 95 % factor equally."""
    z = np.asarray(held_out_z, float)
    if z.size < 5:
        raise ModelError(f"only {z.size} held-out bonds to calibrate the std")
    raw = np.asarray(held_out_std, float)
    method = CALIBRATION_BY_TYPE.get(str(bond_type), "scale")
    if method == "variance" and (held_out_distance is None or z.size < 10):
        method = "scale"
    scale, coef, q95 = fit_calibration(z * raw, raw, held_out_distance, held_out_group, method)
    sd = variance_model_std(coef, raw, held_out_distance) if coef and held_out_distance is not None else raw * scale
    return DomainInfo(scale, float(np.quantile(held_out_sim, 1.0 - quantile)), float(np.quantile(sd, quantile)),
                      float(composition_inflation), train_composition, protocol, N_COMPONENTS, coef, q95, method)


def held_out_folds(sub: Any, splits: list[tuple[np.ndarray, np.ndarray]], make: Any, prior: Any, seed: int = 0,
                   max_train: int | None = None) -> Iterator[tuple[Any, Any, np.ndarray, np.ndarray]]:
    """Fit on each fold's training rows and predict its held-out rows: yields ``(estimator,
    held-out dataset, |error| / std, std)`` per fold (std raw, eV). Folds with fewer than 2
    training or no held-out rows are skipped; a training fold above ``max_train`` is a seeded
    subset (fold k uses ``seed + k``). ``make()`` gives a fresh BondGPR, ``prior(ds)`` the prior
    mean (eV). The one held-out loop of both std calibrations (shift and cell-grouped CV)."""
    for k, (tr, te) in enumerate(splits):
        if tr.size < 2 or te.size == 0:
            continue
        if max_train and tr.size > max_train:
            tr = np.sort(np.random.default_rng(seed + k).choice(tr, max_train, replace=False))
        a, b = sub.select(tr), sub.select(te)
        est = make().fit(a.features(), a.y - prior(a))
        mu, sd = est.predict(b.features(), return_std=True)
        yield est, b, np.abs(mu + prior(b) - b.y) / np.maximum(sd, 1e-12), sd


def held_out_statistics(sub: Any, make: Any, prior: Any, seed: int = 0, max_train: int | None = None,
                        details: bool = False) -> tuple[Any, ...]:
    """|e| / std, similarity to the fold's training bonds and raw std of every held-out bond of one
    type's dataset ``sub``.

    Leave-deformation-group-out when ``sub`` spans at least two deformation groups of sub-runs
    0..14; otherwise 5 seeded folds of whole cells. ``make()`` gives a fresh BondGPR, ``prior(ds)``
    the prior mean (eV). With ``details`` a fifth item: ``{"held_out_distance": lengths (A),
    "held_out_group": held-out fold of each bond}``, the keyword arguments of :func:`learn_domain`.
    """
    try:
        g = deformation_group(sub.sub_run)
    except ValueError:
        g = np.zeros(len(sub), dtype=str)
    if np.unique(g).size >= 2:
        splits = [(np.flatnonzero(g != u), np.flatnonzero(g == u)) for u in np.unique(g)]
        protocol = "leave-deformation-group-out"
    else:
        cells = sub.groups("cell")
        u = np.random.default_rng(seed).permutation(np.unique(cells))
        splits = [(np.flatnonzero(~np.isin(cells, f)), np.flatnonzero(np.isin(cells, f)))
                  for f in np.array_split(u, min(5, u.size))]
        protocol = "cell-grouped 5-fold"
    z, rho, raw, dist, grp = [], [], [], [], []
    for k, (est, b, zk, sd) in enumerate(held_out_folds(sub, splits, make, prior, seed, max_train)):
        z.append(zk)
        rho.append(similarity(est, b.atom_soap, b.atom_i, b.atom_j))
        raw.append(sd)
        dist.append(np.asarray(b.distance, float))
        grp.append(np.full(zk.size, k))
    if not z:
        raise ModelError("no held-out fold to calibrate the std (one cell only?)")
    out = (np.concatenate(z), np.concatenate(rho), np.concatenate(raw), protocol)
    if details:
        return (*out, {"held_out_distance": np.concatenate(dist), "held_out_group": np.concatenate(grp)})
    return out


#: A cell (or frame) is out of domain when more than this fraction of its GP bonds are flagged:
#: a held-out run-21 shear cell has ~10-12 % of its labelled-window bonds flagged (the
#: thresholds sit at the 0.5 % tails of held-out deformation groups), a Zr-rich cell or one
#: compressed x0.8 ~30-35 %, fcc Cu 100 % (tests/test_evaluate_shift.py).
CELL_OOD_FRACTION = 0.2


def cell_out_of_domain(out_of_domain: np.ndarray, fallback: np.ndarray | None = None,
                       fraction: float = CELL_OOD_FRACTION) -> tuple[bool, float]:
    """(flag, fraction flagged) of one cell from the bond flags of ``BondModel.predict_bonds``
    (bonds predicted by the distance-only fallback are not counted)."""
    o = np.asarray(out_of_domain, bool)
    if fallback is not None:
        o = o[~np.asarray(fallback, bool)]
    f = float(o.mean()) if o.size else 0.0
    return f > fraction, f
