"""BondGPR against scikit-learn's estimator checks: exactly the checks listed in docs/api.md fail.

Two runs of every check of the installed scikit-learn: on ``BondGPR()`` (the layout checks and
the defects fail) and on BondGPR through a plain-matrix adapter (only the defects fail). The
lists are read from docs/api.md, so the page and the code cannot drift apart.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from bondml.errors import BondmlError, ModelError
from bondml.model.gpr import BondGPR

pytest.importorskip("sklearn")

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _listed(section: str) -> set[str]:
    """Check names (first column, in backticks) of the table between ``<!-- sklearn-<section> -->`` markers."""
    text = API_MD.read_text(encoding="utf-8")
    m = re.search(rf"<!-- sklearn-{section} -->(.*?)<!-- /sklearn-{section} -->", text, re.S)
    assert m, f"{API_MD}: no sklearn-{section} table"
    return set(re.findall(r"^\| `(check_\w+)` \|", m.group(1), re.M))


class DenseBondGPR(BondGPR):
    """BondGPR on a plain (n, k) matrix X: bonds of length ``X[:, 0]`` between two atoms whose SOAP
    is ``X`` (dense layout ``[X[:, :1] | X | X]``, p = k). Anything else is passed through as is,
    so that BondGPR's own validation answers."""

    @staticmethod
    def _as_layout(X):
        a = np.asarray(X)
        if a.ndim == 2 and a.shape[1]:
            return np.column_stack([a[:, :1], a, a])
        return X

    def fit(self, X, y):
        return super().fit(self._as_layout(X), y)

    def predict(self, X, **kw):
        return super().predict(self._as_layout(X), **kw)


def _failed(estimator: BondGPR) -> tuple[set[str], int]:
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = check_estimator(estimator, on_fail=None)
    return {r["check_name"] for r in res if r["status"] == "failed"}, len(res)


def test_bondgpr_fails_exactly_the_listed_checks() -> None:
    layout, defects = _listed("layout"), _listed("defects")
    assert not layout & defects
    failed, n = _failed(BondGPR())
    assert n >= 50  # the whole suite ran
    assert failed == layout | defects, {"not listed": sorted(failed - layout - defects),
                                        "listed but passing": sorted((layout | defects) - failed)}


def test_through_the_layout_adapter_only_the_defects_fail() -> None:
    failed, _ = _failed(DenseBondGPR())
    defects = _listed("defects")
    assert failed == defects, {"not listed": sorted(failed - defects), "listed but passing": sorted(defects - failed)}


def test_adapter_is_bondgpr_on_the_dense_layout() -> None:
    """The adapter only rearranges columns: same predictions as BondGPR on [d | pA | pB]."""
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(2.4, 3.4, 40), rng.random((40, 3))])
    y = np.sin(3 * X[:, 0]) + X[:, 1]
    a = DenseBondGPR(sigma=0.4).fit(X, y)
    b = BondGPR(sigma=0.4).fit(np.column_stack([X[:, :1], X, X]), y)
    assert a.n_features_in_ == 4
    np.testing.assert_allclose(a.predict(X), b.predict(np.column_stack([X[:, :1], X, X])), rtol=0, atol=0)


def test_model_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid parameter 'sigmaa'"):
        BondGPR().set_params(sigmaa=1.0)
    assert issubclass(ModelError, BondmlError) and issubclass(ModelError, ValueError)
