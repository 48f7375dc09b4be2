"""Accuracy and calibration metrics (energies in eV)."""

from __future__ import annotations

import numpy as np


def regression_metrics(y: np.ndarray, pred: np.ndarray, std: np.ndarray | None = None) -> dict[str, float]:
    """n, RMSE, MAE, bias (mean of pred - y), R^2, and with ``std`` the fraction of errors inside
    1 and 2 predicted sigma (``cov1``, ``cov2``; a calibrated Gaussian gives 0.683 / 0.954)."""
    y = np.asarray(y, float)
    e = np.asarray(pred, float) - y
    n = int(y.size)
    out: dict[str, float] = {"n": n}
    if n == 0:
        return out
    ss = float(np.sum((y - y.mean()) ** 2))
    out.update(rmse=float(np.sqrt(np.mean(e**2))), mae=float(np.mean(np.abs(e))), bias=float(np.mean(e)),
               r2=float(1 - np.sum(e**2) / ss) if ss > 0 else float("nan"))
    if std is not None:
        s = np.asarray(std, float)
        out.update(cov1=float(np.mean(np.abs(e) <= s)), cov2=float(np.mean(np.abs(e) <= 2 * s)),
                   mean_std=float(np.mean(s)))
    return out


def per_type_metrics(bond_type: np.ndarray, y: np.ndarray, pred: np.ndarray,
                     std: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """:func:`regression_metrics` per bond type present, plus ``"all"``."""
    bt = np.asarray(bond_type).astype(str)
    out = {}
    from ..chemistry import types_in_order

    for t in types_in_order(np.unique(bt).tolist()):
        m = bt == t
        if m.any():
            out[t] = regression_metrics(y[m], pred[m], None if std is None else std[m])
    out["all"] = regression_metrics(y, pred, std)
    return out


def format_table(results: dict[str, dict[str, float]],
                 keys: tuple[str, ...] = ("n", "rmse", "mae", "r2", "cov1", "cov2"), title: str = "") -> str:
    """Plain-text table, one row per type."""
    lines = [title] if title else []
    lines.append(f"{'type':8s}" + "".join(f"{k:>9s}" for k in keys))
    for t, r in results.items():
        cells = []
        for k in keys:
            v = r.get(k, float("nan"))
            cells.append(f"{int(v):9d}" if k == "n" else f"{v:9.3f}")
        lines.append(f"{t:8s}" + "".join(cells))
    return "\n".join(lines)
