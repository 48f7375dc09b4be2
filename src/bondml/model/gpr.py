"""``BondGPR``: the paper's per-bond-type Gaussian Process, batched, with uncertainty, at a
prediction cost that does not grow with the training set.

Input is either :class:`bondml.core.BondFeatures` (distance + per-atom SOAP + atom
indices; the SOAP of a bond is never copied into an (n, 2, p) array) or a plain 2-D array
``[d | pA | pB]`` (n, 1 + 2p) for scikit-learn tools. Target: -ICOHP in eV. A bond-centred
descriptor q goes through the same interface as ``atom_soap = Q``, ``atom_i = atom_j = arange(n)``
(then x = pbar = q).

Model (DOMAIN.md, Train): kernel k = exp(-(d - d')^2 / 2 sigma^2) (x . x')^zeta with x = pbar;
alpha = (K + lam I)^-1 y with lam = gamma * std(y) (the paper's regularisation) or a plain noise
variance ``noise`` in kernel units; prediction = k(x, X) alpha. The kernel has unit amplitude; the
signal variance is profiled out by maximum likelihood, s2 = y^T (K + lam I)^-1 y / n, so that
var(x) = s2 (k(x,x) - k^T (K+lam I)^-1 k) (+ s2 lam when ``std_includes_noise``).

Fast prediction (default; the exact paths stay behind ``exact_mean`` / ``exact_std``):

* **Mean** (zeta = 1): sum_j alpha_j k(b, b_j) = x_b . W(d_b) with
  W(d) = sum_j alpha_j exp(-(d - d_j)^2 / 2 sigma^2) x_j, a vector function of the bond length only.
  W is tabulated once per model as a Chebyshev interpolant on the type's distance window
  (degree chosen at fit so that max_d |W_cheb(d) - W(d)| <= ``MEAN_TOL`` eV on a dense check grid:
  the mean is then within that of the exact mean for any |x| <= 1, i.e. normalised SOAP). One
  (atoms x p) x (p x N) product per frame and type, independent of n_train. Bonds outside the
  window use the exact sum.
* **Std**: projected-process (DTC) variance with m inducing training bonds drawn by randomized
  pivoted Cholesky (``_rpc_inducing``: seeded, probability proportional to the residual prior
  variance; greedy largest-residual pivoting picks outliers, a uniform draw oversamples dense
  regions), m set by the residual trace against the leave-one-out posterior variances
  (``STD_RESID_TOL``), at least ``std_inducing``. With
  K_mm = L_p L_p^T, L = K_nm L_p^-T (n x m), A = L^T L and z = L_p^-1 k_m:
  var = k(x,x) - |z|^2 + lam z^T (lam I + A)^-1 z, stored as B (m x m) so that
  var = k(x,x) - |B k_m|^2: one (bonds x m) x (m x m) float64 product per batch (float32 cancels).
  It equals the exact variance when m = n; n <= m keeps the exact solve.
  The inducing products come from one float32 product per row block with a principal basis V
  of the training descriptors (``_set_std_basis``: x . x_j = (V^T x) . (V^T x_j), rank chosen
  so that <= 1e-5 of the training energy is outside V) that also gives the out-of-domain
  projection; k(x, x) stays exact.
* **Sparse fit** (n > ``max_exact``): projected process (subset of regressors mean) with m =
  ``sparse_inducing`` seeded-random inducing bonds: alpha_m = L_p^-T (lam I + A)^-1 L^T y, the same
  B form for the std. Memory O(m^2 + batch m), time O(n m p + n m^2).
"""

from __future__ import annotations

import inspect
import logging
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..constants import PAPER_HYPERPARAMETERS
from ..core.dataset import BondFeatures
from ..errors import ModelError
from .kernel import _power, bond_kernel, distance_term, mean_soap

log = logging.getLogger(__name__)

#: Bound (eV, for |x| <= 1) on the Chebyshev interpolation error of the mean.
MEAN_TOL = 1e-9
#: Inducing bonds of the std per effective degree of freedom tr(K (K + lam I)^-1) (at least
#: ``std_inducing``) of the earlier uniform draw (``_STD_SELECT = "uniform"``): measured on run 21
#: (held-out cells and the 10k frame), 4x the dof gives p95 std errors of 0.3-1.3 % (3.5x: up to
#: 2.4 %, 5x: 0.4 %).
STD_DOF_FACTOR = 4.0
#: How the std's inducing bonds are chosen at fit: "rpc" (randomized pivoted Cholesky until the
#: residual trace is ``STD_RESID_TOL`` x the training bonds' leave-one-out posterior variance
#: trace) or "uniform" (the earlier seeded uniform draw of max(std_inducing, STD_DOF_FACTOR x dof)).
_STD_SELECT = "rpc"
#: Residual prior-variance trace left by the std's inducing bonds, as a fraction of the trace of
#: the leave-one-out posterior variances. Measured against the exact std on 3,000 bonds per type
#: of the 10k frame (bond-centred, all run-21 bonds, float64 form): fraction 2.7e-2 -> p95 error
#: 0.6-1.0 %, 1.5e-2 -> 0.3-0.5 % (Zr-Cu m 1,000, Zr-Zr 900, Cu-Cu 950).
STD_RESID_TOL = 1.5e-2
#: dtype of the SOAP products with the inducing bonds (the m x m quadratic form is always float64)
_IND_DTYPE = np.float32
#: Largest p95 relative change of the std from a float32 quadratic form |B k_m|^2 (checked on 512
#: training bonds at fit, where posterior variances are smallest: pessimistic for new bonds);
#: above it the model keeps the float64 form. 1 %: with the inducing approximation's <= 1.3 %
#: the std stays within the 2 % p95 contract (bond-centred Zr-Cu, all bonds: check 0.56 %,
#: frame p95 vs exact 0.43 % float64 -> 0.88 % float32, 1.7x faster).
_QF32_TOL = 1e-2
#: Largest fraction of the training descriptors' energy outside the principal basis of the std's
#: inducing products (``BondGPR._set_std_basis``), and the cost ratio it must reach to be used.
_STD_PROJ_RESID = 1e-5
_STD_PROJ_GAIN = 0.8
#: Rows of the projected-process factor B dropped at prediction: B = diag(w) U^T Lp^-1 with
#: w_i^2 = e_i / (lam + e_i) (e_i, u_i the eigenpairs of A = L^T L), so
#: |B k|^2 = sum_i w_i^2 (u_i . z)^2 while var >= sum_i lam / (lam + e_i) (u_i . z)^2: dropping
#: the rows with e_i <= ``_STD_DROP`` lam raises every variance by at most a factor 1 + _STD_DROP
#: (the std by at most 1 %, never lowers it: out-of-domain flags on the std can only gain bonds),
#: whatever the bond (``BondGPR._std_bt_kept``). Measured on the 10k frame, paper model: 36-41 %
#: of the rows go; std vs the exact std p95 0.520 -> 0.533 %, max 2.63 -> 2.66 % (0.05: 0.595 %,
#: 2.74 %; 0.1: 0.83 %, 2.9 %).
_STD_DROP = 2e-2
#: Bonds per block of the low-rank std from per-atom products (buffers reused across blocks:
#: about 4 x 256 x (m + 48) floats, cache-sized).
_LR_BLOCK = 256
#: Bonds per block of the k(b, b) pair dot products (two float32 row buffers of 128 x p).
_PAIR_BLOCK = 128
#: Per-atom rows are used at prediction while there are at most this many atoms per bond: one
#: gathered float32 row per atom against two per bond plus their average on the per-bond path.
_ROWS_RATIO = 1.5
#: Chebyshev node counts tried, in order, for the tabulated mean.
_CHEB_SIZES = (16, 24, 32, 40, 48, 64, 80, 96, 128)

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

    @property
    def n_features(self) -> int:
        """Length p of the per-bond vector x."""
        if self.dense is not None:
            return (self.dense.shape[1] - 1) // 2
        assert self.atom_soap is not None  # per-atom input when not dense
        return int(self.atom_soap.shape[1])

    def take(self, idx: np.ndarray) -> _Bonds:
        """The bonds ``idx`` (per-atom rows shared, not copied)."""
        if self.dense is not None:
            return _Bonds(self.distance[idx], None, None, None, self.dense[idx])
        assert self.atom_i is not None and self.atom_j is not None  # per-atom input when not dense
        return _Bonds(self.distance[idx], self.atom_soap, self.atom_i[idx], self.atom_j[idx], None)

    def pbar(self, sl: slice | np.ndarray) -> np.ndarray:
        """Mean SOAP of the bonds ``sl``, shape (k, p)."""
        if self.dense is not None:
            p = (self.dense.shape[1] - 1) // 2
            rows = self.dense[sl]
            return mean_soap(rows[:, 1:1 + p], rows[:, 1 + p:])
        assert self.atom_soap is not None and self.atom_i is not None and self.atom_j is not None
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


