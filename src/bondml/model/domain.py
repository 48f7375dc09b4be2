"""Calibrated predictive std and an out-of-domain flag that means out of domain.

Per bond type a :class:`DomainInfo` learnt from held-out data (leave-deformation-group-out
inside the training run, :func:`learn_domain`) holds

* ``std_scale``: factor making the GP std calibrated on held-out deformation groups: 68.3 % of
  the held-out |error| / std fall below 1 (errors are heavier-tailed than a Gaussian, so this is
  set on the 1-sigma quantile itself rather than on the median);
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

#: Quantile of the held-out similarity (low end) / calibrated std (high end) used as the
#: out-of-domain thresholds.
OOD_QUANTILE = 0.995
#: Principal directions of the training descriptors used for the similarity.
N_COMPONENTS = 48
#: Fraction of a Gaussian within 1 sigma.
ONE_SIGMA = 0.6826894921370859


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DomainInfo:
        return cls(float(d["std_scale"]), float(d["sim_min"]), float(d["std_max"]),
                   float(d.get("composition_inflation", 1.0)), str(d.get("train_composition", "Zr49Cu49Al2")),
                   str(d.get("protocol", "leave-deformation-group-out")), int(d.get("n_components", N_COMPONENTS)))


@dataclass(frozen=True)
class Assessment:
    """Calibrated std (eV), similarity to the training bonds, rho in [0, 1], and the
    out-of-domain flag of n bonds."""

    std: np.ndarray
    similarity: np.ndarray
    rho: np.ndarray
    out_of_domain: np.ndarray


_BASIS_CACHE: dict[int, tuple[Any, np.ndarray, np.ndarray]] = {}


def training_basis(est: Any, n_components: int = N_COMPONENTS) -> tuple[np.ndarray, np.ndarray]:
    """(V (p, k), Z (n_train, k)): an orthonormal basis of the leading k-dimensional principal
    subspace of the training descriptors ``est.pbar_train_`` and their projections.

    The similarity only depends on the subspace (dot products of projections), not on the basis
    chosen in it. V is computed once per estimator from the smaller Gram matrix (eigh) and kept as
    ``est.domain_basis_``, which the model saves with the estimator: deployment never repeats it.
    """
    key = id(est)
    hit = _BASIS_CACHE.get(key)
    if hit is not None and hit[0] is est and hit[1].shape[1] == min(n_components, hit[1].shape[1]):
        return hit[1], hit[2]
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
    _BASIS_CACHE[key] = (est, V, Z)
    return V, Z


#: Similarities within this of the threshold are recomputed in float64 (the float32 products
#: elsewhere are within ~1e-6 of it), and a bond is flagged below threshold + ``SIM_TOL``: the
#: flags are then those of a float64 evaluation or a superset of them (and of a float32 one).
SIM_RECHECK = 1e-4
SIM_TOL = 1e-6


def _basis32(est: Any, V: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 copies of (V, Z), cached next to the float64 basis."""
    hit = _BASIS32.get(id(est))
    if hit is not None and hit[0] is V:
        return hit[1], hit[2]
    out = (np.ascontiguousarray(V, dtype=np.float32), np.ascontiguousarray(Z.T, dtype=np.float32))
    _BASIS32[id(est)] = (V, *out)
    return out


_BASIS32: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


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


