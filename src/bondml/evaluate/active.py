"""Active learning algorithms: which cells to label next, and how well that choice pays.

Ranking: every candidate cell (a held-out labelled sub-run, a new augmentation of an existing
quenched cell, a new MD run of an existing or new composition) is scored by the model's mean
predictive standard deviation (eV) over its bonds in the label window (:func:`score_cell`);
among the most uncertain ``top_fraction`` the batch is picked greedily by max-min distance
between the cells' mean SOAP vectors (diversity, :func:`greedy_maxmin`), starting from the most
uncertain one. The batch is split into *exploit* (augmentations / held-out sub-runs of existing
runs) and *explore* (new runs) by :func:`rank_and_split`.

:func:`selection_curve` / :func:`summarise_benchmark` measure the loop on labelled cells:
learning curves of uncertainty-driven vs random cell selection at the same labelling budget
(cells), several seeds.

The pipeline's stages (:mod:`bondml.pipeline.active`, batch files and approval) call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ase import Atoms

from ..constants import LABEL_WINDOW
from ..core.table import BondColumns
from ..errors import ConfigError

EXPLOIT, EXPLORE = "exploit", "explore"


# ------------------------------------------------------------------ candidates
@dataclass
class Candidate:
    """A cell that could be labelled next. ``kind`` exploit|explore; ``origin`` says how to make
    it (held-out sub-run, augmentation of a cell, new run); ``xyz`` its structure file."""

    id: str
    kind: str
    origin: dict[str, Any]
    xyz: str
    score: float = float("nan")
    n_bonds: int = 0
    descriptor: np.ndarray | None = field(default=None, repr=False)
    per_type_std: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CellBonds(BondColumns):
    """Bonds of one unlabelled cell in the label window plus their descriptor rows (model input).

    Bond columns ``bond_type``, ``distance`` (Angstrom), ``atom_i``, ``atom_j`` (rows of
    ``atom_soap``: the per-atom SOAP (n_atoms, p), or one bond-centred row per bond (n_bonds, p)
    for ``kind="bond"`` settings); ``select``/``of_type``/``counts``/``to_table`` from
    :class:`~bondml.core.table.BondColumns` (``atom_soap`` is shared, not subset).
    """

    bond_type: np.ndarray
    distance: np.ndarray
    atom_soap: np.ndarray
    atom_i: np.ndarray
    atom_j: np.ndarray

    _columns: ClassVar[tuple[str, ...]] = ("bond_type", "distance", "atom_i", "atom_j")


def cell_bonds(xyz: str | Path, settings, window: tuple[float, float] = LABEL_WINDOW) -> CellBonds:
    """Periodic bonds (``window``, Angstrom) and model features (``settings``, either kind) of the cell in ``xyz``."""
    from ase.io import read

    from ..features.soap import compute_bond_features
    from ..structure.bonds import find_bonds

    atoms = read(str(xyz))
    assert isinstance(atoms, Atoms)  # one image (the last) of the file
    b = find_bonds(atoms, window=window)
    rows, row_i, row_j = compute_bond_features(atoms, b.i, b.j, b.shift, settings)
    return CellBonds(b.type.astype(str), b.distance, rows, row_i, row_j)


def score_cell(model, cb: CellBonds) -> tuple[float, dict[str, float], np.ndarray]:
    """(mean predictive std over the bonds the model has a GP for (eV), per-type mean std,
    cell descriptor = mean of the descriptor rows: the atoms' SOAP, or the bonds' for ``kind="bond"``)."""
    desc = cb.atom_soap.mean(axis=0)
    cb = cb.select(np.isin(cb.bond_type, list(model.estimators)))
    if not len(cb):
        return float("nan"), {}, desc
    r = model.predict_bonds(cb.bond_type, cb.distance, cb.atom_soap, cb.atom_i, cb.atom_j,
                            model.settings, return_std=True)
    bt = cb.bond_type
    per = {str(t): float(np.mean(r["std"][bt == t])) for t in np.unique(bt)}
    return float(np.mean(r["std"])), per, desc


def greedy_maxmin(scores: np.ndarray, desc: np.ndarray, n: int, top_fraction: float = 0.5) -> list[int]:
    """Indices of ``n`` items: the most uncertain first, then repeatedly the item of the top
    ``top_fraction`` (at least ``n``) by score whose smallest descriptor distance to the chosen
    ones is largest (ties: higher score). NaN scores are never chosen."""
    scores = np.asarray(scores, float)
    ok = np.flatnonzero(np.isfinite(scores))
    if n <= 0 or ok.size == 0:
        return []
    order = ok[np.argsort(-scores[ok], kind="stable")]
    k = min(order.size, max(n, int(np.ceil(top_fraction * order.size))))
    pool = list(order[:k])
    chosen = [pool.pop(0)]
    d = np.asarray(desc, float)
    while pool and len(chosen) < n:
        mind = np.array([min(np.linalg.norm(d[p] - d[c]) for c in chosen) for p in pool])
        best = max(range(len(pool)), key=lambda q: (round(float(mind[q]), 12), scores[pool[q]]))
        chosen.append(pool.pop(best))
    return [int(c) for c in chosen]


def rank_and_split(cands: Sequence[Candidate], batch_size: int, explore_fraction: float,
                   top_fraction: float) -> list[Candidate]:
    """Pick ``round(batch_size * explore_fraction)`` explore and the rest exploit candidates
    (a group short of candidates gives its places to the other)."""
    groups = {EXPLORE: [c for c in cands if c.kind == EXPLORE], EXPLOIT: [c for c in cands if c.kind == EXPLOIT]}
    n_explore = min(len(groups[EXPLORE]), int(round(batch_size * explore_fraction)))
    n_exploit = min(len(groups[EXPLOIT]), batch_size - n_explore)
    n_explore = min(len(groups[EXPLORE]), batch_size - n_exploit)
    picked: list[Candidate] = []
    for kind, n in ((EXPLOIT, n_exploit), (EXPLORE, n_explore)):
        g = groups[kind]
        if not g or n == 0:
            continue
        dim = max(c.descriptor.size for c in g if c.descriptor is not None)
        desc = np.stack([c.descriptor if c.descriptor is not None else np.zeros(dim) for c in g])
        picked += [g[i] for i in greedy_maxmin(np.array([c.score for c in g]), desc, n, top_fraction)]
    return picked


# ------------------------------------------------------------------ benchmark on labelled cells
def _fit(ds, max_train: int, seed: int):
    from ..model.bondmodel import BondModel

    return BondModel.fit(ds, max_train_per_type=max_train, seed=seed, min_bonds=5)


def _rmse_on(model, ds) -> float:
    m = np.isin(ds.bond_type, list(model.estimators))
    sub = ds.select(np.flatnonzero(m))
    r = model.predict_dataset(sub, return_std=False)
    return float(np.sqrt(np.mean((r["minus_icohp"] - sub.y) ** 2)))


def _cell_uncertainty(model, ds, cells: np.ndarray, groups: np.ndarray) -> np.ndarray:
    m = np.isin(ds.bond_type, list(model.estimators)) & np.isin(groups, cells)
    sub = ds.select(np.flatnonzero(m))
    sd = model.predict_dataset(sub, return_std=True)["std"]
    g = groups[m]
    return np.array([float(np.mean(sd[g == c])) for c in cells])


def selection_curve(ds, strategy: str, seed: int, n_test: int = 4, max_train: int = 600,
                    budget: int | None = None) -> dict[str, Any]:
    """RMSE (eV, all bonds of ``n_test`` held-out cells) vs number of labelled cells, adding one
    cell at a time by ``strategy`` = ``uncertainty`` (largest mean predictive std) or ``random``.
    The test cells and the first cell depend only on ``seed`` (same for both strategies)."""
    groups = ds.groups("cell")
    cells = np.unique(groups)
    rng = np.random.default_rng(seed)
    test = rng.choice(cells, n_test, replace=False)
    pool = [c for c in rng.permutation(cells) if c not in set(test)]
    chosen = [pool.pop(0)]
    pick_rng = np.random.default_rng(seed + 1000)
    test_ds = ds.select(np.flatnonzero(np.isin(groups, test)))
    budget = min(budget or len(cells), len(cells) - n_test)
    sizes, rmse, picks = [], [], []
    while True:
        train = ds.select(np.flatnonzero(np.isin(groups, chosen)))
        model = _fit(train, max_train, seed)
        sizes.append(len(chosen))
        rmse.append(_rmse_on(model, test_ds))
        if not pool or len(chosen) >= budget:
            break
        if strategy == "uncertainty":
            u = _cell_uncertainty(model, ds, np.array(pool), groups)
            k = int(np.argmax(u))
        elif strategy == "random":
            k = int(pick_rng.integers(len(pool)))
        else:
            raise ConfigError(f"selection strategy {strategy!r} is not uncertainty or random")
        chosen.append(pool.pop(k))
        picks.append(chosen[-1])
    return {"strategy": strategy, "seed": seed, "test_cells": sorted(map(str, test)), "first": str(chosen[0]),
            "picks": list(map(str, picks)), "n_cells": sizes, "rmse": rmse}


def cells_to_reach(n: Sequence[float], err: Sequence[float], target: float) -> float:
    """Smallest (linearly interpolated) number of cells at which the curve reaches ``target``; inf if never."""
    x, e = np.asarray(n, float), np.asarray(err, float)
    if e[0] <= target:
        return float(x[0])
    for k in range(1, x.size):
        if e[k] <= target:
            f = (e[k - 1] - target) / (e[k - 1] - e[k])
            return float(x[k - 1] + f * (x[k] - x[k - 1]))
    return float("inf")


def summarise_benchmark(curves: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean curves per strategy and the ratio of cells needed at equal error.

    For each size n_r of the random curve (except the first and the last, where both coincide
    by construction), the target is the mean random RMSE at n_r; the ratio is
    cells(uncertainty) / cells(random) to reach it. ``ratio_median`` summarises them.
    """
    out: dict[str, Any] = {"curves": curves}
    means = {}
    for s in ("uncertainty", "random"):
        cs = [c for c in curves if c["strategy"] == s]
        L = min(len(c["rmse"]) for c in cs)
        arr = np.array([c["rmse"][:L] for c in cs])
        means[s] = {"n_cells": cs[0]["n_cells"][:L], "rmse_mean": arr.mean(0).tolist(), "rmse_std": arr.std(0).tolist()}
    out["mean"] = means
    rows = []
    n_r, e_r = means["random"]["n_cells"], means["random"]["rmse_mean"]
    for k in range(1, len(n_r) - 1):
        need_u = cells_to_reach(means["uncertainty"]["n_cells"], means["uncertainty"]["rmse_mean"], e_r[k])
        need_r = cells_to_reach(n_r, e_r, e_r[k])
        rows.append({"target_rmse": e_r[k], "cells_random": need_r, "cells_uncertainty": need_u,
                     "ratio": need_u / need_r if np.isfinite(need_u) else float("inf")})
    out["equal_error"] = rows
    ratios = [r["ratio"] for r in rows if np.isfinite(r["ratio"])]
    out["ratio_median"] = float(np.median(ratios)) if ratios else float("nan")
    return out


def plot_benchmark(summary: dict[str, Any], path: str | Path) -> Path:
    """Learning curves (mean +- std over seeds) of both strategies as a PNG."""
    from ..plotting import new_figure, save

    fig, ax = new_figure(figsize=(5.5, 4))
    for s, col in (("uncertainty", "tab:red"), ("random", "tab:blue")):
        m = summary["mean"][s]
        n, mu, sd = np.array(m["n_cells"]), np.array(m["rmse_mean"]), np.array(m["rmse_std"])
        ax.plot(n, mu, "o-", color=col, label=f"{s} selection")
        ax.fill_between(n, mu - sd, mu + sd, color=col, alpha=0.2)
    ax.set_xlabel("labelled cells")
    ax.set_ylabel("RMSE of -ICOHP on held-out cells (eV)")
    ax.set_title(f"Cell selection, {len(summary['curves']) // 2} seeds; ratio at equal error "
                 f"{summary['ratio_median']:.2f}", fontsize=9)
    ax.legend()
    return save(fig, path, dpi=120)