@dataclass(frozen=True)
class _Fused:
    """Float32 matrices of the fused product (see ``BondGPR._fused_columns``)."""

    G: np.ndarray  # (p, c)
    M: np.ndarray | None  # (r, m) when G starts with the principal basis V (p, r)
    m: int
    k: int
    proj: slice | None  # columns of X @ G holding the projection (basis path)


def _fused_products(X32: np.ndarray, f: _Fused) -> np.ndarray:
    """(k, m + kp) float32: the inducing SOAP products then the projection of rows X32 (k, p)."""
    Z = X32 @ f.G
    if f.M is None:
        return Z
    out = np.empty((X32.shape[0], f.m + f.k), np.float32)
    r = f.M.shape[0]
    np.matmul(Z[:, :r], f.M, out=out[:, :f.m])
    if f.k:
        assert f.proj is not None
        out[:, f.m:] = Z[:, f.proj]
    return out


#: Derived arrays (float32 copies, fused products) cached per fitted estimator, outside its
#: ``__dict__`` so that predicting never changes the estimator's state (scikit-learn's
#: check_dict_unchanged); dropped with the estimator and cleared by every fit.
_DERIVED: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _derived(est: Any) -> dict[str, Any]:
    d = _DERIVED.get(est)
    if d is None:
        d = _DERIVED[est] = {}
    return d


def _finite(name: str, a: np.ndarray) -> None:
    """Refuse NaN/inf: one summed pass (a NaN or inf anywhere makes the sum non-finite; the
    inputs are O(1), so the sum cannot overflow), the full count only on failure."""
    if a.size and np.isfinite(np.add.reduce(a, axis=None, dtype=np.float64)):
        return
    if not np.all(np.isfinite(a)):
        raise ModelError(f"{int(np.sum(~np.isfinite(a)))} NaN/inf values in the {name}; drop those bonds first")


def _sklearn_warning(name: str) -> type[Warning]:
    """scikit-learn's warning class ``name`` when it is installed (its checks look for it), else UserWarning."""
    try:
        import sklearn.exceptions as skx
    except ImportError:
        return UserWarning
    return getattr(skx, name, UserWarning)


def _not_fitted(msg: str) -> ModelError:
    """A ModelError that is also scikit-learn's NotFittedError when scikit-learn is installed."""
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:
        return ModelError(msg)
    cls = type("NotFittedError", (ModelError, NotFittedError), {"__module__": __name__})
    return cls(msg)


def as_bonds(X: BondFeatures | np.ndarray, check_soap: bool = True) -> _Bonds:
    """Normalise model input; raises ModelError (a ValueError) for a malformed array, NaN/inf,
    complex or sparse input. ``check_soap`` False skips the NaN/inf pass over BondFeatures'
    SOAP rows (the caller checked them once for several calls)."""
    if isinstance(X, BondFeatures):
        d = np.asarray(X.distance, dtype=float).ravel()
        ai = np.asarray(X.atom_i, dtype=np.int64).ravel()
        aj = np.asarray(X.atom_j, dtype=np.int64).ravel()
        if not (d.size == ai.size == aj.size):
            raise ModelError(f"bond features of unequal length: distance {d.size}, atom_i {ai.size}, atom_j {aj.size}")
        soap = np.asarray(X.atom_soap)
        if soap.ndim != 2 or soap.dtype.kind != "f":
            soap = np.atleast_2d(np.asarray(soap, dtype=float))
        _finite("bond distances", d)
        if check_soap:
            _finite("SOAP rows", soap)
        return _Bonds(d, soap, ai, aj, None)
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise ModelError("sparse input is not supported: pass a dense array [d | pA | pB] or BondFeatures")
    a = np.asarray(X)
    if a.dtype.kind == "c":
        raise ModelError("Complex data not supported: bond lengths and SOAP are real")
    a = np.asarray(a, dtype=float)
    if a.ndim == 1:
        raise ModelError(f"Expected a 2-D array [d | pA | pB], got a 1-D array of {a.size} values; "
                         "Reshape your data with X.reshape(1, -1) for one bond")
    if a.ndim == 2 and a.shape[1] == 0:
        raise ModelError(f"0 feature(s) (shape={a.shape}) while a minimum of 3 is required ([d | pA | pB])")
    if a.ndim != 2 or a.shape[1] < 3 or (a.shape[1] - 1) % 2:
        raise ModelError(f"expected BondFeatures or a 2-D array [d | pA | pB] with 1 + 2p columns, got shape {a.shape}")
    _finite("input array", a)
    return _Bonds(a[:, 0].copy(), None, None, None, a)


def pack_features(X: BondFeatures) -> np.ndarray:
    """Dense [d | pA | pB] array (n, 1 + 2p) from BondFeatures (for small data / sklearn only)."""
    return np.column_stack([X.distance, X.soap_i, X.soap_j])



# --------------------------------------------------------------------------- linear algebra
def _linalg():  # scipy only where a factorisation is needed (fit, exact paths): keeps imports light
    import scipy.linalg as sl

    return sl