def similarity(est: Any, rows: np.ndarray, row_i: np.ndarray, row_j: np.ndarray,
               n_components: int = N_COMPONENTS, chunk: int = 8192, threshold: float | None = None,
               projected: np.ndarray | None = None) -> np.ndarray:
    """s(x) = max over training bonds t of (P pbar_x) . (P pbar_t), shape (n,) (see module doc).

    Rows are projected once (the projection of pbar is the mean of the rows' projections).
    ``threshold`` given (the out-of-domain ``sim_min``): the products are float32 and the bonds
    within ``SIM_RECHECK`` of it are recomputed in float64, so that a comparison with the
    threshold is that of the float64 evaluation. ``projected`` (n, k): pbar @ V already made
    (float32, by the GP's fused product, :meth:`BondGPR._predict_fast`)."""
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
    for s in range(0, n, chunk):
        out[s:s + chunk] = (zb[s:s + chunk].astype(np.float32, copy=False) @ Zt32).max(axis=1)
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
           projected: np.ndarray | None = None) -> Assessment:
    """Calibrated std and out-of-domain flags of bonds given the GP's raw std (eV).

    The std is ``std_raw * std_scale``, times ``composition_inflation`` when ``composition``
    differs from the training composition. Out of domain: length outside the training range,
    similarity < ``sim_min`` (+ ``SIM_TOL``), or the (uninflated) calibrated std > ``std_max``.
    ``kxx`` (k(x, x)) and ``projected`` (the rows' projection on the training basis) may come from
    the GP's own products (:meth:`BondGPR._predict_fast`); otherwise they are computed here.
    """
    ri, rj = np.asarray(row_i, np.int64), np.asarray(row_j, np.int64)
    if kxx is None:
        kxx = prior_variance(est, rows, ri, rj)
    rho = posterior_fraction(est, std_raw, kxx)
    sim = similarity(est, rows, ri, rj, info.n_components, threshold=info.sim_min, projected=projected)
    sd = np.asarray(std_raw, float) * info.std_scale
    lo, hi = est.distance_range_
    d = np.asarray(distance, float)
    ood = (d < lo) | (d > hi) | (sim < info.sim_min + SIM_TOL) | (sd > info.std_max)
    if composition != info.train_composition:
        sd = sd * info.composition_inflation
    return Assessment(sd, sim, rho, ood)


def learn_domain(held_out_z: np.ndarray, held_out_sim: np.ndarray, held_out_std: np.ndarray,
                 composition_inflation: float = 1.0, train_composition: str = "Zr49Cu49Al2",
                 quantile: float = OOD_QUANTILE, protocol: str = "leave-deformation-group-out") -> DomainInfo:
    """DomainInfo from held-out bonds: |error| / raw std (``held_out_z``), similarity, raw std (eV)."""
    z = np.asarray(held_out_z, float)
    if z.size < 5:
        raise ModelError(f"only {z.size} held-out bonds to calibrate the std")
    scale = float(np.quantile(z, ONE_SIGMA))
    return DomainInfo(scale, float(np.quantile(held_out_sim, 1.0 - quantile)),
                      float(np.quantile(np.asarray(held_out_std, float) * scale, quantile)),
                      float(composition_inflation), train_composition, protocol)


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


def held_out_statistics(sub: Any, make: Any, prior: Any, seed: int = 0, max_train: int | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """|e| / std, similarity to the fold's training bonds and raw std of every held-out bond of one
    type's dataset ``sub``.

    Leave-deformation-group-out when ``sub`` spans at least two deformation groups of sub-runs
    0..14; otherwise 5 seeded folds of whole cells. ``make()`` gives a fresh BondGPR, ``prior(ds)``
    the prior mean (eV).
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
    z, rho, raw = [], [], []
    for est, b, zk, sd in held_out_folds(sub, splits, make, prior, seed, max_train):
        z.append(zk)
        rho.append(similarity(est, b.atom_soap, b.atom_i, b.atom_j))
        raw.append(sd)
    if not z:
        raise ModelError("no held-out fold to calibrate the std (one cell only?)")
    return np.concatenate(z), np.concatenate(rho), np.concatenate(raw), protocol


#: A cell (or frame) is out of domain when more than this fraction of its GP bonds are flagged:
#: a held-out run-21 shear cell has ~10 % of its labelled-window bonds flagged (the
#: thresholds sit at the 0.5 % tails of held-out deformation groups), a Zr-rich cell or one
#: compressed x0.8 ~30 %, fcc Cu 100 % (tests/test_evaluate_shift.py).
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
