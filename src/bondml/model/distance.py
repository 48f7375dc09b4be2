"""Distance-only model of -ICOHP (eV) per bond type, with an optional composition term.

Per type a penalised cubic B-spline (P-spline) in the bond length d (Angstrom):

    y(d, x) = sum_k c_k B_k(d) + (x - x_ref) * sum_k e_k C_k(d)

where x is the Al atomic fraction of the cell and C_k a coarser basis (the composition term is
optional). Trained on the label-only tables (PBSSDB, DB4, DB8) that have no structures. It is
(1) the baseline that tells what SOAP adds over bond length, (2) the prior mean of the SOAP GP,
(3) the fallback for bond types without enough SOAP-labelled bonds (Al-Al), always flagged.
The predictive std is the residual RMS in distance bins (linearly interpolated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from ..constants import LOBSTER_WINDOW
from ..errors import ModelError
from ..types import parse_composition

#: Al fraction of the reference composition Zr49Cu49Al2.
X_REF = 0.02


def al_fraction(nc: str | np.ndarray) -> np.ndarray | float:
    """Atomic fraction of Al of a composition name (or array of names), e.g. 0.02 for Zr49Cu49Al2."""
    if isinstance(nc, str):
        return parse_composition(nc, any_element=True).get("Al", 0.0) / 100.0
    names = np.asarray(nc).astype(str)
    u, inv = np.unique(names, return_inverse=True)
    vals = np.array([parse_composition(s, any_element=True).get("Al", 0.0) / 100.0 for s in u])
    return vals[inv]


def _basis(d: np.ndarray, n_knots: int, lo: float, hi: float) -> np.ndarray:
    inner = np.linspace(lo, hi, n_knots)
    t = np.concatenate([[lo] * 3, inner, [hi] * 3])
    x = np.clip(np.asarray(d, dtype=float), lo, hi)
    return _bspline_design(x, t, 3)


def _bspline_design(x: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
    """Dense B-spline design matrix (len(x), len(t) - k - 1) by Cox-de Boor, equal to
    ``scipy.interpolate.BSpline.design_matrix(x, t, k).toarray()`` (numpy only: no scipy import
    at prediction time). x must lie in [t[k], t[-k-1]]; the last interval is closed."""
    nb = t.size - k - 1
    # degree 0: indicator of the knot interval holding x (right end belongs to the last one)
    span = np.clip(np.searchsorted(t, x, side="right") - 1, k, nb - 1)
    B = np.zeros((x.size, t.size - 1))
    B[np.arange(x.size), span] = 1.0
    for p in range(1, k + 1):
        Bn = np.zeros((x.size, t.size - 1 - p))
        for i in range(t.size - 1 - p):
            den1 = t[i + p] - t[i]
            den2 = t[i + p + 1] - t[i + 1]
            a = (x - t[i]) / den1 * B[:, i] if den1 > 0 else 0.0
            c = (t[i + p + 1] - x) / den2 * B[:, i + 1] if den2 > 0 else 0.0
            Bn[:, i] = a + c
        B = Bn
    return B[:, :nb]


def _penalty(m: int) -> np.ndarray:
    D = np.diff(np.eye(m), n=2, axis=0)
    return D.T @ D


@dataclass
class DistanceFit:
    """Fitted coefficients of one bond type (all JSON-serialisable through :meth:`to_dict`)."""

    coef: np.ndarray
    coef_x: np.ndarray | None
    n_knots: int
    n_knots_x: int
    lo: float
    hi: float
    bins: np.ndarray
    bin_rmse: np.ndarray
    n_train: int
    distance_range: tuple[float, float]
    compositions: list[str] = field(default_factory=list)

    def predict(self, d: np.ndarray, x_al: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        d = np.asarray(d, dtype=float)
        mu = _basis(d, self.n_knots, self.lo, self.hi) @ self.coef
        if self.coef_x is not None:
            dx = np.broadcast_to(np.asarray(x_al, dtype=float) - X_REF, d.shape)
            mu = mu + dx * (_basis(d, self.n_knots_x, self.lo, self.hi) @ self.coef_x)
        centres = 0.5 * (self.bins[1:] + self.bins[:-1])
        sd = np.interp(d, centres, self.bin_rmse)
        return mu, sd

    def to_dict(self) -> dict:
        return {
            "coef": self.coef.tolist(), "coef_x": None if self.coef_x is None else self.coef_x.tolist(),
            "n_knots": self.n_knots, "n_knots_x": self.n_knots_x, "lo": self.lo, "hi": self.hi,
            "bins": self.bins.tolist(), "bin_rmse": self.bin_rmse.tolist(), "n_train": self.n_train,
            "distance_range": list(self.distance_range), "compositions": self.compositions,
        }

    @classmethod
    def from_dict(cls, d: dict) -> DistanceFit:
        return cls(np.asarray(d["coef"], float), None if d["coef_x"] is None else np.asarray(d["coef_x"], float),
                   int(d["n_knots"]), int(d["n_knots_x"]), float(d["lo"]), float(d["hi"]),
                   np.asarray(d["bins"], float), np.asarray(d["bin_rmse"], float), int(d["n_train"]),
                   tuple(d["distance_range"]), list(d.get("compositions", [])))


def fit_distance_type(
    distance: np.ndarray, y: np.ndarray, x_al: np.ndarray, composition: bool = True,
    n_knots: int = 14, n_knots_x: int = 5, smooth: float = 1.0, min_bonds: int = 10,
    compositions: list[str] | None = None,
) -> DistanceFit:
    """Fit one type's P-spline (d in Angstrom, y in eV, x_al Al fraction per bond)."""
    d = np.asarray(distance, float)
    y = np.asarray(y, float)
    ok = np.isfinite(d) & np.isfinite(y)
    if (~ok).any():
        raise ModelError(f"{int((~ok).sum())} NaN labels/distances in the distance-model training data")
    if d.size < min_bonds:
        raise ModelError(f"only {d.size} bonds to fit a distance model (need {min_bonds})")
    lo, hi = LOBSTER_WINDOW
    B = _basis(d, n_knots, lo, hi)
    P = smooth * _penalty(B.shape[1])
    x = np.asarray(x_al, float) - X_REF
    use_x = composition and np.ptp(x) > 1e-9
    if use_x:
        C = _basis(d, n_knots_x, lo, hi) * x[:, None]
        B = np.hstack([B, C])
        Px = np.zeros((B.shape[1], B.shape[1]))
        Px[: P.shape[0], : P.shape[0]] = P
        m = C.shape[1]
        Px[P.shape[0]:, P.shape[0]:] = smooth * _penalty(m) + 1e-6 * np.eye(m)
        P = Px
    A = B.T @ B + P + 1e-9 * np.eye(B.shape[1])
    coef = np.linalg.solve(A, B.T @ y)
    nb = B.shape[1] - (n_knots_x + 2 if use_x else 0)
    resid = y - B @ coef
    bins = np.linspace(d.min(), d.max() + 1e-9, 9)
    idx = np.clip(np.digitize(d, bins) - 1, 0, 7)
    overall = float(np.sqrt(np.mean(resid**2)))
    bin_rmse = np.array([np.sqrt(np.mean(resid[idx == k] ** 2)) if (idx == k).sum() >= 5 else overall
                         for k in range(8)])
    return DistanceFit(coef[:nb], coef[nb:] if use_x else None, n_knots, n_knots_x, lo, hi, bins, bin_rmse,
                       int(d.size), (float(d.min()), float(d.max())), sorted(compositions or []))


