"""``BondGPR``: the paper's per-bond-type Gaussian Process, exact, batched, with uncertainty.

Input is either :class:`bondml.core.BondFeatures` (distance + per-atom SOAP + atom
indices; the SOAP of a bond is never copied into an (n, 2, p) array) or a plain 2-D array
``[d | pA | pB]`` (n, 1 + 2p) for scikit-learn tools. Target: -ICOHP in eV.

Model (DOMAIN.md, Train): alpha = (K + lam I)^-1 y with lam = gamma * std(y) (the paper's
regularisation) or a plain noise variance ``noise`` in kernel units; prediction = k(x, X) alpha.
The kernel has unit amplitude; for the predictive std the signal variance is profiled out by
maximum likelihood, s2 = y^T (K + lam I)^-1 y / n, so that var(x) = s2 (k(x,x) - k^T (K+lam I)^-1 k)
(+ s2 lam when ``std_includes_noise``). Solved by Cholesky (scipy cho_factor / cho_solve).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, solve_triangular
from sklearn.base import BaseEstimator, RegressorMixin

from ..constants import PAPER_HYPERPARAMETERS
from ..errors import ModelError
from ..core.dataset import BondFeatures
from .kernel import _power, bond_kernel, distance_term, mean_soap

MEANS = ("zero", "mean")


@dataclass(frozen=True)
class _Bonds:
    """Internal view of model input: distance (n,) and a way to get pbar rows / pair dots."""

    distance: np.ndarray
    atom_soap: np.ndarray | None
    atom_i: np.ndarray | None
    atom_j: np.ndarray | None
    dense: np.ndarray | None  # [d | pA | pB] when given as a 2-D array

    def __len__(self) -> int:
        return int(self.distance.size)

    def pbar(self, sl: slice | np.ndarray) -> np.ndarray:
        """Mean SOAP of the bonds ``sl``, shape (k, p)."""
        if self.dense is not None:
            p = (self.dense.shape[1] - 1) // 2
            rows = self.dense[sl]
            return mean_soap(rows[:, 1:1 + p], rows[:, 1 + p:])
        return mean_soap(self.atom_soap[self.atom_i[sl]], self.atom_soap[self.atom_j[sl]])


@dataclass(frozen=True)
class _AtomLevel:
    """Per-atom quantities for prediction: S (u, n_train) SOAP products with the training pbar,
    bond -> row maps ``inv_a``/``inv_b``, squared norms (u,), float32 rows (fast mode) or None."""

    S: np.ndarray
    inv_a: np.ndarray
    inv_b: np.ndarray
    norm2: np.ndarray
    rows32: np.ndarray | None


def as_bonds(X: BondFeatures | np.ndarray) -> _Bonds:
    """Normalise model input; raises ModelError for a malformed array."""
    if isinstance(X, BondFeatures):
        d = np.asarray(X.distance, dtype=float).ravel()
        ai = np.asarray(X.atom_i, dtype=np.int64).ravel()
        aj = np.asarray(X.atom_j, dtype=np.int64).ravel()
        if not (d.size == ai.size == aj.size):
            raise ModelError(f"bond features of unequal length: distance {d.size}, atom_i {ai.size}, atom_j {aj.size}")
        return _Bonds(d, np.asarray(X.atom_soap, dtype=float), ai, aj, None)
    a = np.asarray(X, dtype=float)
    if a.ndim != 2 or a.shape[1] < 3 or (a.shape[1] - 1) % 2:
        raise ModelError(f"expected BondFeatures or a 2-D array [d | pA | pB] with 1 + 2p columns, got shape {a.shape}")
    return _Bonds(a[:, 0].copy(), None, None, None, a)


def pack_features(X: BondFeatures) -> np.ndarray:
    """Dense [d | pA | pB] array (n, 1 + 2p) from BondFeatures (for small data / sklearn only)."""
    return np.column_stack([X.distance, X.soap_i, X.soap_j])


class BondGPR(RegressorMixin, BaseEstimator):
    """Gaussian Process for one bond type with the paper's kernel.

    Parameters: ``sigma`` (Angstrom) distance length scale; ``zeta`` SOAP exponent; ``gamma``
    regularisation as a fraction of std(y) (paper); ``noise`` plain diagonal term in kernel
    units that replaces gamma * std(y) when given; ``mean`` ``"zero"`` (paper) or ``"mean"``
    (subtract the training mean); ``std_includes_noise`` adds the diagonal term to the predictive
    variance; ``batch_size`` bonds per kernel block at prediction (memory linear in n);
    ``fast_soap`` evaluates the SOAP dot products and the variance solve of *prediction* in
    float32 (~1e-6 relative error in the kernel, ~1e-4 in the std; training stays float64).
    """

    def __init__(
        self,
        sigma: float = 0.5,
        gamma: float = 0.01,
        zeta: float = 1.0,
        noise: float | None = None,
        mean: str = "zero",
        std_includes_noise: bool = False,
        batch_size: int = 4096,
        fast_soap: bool = False,
    ) -> None:
        self.sigma = sigma
        self.gamma = gamma
        self.zeta = zeta
        self.noise = noise
        self.mean = mean
        self.std_includes_noise = std_includes_noise
        self.batch_size = batch_size
        self.fast_soap = fast_soap

    @classmethod
    def paper(cls, bond_type: str, **overrides: object) -> BondGPR:
        """Estimator with the paper's hyper-parameters of ``bond_type`` (DOMAIN.md)."""
        hp = dict(PAPER_HYPERPARAMETERS.get(bond_type, {"zeta": 1.0, "sigma": 0.5, "gamma": 0.01}))
        hp.update(overrides)
        return cls(**hp)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- fit
    def _check_params(self) -> None:
        if not (self.sigma > 0 and self.zeta > 0):
            raise ModelError(f"sigma and zeta must be positive (sigma={self.sigma}, zeta={self.zeta})")
        if self.noise is None and not self.gamma > 0:
            raise ModelError(f"gamma must be positive (gamma={self.gamma})")
        if self.noise is not None and not self.noise > 0:
            raise ModelError(f"noise must be positive (noise={self.noise})")
        if self.mean not in MEANS:
            raise ModelError(f"mean must be one of {MEANS}, got {self.mean!r}")

    def fit(self, X: BondFeatures | np.ndarray, y: np.ndarray) -> BondGPR:
        """Fit on n bonds; ``y`` is -ICOHP (eV). Raises ModelError for NaN labels or n < 2."""
        self._check_params()
        b = as_bonds(X)
        y = np.asarray(y, dtype=float).ravel()
        if y.size != len(b):
            raise ModelError(f"{len(b)} bonds but {y.size} labels")
        if len(b) < 2:
            raise ModelError(f"cannot fit a GP on {len(b)} bond(s); need at least 2")
        if not np.all(np.isfinite(y)) or not np.all(np.isfinite(b.distance)):
            bad = int(np.sum(~np.isfinite(y)) + np.sum(~np.isfinite(b.distance)))
            raise ModelError(f"{bad} NaN/inf labels or distances in the training data; drop them first")
        self.d_train_ = b.distance.copy()
        self.pbar_train_ = b.pbar(slice(None))
        self.y_offset_ = float(y.mean()) if self.mean == "mean" else 0.0
        self.y_std_ = float(y.std())
        self.lam_ = float(self.noise) if self.noise is not None else float(self.gamma) * max(self.y_std_, 1e-12)
        yc = y - self.y_offset_
        K = bond_kernel(self.d_train_, self.pbar_train_, self.d_train_, self.pbar_train_, self.sigma, self.zeta)
        K[np.diag_indices_from(K)] += self.lam_
        try:
            self.chol_ = cho_factor(K, lower=True, check_finite=False)
        except LinAlgError:
            raise ModelError(
                f"kernel matrix not positive definite (n={len(b)}, gamma={self.gamma}, noise={self.noise}); "
                "increase gamma/noise or drop duplicate bonds") from None
        self.alpha_ = cho_solve(self.chol_, yc, check_finite=False)
        n = yc.size
        self.s2_ = max(float(yc @ self.alpha_) / n, 1e-300)
        logdet = 2.0 * float(np.sum(np.log(np.diag(self.chol_[0]))))
        self.lml_ = -0.5 * n * np.log(2 * np.pi * self.s2_) - 0.5 * logdet - 0.5 * n
        self.n_train_ = n
        self.distance_range_ = (float(self.d_train_.min()), float(self.d_train_.max()))
        return self

    def log_marginal_likelihood(self) -> float:
        """Log marginal likelihood of the training labels with the amplitude profiled out."""
        self._require_fitted()
        return float(self.lml_)

    def _require_fitted(self) -> None:
        if not hasattr(self, "alpha_"):
            raise ModelError("BondGPR is not fitted; call fit first")

    # ------------------------------------------------------------ predict
    def _soap_dots_atomlevel(self, b: _Bonds, bs: int, fast: bool) -> _AtomLevel | None:
        """Per-atom products S = atom_soap[u] @ pbar_train.T (when cheaper than per bond), the
        squared norms of those atoms, and (``fast_soap``) their float32 SOAP for the diagonal."""
        if b.atom_soap is None:
            return None
        u, inv = np.unique(np.concatenate([b.atom_i, b.atom_j]), return_inverse=True)
        if u.size >= 0.8 * len(b):
            return None
        S = np.empty((u.size, self.n_train_))
        norm2 = np.empty(u.size)
        P = self._train_soap(fast)
        rows32 = np.empty((u.size, P.shape[1]), np.float32) if fast else None
        for s in range(0, u.size, bs):
            rows = b.atom_soap[u[s:s + bs]]
            norm2[s:s + bs] = np.einsum("ij,ij->i", rows, rows)
            rows = rows.astype(P.dtype, copy=False)
            if rows32 is not None:
                rows32[s:s + bs] = rows
            S[s:s + bs] = rows @ P.T
        return _AtomLevel(S, inv[: len(b)], inv[len(b):], norm2, rows32)

    def _train_soap(self, fast: bool) -> np.ndarray:
        """Training mean SOAP in the dtype used for prediction dot products."""
        if not fast:
            return self.pbar_train_
        if getattr(self, "_pbar32", None) is None or self._pbar32.shape != self.pbar_train_.shape:
            self._pbar32 = self.pbar_train_.astype(np.float32)
        return self._pbar32

    def _chol_for_predict(self, fast: bool) -> np.ndarray:
        """Cholesky factor for the variance solve: float64, or float32 with ``fast_soap``
        (~1e-4 relative error in the std; the mean never uses it)."""
        if not fast:
            return self.chol_[0]
        if getattr(self, "_chol32", None) is None or self._chol32.shape != self.chol_[0].shape:
            self._chol32 = np.tril(self.chol_[0]).astype(np.float32)
        return self._chol32

    def _pair_diag(self, b: _Bonds, sl: slice, atom: _AtomLevel | None) -> np.ndarray:
        """k(b, b) = (pbar . pbar)^zeta = (|pA|^2 + |pB|^2 + 2 pA.pB)^zeta / 4^zeta for bonds ``sl``."""
        if atom is None:
            pb = b.pbar(sl)
            return _power(np.einsum("ij,ij->i", pb, pb), self.zeta)
        ia, ib = atom.inv_a[sl], atom.inv_b[sl]
        if atom.rows32 is not None:
            dot = np.einsum("ij,ij->i", atom.rows32[ia], atom.rows32[ib]).astype(float)
        else:
            dot = np.einsum("ij,ij->i", b.atom_soap[b.atom_i[sl]], b.atom_soap[b.atom_j[sl]])
        return _power(0.25 * (atom.norm2[ia] + atom.norm2[ib] + 2.0 * dot), self.zeta)

    def predict(
        self, X: BondFeatures | np.ndarray, return_std: bool = False, batch_size: int | None = None,
        fast_soap: bool | None = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted -ICOHP (eV), and the predictive std (eV) when ``return_std``.

        ``fast_soap`` overrides the estimator's float32 setting for this call only (thread-safe:
        the estimator is not modified).

        Kernel rows are built ``batch_size`` bonds at a time: memory O(batch_size * n_train).
        """
        self._require_fitted()
        b = as_bonds(X)
        n = len(b)
        mean = np.empty(n)
        std = np.empty(n) if return_std else None
        bs = max(int(batch_size or self.batch_size), 1)
        fast = self.fast_soap if fast_soap is None else bool(fast_soap)
        atom = self._soap_dots_atomlevel(b, bs, fast)
        for s in range(0, n, bs):
            sl = slice(s, min(s + bs, n))
            kd = distance_term(b.distance[sl], self.d_train_, self.sigma)
            if atom is not None:
                dots = 0.5 * (atom.S[atom.inv_a[sl]] + atom.S[atom.inv_b[sl]])
            else:
                P = self._train_soap(fast)
                dots = b.pbar(sl).astype(P.dtype, copy=False) @ P.T
            k = kd * _power(dots, self.zeta)
            mean[sl] = k @ self.alpha_ + self.y_offset_
            if std is not None:
                L = self._chol_for_predict(fast)
                v = solve_triangular(L, k.T.astype(L.dtype, copy=False), lower=True, check_finite=False)
                var = self._pair_diag(b, sl, atom) - np.einsum("ij,ij->j", v, v).astype(float)
                if self.std_includes_noise:
                    var += self.lam_
                std[sl] = np.sqrt(np.clip(var, 0.0, None) * self.s2_)
        return (mean, std) if return_std else mean

    # --------------------------------------------------------- persistence
    def state(self) -> tuple[dict[str, object], dict[str, np.ndarray]]:
        """(JSON-able metadata, arrays) describing the fitted estimator."""
        self._require_fitted()
        meta = {
            "params": self.get_params(), "y_offset": self.y_offset_, "y_std": self.y_std_, "lam": self.lam_,
            "s2": self.s2_, "lml": self.lml_, "n_train": self.n_train_, "distance_range": list(self.distance_range_),
        }
        arrays = {"d_train": self.d_train_, "pbar_train": self.pbar_train_, "alpha": self.alpha_,
                  "chol": self.chol_[0]}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> BondGPR:
        """Rebuild a fitted estimator from :meth:`state` output (no refit)."""
        est = cls(**meta["params"])
        est.d_train_ = np.asarray(arrays["d_train"], dtype=float)
        est.pbar_train_ = np.asarray(arrays["pbar_train"], dtype=float)
        est.alpha_ = np.asarray(arrays["alpha"], dtype=float)
        est.chol_ = (np.asarray(arrays["chol"], dtype=float), True)
        n = est.d_train_.size
        if not (est.pbar_train_.shape[0] == est.alpha_.size == n and est.chol_[0].shape == (n, n)):
            raise ModelError("model arrays have inconsistent shapes")
        est.y_offset_ = float(meta["y_offset"])
        est.y_std_ = float(meta["y_std"])
        est.lam_ = float(meta["lam"])
        est.s2_ = float(meta["s2"])
        est.lml_ = float(meta["lml"])
        est.n_train_ = int(meta["n_train"])
        est.distance_range_ = tuple(meta["distance_range"])
        return est
