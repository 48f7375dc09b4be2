"""bondml's public Python API: the names a notebook user can guess, as ``bondml.<name>``.

Thin wrappers over the library (the same functions the CLI and the pipeline call): the bond
store (:class:`~bondml.store.db.BondStore`), training (:func:`bondml.evaluate.shift.train_model`),
the fitted model artifact (:class:`bondml.model.bondmodel.BondModel`, kept as ``model_``), the
bond finder, SOAP and per-frame inference (:func:`bondml.deploy.infer.predict_trajectory`).
Units: Angstrom, eV. Element symbols everywhere.

Example (run by pytest as a doctest on the bundled reference data; a few seconds):

>>> import tempfile, ase.io, bondml
>>> from bondml.data import reference_root, run21_dir
>>> tmp = tempfile.mkdtemp()
>>> store = bondml.ingest(reference_root(), store=f"{tmp}/db")       # or bondml.BondStore(path)
>>> model = bondml.BondModel(hyperparameters="paper", max_train_per_type=100).fit(store.load_dataset())
>>> model.bond_types_                                               # Al-Al: distance-only fallback
('Zr-Zr', 'Zr-Cu', 'Zr-Al', 'Cu-Cu', 'Cu-Al', 'Al-Al')
>>> _ = model.save(f"{tmp}/model"); model = bondml.load_model(f"{tmp}/model")
>>> atoms = ase.io.read(run21_dir() / "2000" / "0" / "Zr49Cu49Al2.xyz")
>>> table = model.predict(atoms)                                    # ase.Atoms -> BondPredictions
>>> df = table.to_pandas()
>>> list(df.columns)[:7]
['i', 'j', 'bond_type', 'distance', 'minus_icohp', 'std', 'flags']
>>> bool((df.minus_icohp[df.bond_type == "Zr-Cu"] > 0).all())       # bonding, in eV
True
>>> _ = model.annotate(atoms)                                       # per-atom sums into atoms.arrays
>>> bool(abs(atoms.arrays["sum_minus_icohp"].sum() - 2 * df.minus_icohp.sum()) < 1e-9)   # each bond: 2 atoms
True
>>> summary = bondml.predict_trajectory(model, run21_dir() / "2000" / "0" / "Zr49Cu49Al2.xyz", out=f"{tmp}/pred")
>>> summary["frames"], summary["bonds_total_first_frame"] == len(table)
(1, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .core.table import BondTable

__all__ = ["BondModel", "BondPredictions", "ingest", "load_model", "predict", "annotate", "predict_trajectory"]

#: Per-atom arrays written by :meth:`BondModel.annotate` (eV; count).
SUM_ARRAY = "sum_minus_icohp"
COORDINATION_ARRAY = "coordination"
_PANDAS_COLUMNS = ("i", "j", "bond_type", "distance", "minus_icohp", "std", "flags", "shift")


@dataclass(frozen=True)
class BondPredictions(BondTable):
    """Predicted bonds of one structure.

    A :class:`~bondml.core.BondTable` with columns ``i``,
    ``j`` (0-based atoms), ``bond_type``, ``distance`` (Angstrom), ``minus_icohp`` and ``std``
    (eV), ``flags`` (``""``, ``"fallback"``, ``"out_of_domain"`` or both, comma-separated),
    ``shift`` (n, 3) lattice shift, plus the boolean ``fallback``/``out_of_domain`` columns
    behind ``flags``. ``to_pandas()``/``to_arrow()`` give the first seven then shift_x/y/z.
    """

    def _flat(self) -> dict[str, np.ndarray]:
        full = BondTable({k: self.columns[k] for k in _PANDAS_COLUMNS if k in self.columns})._flat()
        return full


def _flags(fallback: np.ndarray, ood: np.ndarray) -> np.ndarray:
    out = np.full(fallback.size, "", dtype=object)
    out[fallback & ~ood] = "fallback"
    out[~fallback & ood] = "out_of_domain"
    out[fallback & ood] = "fallback,out_of_domain"
    return out.astype(str)


def predict(model: Any, atoms: Any, precision: str | None = None, return_std: bool = True) -> BondPredictions:
    """Every bond of ``atoms`` in the model's per-type windows, with predicted -ICOHP.

    Parameters
    ----------
    model : BondModel or bondml.model.bondmodel.BondModel
        A fitted model.
    atoms : ase.Atoms
        A periodic Zr-Cu-Al structure (Angstrom).
    precision : {"float32", "float64"}, optional
        Arithmetic of the model (default: as trained).
    return_std : bool
        Compute the predictive std (eV); NaN otherwise.

    Returns
    -------
    BondPredictions
        One row per bond (each unordered pair and periodic image once).
    """
    from .deploy.outputs import prediction_table
    from .features.soap import compute_bond_features
    from .structure.bonds import find_bonds

    m = _artifact(model)
    bonds = find_bonds(atoms, windows=m.windows)
    m.check_bond_types(bonds.type)
    rows, row_i, row_j = compute_bond_features(atoms, bonds.i, bonds.j, bonds.shift, m.settings)  # either kind
    r = m.predict_bonds(bonds.type, bonds.distance, rows, row_i, row_j, m.settings, return_std=return_std,
                        precision=precision)
    t = prediction_table(bonds, r)
    return BondPredictions({**t.columns, "bond_type": t.bond_type.astype(str),
                            "flags": _flags(t.fallback, t.out_of_domain)}, {"settings_digest": m.settings.digest})


def annotate(model: Any, atoms: Any, predictions: BondPredictions | None = None) -> Any:
    """Write per-atom sums of -ICOHP and coordination into ``atoms.arrays``; returns ``atoms``.

    ``atoms.arrays["sum_minus_icohp"]`` (eV) and ``atoms.arrays["coordination"]`` over each
    atom's predicted bonds.
    Each bond counts for both of its atoms (as in ``bondml predict``'s per-atom tables); a
    self-image bond counts twice for its atom. ``predictions`` reuses a :func:`predict` result.
    """
    from .deploy.outputs import per_atom_values

    p = predictions if predictions is not None else predict(model, atoms)
    s, c = per_atom_values(len(atoms), p.i, p.j, np.nan_to_num(p.minus_icohp))
    atoms.arrays[SUM_ARRAY] = s
    atoms.arrays[COORDINATION_ARRAY] = c
    return atoms


def _artifact(model: Any) -> Any:
    """The fitted :class:`bondml.model.bondmodel.BondModel` behind ``model``."""
    from .errors import ModelError

    if isinstance(model, BondModel):
        if model.model_ is None:
            raise ModelError("this BondModel is not fitted yet; call fit(dataset) or bondml.load_model(folder)")
        return model.model_
    return model


class BondModel:
    """Per-bond-type Gaussian processes of -ICOHP (eV), as a scikit-learn style estimator.

    Parameters are set in ``__init__`` and used by :meth:`fit`; the fitted state ends in ``_``
    (``model_``: the :class:`bondml.model.bondmodel.BondModel` artifact, saved without pickle).

    Parameters
    ----------
    hyperparameters : str or mapping
        A preset: ``"default"`` (chosen by the shift protocols for the data's descriptor, with the
        distance prior and the shift-calibrated std), ``"paper"`` (the paper's per-type values),
        ``"tuned"`` (needs ``use_prior``); or {bond type: {sigma, gamma, zeta}} overriding the
        paper's.
    use_prior : bool or None
        Fit each GP on the residual of the distance(+composition) model (None: as the preset says;
        the ``default`` preset uses it).
    fallback : "tables" or None
        Distance-only model for types with too few bonds (and the prior): ``"tables"`` fits it
        on the bundled label tables without the runs in the training data; None: no tables.
    max_train_per_type : int or None
        Seeded random subset of at most this many bonds per type (None: all).
    min_bonds : int
        Fewest bonds of a type for a GP.
    seed : int
        Seed of every random draw.
    """

    def __init__(self, hyperparameters: str | Mapping[str, Mapping[str, float]] = "default", *,
                 use_prior: bool | None = None, fallback: Any = "tables", max_train_per_type: int | None = 600,
                 min_bonds: int = 30, seed: int = 0) -> None:
        self.hyperparameters = hyperparameters
        self.use_prior = use_prior
        self.fallback = fallback
        self.max_train_per_type = max_train_per_type
        self.min_bonds = min_bonds
        self.seed = seed
        self.model_: Any = None
        self.path_: Path | None = None

    # ------------------------------------------------------------------ sklearn protocol
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters."""
        return {k: getattr(self, k) for k in ("hyperparameters", "use_prior", "fallback", "max_train_per_type",
                                              "min_bonds", "seed")}

    def set_params(self, **params: Any) -> BondModel:
        """Set constructor parameters; returns self."""
        for k, v in params.items():
            if k not in self.get_params():
                raise ValueError(f"unknown parameter {k!r} of BondModel")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"BondModel({args}){'' if self.model_ is None else ' [fitted]'}"

    # ------------------------------------------------------------------ fit / use
    def fit(self, dataset: Any) -> BondModel:
        """Train on a :class:`~bondml.core.BondDataset` (e.g. ``store.load_dataset()``); returns self."""
        from .errors import ConfigError
        from .evaluate.shift import train_model

        if isinstance(self.hyperparameters, str):
            preset, overrides = self.hyperparameters, None
        else:
            preset, overrides = "paper", self.hyperparameters
        if self.fallback not in ("tables", None):
            raise ConfigError(f"fallback {self.fallback!r}: use 'tables' or None")
        self.model_ = train_model(dataset, None if self.fallback == "tables" else "", preset=preset,
                                  hyperparameters=overrides, prior=self.use_prior,
                                  max_train_per_type=self.max_train_per_type, seed=self.seed,
                                  min_bonds=self.min_bonds)
        self.path_ = None
        return self

    @property
    def bond_types_(self) -> tuple[str, ...]:
        """Bond types the fitted model answers (GP or distance-only fallback)."""
        return tuple(_artifact(self).bond_types)

    @property
    def settings_(self) -> Any:
        """SOAP settings the model was trained with (:class:`~bondml.core.FeatureSettings`)."""
        return _artifact(self).settings

    def predict(self, atoms: Any, precision: str | None = None, return_std: bool = True) -> BondPredictions:
        """Predicted bonds of ``atoms`` (see :func:`bondml.api.predict`)."""
        return predict(self, atoms, precision=precision, return_std=return_std)

    def annotate(self, atoms: Any, predictions: BondPredictions | None = None) -> Any:
        """Per-atom sum of -ICOHP and coordination into ``atoms.arrays`` (see :func:`bondml.api.annotate`)."""
        return annotate(self, atoms, predictions)

    def save(self, folder: str | Path) -> Path:
        """Write the model folder (``model.json`` + ``arrays.npz``, no pickle); returns it."""
        self.path_ = Path(_artifact(self).save(folder))
        return self.path_

    def __getattr__(self, name: str) -> Any:
        # the artifact's API (estimators, predict_bonds, lineage, windows...) for a fitted model
        model = self.__dict__.get("model_")
        if model is not None and not name.startswith("__"):
            return getattr(model, name)
        raise AttributeError(name)


def load_model(folder: str | Path) -> BondModel:
    """Read a model folder (``bondml train``, :meth:`BondModel.save`) as a fitted :class:`BondModel`."""
    from .model.bondmodel import BondModel as Artifact

    art = Artifact.load(folder)
    lin = art.lineage or {}
    m = BondModel(max_train_per_type=lin.get("max_train_per_type"), seed=int(lin.get("seed", 0)),
                  use_prior=bool(art.use_prior))
    m.model_ = art
    m.path_ = Path(folder)
    return m


def ingest(root: str | Path, store: str | Path = "bondml-store", settings: Any = None) -> Any:
    """Ingest a GETL tree into a bond store (created when missing).

    Returns the :class:`~bondml.store.db.BondStore`. Idempotent: unchanged cells are skipped.
    """
    from .store.db import BondStore

    s = BondStore(store, create=True, settings=settings) if settings is not None else BondStore(store, create=True)
    s.ingest(root)
    return s


def predict_trajectory(model: Any, path: str | Path, out: str | Path, **options: Any) -> dict[str, Any]:
    """Per-frame inference over a trajectory into the run folder ``out``.

    Input: LAMMPS dump/data, ext-xyz or any ASE format; output: Parquet bond and per-atom
    tables and a manifest (resumable).

    ``model``: a :class:`BondModel` (saved to ``<out>/model`` first when it has no folder yet)
    or a model folder. ``options``: fields of :class:`bondml.deploy.infer.PredictConfig`
    (``workers``, ``precision``, ``max_frames``, ``overwrite``...; no progress bar by default).
    Returns the run summary (frames, bonds, seconds per frame...).
    """
    from .deploy.infer import PredictConfig
    from .deploy.infer import predict_trajectory as run

    out = Path(out)
    if isinstance(model, BondModel):
        folder = model.path_ or model.save(out / "model")
    elif isinstance(model, (str, Path)):
        folder = Path(model)
    else:  # a bare artifact
        folder = Path(model.save(out / "model"))
    options.setdefault("progress", False)
    options.setdefault("in_process", int(options.get("workers", 1)) <= 1)
    return run(folder, path, out, PredictConfig(**options))