class DistanceModel:
    """Per-type distance (+ composition) model; ``fit(table)`` with a :class:`LabelTable`."""

    def __init__(self, composition: bool | tuple[str, ...] = True, smooth: float = 1.0, min_bonds: int = 10,
                 prior_types: tuple[str, ...] | None = None) -> None:
        self.composition = composition if isinstance(composition, bool) else tuple(composition)
        self.smooth = smooth
        self.min_bonds = min_bonds
        #: types for which a BondModel uses this model as its GP prior mean (None: every type);
        #: the fallback of types without a GP ignores it
        self.prior_types = None if prior_types is None else tuple(prior_types)
        self.fits: dict[str, DistanceFit] = {}

    def uses_composition(self, bond_type: str) -> bool:
        """Whether the fit of ``bond_type`` has the composition term (``composition`` may name types)."""
        return self.composition if isinstance(self.composition, bool) else bond_type in self.composition

    def is_prior_for(self, bond_type: str) -> bool:
        """Whether a BondModel's GP of ``bond_type`` models the residual of this model."""
        return self.prior_types is None or bond_type in self.prior_types

    def fit(self, table: Any) -> DistanceModel:
        """Fit every bond type present in ``table`` (bond_type, nc, distance, y columns)."""
        for bt in np.unique(table.bond_type):
            m = table.bond_type == bt
            if m.sum() < self.min_bonds:
                continue
            nc = table.nc[m]
            self.fits[str(bt)] = fit_distance_type(
                table.distance[m], table.y[m], cast(np.ndarray, al_fraction(nc)),
                self.uses_composition(str(bt)), smooth=self.smooth, min_bonds=self.min_bonds,
                compositions=sorted(set(np.asarray(nc).astype(str).tolist())))
        if not self.fits:
            raise ModelError("no bond type had enough bonds to fit a distance model")
        return self

    @property
    def bond_types(self) -> tuple[str, ...]:
        return tuple(self.fits)

    def predict(self, bond_type: str, distance: np.ndarray, composition: str | float = "Zr49Cu49Al2"
                ) -> tuple[np.ndarray, np.ndarray]:
        """(-ICOHP mean, std) in eV for bonds of one type at a composition (name or Al fraction)."""
        if bond_type not in self.fits:
            raise ModelError(f"no distance model for bond type {bond_type}")
        x = al_fraction(composition) if isinstance(composition, str) else float(composition)
        return self.fits[bond_type].predict(distance, x)

    def to_dict(self) -> dict:
        comp = self.composition if isinstance(self.composition, bool) else list(self.composition)
        return {"composition": comp, "smooth": self.smooth, "min_bonds": self.min_bonds,
                "prior_types": None if self.prior_types is None else list(self.prior_types),
                "fits": {k: v.to_dict() for k, v in self.fits.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> DistanceModel:
        comp = d["composition"]
        m = cls(bool(comp) if isinstance(comp, bool) else tuple(comp), float(d["smooth"]), int(d["min_bonds"]),
                None if d.get("prior_types") is None else tuple(d["prior_types"]))
        m.fits = {k: DistanceFit.from_dict(v) for k, v in d["fits"].items()}
        return m