def _chol_jitter(Kmm: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of an inducing kernel matrix with a small relative jitter (1e-8)."""
    jitter = 1e-8 * float(np.mean(np.diag(Kmm)))
    try:
        return np.linalg.cholesky(Kmm + jitter * np.eye(Kmm.shape[0]))
    except np.linalg.LinAlgError:
        raise ModelError(f"inducing kernel matrix ({Kmm.shape[0]} bonds) not positive definite; "
                         "drop duplicate bonds") from None


def _pp_factor(Lp: np.ndarray, A: np.ndarray, lam: float) -> np.ndarray:
    """B (m, m) of the projected-process variance: with z = Lp^-1 k_m,
    k(x,x) - |z|^2 + lam z^T (lam I + A)^-1 z = k(x,x) - |B k_m|^2, A = L^T L (m, m).
    B^T B = Lp^-T (I - lam (lam I + A)^-1) Lp^-1; the middle matrix has eigenvalues in [0, 1)."""
    sl = _linalg()
    m = Lp.shape[0]
    e, V = np.linalg.eigh(0.5 * (A + A.T))
    e = np.clip(e, 0.0, None)
    w = np.sqrt(e / (lam + e))  # eigenvalues of I - lam (lam I + A)^-1, square-rooted
    Linv = sl.solve_triangular(Lp, np.eye(m), lower=True, check_finite=False)
    return np.ascontiguousarray(w[:, None] * (V.T @ Linv))


def _qf32_ok(kss: np.ndarray, k: np.ndarray, B: np.ndarray) -> bool:
    """Whether the float32 quadratic form keeps the low-rank variance kss - |B k|^2 within
    ``_QF32_TOL`` (p95 relative) of the float64 one on these rows (training bonds)."""
    v64 = kss - np.einsum("ij,ij->i", k @ B.T, k @ B.T)
    v32k = k.astype(np.float32) @ B.astype(np.float32).T
    v32 = kss - np.einsum("ij,ij->i", v32k, v32k).astype(float)
    ok = v64 > 1e-12 * np.maximum(kss, 1e-300)
    if not np.any(ok):
        return False
    rel = np.abs(np.sqrt(np.clip(v32[ok], 0, None)) - np.sqrt(v64[ok])) / np.sqrt(v64[ok])
    return bool(np.percentile(rel, 95) <= _QF32_TOL)


def _cheb_basis(t: np.ndarray, N: int) -> np.ndarray:
    """Chebyshev polynomials T_0..T_{N-1} at t in [-1, 1], shape (len(t), N)."""
    T = np.empty((t.size, N))
    T[:, 0] = 1.0
    if N > 1:
        T[:, 1] = t
    for k in range(2, N):
        T[:, k] = 2.0 * t * T[:, k - 1] - T[:, k - 2]
    return T


def _table_sum(Pt: np.ndarray, d: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """sum_k Pt[:, k] T_k(t(d)) (n,): the tabulated mean's products Pt (n, N) with the table's
    Chebyshev columns combined at the bond lengths d (Angstrom), mapped from [lo, hi] to [-1, 1]."""
    t = (2.0 * d - (lo + hi)) / (hi - lo)
    return np.einsum("ij,ij->i", Pt, _cheb_basis(np.clip(t, -1.0, 1.0), Pt.shape[1]))


def _cheb_nodes(N: int) -> np.ndarray:
    return np.cos(np.pi * (np.arange(N) + 0.5) / N)


def _tabulate_mean(d: np.ndarray, X: np.ndarray, alpha: np.ndarray, sigma: float, lo: float, hi: float,
                   tol: float = MEAN_TOL, batch: int = 2048) -> tuple[np.ndarray | None, float]:
    """Chebyshev coefficients C (N, p) of W(d) = sum_j alpha_j g(d, d_j) x_j on [lo, hi] and the
    measured max |W_cheb - W| (eV) on a 1,025-point grid; C is None if 128 nodes do not reach ``tol``."""
    def W(dd: np.ndarray) -> np.ndarray:  # noqa: N802 - W(d) as in the docstring
        out = np.zeros((dd.size, X.shape[1]))
        for s in range(0, d.size, batch):
            g = distance_term(dd, d[s:s + batch], sigma) * alpha[None, s:s + batch]
            out += g @ np.asarray(X[s:s + batch], dtype=float)
        return out

    grid = np.linspace(lo, hi, 1025)
    tg = (2.0 * grid - (lo + hi)) / (hi - lo)
    Wg = W(grid)
    err = np.inf
    for N in _CHEB_SIZES:
        x = _cheb_nodes(N)
        Wn = W(0.5 * (lo + hi) + 0.5 * (hi - lo) * x)
        T = _cheb_basis(x, N)
        C = (2.0 / N) * (T.T @ Wn)
        C[0] *= 0.5
        err = float(np.max(np.linalg.norm(_cheb_basis(tg, N) @ C - Wg, axis=1)))
        if err <= tol:
            return C, err
    return None, err


def _rpc_inducing(K: np.ndarray, resid_target: float, m_min: int, seed: int,
                  block: int = 16, m_max: int | None = None) -> tuple[np.ndarray, float]:
    """Inducing bonds by randomized pivoted Cholesky (Chen, Epperly, Tropp & Webber 2023) on the
    kernel matrix K (n, n): blocks of ``block`` bonds drawn without replacement with probability
    proportional to the residual diagonal diag(K - K_{:,S} K_SS^-1 K_{S,:}), until the residual
    trace is at most ``resid_target`` (kernel units) and at least ``m_min`` bonds are drawn (or
    all n), or ``m_max`` bonds are drawn. Unlike the greedy largest-residual pivot it does not
    chase outliers, and unlike a uniform draw it does not oversample dense regions.
    Deterministic for a seed. Returns the sorted indices (m,) and the final residual trace.
    Cost O(n m^2)."""
    n = K.shape[0]
    rng = np.random.default_rng(seed)
    res = np.clip(np.diag(K).astype(float), 0.0, None)
    scale = max(float(res.mean()), 1e-300)
    F = np.zeros((n, min(n, 256)))
    piv: list[int] = []
    c = 0  # factor columns so far (= len(piv))
    m_max = n if m_max is None else min(int(m_max), n)
    m_min = min(int(m_min), m_max)
    while len(piv) < m_max:
        if len(piv) >= m_min and float(res.sum()) <= resid_target:
            break
        cand = np.flatnonzero(res > 0)
        if cand.size == 0:
            break
        take = min(block, cand.size, m_max - len(piv))
        pick = rng.choice(cand, take, replace=False, p=res[cand] / res[cand].sum())
        G = K[:, pick] - F[:, :c] @ F[pick, :c].T  # (n, take) residual columns of the block
        # Cholesky of the block's residual in draw order, skipping bonds already explained by
        # those before them (repeated bonds): acc are kept, Lb (take, r) their factor columns
        Gs = G[pick]
        Lb = np.zeros((take, take))
        acc: list[int] = []
        for t in range(take):
            v = Gs[:, t] - Lb[:, :len(acc)] @ Lb[t, :len(acc)]
            if v[t] > 1e-10 * scale:
                Lb[:, len(acc)] = v / np.sqrt(v[t])
                acc.append(t)
        res[pick] = 0.0
        if not acc:
            continue
        r = len(acc)
        piv.extend(int(pick[t]) for t in acc)
        Fn = np.linalg.solve(Lb[acc, :r], G[:, acc].T).T  # G_acc L_aa^-T: new factor columns (n, r)
        if c + r > F.shape[1]:
            F = np.concatenate([F, np.zeros((n, max(F.shape[1], r)))], axis=1)
        F[:, c:c + r] = Fn
        c += r
        res = np.clip(res - np.einsum("ij,ij->i", Fn, Fn), 0.0, None)
        res[pick] = 0.0
    return np.sort(np.asarray(piv, dtype=np.int64)), float(res.sum())


# --------------------------------------------------------------------------- estimator base
class _EstimatorBase:
    """The scikit-learn estimator protocol (get_params / set_params / clone / score / tags)
    without importing scikit-learn (it costs ~1.4 s of start-up)."""

    _estimator_type = "regressor"

    if TYPE_CHECKING:  # provided by the subclasses; declared for score()
        def predict(self, X: Any) -> Any: ...

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))

    def get_params(self, deep: bool = True) -> dict[str, object]:
        """Constructor parameters of this estimator."""
        return {k: getattr(self, k) for k in self._get_param_names()}

    def set_params(self, **params: object):
        """Set constructor parameters; ValueError (ModelError) for an unknown name."""
        valid = self._get_param_names()
        for k, v in params.items():
            if k not in valid:
                raise ModelError(f"invalid parameter {k!r} for {type(self).__name__} (valid: {', '.join(valid)})")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        init = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if init[k].default is inspect.Parameter.empty or init[k].default != v]
        return f"{type(self).__name__}({', '.join(changed)})"

    def score(self, X, y, sample_weight=None) -> float:
        """Coefficient of determination R^2 of the prediction (scikit-learn's regressor score)."""
        y = np.asarray(y, dtype=float).ravel()
        w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, dtype=float).ravel()
        e = y - np.asarray(self.predict(X), dtype=float).ravel()
        ybar = np.average(y, weights=w)
        den = float(np.sum(w * (y - ybar) ** 2))
        num = float(np.sum(w * e * e))
        if den == 0.0:
            return 1.0 if num == 0.0 else 0.0
        return 1.0 - num / den

    def __sklearn_tags__(self):  # only called by scikit-learn, which is then imported anyway
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags

        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True),
                    transformer_tags=None, classifier_tags=None, regressor_tags=RegressorTags(),
                    input_tags=InputTags())


@dataclass(frozen=True)
class _Rows:
    """Per-atom rows U (u, p) of the bonds (dtype as given) with bond -> row maps, or None when
    per-bond rows are cheaper (then pbar rows are gathered per batch)."""

    U: np.ndarray
    inv_a: np.ndarray
    inv_b: np.ndarray


