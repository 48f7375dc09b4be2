"""Calibrated predictive std and an out-of-domain flag that means out of domain.

Per bond type a :class:`DomainInfo` learnt from held-out data (leave-deformation-group-out
inside the training run, :func:`learn_domain`) holds

* ``std_scale``: factor making the GP std calibrated on held-out deformation groups
  (median(|error| / std) = 0.6745, as for a Gaussian);
* ``composition_inflation``: a further factor used when the model predicts a composition it was
  not trained on: the ratio of the distance-only error across compositions (leave-composition-out
  on the label-only tables) to the distance-only error inside one run (>= 1);
* ``rho_max``: threshold on rho = posterior variance / prior variance of the GP, in [0, 1]: the
  squared kernel distance of a bond's descriptor (with its length) to the span of the training
  bonds (0 on a training bond, 1 far from all of them). A bond is out of domain when rho exceeds
  the largest rho met on held-out deformation groups (a quantile of it), or when its length is
  outside the training range. For a kernel with unit self-similarity, rho <= 1 - max_t k(x, t)^2
  up to the regularisation, so a high rho means no training bond is similar;
* ``std_max``: calibrated std (eV, before the composition inflation) above which a bond is also
  flagged (a high quantile of the held-out calibrated std).

Energies in eV, distances in Angstrom.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..constants import DEFORMATION_GROUPS
from ..errors import ModelError

#: Quantile of the held-out rho / calibrated std used as the out-of-domain threshold.
OOD_QUANTILE = 0.995
#: Gaussian median of |z|.
_MEDIAN_ABS_Z = 0.6744897501960817


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
    rho_max: float
    std_max: float
    composition_inflation: float = 1.0
    train_composition: str = "Zr49Cu49Al2"
    protocol: str = "leave-deformation-group-out"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DomainInfo:
        return cls(float(d["std_scale"]), float(d["rho_max"]), float(d["std_max"]),
                   float(d.get("composition_inflation", 1.0)), str(d.get("train_composition", "Zr49Cu49Al2")),
                   str(d.get("protocol", "leave-deformation-group-out")))


@dataclass(frozen=True)
class Assessment:
    """Calibrated std (eV), rho in [0, 1], and the out-of-domain flag of n bonds."""

    std: np.ndarray
    rho: np.ndarray
    out_of_domain: np.ndarray


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
           distance: np.ndarray, std_raw: np.ndarray, composition: str) -> Assessment:
    """Calibrated std and out-of-domain flags of bonds given the GP's raw std (eV).

    The std is ``std_raw * std_scale``, times ``composition_inflation`` when ``composition``
    differs from the training composition. Out of domain: length outside the training range,
    rho > ``rho_max``, or the (uninflated) calibrated std > ``std_max``.
    """
    kxx = prior_variance(est, rows, np.asarray(row_i, np.int64), np.asarray(row_j, np.int64))
    rho = posterior_fraction(est, std_raw, kxx)
    sd = np.asarray(std_raw, float) * info.std_scale
    lo, hi = est.distance_range_
    d = np.asarray(distance, float)
    ood = (d < lo) | (d > hi) | (rho > info.rho_max) | (sd > info.std_max)
    if composition != info.train_composition:
        sd = sd * info.composition_inflation
    return Assessment(sd, rho, ood)


def learn_domain(held_out_z: np.ndarray, held_out_rho: np.ndarray, held_out_std: np.ndarray,
                 composition_inflation: float = 1.0, train_composition: str = "Zr49Cu49Al2",
                 quantile: float = OOD_QUANTILE, protocol: str = "leave-deformation-group-out") -> DomainInfo:
    """DomainInfo from held-out bonds: |error| / raw std (``held_out_z``), rho, raw std (eV)."""
    z = np.asarray(held_out_z, float)
    if z.size < 5:
        raise ModelError(f"only {z.size} held-out bonds to calibrate the std")
    scale = float(np.median(z) / _MEDIAN_ABS_Z)
    return DomainInfo(scale, float(np.quantile(held_out_rho, quantile)),
                      float(np.quantile(np.asarray(held_out_std, float) * scale, quantile)),
                      float(composition_inflation), train_composition, protocol)


def held_out_statistics(sub: Any, make: Any, prior: Any, seed: int = 0, max_train: int | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """|e| / std, rho and raw std of every held-out bond of one type's dataset ``sub``.

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
    for k, (tr, te) in enumerate(splits):
        if tr.size < 2 or te.size == 0:
            continue
        if max_train and tr.size > max_train:
            tr = np.sort(np.random.default_rng(seed + k).choice(tr, max_train, replace=False))
        a, b = sub.select(tr), sub.select(te)
        est = make().fit(a.features(), a.y - prior(a))
        mu, sd = est.predict(b.features(), return_std=True)
        kxx = prior_variance(est, b.atom_soap, b.atom_i, b.atom_j)
        z.append(np.abs(mu + prior(b) - b.y) / np.maximum(sd, 1e-12))
        rho.append(posterior_fraction(est, sd, kxx))
        raw.append(sd)
    if not z:
        raise ModelError("no held-out fold to calibrate the std (one cell only?)")
    return np.concatenate(z), np.concatenate(rho), np.concatenate(raw), protocol
