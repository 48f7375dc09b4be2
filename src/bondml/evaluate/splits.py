"""Train/test splits that do not leak (whole cells, runs, compositions), all seeded.

``bond_level_split`` reproduces the paper's random bond split: bonds of one cell land on both
sides, so it is optimistic; it exists only to compare with the paper and says so in its name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..constants import DEFORMATION_GROUPS  # noqa: F401 - re-exported
from ..model.domain import deformation_group  # noqa: F401 - re-exported

PAPER_PROTOCOL = "bond-level random split (paper protocol; leaky: bonds of one cell on both sides)"


@dataclass(frozen=True)
class Split:
    """One train/test split: index arrays and a label naming the protocol and held-out groups."""

    train: np.ndarray
    test: np.ndarray
    protocol: str
    held_out: tuple[str, ...] = ()


def bond_level_split(n: int, n_train: int, n_test: int | None = None, seed: int = 0) -> Split:
    """The paper's random split of n bonds: ``n_train`` train, ``n_test`` (default rest) test."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train = min(n_train, n)
    test = perm[n_train:] if n_test is None else perm[n_train:n_train + n_test]
    return Split(np.sort(perm[:n_train]), np.sort(test), PAPER_PROTOCOL)


def leave_one_group_out(groups: np.ndarray, level: str = "cell") -> Iterator[Split]:
    """One split per group (e.g. leave-one-cell-out), groups in sorted order."""
    g = np.asarray(groups).astype(str)
    for u in np.unique(g):
        yield Split(np.flatnonzero(g != u), np.flatnonzero(g == u), f"leave-one-{level}-out", (u,))


def group_kfold(groups: np.ndarray, n_splits: int = 5, seed: int = 0, level: str = "cell") -> Iterator[Split]:
    """k folds of whole groups, groups shuffled with ``seed``."""
    g = np.asarray(groups).astype(str)
    u = np.random.default_rng(seed).permutation(np.unique(g))
    n_splits = min(n_splits, u.size)
    for k, fold in enumerate(np.array_split(u, n_splits)):
        te = np.isin(g, fold)
        yield Split(np.flatnonzero(~te), np.flatnonzero(te), f"group-{n_splits}-fold by {level} (fold {k})",
                    tuple(fold.tolist()))


def group_holdout(groups: np.ndarray, test_groups: list[str] | None = None, test_fraction: float = 0.25,
                  seed: int = 0, level: str = "cell") -> Split:
    """Hold out ``test_groups`` (or a seeded ``test_fraction`` of the groups) entirely."""
    g = np.asarray(groups).astype(str)
    u = np.unique(g)
    if test_groups is None:
        k = max(1, int(round(test_fraction * u.size)))
        test_groups = np.random.default_rng(seed).choice(u, k, replace=False).tolist()
    te = np.isin(g, test_groups)
    return Split(np.flatnonzero(~te), np.flatnonzero(te), f"hold-out by {level}", tuple(sorted(test_groups)))


LDGO_PROTOCOL = "leave-deformation-group-out"


def leave_deformation_group_out(sub_run: np.ndarray, cells: np.ndarray | None = None) -> Iterator[Split]:
    """One split per deformation family present: every cell of that family (in every run) is
    held out, the other families train. ``cells`` (group label per bond, e.g.
    ``BondDataset.groups("cell")``) is only checked: no cell may fall in two families."""
    g = deformation_group(sub_run)
    if cells is not None:
        c = np.asarray(cells).astype(str)
        pairs = np.unique(np.char.add(np.char.add(c, "|"), g))
        if np.unique([p.split("|")[0] for p in pairs]).size != pairs.size:
            raise ValueError("a cell label spans two deformation groups")
    for name in DEFORMATION_GROUPS:
        te = g == name
        if te.any() and (~te).any():
            yield Split(np.flatnonzero(~te), np.flatnonzero(te), LDGO_PROTOCOL, (name,))


def leave_composition_out(nc: np.ndarray) -> Iterator[Split]:
    """One split per composition: train on the others (label-only tables: distance models)."""
    yield from leave_one_group_out(np.asarray(nc).astype(str), "composition")


def leave_run_out(runs: np.ndarray, n_splits: int | None = None, seed: int = 0) -> Iterator[Split]:
    """Whole runs held out (``runs``: "nc/run" labels): one split per run, or ``n_splits`` seeded
    folds of runs."""
    if n_splits is None:
        yield from leave_one_group_out(runs, "run")
    else:
        for sp in group_kfold(runs, n_splits, seed, "run"):
            yield Split(sp.train, sp.test, f"leave-run-out ({n_splits} folds of runs)", sp.held_out)