class BondGPR(_EstimatorBase):
    """Gaussian Process for one bond type with the paper's kernel.

    Parameters
    ----------
    sigma : float
        Distance length scale (Angstrom).
    gamma : float
        Regularisation as a fraction of std(y) (paper).
    zeta : float
        SOAP exponent.
    noise : float or None
        Plain diagonal term in kernel units that replaces gamma * std(y) when given.
    mean : {"zero", "mean"}
        Prior mean: zero (paper) or the training mean.
    std_includes_noise : bool
        Add the diagonal term to the predictive variance.
    batch_size : int
        Bonds per block at prediction (memory linear in n).
    fast_soap : bool
        Exact paths only: SOAP dot products and variance solve in float32.
    std_inducing : int
        Inducing training bonds of the low-rank predictive std (m; cost per bond O(m^2)).
    exact_std : bool
        Predict the std by the exact O(n_train^2)-per-bond solve (``predict(exact_std=...)``
        overrides per call).
    max_exact : int
        Largest training set fitted exactly; above it the sparse (projected-process) GP.
    sparse_inducing : int
        Inducing bonds of the sparse fit.
    seed : int
        Seed of the candidate draw of a sparse fit (exact fits are deterministic).
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
        std_inducing: int = 500,
        exact_std: bool = False,
        max_exact: int = 10_000,
        sparse_inducing: int = 1000,
        seed: int = 0,
    ) -> None:
        self.sigma = sigma
        self.gamma = gamma
        self.zeta = zeta
        self.noise = noise
        self.mean = mean
        self.std_includes_noise = std_includes_noise
        self.batch_size = batch_size
        self.fast_soap = fast_soap
        self.std_inducing = std_inducing
        self.exact_std = exact_std
        self.max_exact = max_exact
        self.sparse_inducing = sparse_inducing
        self.seed = seed

    @classmethod
    def paper(cls, bond_type: str, **overrides: object) -> BondGPR:
        """Estimator with the paper's hyper-parameters of ``bond_type`` (DOMAIN.md)."""
        hp: dict[str, object] = dict(PAPER_HYPERPARAMETERS.get(bond_type, {"zeta": 1.0, "sigma": 0.5, "gamma": 0.01}))
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
        if int(self.std_inducing) < 1 or int(self.sparse_inducing) < 1:
            raise ModelError("std_inducing and sparse_inducing must be >= 1 "
                             f"({self.std_inducing}, {self.sparse_inducing})")

    def fit(self, X: BondFeatures | np.ndarray, y: np.ndarray) -> BondGPR:
        """Fit on n bonds; ``y`` is -ICOHP (eV). Exact for n <= ``max_exact``, sparse above.
        Raises ModelError for NaN labels or n < 2."""
        self._check_params()
        if y is None:
            raise ModelError("BondGPR requires y to be passed, but the target y is None (-ICOHP labels, eV)")
        b = as_bonds(X)
        y = np.asarray(y, dtype=float)
        if y.ndim == 2 and y.shape[1] == 1:
            import warnings

            warnings.warn("A column-vector y was passed when a 1d array was expected; it is ravelled",
                          _sklearn_warning("DataConversionWarning"), stacklevel=2)
        y = y.ravel()
        if y.size != len(b):
            raise ModelError(f"{len(b)} bonds but {y.size} labels")
        if len(b) < 2:
            raise ModelError(f"cannot fit a GP on {len(b)} bond(s) (n_samples = {len(b)}); need at least 2")
        if not np.all(np.isfinite(y)) or not np.all(np.isfinite(b.distance)):
            bad = int(np.sum(~np.isfinite(y)) + np.sum(~np.isfinite(b.distance)))
            raise ModelError(f"{bad} NaN/inf labels or distances in the training data; drop them first")
        self.__dict__.pop("chol_", None)
        self.__dict__.pop("domain_basis_", None)  # the out-of-domain basis of the previous fit
        _DERIVED.pop(self, None)  # every derived float32/fused/domain array of the previous fit
        self.std_V_: np.ndarray | None = None
        self.std_M_: np.ndarray | None = None
        self.y_offset_ = float(y.mean()) if self.mean == "mean" else 0.0
        self.y_std_ = float(y.std())
        self.lam_ = float(self.noise) if self.noise is not None else float(self.gamma) * max(self.y_std_, 1e-12)
        self.n_train_ = int(y.size)
        self.distance_range_ = (float(b.distance.min()), float(b.distance.max()))
        yc = y - self.y_offset_
        if len(b) <= int(self.max_exact):
            self._fit_exact(b, yc)
        else:
            self._fit_sparse(b, yc)
        self.n_features_in_ = int(self.pbar_train_.shape[1])
        self._tabulate()
        return self

    def _fit_exact(self, b: _Bonds, yc: np.ndarray) -> None:
        sl = _linalg()
        self.sparse_ = False
        self.d_train_ = b.distance.copy()
        self.pbar_train_ = b.pbar(slice(None))
        K = bond_kernel(self.d_train_, self.pbar_train_, self.d_train_, self.pbar_train_, self.sigma, self.zeta)
        Kl = K.copy()
        Kl[np.diag_indices_from(Kl)] += self.lam_
        try:
            self.chol_ = sl.cho_factor(Kl, lower=True, overwrite_a=True, check_finite=False)
        except sl.LinAlgError:
            raise ModelError(
                f"kernel matrix not positive definite (n={len(b)}, gamma={self.gamma}, noise={self.noise}); "
                "increase gamma/noise or drop duplicate bonds") from None
        self.alpha_ = sl.cho_solve(self.chol_, yc, check_finite=False)
        n = yc.size
        self.s2_ = max(float(yc @ self.alpha_) / n, 1e-300)
        logdet = 2.0 * float(np.sum(np.log(np.diag(self.chol_[0]))))
        self.lml_ = -0.5 * n * np.log(2 * np.pi * self.s2_) - 0.5 * logdet - 0.5 * n
        # low-rank std: projected process on m seeded-random inducing training bonds
        self._set_lowrank(K)

    def _set_lowrank(self, K: np.ndarray) -> None:
        """Inducing bonds and the projected-process std factor B from the training kernel K
        (n, n, without the diagonal term).

        The inducing set is drawn by randomized pivoted Cholesky (:func:`_rpc_inducing`, seeded):
        each next bond with probability proportional to its residual prior variance
        k(b, b) - Q(b, b) given the bonds drawn so far, until the residual trace is at most
        ``STD_RESID_TOL`` x the trace of the leave-one-out posterior variances of the training
        bonds (the scale the std must resolve); at least ``std_inducing`` bonds and at most as
        many as the earlier uniform draw, max(``std_inducing``, STD_DOF_FACTOR x the effective
        degrees of freedom), so that no model predicts slower than before. With
        n <= ``std_inducing`` the std stays exact (no factor: the exact solve is then no dearer);
        m = n uses every training bond. ``_STD_SELECT = "uniform"`` restores the previous seeded
        uniform draw of max(``std_inducing``, STD_DOF_FACTOR x the effective degrees of freedom)."""
        n = K.shape[0]
        m = int(self.std_inducing)
        if n <= m:
            self.ind_index_ = np.arange(0)
            self.ind_d_ = np.zeros(0)
            self.ind_x_ = np.zeros((0, self.pbar_train_.shape[1]))
            self.std_B_ = None
            self.std_qf32_ = False
            return
        piv = None
        if hasattr(self, "chol_"):
            # effective degrees of freedom tr(K (K + lam I)^-1) = n - lam tr((K + lam I)^-1) and the
            # leave-one-out posterior variances 1 / [(K + lam I)^-1]_ii - lam
            Linv = _linalg().solve_triangular(self.chol_[0], np.eye(n), lower=True, check_finite=False)
            dinv = np.einsum("ij,ij->j", Linv, Linv)
            del Linv
            self.dof_ = float(n - self.lam_ * dinv.sum())
            fac = STD_DOF_FACTOR * (1.0 if self.zeta == 1.0 else 1.5)  # zeta != 1: less smooth in x
            m_uniform = max(m, int(np.ceil(fac * self.dof_)))
            if _STD_SELECT == "rpc":  # never more bonds than the uniform draw had (no model slower)
                vloo = np.clip(1.0 / dinv - self.lam_, 0.0, None)
                piv, self.std_resid_ = _rpc_inducing(K, STD_RESID_TOL * float(vloo.sum()), m, self.seed,
                                                     m_max=m_uniform)
            else:
                m = m_uniform
        if piv is None:
            # m >= n: every training bond is inducing (the projected process is then the exact GP up
            # to the 1e-8 jitter) - still cheaper than the exact solve (float32 product, no solve)
            piv = np.arange(n) if m >= n else np.sort(np.random.default_rng(self.seed).choice(n, m, replace=False))
        Lp = _chol_jitter(K[np.ix_(piv, piv)])
        L = _linalg().solve_triangular(Lp, K[piv], lower=True, check_finite=False)  # (m, n) = L^T
        self.ind_index_ = piv
        self.ind_d_ = self.d_train_[piv].copy()
        self.ind_x_ = np.asarray(self.pbar_train_[piv], dtype=float).copy()
        self.std_B_ = _pp_factor(Lp, L @ L.T, self.lam_)
        chk = np.random.default_rng(self.seed + 1).choice(n, min(n, 512), replace=False)
        self.std_qf32_ = _qf32_ok(np.diag(K)[chk], K[np.ix_(chk, piv)], self.std_B_)

    def _kernel_rows(self, b: _Bonds, d_m: np.ndarray, x_m: np.ndarray, sl: slice, rows: _Rows | None,
                     S: np.ndarray | None) -> np.ndarray:
        """k(bonds sl, inducing) (k, m) from per-atom products S (u, m) or per-bond rows."""
        if rows is not None and S is not None:
            dots = 0.5 * (S[rows.inv_a[sl]] + S[rows.inv_b[sl]])
        else:
            dots = b.pbar(sl) @ x_m.T
        return distance_term(b.distance[sl], d_m, self.sigma) * _power(dots, self.zeta)

    def _fit_sparse(self, b: _Bonds, yc: np.ndarray) -> None:
        """Projected-process GP with m seeded-random inducing bonds, kernel rows in batches."""
        sl = _linalg()
        n = yc.size
        m = min(int(self.sparse_inducing), n)
        piv = np.sort(np.random.default_rng(self.seed).choice(n, m, replace=False))
        d_m, x_m = b.distance[piv].copy(), b.pbar(piv)
        Lp = _chol_jitter(bond_kernel(d_m, x_m, d_m, x_m, self.sigma, self.zeta))
        rows = _atom_rows(b)
        S = None
        if rows is not None:
            S = np.asarray(rows.U, dtype=float) @ x_m.T
        A = np.zeros((m, m))
        Ly = np.zeros(m)
        yy = float(yc @ yc)
        bs = max(int(self.batch_size), 1)
        for s in range(0, n, bs):
            sli = slice(s, min(s + bs, n))
            Knm = self._kernel_rows(b, d_m, x_m, sli, rows, S)
            Lb = sl.solve_triangular(Lp, Knm.T, lower=True, check_finite=False)  # (m, k) = L^T block
            A += Lb @ Lb.T
            Ly += Lb @ yc[sli]
        lam = self.lam_
        Cb = sl.cho_factor(lam * np.eye(m) + A, lower=True, check_finite=False)
        beta = sl.cho_solve(Cb, Ly, check_finite=False)  # (lam I + L^T L)^-1 L^T y
        self.sparse_ = True
        self.d_train_ = d_m
        self.pbar_train_ = x_m
        self.alpha_ = sl.solve_triangular(Lp, beta, lower=True, trans="T", check_finite=False)
        # amplitude and evidence of the projected process: (L L^T + lam I)^-1 y by Woodbury
        quad = (yy - float(Ly @ beta)) / lam
        self.s2_ = max(quad / n, 1e-300)
        logdet = (n - m) * np.log(lam) + 2.0 * float(np.sum(np.log(np.diag(Cb[0]))))
        self.lml_ = -0.5 * n * np.log(2 * np.pi * self.s2_) - 0.5 * logdet - 0.5 * n
        self.ind_index_ = piv
        self.ind_d_ = d_m
        self.ind_x_ = x_m
        self.std_B_ = _pp_factor(Lp, A, lam)
        chk = b.take(np.random.default_rng(self.seed + 1).choice(n, min(n, 512), replace=False))
        pc = chk.pbar(slice(None))
        self.std_qf32_ = _qf32_ok(_power(np.einsum("ij,ij->i", pc, pc), self.zeta),
                                  bond_kernel(chk.distance, pc, d_m, x_m, self.sigma, self.zeta), self.std_B_)

    def _tabulate(self) -> None:
        """Chebyshev table of the mean (zeta = 1) on the training window widened by sigma."""
        lo = max(self.distance_range_[0] - self.sigma, 0.0)
        hi = self.distance_range_[1] + self.sigma
        self.cheb_window_ = np.array([lo, hi])
        self.cheb_ = None
        self.cheb_error_ = float("nan")
        if self.zeta == 1.0 and hi > lo:
            C, err = _tabulate_mean(self.d_train_, self.pbar_train_, self.alpha_, self.sigma, lo, hi)
            self.cheb_, self.cheb_error_ = C, err
            if C is None:
                log.info("mean table did not reach %.0e eV (%.1e); exact mean is used", MEAN_TOL, err)

    def log_marginal_likelihood(self) -> float:
        """Log marginal likelihood of the training labels with the amplitude profiled out
        (of the projected process for a sparse fit)."""
        self._require_fitted()
        return float(self.lml_)

    def _require_fitted(self) -> None:
        if not hasattr(self, "alpha_"):
            raise _not_fitted("BondGPR is not fitted; call fit first")

    @property
    def inducing_index(self) -> np.ndarray:
        """Training-bond indices (m,) of the inducing bonds of the std (and the sparse mean)."""
        self._require_fitted()
        return self.ind_index_

    # ------------------------------------------------------------ predict
    def predict(
        self, X: BondFeatures | np.ndarray, return_std: bool = False, batch_size: int | None = None,
        fast_soap: bool | None = None, exact_std: bool | None = None, exact_mean: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted -ICOHP (eV) of n bonds, shape (n,), and the predictive std (eV, (n,)) when
        ``return_std``.

        By default the mean comes from the Chebyshev table (zeta = 1; within ``MEAN_TOL`` eV of
        the exact GP mean) and the std from the low-rank (inducing-bond) form; both cost O(n)
        whatever n_train. ``exact_std`` (default: the estimator's) solves the exact variance
        (O(n n_train^2); not for a sparse fit, whose projected-process std is already its own);
        ``exact_mean`` sums over the training bonds. ``fast_soap`` sets float32 for the exact
        paths of this call only (thread-safe: the estimator is not modified).
        """
        self._require_fitted()
        b = as_bonds(X)
        mean, std, _ = self._predict_fast(b, return_std, batch_size, fast_soap, exact_std, exact_mean)
        if return_std:
            assert std is not None  # computed when asked for
            return mean, std
        return mean

    def _predict_fast(self, b: _Bonds, return_std: bool, batch_size: int | None = None,
                      fast_soap: bool | None = None, exact_std: bool | None = None, exact_mean: bool = False,
                      project: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, dict | None]:
        """(mean, std or None, aux) of :meth:`predict`. ``project`` (p, k): also return, in
        ``aux["proj"]`` (n, k, float32), the projections pbar @ project made in the same product as
        the inducing rows, and in ``aux["kss"]`` (n,) k(x, x); aux is None when the low-rank path
        did not run (then the caller computes them itself)."""
        p = b.n_features
        if p != self.pbar_train_.shape[1]:
            raise ModelError(f"X has {p} features, but BondGPR is expecting {self.pbar_train_.shape[1]} features "
                             "as input (SOAP length p of [d | pA | pB])")
        n = len(b)
        bs = max(int(batch_size or self.batch_size), 1)
        fast = self.fast_soap if fast_soap is None else bool(fast_soap)
        asked_exact = (self.exact_std if exact_std is None else bool(exact_std)) and not self.sparse_
        ex_std = asked_exact or self.std_B_ is None  # n_train <= std_inducing: exact is no dearer
        table = None if exact_mean else self.cheb_
        per_bond = b.atom_soap is not None and bool(np.array_equal(b.atom_i, b.atom_j))  # type: ignore[arg-type]
        rows = None if per_bond or n == 0 else _atom_rows(b, max_ratio=_ROWS_RATIO)
        # a small exact fit (no factor B) on per-atom rows: its exact variance through the inverse
        # Cholesky factor, in float64, in the same per-atom machinery (no per-bond solve)
        exact_rows = (return_std and ex_std and not asked_exact and table is not None and rows is not None
                      and self.std_B_ is None and hasattr(self, "chol_"))
        std: np.ndarray | None = None
        if table is None:
            if not return_std or ex_std:
                mean, std = self._predict_exact(b, return_std, bs, fast) if return_std else \
                    (self._predict_exact(b, False, bs, fast), None)
                return mean, std, None
            mean = self._predict_exact(b, False, bs, fast)
        elif return_std and ex_std and not exact_rows:
            std = self._predict_exact(b, True, bs, fast)[1]  # the mean comes from the table (float64)
        want_lr = return_std and std is None
        if table is None and not want_lr:
            return mean, std, None
        if n == 0:
            return np.empty(0), (np.empty(0) if return_std else None), None
        if table is not None:
            mean = np.empty(n)
        N = table.shape[0] if table is not None else 0
        lo, hi = (float(v) for v in self.cheb_window_)
        m = self.ind_d_.size if want_lr else 0
        k_proj = 0 if project is None or not want_lr else int(project.shape[1])
        G = self._fused_columns(project) if want_lr and not exact_rows else None  # inducing rows + projection
        qf = np.float32 if self.std_qf32_ else np.float64
        BqT = None
        if want_lr:  # (m, m_keep): the rows of B that can matter, or the exact inverse factor, transposed
            BqT = self._chol_inv_t() if exact_rows else self._std_bt_kept(qf)
        kss = np.empty(n) if want_lr else np.empty(0)
        if want_lr:
            std = np.empty(n)
        proj = np.empty((n, k_proj), np.float32) if k_proj else None
        C64 = None
        if N:
            C64 = self._table64()
        if rows is not None:  # per-atom products, combined per bond
            if N:
                assert C64 is not None
                St = _mean_products(rows.U, C64)  # (u, N) float64
                for s in range(0, n, bs):
                    sl = slice(s, min(s + bs, n))
                    Pt = St[rows.inv_a[sl]]
                    Pt += St[rows.inv_b[sl]]
                    mean[sl] = 0.5 * _table_sum(Pt, b.distance[sl], lo, hi) + self.y_offset_
            if want_lr:
                assert BqT is not None and std is not None
                kss[:] = self._pair_diag_rows(b, rows, bs, None if rows.U.dtype == np.float64 else rows.U)
                if exact_rows:  # every training bond, float64 products
                    Si = _mean_products(rows.U, self._exact_columns(project))
                    self._lowrank_rows(b, rows, Si, BqT, kss, std, proj, self.d_train_)
                else:
                    assert G is not None
                    self._lowrank_rows(b, rows, _rows_at32(rows.U, G), BqT, kss, std, proj, self.ind_d_)
        else:
            g_scale = -0.5 / (self.sigma * self.sigma)
            for s in range(0, n, bs):
                sl = slice(s, min(s + bs, n))
                Pt = PG = None
                if per_bond:
                    assert b.atom_soap is not None and b.atom_i is not None
                    Xb = b.atom_soap[b.atom_i[sl]]
                    if N:
                        assert C64 is not None
                        Pt = _mean_products(Xb, C64)
                    if want_lr:
                        X32 = Xb if Xb.dtype == np.float32 else Xb.astype(np.float32)
                        kss[sl] = _power(np.einsum("ij,ij->i", Xb, Xb).astype(float), self.zeta)
                        assert G is not None
                        PG = _fused_products(X32, G)
                    del Xb
                else:
                    pb = b.pbar(sl)
                    if N:
                        Pt = pb @ C64
                    if want_lr:
                        assert G is not None
                        kss[sl] = _power(np.einsum("ij,ij->i", pb, pb), self.zeta)
                        PG = _fused_products(pb.astype(np.float32), G)
                if N:
                    assert Pt is not None
                    mean[sl] = _table_sum(Pt, b.distance[sl], lo, hi) + self.y_offset_
                if want_lr:
                    assert PG is not None and BqT is not None
                    if proj is not None:
                        proj[sl] = PG[:, m:]
                    diff = b.distance[sl, None].astype(qf) - self.ind_d_[None, :].astype(qf)
                    diff *= diff
                    diff *= qf(g_scale)
                    kr = np.exp(diff, out=diff)  # distance term, fused, in the form's dtype
                    kr *= _power(PG[:, :m].astype(qf, copy=False), self.zeta)
                    v = kr @ BqT
                    var = kss[sl] - np.einsum("ij,ij->i", v, v, dtype=float)
                    if self.std_includes_noise:
                        var += self.lam_
                    assert std is not None
                    std[sl] = np.sqrt(np.clip(var, 0.0, None) * self.s2_)
        if N:
            out = np.flatnonzero((b.distance < lo) | (b.distance > hi))
            if out.size:  # outside the table: the exact sum for these few bonds
                mean[out] = self._predict_exact(b.take(out), False, bs, False)
        aux = {"kss": kss, "proj": proj} if want_lr else None
        return mean, std, aux

    def _lowrank_rows(self, b: _Bonds, rows: _Rows, Si: np.ndarray, BqT: np.ndarray, kss: np.ndarray,
                      std: np.ndarray, proj: np.ndarray | None, d_ind: np.ndarray) -> None:
        """Std of bonds from per-atom products Si (u, m + k) with the m bonds of lengths ``d_ind``
        (the inducing bonds, :func:`_rows_at32`; or every training bond, float64): per block of
        ``_LR_BLOCK`` bonds, k_m = g(d) ((S_a + S_b) / 2)^zeta and var = k(x, x) - |k_m BqT|^2,
        written into ``std``; the projection columns averaged into ``proj``. Every temporary is
        one preallocated buffer reused by all blocks."""
        n = len(b)
        m = d_ind.size
        qf = BqT.dtype.type
        bs = min(_LR_BLOCK, n)
        half = 0.5 ** float(self.zeta)  # (S_a + S_b)^zeta = 2^zeta pbar-products^zeta
        d_ind = np.asarray(d_ind, dtype=qf)
        g_scale = qf(-0.5 / (self.sigma * self.sigma))
        A = np.empty((bs, Si.shape[1]), Si.dtype)  # S_a + S_b (and the projection sums)
        Bb = np.empty_like(A)
        D = np.empty((bs, m), qf)  # distance term, then k_m
        Vb = np.empty((bs, BqT.shape[1]), qf)
        for s in range(0, n, bs):
            e = min(s + bs, n)
            q = e - s
            a, bb, dd, vv = A[:q], Bb[:q], D[:q], Vb[:q]
            np.take(Si, rows.inv_a[s:e], axis=0, out=a, mode="clip")
            np.take(Si, rows.inv_b[s:e], axis=0, out=bb, mode="clip")
            a += bb
            if proj is not None:
                np.multiply(a[:, m:], np.float32(0.5), out=proj[s:e])
            np.subtract.outer(b.distance[s:e].astype(qf), d_ind, out=dd)
            np.square(dd, out=dd)
            dd *= g_scale
            np.exp(dd, out=dd)
            if self.zeta == 1.0:
                dd *= a[:, :m]
            else:
                dd *= _power(a[:, :m].astype(qf, copy=False), self.zeta)
            np.matmul(dd, BqT, out=vv)
            sq = np.square(vv, out=dd[:, :vv.shape[1]])  # k_m no longer needed: its buffer holds the squares
            var = kss[s:e] - (half * half) * np.add.reduce(sq, axis=1, dtype=np.float64)
            if self.std_includes_noise:
                var += self.lam_
            std[s:e] = np.sqrt(np.clip(var, 0.0, None) * self.s2_)

    def _table64(self) -> np.ndarray:
        """Mean table transposed (p, N), float64, contiguous (cached: the saved table may be a
        memory map)."""
        assert self.cheb_ is not None
        c = _derived(self).get("_C64")
        if c is None or c.shape != self.cheb_.shape[::-1]:
            c = _derived(self)["_C64"] = np.ascontiguousarray(np.asarray(self.cheb_, dtype=float).T)
        return c

    def _fused_columns(self, project: np.ndarray | None) -> _Fused:
        """The float32 matrices of the one product per row block that gives both the inducing
        SOAP products of the std and the out-of-domain projection ``project`` (p, k): either
        [inducing vectors^T | project] (p, m + k), or, with the principal basis V (p, r) of
        :meth:`_set_std_basis`, [V | project columns not in V] followed by (V^T inducing^T) (r, m)."""
        key = (id(project), None if project is None else project.shape, self.ind_x_.shape)
        c = _derived(self).get("_G32")
        if c is not None and c[0] == key and c[2] is project:
            return c[1]
        V = getattr(self, "std_V_", None)
        k = 0 if project is None else int(project.shape[1])
        if V is None:
            cols = [np.asarray(self.ind_x_, dtype=np.float32).T]
            if project is not None:
                cols.append(np.asarray(project, dtype=np.float32))
            f = _Fused(np.ascontiguousarray(np.concatenate(cols, axis=1)), None, self.ind_d_.size, k, None)
        else:
            r = V.shape[1]
            in_basis = project is not None and k <= r and np.allclose(project, V[:, :k], rtol=0, atol=1e-9)
            cols = [np.asarray(V, dtype=np.float32)]
            if project is not None and not in_basis:
                cols.append(np.asarray(project, dtype=np.float32))
            f = _Fused(np.ascontiguousarray(np.concatenate(cols, axis=1)),
                       np.ascontiguousarray(np.asarray(self.std_M_, dtype=np.float32)), self.ind_d_.size, k,
                       slice(0, k) if in_basis else slice(r, r + k))
        _derived(self)["_G32"] = (key, f, project)
        return f

    def _set_std_basis(self) -> bool:
        """Principal basis V (p, r) of the training descriptors for the std's inducing products,
        x . x_j = (V^T x) . (V^T x_j) (the error is x_res . x_j,res, the parts outside V): r is the
        smallest rank leaving at most ``_STD_PROJ_RESID`` of the training descriptors' energy
        outside V (1e-5; bond-centred model on all run-21 bonds, 4,000 bonds per type of the 10k
        frame against the exact std: p95 0.51 -> 0.55 % (Zr-Cu, r 500 -> 402), 0.62 -> 0.64 %
        (Zr-Zr, 411 -> 329), 0.86 -> 0.89 % (Cu-Cu, 426 -> 344) from 2e-6 to 1e-5); kept only
        when it makes the product cheaper by ``_STD_PROJ_GAIN`` (m inducing bonds: p r + r m <
        gain p m). Called once for a model's final estimators (``BondModel.fit``), not for the
        held-out fits of the calibration.
        Returns whether the basis is used."""
        self.std_V_ = None
        self.std_M_ = None
        _derived(self).pop("_G32", None)
        if self.std_B_ is None:
            return False
        P = np.asarray(self.pbar_train_, dtype=float)
        n, p = P.shape
        m = int(self.ind_d_.size)
        r_max = int(_STD_PROJ_GAIN * p * m / (p + m))
        if r_max < 16:
            return False
        if n >= p:
            w, U = np.linalg.eigh(P.T @ P)
        else:
            w, U = np.linalg.eigh(P @ P.T)
        w, U = np.clip(w[::-1], 0.0, None), U[:, ::-1]
        tail = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]]) / max(float(w.sum()), 1e-300)
        ok = np.flatnonzero(tail <= _STD_PROJ_RESID)
        r = int(ok[0]) if ok.size else w.size
        if r > r_max or r == 0:
            return False
        V = U[:, :r] if n >= p else (P.T @ U[:, :r]) / np.sqrt(np.maximum(w[:r], 1e-300))
        V = np.ascontiguousarray(V)
        self.std_V_ = V
        self.std_M_ = np.ascontiguousarray(V.T @ np.asarray(self.ind_x_, dtype=float).T)
        return True

    def _std_w2(self) -> np.ndarray | None:
        """w_i^2 = e_i / (lam + e_i) (m,) of the rows of B (``_STD_DROP``), from
        B (K_mm + jitter I) B^T = diag(w^2) (K_mm rebuilt from the inducing bonds, the jitter of
        :func:`_chol_jitter`); None when that product is not diagonal (a B of another form: then
        no row is dropped). Cached per estimator; saved with the model (``std_w2``)."""
        assert self.std_B_ is not None
        c = _derived(self).get("_w2")
        if c is not None and c[0] == self.std_B_.shape:
            return c[1]
        B = np.asarray(self.std_B_, dtype=float)
        m = B.shape[0]
        Kmm = bond_kernel(self.ind_d_, self.ind_x_, self.ind_d_, self.ind_x_, self.sigma, self.zeta)
        Kmm[np.diag_indices_from(Kmm)] += 1e-8 * float(np.mean(np.diag(Kmm)))
        H = B @ Kmm
        w2 = np.einsum("ij,ij->i", H, B)
        chk = np.linspace(0, m - 1, min(m, 24)).astype(int)  # a few full rows of B K B^T: diagonal?
        Gc = H[chk] @ B.T
        Gc[np.arange(chk.size), chk] = 0.0
        ok = bool(np.all(np.isfinite(w2)) and np.max(np.abs(Gc)) <= 1e-4 and w2.min() > -1e-6 and w2.max() < 1 + 1e-6)
        out = np.clip(w2, 0.0, 1.0) if ok else None
        _derived(self)["_w2"] = (self.std_B_.shape, out)
        return out

    def _std_bt_kept(self, dtype) -> np.ndarray:
        """The rows of B with e_i > ``_STD_DROP`` lam (all rows when their weights are unknown),
        transposed, contiguous, in ``dtype`` (m, m_keep; cached): the GEMM's faster layout. The
        variance is raised by at most a factor 1 + _STD_DROP."""
        assert self.std_B_ is not None  # only called on the low-rank variance path
        key = (np.dtype(dtype).str, self.std_B_.shape)
        c = _derived(self).get("_BkeptT")
        if c is not None and c[0] == key:
            return c[1]
        B = self.std_B_
        w2 = self._std_w2()
        if w2 is not None:
            keep = np.flatnonzero(w2 > _STD_DROP / (1.0 + _STD_DROP))  # e / lam = w2 / (1 - w2) > drop
            if keep.size < B.shape[0]:
                B = B[keep]
        BT = np.ascontiguousarray(np.asarray(B, dtype=dtype).T)
        _derived(self)["_BkeptT"] = (key, BT)
        return BT

    def _std_B_kept(self, dtype) -> np.ndarray:  # noqa: N802 - B is the factor's name in the maths
        """The kept rows of B (m_keep, m) in ``dtype``: :meth:`_std_bt_kept` transposed (a view)."""
        return self._std_bt_kept(dtype).T

    def _chol_inv_t(self) -> np.ndarray:
        """(L^-1)^T (n, n), contiguous, of the exact fit's Cholesky factor L L^T = K + lam I
        (cached): the exact variance is then k(x, x) - |k (L^-1)^T|^2, one product like the
        low-rank form's. Only for small fits (n_train <= ``std_inducing``)."""
        c = _derived(self).get("_LinvT")
        if c is None or c.shape != self.chol_[0].shape:
            L = np.asarray(self.chol_[0], dtype=float)
            Linv = _linalg().solve_triangular(L, np.eye(L.shape[0]), lower=True, check_finite=False)
            c = _derived(self)["_LinvT"] = np.ascontiguousarray(Linv.T)
        return c

    def _exact_columns(self, project: np.ndarray | None) -> np.ndarray:
        """[pbar_train^T | project] (p, n_train + k) float64 (cached per projection)."""
        c = _derived(self).get("_Gexact")
        if c is not None and c[0] is project:
            return c[1]
        cols = [np.asarray(self.pbar_train_, dtype=float).T]
        if project is not None:
            cols.append(np.asarray(project, dtype=float))
        G = np.ascontiguousarray(np.concatenate(cols, axis=1))
        _derived(self)["_Gexact"] = (project, G)
        return G

    def _ind_rows(self) -> np.ndarray:
        """Inducing-bond vectors in the dtype of the std's SOAP products (``_IND_DTYPE``)."""
        if np.float64 == _IND_DTYPE:
            return self.ind_x_
        c = _derived(self).get("_ind32")
        if c is None or c.shape != self.ind_x_.shape:
            c = _derived(self)["_ind32"] = np.asarray(self.ind_x_, dtype=_IND_DTYPE)
        return c

    def _pair_diag_rows(self, b: _Bonds, rows: _Rows | None, bs: int, U32: np.ndarray | None = None) -> np.ndarray:
        """k(b, b) = (pbar . pbar)^zeta for every bond, (n,): squared norms in float64, the
        pA . pB products from the float32 rows ``U32`` when given (products in float32 summed in
        float64: ~3e-8 relative), by blocks of ``_PAIR_BLOCK`` bonds gathered into two reused
        buffers."""
        n = len(b)
        out = np.empty(n)
        if rows is None:
            for s in range(0, n, bs):
                pb = b.pbar(slice(s, min(s + bs, n)))
                out[s:s + bs] = np.einsum("ij,ij->i", pb, pb)
            return _power(out, self.zeta)
        norm2 = np.einsum("ij,ij->i", rows.U, rows.U, dtype=float)
        if np.array_equal(rows.inv_a, rows.inv_b):
            return _power(norm2[rows.inv_a], self.zeta)
        U = rows.U if U32 is None else U32
        dot = _pair_dots(U, rows.inv_a, rows.inv_b)
        out = norm2[rows.inv_a]
        out += norm2[rows.inv_b]
        out += 2.0 * dot
        out *= 0.25
        return _power(out, self.zeta)

    # ------------------------------------------------------- exact paths
    def _predict_exact(self, b: _Bonds, return_std: bool, bs: int, fast: bool):
        """Exact GP mean (and std through the Cholesky factor): O(n n_train) / O(n n_train^2)."""
        if return_std and not hasattr(self, "chol_"):
            raise ModelError("the exact std needs the Cholesky factor, which this (sparse) model does not have")
        n = len(b)
        mean = np.empty(n)
        std = np.empty(n) if return_std else None
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
                v = _linalg().solve_triangular(L, k.T.astype(L.dtype, copy=False), lower=True, check_finite=False)
                var = self._pair_diag(b, sl, atom) - np.einsum("ij,ij->j", v, v).astype(float)
                if self.std_includes_noise:
                    var += self.lam_
                std[sl] = np.sqrt(np.clip(var, 0.0, None) * self.s2_)
        return (mean, std) if return_std else mean

    def _soap_dots_atomlevel(self, b: _Bonds, bs: int, fast: bool) -> _AtomLevel | None:
        """Per-atom products S = atom_soap[u] @ pbar_train.T (when cheaper than per bond), the
        squared norms of those atoms, and (``fast_soap``) their float32 SOAP for the diagonal."""
        if b.atom_soap is None:
            return None
        u, inv = np.unique(np.concatenate([b.atom_i, b.atom_j]), return_inverse=True)
        if u.size >= 0.8 * len(b):
            return None
        S = np.empty((u.size, self.pbar_train_.shape[0]))
        norm2 = np.empty(u.size)
        P = self._train_soap(fast)
        rows32 = np.empty((u.size, P.shape[1]), np.float32) if fast else None
        for s in range(0, u.size, bs):
            rows = np.asarray(b.atom_soap[u[s:s + bs]], dtype=float)
            norm2[s:s + bs] = np.einsum("ij,ij->i", rows, rows)
            rows = rows.astype(P.dtype, copy=False)
            if rows32 is not None:
                rows32[s:s + bs] = rows
            S[s:s + bs] = rows @ P.T
        return _AtomLevel(S, inv[: len(b)], inv[len(b):], norm2, rows32)

    def _train_soap(self, fast: bool) -> np.ndarray:
        """Training mean SOAP in the dtype used for prediction dot products."""
        if not fast:
            return np.asarray(self.pbar_train_, dtype=float)
        c = _derived(self).get("_pbar32")
        if c is None or c.shape != self.pbar_train_.shape:
            c = _derived(self)["_pbar32"] = np.asarray(self.pbar_train_, dtype=np.float32)
        return c

    def _chol_for_predict(self, fast: bool) -> np.ndarray:
        """Cholesky factor for the exact variance solve: float64, or float32 with ``fast_soap``."""
        if not fast:
            return np.asarray(self.chol_[0])
        c = _derived(self).get("_chol32")
        if c is None or c.shape != self.chol_[0].shape:
            c = _derived(self)["_chol32"] = np.tril(self.chol_[0]).astype(np.float32)
        return c

    def _pair_diag(self, b: _Bonds, sl: slice, atom: _AtomLevel | None) -> np.ndarray:
        """k(b, b) = (pbar . pbar)^zeta = (|pA|^2 + |pB|^2 + 2 pA.pB)^zeta / 4^zeta for bonds ``sl``."""
        if atom is None:
            pb = b.pbar(sl)
            return _power(np.einsum("ij,ij->i", pb, pb), self.zeta)
        ia, ib = atom.inv_a[sl], atom.inv_b[sl]
        if atom.rows32 is not None:
            dot = np.einsum("ij,ij->i", atom.rows32[ia], atom.rows32[ib]).astype(float)
        else:
            assert b.atom_soap is not None and b.atom_i is not None and b.atom_j is not None
            dot = np.einsum("ij,ij->i", np.asarray(b.atom_soap[b.atom_i[sl]], dtype=float),
                            np.asarray(b.atom_soap[b.atom_j[sl]], dtype=float))
        return _power(0.25 * (atom.norm2[ia] + atom.norm2[ib] + 2.0 * dot), self.zeta)

    # --------------------------------------------------------- persistence
    #: Arrays of a fitted estimator (``state``); the exact fit adds ``chol``.
    ARRAYS = ("d_train", "pbar_train", "alpha", "ind_index", "ind_d", "ind_x", "std_B", "cheb", "cheb_window")
    # optional: std_V, std_M (principal basis), std_w2 (row weights of std_B), chol, domain_V

    def state(self) -> tuple[dict[str, object], dict[str, np.ndarray]]:
        """(JSON-able metadata, arrays) describing the fitted estimator."""
        self._require_fitted()
        meta = {
            "params": self.get_params(), "y_offset": self.y_offset_, "y_std": self.y_std_, "lam": self.lam_,
            "s2": self.s2_, "lml": self.lml_, "n_train": self.n_train_, "distance_range": list(self.distance_range_),
            "sparse": bool(self.sparse_), "cheb_error": self.cheb_error_, "std_qf32": bool(self.std_qf32_),
        }
        arrays = {"d_train": self.d_train_, "pbar_train": self.pbar_train_, "alpha": self.alpha_,
                  "ind_index": self.ind_index_, "ind_d": self.ind_d_, "ind_x": self.ind_x_,
                  "cheb_window": self.cheb_window_}
        if self.std_B_ is not None:
            arrays["std_B"] = self.std_B_
            w2 = self._std_w2()  # row weights of B (which rows prediction drops); derived at load if absent
            if w2 is not None:
                arrays["std_w2"] = w2
        if self.cheb_ is not None:
            arrays["cheb"] = self.cheb_
        if getattr(self, "std_V_", None) is not None:
            arrays["std_V"] = self.std_V_
            arrays["std_M"] = self.std_M_
        if hasattr(self, "chol_"):
            arrays["chol"] = self.chol_[0]
        basis = getattr(self, "domain_basis_", None)  # out-of-domain basis (bondml.model.domain)
        if basis is not None:
            arrays["domain_V"] = basis
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> BondGPR:
        """Rebuild a fitted estimator from :meth:`state` output (no refit). Arrays may be
        read-only memory maps (they are used as they are, not copied). A state without the
        fast-prediction arrays (format 1) gets them computed here (one kernel matrix)."""
        params = dict(meta["params"])
        est = cls(**params)
        est.d_train_ = np.asarray(arrays["d_train"], dtype=float)
        est.pbar_train_ = np.asarray(arrays["pbar_train"], dtype=float)
        est.alpha_ = np.asarray(arrays["alpha"], dtype=float)
        if "domain_V" in arrays:
            setattr(est, "domain_basis_", np.asarray(arrays["domain_V"], dtype=float))  # noqa: B010 (set by domain)
        n = est.d_train_.size
        if "chol" in arrays:
            est.chol_ = (np.asarray(arrays["chol"], dtype=float), True)
            if est.chol_[0].shape != (n, n):
                raise ModelError("model arrays have inconsistent shapes")
        if not (est.pbar_train_.shape[0] == est.alpha_.size == n):
            raise ModelError("model arrays have inconsistent shapes")
        est.y_offset_ = float(meta["y_offset"])
        est.y_std_ = float(meta["y_std"])
        est.lam_ = float(meta["lam"])
        est.s2_ = float(meta["s2"])
        est.lml_ = float(meta["lml"])
        est.n_train_ = int(meta["n_train"])
        est.distance_range_ = tuple(meta["distance_range"])
        est.sparse_ = bool(meta.get("sparse", False))
        est.n_features_in_ = int(est.pbar_train_.shape[1])
        if "ind_d" in arrays:
            est.ind_index_ = np.asarray(arrays["ind_index"])
            est.ind_d_ = np.asarray(arrays["ind_d"], dtype=float)
            est.ind_x_ = np.asarray(arrays["ind_x"], dtype=float)
            est.std_B_ = np.asarray(arrays["std_B"], dtype=float) if "std_B" in arrays else None
            if est.std_B_ is not None and "std_w2" in arrays and arrays["std_w2"].shape == est.std_B_.shape[:1]:
                _derived(est)["_w2"] = (est.std_B_.shape, np.asarray(arrays["std_w2"], dtype=float))
            est.cheb_window_ = np.asarray(arrays["cheb_window"], dtype=float)
            est.cheb_ = np.asarray(arrays["cheb"], dtype=float) if "cheb" in arrays else None
            est.cheb_error_ = float(meta.get("cheb_error", float("nan")))
            est.std_qf32_ = bool(meta.get("std_qf32", False))
            if "std_V" in arrays and "std_M" in arrays:
                est.std_V_ = np.asarray(arrays["std_V"], dtype=float)
                est.std_M_ = np.asarray(arrays["std_M"], dtype=float)
        else:  # format 1: derive the fast-prediction arrays from the exact fit
            if not hasattr(est, "chol_"):
                raise ModelError("model has neither the Cholesky factor nor the low-rank std arrays")
            est._derive_fast()
        return est

    def _derive_fast(self) -> None:
        """Inducing bonds, std factor, std basis and mean table of an exact fit loaded without them."""
        _linalg()
        K = bond_kernel(self.d_train_, self.pbar_train_, self.d_train_, self.pbar_train_, self.sigma, self.zeta)
        self._set_lowrank(K)
        del K
        self._tabulate()
        self._set_std_basis()  # as BondModel.fit does for a model's estimators


def _atom_rows(b: _Bonds, max_ratio: float = 1.0) -> _Rows | None:
    """Unique atom rows of the bonds when there are at most ``max_ratio`` x as many as bonds
    (per-atom products then cost no more than per-bond ones); None for dense input."""
    if b.atom_soap is None or len(b) == 0:
        return None
    assert b.atom_i is not None and b.atom_j is not None  # set with atom_soap
    n = len(b)
    if np.array_equal(b.atom_i, b.atom_j):  # one row per bond (bond-centred descriptor)
        u, inv = np.unique(b.atom_i, return_inverse=True)
        return _Rows(b.atom_soap[u], inv, inv)
    both = np.concatenate([b.atom_i, b.atom_j])
    lo, hi = int(both.min()), int(both.max()) + 1
    u, inv = np.unique(both, return_inverse=True)
    if u.size > max_ratio * n:
        return None
    if u.size >= 0.9 * (hi - lo):  # the atoms form (nearly) one block: use it in place, no gather
        return _Rows(b.atom_soap[lo:hi], both[:n] - lo, both[n:] - lo)
    return _Rows(b.atom_soap[u], inv[:n], inv[n:])


def _rows_at32(U: np.ndarray, f: _Fused, chunk: int = 1024) -> np.ndarray:
    """:func:`_fused_products` of per-atom rows U (u, p) -> (u, m + k) float32, ``chunk`` rows at a
    time through reused buffers (rows cast to float32 there when needed), each product written
    straight into the result."""
    u = U.shape[0]
    out = np.empty((u, f.m + f.k), np.float32)
    if u == 0:
        return out
    if f.M is None and U.dtype == np.float32:
        return np.matmul(U, f.G, out=out)
    q0 = min(chunk, u)
    Z = np.empty((q0, f.G.shape[1]), np.float32) if f.M is not None else None
    X = np.empty((q0, U.shape[1]), np.float32) if U.dtype != np.float32 else None
    for s in range(0, u, chunk):
        e = min(s + chunk, u)
        Xs = U[s:e]
        if X is not None:
            Xs = X[:e - s]
            np.copyto(Xs, U[s:e], casting="same_kind")
        if Z is None:
            np.matmul(Xs, f.G, out=out[s:e])
            continue
        assert f.M is not None
        z = Z[:e - s]
        np.matmul(Xs, f.G, out=z)
        np.matmul(z[:, :f.M.shape[0]], f.M, out=out[s:e, :f.m])
        if f.k:
            assert f.proj is not None
            out[s:e, f.m:] = z[:, f.proj]
    return out


def _pair_dots(U: np.ndarray, ia: np.ndarray, ib: np.ndarray, block: int = _PAIR_BLOCK) -> np.ndarray:
    """U[ia[k]] . U[ib[k]] for every k, (n,) float64: products in U's dtype, summed in float64,
    ``block`` rows at a time through two preallocated buffers (no fresh gathers per block).
    Indices must be valid rows of U (``np.take(mode="clip")``: with the default mode and ``out``
    numpy buffers every call, 3x slower here)."""
    n = ia.size
    out = np.empty(n)
    bs = max(1, min(block, n))
    A = np.empty((bs, U.shape[1]), U.dtype)
    B = np.empty_like(A)
    for s in range(0, n, bs):
        e = min(s + bs, n)
        a, b = A[:e - s], B[:e - s]
        np.take(U, ia[s:e], axis=0, out=a, mode="clip")
        np.take(U, ib[s:e], axis=0, out=b, mode="clip")
        np.multiply(a, b, out=a)
        np.add.reduce(a, axis=1, dtype=np.float64, out=out[s:e])
    return out


#: Rows per block of the mean's table products from float32 rows (converted to float64 in one
#: reused buffer; exact float64 products, faster than float32 feature blocks summed in float64).
_MEAN_ROWS = 128


def _mean_products(Xb: np.ndarray, C64: np.ndarray) -> np.ndarray:
    """Xb @ C (k, N) in float64 for rows Xb (k, p) of any float dtype: float64 rows directly,
    others converted ``_MEAN_ROWS`` rows at a time into one float64 buffer (no float64 copy of
    the rows, no float32 rounding: within 1e-12 eV of the float64 table)."""
    if Xb.dtype == np.float64:
        return Xb @ C64
    k = Xb.shape[0]
    out = np.empty((k, C64.shape[1]))
    if k == 0:
        return out
    buf = np.empty((min(_MEAN_ROWS, k), Xb.shape[1]))
    for s in range(0, k, _MEAN_ROWS):
        e = min(s + _MEAN_ROWS, k)
        np.copyto(buf[:e - s], Xb[s:e])
        np.matmul(buf[:e - s], C64, out=out[s:e])
    return out
