"""A model trained on one label source against labels of another (e.g. the LOBSTER-trained model
against approximate GFN1-xTB labels): agreement per bond type, never mixing the sources."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..constants import BOND_TYPES


def compare_with_labels(model: Any, ds: Any, min_bonds: int = 3) -> dict[str, dict[str, float]]:
    """Per bond type: Pearson r between the model's -ICOHP and ``ds.y``, and the RMSE after a
    linear fit of the predictions on the labels (eV), with its slope.

    Parameters
    ----------
    model : bondml.model.bondmodel.BondModel
        The fitted model (its prior/fallback evaluated at each type's first composition).
    ds : BondDataset
        Bonds labelled by the other source (``ds.y``, eV).
    min_bonds : int
        Types with fewer bonds (or without a model) are left out.

    Returns
    -------
    dict
        {bond type: {"n", "pearson_r", "rmse_after_linear_fit", "slope"}}.
    """
    rows = {}
    for t in BOND_TYPES:
        sub = ds.of_type(t)
        if len(sub) < min_bonds or t not in model.bond_types:
            continue
        p = model.for_composition(str(sub.nc[0])).predict_dataset(sub)["minus_icohp"]
        a, b = np.polyfit(sub.y, p, 1)
        rows[t] = {"n": len(sub), "pearson_r": float(np.corrcoef(sub.y, p)[0, 1]),
                   "rmse_after_linear_fit": float(np.sqrt(np.mean((a * sub.y + b - p) ** 2))), "slope": float(a)}
    return rows
