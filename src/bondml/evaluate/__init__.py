"""Tune: leak-free splits, metrics, grouped CV / LOCO, tuning, learning curves, plots,
single-cell validation and the original label-only tables."""

from .metrics import per_type_metrics, regression_metrics
from .splits import Split, bond_level_split, group_holdout, group_kfold, leave_one_group_out

__all__ = ["Split", "bond_level_split", "group_holdout", "group_kfold", "leave_one_group_out",
           "per_type_metrics", "regression_metrics"]
