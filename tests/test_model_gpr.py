"""BondGPR: predictive mean/std against scikit-learn, input forms, batching, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel

from bondml.errors import ModelError
from bondml.model.gpr import BondGPR, pack_features
from bondml.model.kernel import bond_kernel, mean_soap
from bondml.store.dataset import BondFeatures

from _model_helpers import synthetic_dataset


class _PaperKernel(Kernel):
    """The paper's kernel on dense rows [d | pbar] for scikit-learn (no hyper-parameter fitting)."""

    def __init__(self, sigma=0.5, zeta=1.0):
        self.sigma = sigma
        self.zeta = zeta

    def __call__(self, X, Y=None, eval_gradient=False):
        Y = X if Y is None else Y
        return bond_kernel(X[:, 0], X[:, 1:], Y[:, 0], Y[:, 1:], self.sigma, self.zeta)

    def diag(self, X):
        return np.einsum("ij,ij->i", X[:, 1:], X[:, 1:]) ** self.zeta

    def is_stationary(self):
        return False


@pytest.mark.parametrize("zeta", [1.0, 2.0])
def test_mean_and_std_match_sklearn(zeta):
    ds = synthetic_dataset(seed=1)
    tr, te = ds.select(ds.sub_run < 3), ds.select(ds.sub_run == 3)
    ours = BondGPR(sigma=0.7, gamma=0.02, zeta=zeta).fit(tr.features(), tr.y)
    mu, sd = ours.predict(te.features(), return_std=True)
    dense = lambda x: np.column_stack([x.distance, mean_soap(x.features().soap_i, x.features().soap_j)])  # noqa: E731
    ref = GaussianProcessRegressor(ConstantKernel(ours.s2_, "fixed") * _PaperKernel(0.7, zeta),
                                   alpha=ours.s2_ * ours.lam_, optimizer=None, normalize_y=False)
    ref.fit(dense(tr), tr.y)
    rmu, rsd = ref.predict(dense(te), return_std=True)
    np.testing.assert_allclose(mu, rmu, atol=1e-8)
    np.testing.assert_allclose(sd, rsd, atol=1e-8)
    assert np.isclose(ours.lam_, 0.02 * tr.y.std())


def test_dense_input_batches_and_atom_level_path_agree():
    ds = synthetic_dataset(seed=2)
    f = ds.features()
    m = BondGPR(zeta=2.0).fit(f, ds.y)
    a, sa = m.predict(f, return_std=True)  # many bonds per atom -> atom-level SOAP products
    b, sb = m.predict(pack_features(f), return_std=True)  # dense [d | pA | pB]
    c, sc = m.predict(f, return_std=True, batch_size=7)
    for x in (b, c):
        np.testing.assert_allclose(a, x, atol=1e-10)
    for x in (sb, sc):
        np.testing.assert_allclose(sa, x, atol=1e-8)


def test_sklearn_protocol_and_lml():
    ds = synthetic_dataset(seed=3)
    X = pack_features(ds.features())
    est = BondGPR(sigma=0.5, gamma=0.01)
    assert est.get_params()["sigma"] == 0.5
    c = clone(est).set_params(sigma=1.0).fit(X, ds.y)
    assert c.sigma == 1.0 and c.score(X, ds.y) > 0.9
    K = bond_kernel(ds.distance, mean_soap(*[X[:, 1:25], X[:, 25:]]), ds.distance, mean_soap(X[:, 1:25], X[:, 25:]),
                    1.0, 1.0) + c.lam_ * np.eye(len(ds))
    n = len(ds)
    s2 = ds.y @ np.linalg.solve(K, ds.y) / n
    lml = -0.5 * n * np.log(2 * np.pi * s2) - 0.5 * np.linalg.slogdet(K)[1] - 0.5 * n
    assert np.isclose(c.log_marginal_likelihood(), lml)


def test_paper_defaults_per_type():
    assert BondGPR.paper("Zr-Cu").get_params()["sigma"] == 1.0
    assert BondGPR.paper("Zr-Cu").gamma == 0.04 and BondGPR.paper("Cu-Al").gamma == 0.005


def test_bad_input_is_one_line_model_error():
    ds = synthetic_dataset(seed=4)
    y = ds.y.copy()
    y[3] = np.nan
    with pytest.raises(ModelError, match="NaN"):
        BondGPR().fit(ds.features(), y)
    with pytest.raises(ModelError, match="at least 2"):
        BondGPR().fit(ds.features().take(np.array([0])), ds.y[:1])
    with pytest.raises(ModelError, match="not fitted"):
        BondGPR().predict(ds.features())
    with pytest.raises(ModelError, match="2-D array"):
        BondGPR().fit(np.zeros((5, 4)), np.zeros(5))
    with pytest.raises(ModelError, match="gamma"):
        BondGPR(gamma=0).fit(ds.features(), ds.y)
    f = ds.features()
    with pytest.raises(ModelError, match="unequal"):
        BondGPR().fit(BondFeatures(f.distance, f.atom_soap, f.atom_i[:-1], f.atom_j), ds.y)


def test_fast_soap_prediction_close_to_float64():
    ds = synthetic_dataset(seed=8)
    f = ds.features()
    a = BondGPR(zeta=2.0).fit(f, ds.y)
    b = BondGPR(zeta=2.0, fast_soap=True).fit(f, ds.y)
    ma, sa = a.predict(f, return_std=True)
    mb, sb = b.predict(f, return_std=True)
    assert np.max(np.abs(ma - mb)) < 1e-3 and np.max(np.abs(sa - sb)) < 1e-3
