"""Small synthetic bond datasets for fast model tests (seeded)."""

from __future__ import annotations

import numpy as np

from bondml.features.soap import FeatureSettings
from bondml.store.dataset import BondDataset


def synthetic_dataset(n_cells: int = 4, atoms: int = 30, p: int = 24, seed: int = 0,
                      types: tuple[str, ...] = ("Zr-Zr", "Zr-Cu", "Cu-Cu")) -> BondDataset:
    """Bonds between random atoms with unit SOAP-like vectors; y a smooth function of d and pbar."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=p)
    cols: dict[str, list] = {k: [] for k in ("bond_type", "distance", "y", "nc", "run", "sub_run", "i", "j",
                                             "shift", "label_source", "atom_i", "atom_j")}
    soaps = []
    for c in range(n_cells):
        s = np.abs(rng.normal(size=(atoms, p))) + 0.5
        s /= np.linalg.norm(s, axis=1, keepdims=True)
        soaps.append(s)
        nb = 60
        i = rng.integers(0, atoms, nb)
        j = (i + rng.integers(1, atoms, nb)) % atoms
        d = rng.uniform(2.3, 3.7, nb)
        pbar = 0.5 * (s[i] + s[j])
        y = 3.0 * np.exp(-1.5 * (d - 2.4)) + 0.3 * np.tanh(pbar @ w) + 0.01 * rng.normal(size=nb)
        cols["bond_type"].append(np.array(types)[rng.integers(0, len(types), nb)])
        cols["distance"].append(d)
        cols["y"].append(y)
        cols["nc"].append(np.full(nb, "Zr49Cu49Al2"))
        cols["run"].append(np.full(nb, 1))
        cols["sub_run"].append(np.full(nb, c))
        cols["i"].append(i)
        cols["j"].append(j)
        cols["shift"].append(np.zeros((nb, 3), int))
        cols["label_source"].append(np.full(nb, "lobster"))
        cols["atom_i"].append(i + c * atoms)
        cols["atom_j"].append(j + c * atoms)
    arr = {k: np.concatenate(v) for k, v in cols.items()}
    return BondDataset(**arr, atom_soap=np.concatenate(soaps), settings=FeatureSettings(), lineage={"synthetic": seed})
