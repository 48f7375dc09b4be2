"""``BondModel``: per-type bond GPs + distance-only fallback/prior + SOAP settings + lineage.

Saved without pickle as a folder (format 2): ``model.json`` (format name and version, settings,
hyper-parameters, distance model, lineage, SHA-256 of every array file and the model digest)
and ``arrays/<type>.<name>.npy`` (training distances, mean SOAP, alpha, Cholesky factor, inducing
bonds, std factor, mean table per type), loaded as read-only memory maps so that worker
processes share one copy. Saving is atomic for the whole folder. Format 1 (``arrays.npz``)
models still load (their fast-prediction arrays are derived at load). Energies in eV,
distances in Angstrom.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..chemistry import Chemistry, types_in_order
from ..constants import INFERENCE_WINDOWS
from ..core.dataset import BondDataset, BondFeatures
from ..core.settings import FeatureSettings
from ..errors import ModelError
from ..util import atomic_write_json, code_version, sha256_file, sha256_json
from .distance import DistanceModel
from .domain import DomainInfo, assess, held_out_folds, held_out_statistics, learn_domain
from .gpr import BondGPR, _finite, as_bonds

log = logging.getLogger(__name__)

FORMAT = "bondml-bond-model"
FORMAT_VERSION = 2  # 2: one .npy per array (memory-mapped) + fast-prediction arrays; 1: arrays.npz
#: Fewest SOAP-labelled bonds of a type for a GP; fewer -> distance-only fallback (flagged).
MIN_BONDS = 30
#: Gaussian median of |z|: a calibrated std has median(|error| / std) = 0.6745.
_MEDIAN_ABS_Z = 0.6744897501960817
#: Default out-of-domain threshold on the predictive std, as a fraction of the type's label std.
STD_THRESHOLD_FRACTION = 0.5


def cv_std_scale(sub: BondDataset, make: Any, prior: Any, n_splits: int = 5, seed: int = 0,
                 max_train: int | None = None) -> float:
    """Factor on the GP std that makes it calibrated on held-out cells.

    Cell-grouped ``n_splits``-fold CV on ``sub`` (one bond type): ``make()`` gives a fresh
    estimator, ``prior(ds)`` the prior mean (eV). Returns median(|e|/std) / 0.6745 over the
    out-of-fold bonds (1.0 when there are fewer than 2 cells).
    """
    groups = sub.groups("cell")
    cells = np.random.default_rng(seed).permutation(np.unique(groups))
    if cells.size < 2:
        return 1.0
    splits = [(np.flatnonzero(~np.isin(groups, fold)), np.flatnonzero(np.isin(groups, fold)))
              for fold in np.array_split(cells, min(n_splits, cells.size))]
    z = [zk for _, _, zk, _ in held_out_folds(sub, splits, make, prior, seed, max_train)]
    if not z:
        return 1.0
    return float(np.median(np.concatenate(z)) / _MEDIAN_ABS_Z)


@dataclass
class BondModel:
    """Per-type estimators plus everything needed to use them correctly.

    ``estimators`` maps bond type -> fitted :class:`BondGPR`; ``distance_model`` is the
    distance-only model (fallback for types without a GP, and prior mean when ``use_prior``);
    ``composition`` is where the prior is evaluated; ``std_threshold`` (eV) per type marks
    predictions as out of domain; ``windows`` are the per-type inference windows (Angstrom).
    """

    settings: FeatureSettings
    estimators: dict[str, BondGPR] = field(default_factory=dict)
    distance_model: DistanceModel | None = None
    use_prior: bool = False
    composition: str = "Zr49Cu49Al2"
    std_threshold: dict[str, float] = field(default_factory=dict)
    std_scale: dict[str, float] = field(default_factory=dict)
    windows: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(INFERENCE_WINDOWS))
    lineage: dict[str, Any] = field(default_factory=dict)
    #: per type: calibrated std and out-of-domain thresholds (bondml.model.domain; accuracy, issue 12)
    domain: dict[str, DomainInfo] = field(default_factory=dict)

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(
        cls,
        dataset: BondDataset,
        hyperparameters: dict[str, dict[str, float]] | None = None,
        distance_model: DistanceModel | None = None,
        use_prior: bool = False,
        max_train_per_type: int | None = None,
        seed: int = 0,
        min_bonds: int = MIN_BONDS,
        estimator_options: dict[str, Any] | None = None,
        calibrate: bool = True,
        calibration: str = "cell",
        composition_inflation: dict[str, float] | None = None,
    ) -> BondModel:
        """Train one GP per bond type with at least ``min_bonds`` labelled bonds.

        ``hyperparameters`` override the paper's per type; ``max_train_per_type`` draws a seeded
        random subset; ``use_prior`` fits the GP on y - distance_model(d, composition).
        ``calibrate`` scales each type's std on held-out data: ``calibration="cell"`` (default,
        as in earlier versions) by cell-grouped 5-fold CV (:func:`cv_std_scale`, std only);
        ``"shift"`` (what ``bondml train`` uses) by leave-deformation-group-out, learning the
        out-of-domain thresholds too (:mod:`bondml.model.domain`; ``composition_inflation`` per
        type widens the std at other compositions).
        Types with fewer bonds use ``distance_model`` as a logged, flagged fallback.
        """
        if calibration not in ("shift", "cell"):
            raise ModelError(f"calibration {calibration!r}: use shift or cell")
        if use_prior and distance_model is None:
            raise ModelError("use_prior needs a distance_model")
        sources = np.unique(np.asarray(dataset.label_source).astype(str))
        if sources.size > 1:
            raise ModelError(f"the training data mixes label sources {sources.tolist()}: train on one (they are "
                             "different quantities)")
        targets = _targets(dataset.lineage)
        if len(targets) > 1:
            raise ModelError(f"the training data mixes targets {sorted(targets)}: train on one")
        if len(dataset) and not np.all(np.isfinite(dataset.y)):
            raise ModelError(f"{int(np.sum(~np.isfinite(dataset.y)))} NaN/missing labels in the training dataset")
        ncs, nc_counts = np.unique(dataset.nc.astype(str), return_counts=True)
        comp = str(ncs[np.argmax(nc_counts)]) if ncs.size else "Zr49Cu49Al2"
        model = cls(settings=dataset.settings, distance_model=distance_model, use_prior=use_prior,
                    composition=comp)
        chem = Chemistry.from_species_z(dataset.settings.species_z)
        if not chem.is_study:
            model.windows = dict(chem.windows)
            hyperparameters = {**{t: dict(h) for t, h in chem.hyperparameters.items()}, **(hyperparameters or {})}
        rng = np.random.default_rng(seed)
        counts = dataset.counts()
        trained: dict[str, Any] = {}
        calibration_notes: dict[str, str] = {}  # types whose std could not be calibrated, and why
        for bt in types_in_order(np.unique(dataset.bond_type.astype(str)).tolist()):
            sub = dataset.of_type(bt)
            if len(sub) < min_bonds:
                if distance_model is not None and bt in distance_model.fits:
                    log.warning("%s: %d SOAP-labelled bonds < %d; using the distance-only fallback",
                                bt, len(sub), min_bonds)
                    trained[bt] = {"kind": "fallback", "n_available": len(sub)}
                else:
                    log.warning("%s: %d SOAP-labelled bonds < %d and no distance model: no model",
                                bt, len(sub), min_bonds)
                continue
            idx = np.arange(len(sub))
            if max_train_per_type and len(sub) > max_train_per_type:
                idx = np.sort(rng.choice(len(sub), max_train_per_type, replace=False))
            sub = sub.select(idx)
            hp = dict((hyperparameters or {}).get(bt, {}))
            def make(bt: str = bt, hp: dict = hp) -> BondGPR:
                return BondGPR.paper(bt, **hp, **(estimator_options or {}))

            def prior(x: BondDataset, bt: str = bt) -> np.ndarray:
                return model._prior(bt, x.distance)[0]

            est = make().fit(sub.features(), sub.y - prior(sub))
            held_out = None
            if calibrate and calibration == "shift":  # accuracy (issue 12): bondml.model.domain
                try:
                    held_out = held_out_statistics(sub, make, prior, seed=seed, details=True)
                except ModelError as exc:  # e.g. one cell only: nothing to calibrate on
                    log.warning("%s: std not calibrated and no out-of-domain model (%s)", bt, exc)
                    model.std_scale[bt] = 1.0
                    calibration_notes[bt] = str(exc)
            if held_out is not None:
                z, rho, raw, proto, extra = held_out
                model.domain[bt] = learn_domain(z, rho, raw, (composition_inflation or {}).get(bt, 1.0), comp,
                                                protocol=proto, bond_type=bt, **extra)
                model.std_scale[bt] = model.domain[bt].std_scale
            elif bt in calibration_notes:
                pass
            else:
                model.std_scale[bt] = cv_std_scale(sub, make, prior, seed=seed) if calibrate else 1.0
            model.estimators[bt] = est
            est._set_std_basis()  # principal basis of the std's inducing products (when cheaper)
            model.std_threshold[bt] = STD_THRESHOLD_FRACTION * float(np.std(sub.y))
            trained[bt] = {"kind": "gp", "n_train": len(sub), "n_available": counts[bt],
                           "params": est.get_params(), "lml": est.log_marginal_likelihood(),
                           "std_scale": model.std_scale[bt],
                           **({"domain": model.domain[bt].to_dict()} if bt in model.domain else {}),
                           **({"calibration": f"not calibrated ({calibration_notes[bt]})"}
                              if bt in calibration_notes else {})}
        if distance_model is not None:
            for bt, f in distance_model.fits.items():
                model.std_threshold.setdefault(bt, 2.0 * float(np.max(f.bin_rmse)))
        model.lineage = {"data": dataset.lineage, "types": trained, "seed": seed,
                         "max_train_per_type": max_train_per_type, "use_prior": use_prior,
                         "target": next(iter(targets), "icohp"),
                         "label_source": str(sources[0]) if sources.size else "lobster",
                         "code": code_version(), "settings_digest": dataset.settings.digest}
        return model

    # -------------------------------------------------------------- access
    @property
    def bond_types(self) -> tuple[str, ...]:
        """Bond types this model answers (GP or fallback)."""
        fb = self.distance_model.bond_types if self.distance_model else ()
        return tuple(t for t in types_in_order([*self.estimators, *fb]) if t in self.estimators or t in fb)

    @property
    def target(self) -> str:
        """What the model predicts: ``icohp`` (-ICOHP, eV), ``icoop`` (ICOOP, e) or ``icobi``."""
        return str(self.lineage.get("target", "icohp"))

    @property
    def chemistry(self) -> Chemistry:
        """The element set the model was trained on (from its SOAP species)."""
        return Chemistry.from_species_z(self.settings.species_z)

    def check_elements(self, symbols: Any, what: str = "structure") -> None:
        """One-line :class:`UnknownElementError` when ``symbols`` hold an element the model was
        not trained on."""
        self.chemistry.check(np.asarray(symbols).astype(str).tolist(), what)

    def check_bond_types(self, bond_types: Any, what: str = "") -> None:
        """One-line :class:`ModelError` when ``bond_types`` hold a type the model has no GP or
        fallback for (``what``: a prefix naming the input, e.g. ``"frame 3: "``)."""
        present = set(np.unique(np.asarray(bond_types).astype(str)).tolist())
        missing = sorted(present - set(self.bond_types))
        if missing:
            raise ModelError(f"{what}bond types {missing} have no model (model has {list(self.bond_types)})")

    def for_composition(self, nc: str) -> BondModel:
        """Same model with its distance prior / fallback evaluated at composition ``nc``."""
        from ..types import parse_composition

        parse_composition(nc, any_element=True)
        return BondModel(self.settings, self.estimators, self.distance_model, self.use_prior, nc,
                         dict(self.std_threshold), dict(self.std_scale), dict(self.windows), self.lineage,
                         dict(self.domain))

    def _prior(self, bt: str, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if (not self.use_prior or self.distance_model is None or bt not in self.distance_model.fits
                or not self.distance_model.is_prior_for(bt)):
            return np.zeros_like(d, dtype=float), np.zeros_like(d, dtype=float)
        return self.distance_model.predict(bt, d, self.composition)

    # ------------------------------------------------------------- predict
    def predict_bonds(
        self,
        bond_type: np.ndarray,
        distance: np.ndarray,
        atom_soap: np.ndarray,
        atom_i: np.ndarray,
        atom_j: np.ndarray,
        settings: FeatureSettings,
        return_std: bool = True,
        batch_size: int = 4096,
        precision: str | None = None,
        exact_std: bool = False,
    ) -> dict[str, np.ndarray]:
        """Predict -ICOHP (eV) for n bonds given per-atom SOAP (m, p) and atom rows (n,).

        The mean comes from each GP's tabulated distance term (within 1e-9 eV of the exact GP
        mean for zeta = 1) and the std from its low-rank projected-process form (p95 error about
        1 % of the exact std on the 10k frame, bench/bench_frame.py); ``exact_std`` solves the
        exact variance instead (cost grows as n_train^2 per bond). ``precision`` ("float32" or
        "float64", default: as trained) sets the arithmetic of the exact paths only.

        Returns ``minus_icohp`` (eV), ``std`` (eV; NaN when ``return_std`` is False),
        ``fallback`` (bool, distance-only model used) and ``out_of_domain`` (bool: distance
        outside the type's training range or std above the model's threshold). Raises
        FeatureMismatchError for other SOAP settings, ModelError for a type without any model.
        """
        self.settings.require_same(settings, "features given to the model")
        bt = np.asarray(bond_type).astype(str)
        d = np.asarray(distance, dtype=float)
        ai = np.asarray(atom_i, dtype=np.int64)
        aj = np.asarray(atom_j, dtype=np.int64)
        if not (bt.size == d.size == ai.size == aj.size):
            raise ModelError(f"bond arrays of unequal length: type {bt.size}, distance {d.size}, "
                             f"atom_i {ai.size}, atom_j {aj.size}")
        n = d.size
        out = {"minus_icohp": np.full(n, np.nan), "std": np.full(n, np.nan),
               "fallback": np.zeros(n, bool), "out_of_domain": np.zeros(n, bool)}
        if n == 0:
            return out
        soap = np.asarray(atom_soap)
        if soap.ndim != 2 or (ai.max() >= soap.shape[0]) or (aj.max() >= soap.shape[0]) or min(ai.min(), aj.min()) < 0:
            raise ModelError(f"atom_i/atom_j must index rows of atom_soap (shape {soap.shape})")
        if precision not in (None, "float32", "float64"):
            raise ModelError(f"precision {precision!r}: use float32 or float64")
        fast = None if precision is None else precision == "float32"
        if soap.dtype.kind != "f":
            soap = np.asarray(soap, dtype=float)
        if not exact_std and precision != "float64" and not np.array_equal(ai, aj):
            soap, ai, aj = _element_blocks(bt, soap, ai, aj)  # per-atom rows; bond rows are used as given
        _finite("SOAP rows", soap)  # once here, not once per bond type
        for t in np.unique(bt):
            m = np.flatnonzero(bt == t)
            self._predict_type(str(t), m, d, soap, ai, aj, return_std, batch_size, out, fast, exact_std)
        return out

    def _predict_type(self, t: str, m: np.ndarray, d: np.ndarray, soap: np.ndarray, ai: np.ndarray,
                      aj: np.ndarray, return_std: bool, batch_size: int, out: dict[str, np.ndarray],
                      fast: bool | None = None, exact_std: bool = False) -> None:
        dm = d[m]
        dom = None
        if t in self.estimators:
            est = self.estimators[t]
            if soap.shape[1] != est.pbar_train_.shape[1]:
                raise ModelError(f"{t}: SOAP length {soap.shape[1]} but the model was trained on "
                                 f"{est.pbar_train_.shape[1]}")
            feats = BondFeatures(dm, soap, ai[m], aj[m])
            basis = None
            if return_std and t in self.domain:  # projected on the domain basis in the GP's own product
                from .domain import training_basis

                basis = training_basis(est, self.domain[t].n_components)[0]
            mu, sd, aux = est._predict_fast(as_bonds(feats, check_soap=False), return_std, batch_size, fast,
                                            exact_std or None, project=basis)
            if sd is not None and t in self.domain:  # accuracy (issue 12): calibrated std + domain flag
                kxx = proj = None
                if aux is not None:
                    kxx, proj = aux["kss"], aux["proj"]
                dom = assess(self.domain[t], est, soap, ai[m], aj[m], dm, sd, self.composition,
                             kxx=kxx, projected=proj, similarity_values=False)  # flags and std only
                sd = dom.std
            elif sd is not None:
                sd = sd * self.std_scale.get(t, 1.0)
            prior, _ = self._prior(t, dm)
            out["minus_icohp"][m] = mu + prior
            lo, hi = est.distance_range_
        elif self.distance_model is not None and t in self.distance_model.fits:
            mu, sd = self.distance_model.predict(t, dm, self.composition)
            out["minus_icohp"][m] = mu
            out["fallback"][m] = True
            lo, hi = self.distance_model.fits[t].distance_range
        else:
            have = ", ".join(self.bond_types) or "none"
            raise ModelError(f"no model for bond type {t!r} (this model has: {have})")
        ood = (dm < lo) | (dm > hi)
        if sd is not None and return_std:
            out["std"][m] = sd
            ood |= dom.out_of_domain if dom is not None else sd > self.std_threshold.get(t, np.inf)
        out["out_of_domain"][m] = ood

    def predict_structure(self, structure: Any, windows: dict[str, tuple[float, float]] | None = None,
                          return_std: bool = True) -> tuple[Any, dict[str, np.ndarray]]:
        """Bonds of one structure (``ase.Atoms`` or pymatgen ``Structure``) in the model's
        per-type windows (Angstrom) and their predictions (:meth:`predict_bonds`).

        Refuses (one-line :class:`UnknownElementError`) a structure with elements the model was
        not trained on. Returns ``(bonds, predictions)``.
        """
        from ..features.soap import compute_bond_features
        from ..interop import as_atoms
        from ..structure.bonds import find_bonds

        atoms = as_atoms(structure)
        self.check_elements(atoms.get_chemical_symbols())
        bonds = find_bonds(atoms, windows=windows or self.windows)
        rows, row_i, row_j = compute_bond_features(atoms, bonds.i, bonds.j, bonds.shift, self.settings)  # either kind
        return bonds, self.predict_bonds(bonds.type, bonds.distance, rows, row_i, row_j, self.settings,
                                         return_std=return_std)

    def predict_dataset(self, ds: BondDataset, return_std: bool = True) -> dict[str, np.ndarray]:
        """:meth:`predict_bonds` on the bonds of a dataset."""
        return self.predict_bonds(ds.bond_type, ds.distance, ds.atom_soap, ds.atom_i, ds.atom_j,
                                  ds.settings, return_std=return_std)

    # ----------------------------------------------------------- save/load
    @property
    def digest(self) -> str | None:
        """SHA-256 identifying this model's content: over the per-array SHA-256s recorded in
        model.json (format 2) or the arrays file's (format 1); None for a model never saved/loaded.
        Cheap (no array is read): pin a deployment run to it."""
        return self.__dict__.get("_digest")

    def save(self, folder: str | Path) -> Path:
        """Write the model folder atomically: ``model.json`` + one ``.npy`` per array under
        ``arrays/`` (no pickle; memory-mappable), SHA-256 of each array in model.json.

        Everything is written into a new sibling folder (fsynced), which then replaces
        ``folder`` by an atomic exchange (renameat2 RENAME_EXCHANGE on Linux; elsewhere two
        renames, and :meth:`load` finds the complete sibling if a crash fell between them):
        a kill at any point leaves the old or the new model complete. Files of the old folder
        other than the model's are carried over.
        """
        folder = Path(folder).absolute()
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))
        swapping = swapped = False
        try:
            (tmp / ARRAYS_DIR).mkdir()
            types: dict[str, Any] = {}
            hashes: dict[str, str] = {}
            for t, est in self.estimators.items():
                if t in self.domain:  # the out-of-domain basis is computed once and saved with the model
                    from .domain import training_basis

                    training_basis(est, self.domain[t].n_components)
                meta, arr = est.state()
                types[t] = meta
                for k, v in arr.items():
                    name = f"{t}.{k}.npy"
                    hashes[name] = _write_npy(tmp / ARRAYS_DIR / name, np.asarray(v))
            _fsync_dir(tmp / ARRAYS_DIR)
            digest = sha256_json(hashes)
            meta_json = {
                "format": FORMAT, "format_version": FORMAT_VERSION, "settings": self.settings.to_dict(),
                "types": types, "distance_model": self.distance_model.to_dict() if self.distance_model else None,
                "use_prior": self.use_prior, "composition": self.composition, "std_threshold": self.std_threshold,
                "std_scale": self.std_scale, "domain": {k: v.to_dict() for k, v in self.domain.items()},
                "windows": {k: list(v) for k, v in self.windows.items()}, "lineage": self.lineage,
                "arrays": hashes, "digest": digest, "written_by": code_version(),
            }
            atomic_write_json(tmp / "model.json", meta_json)
            if folder.is_dir():
                for extra in folder.iterdir():  # keep what others put next to the model
                    if extra.name not in ("model.json", "arrays.npz", ARRAYS_DIR) and not (tmp / extra.name).exists():
                        if extra.is_dir():
                            shutil.copytree(extra, tmp / extra.name, symlinks=True)
                        else:
                            shutil.copy2(extra, tmp / extra.name)
            _fsync_dir(tmp)
            swapping = True
            _swap_into_place(tmp, folder)
            swapped = True
        finally:
            # interrupted mid-swap: keep the complete new folder (load() moves it into place)
            if (swapped or not swapping) and tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.__dict__["_digest"] = digest
        return folder

    @classmethod
    def load(cls, folder: str | Path, verify: bool = True, mmap: bool = True) -> BondModel:
        """Read a model folder (format 2, or format 1's ``arrays.npz``); ModelError (one line) if
        missing, corrupt or from a newer format.

        ``mmap``: arrays are read-only memory maps of the ``.npy`` files (processes share one
        copy in the page cache; pages never used, such as the Cholesky factor of the exact std,
        are never read). ``verify``: check every array file against its SHA-256 (reads them all
        once); a worker of a run whose parent already verified the folder can skip it.
        """
        folder = _recover(Path(folder))
        meta = _read_meta(folder / "model.json")
        try:
            if meta.get("format_version", 1) >= 2:
                arrays, digest = _load_v2(folder, meta, verify, mmap)
            else:
                arrays, digest = _load_v1(folder, meta)
            settings = FeatureSettings.from_dict(meta["settings"])
            ests = {}
            for t, tm in meta["types"].items():
                ests[t] = BondGPR.from_state(tm, arrays.get(t, {}))
            dmodel = DistanceModel.from_dict(meta["distance_model"]) if meta.get("distance_model") else None
            model = cls(settings, ests, dmodel, bool(meta["use_prior"]), str(meta["composition"]),
                        {k: float(v) for k, v in meta["std_threshold"].items()},
                        {k: float(v) for k, v in meta.get("std_scale", {}).items()},
                        {k: tuple(v) for k, v in meta["windows"].items()}, meta.get("lineage", {}),
                        {k: DomainInfo.from_dict(v) for k, v in meta.get("domain", {}).items()})
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoding problem is a corrupt model
            raise ModelError(f"{folder}: cannot load model ({type(exc).__name__}: {exc})") from None
        model.__dict__["_digest"] = digest
        return model


ARRAYS_DIR = "arrays"


def _element_blocks(bt: np.ndarray, soap: np.ndarray, ai: np.ndarray, aj: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-atom SOAP as one float32 copy with the atoms grouped by element (order of
    ELEMENTS as they appear in bond types), and the bond rows remapped: the atoms of a bond type
    are then one contiguous block, used in place (no per-type gather). float32 SOAP changes the
    tabulated mean by < 1e-7 eV (measured on the 10k frame)."""
    n_atoms = soap.shape[0]
    code = np.full(n_atoms, 99, np.int16)
    order = {"Zr": 0, "Cu": 1, "Al": 2}
    for t in np.unique(bt):
        a, b = str(t).split("-", 1)
        m = bt == t
        code[ai[m]] = order.get(a, 3)
        code[aj[m]] = order.get(b, 3)
    perm = np.argsort(code, kind="stable")
    inv = np.empty(n_atoms, np.int64)
    inv[perm] = np.arange(n_atoms)
    s32 = np.empty((n_atoms, soap.shape[1]), np.float32)
    if soap.dtype == np.float32:
        np.take(soap, perm, axis=0, out=s32, mode="clip")
        return s32, inv[ai], inv[aj]
    buf = np.empty((min(256, n_atoms), soap.shape[1]), soap.dtype)  # one reused gather buffer
    for s in range(0, n_atoms, 256):
        e = min(s + 256, n_atoms)
        np.take(soap, perm[s:e], axis=0, out=buf[:e - s], mode="clip")
        s32[s:e] = buf[:e - s]
    return s32, inv[ai], inv[aj]


def _write_npy(path: Path, arr: np.ndarray) -> str:
    """Write one array as .npy (fsynced); returns the SHA-256 of the file's bytes."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    data = buf.getbuffer()
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _rename_exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    if sys.platform != "linux":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return bool(fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0)


def _swap_into_place(new: Path, folder: Path) -> None:
    """Make ``new`` be ``folder``; the old content ends in ``new`` (removed by the caller)."""
    if not folder.exists():
        os.rename(new, folder)
        os.mkdir(new)  # the caller removes it
    elif not _rename_exchange(new, folder):
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        os.rename(folder, old)  # a crash here: load() finds the complete .new- sibling
        os.rename(new, folder)
        os.rename(old, new)
    _fsync_dir(folder.parent)


def _recover(folder: Path) -> Path:
    """After a crash between the two renames of a non-atomic swap ``folder`` is missing but a
    complete ``.name.new-*`` sibling exists: move the newest one into place."""
    if folder.exists() or not folder.parent.is_dir():
        return folder
    cands = sorted((p for p in folder.parent.glob(f".{folder.name}.new-*") if (p / "model.json").is_file()),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for c in cands:
        try:
            os.rename(c, folder)
            return folder
        except OSError:
            continue
    return folder


def _load_v2(folder: Path, meta: dict[str, Any], verify: bool,
             mmap: bool) -> tuple[dict[str, dict[str, np.ndarray]], str]:
    hashes = meta.get("arrays")
    if not isinstance(hashes, dict):
        raise ModelError(f"{folder / 'model.json'}: no array list (corrupt model metadata)")
    digest = sha256_json(hashes)
    if meta.get("digest") not in (None, digest):
        raise ModelError(f"{folder / 'model.json'}: digest does not match its array list (corrupt model metadata)")
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, h in hashes.items():
        path = folder / ARRAYS_DIR / name
        if not path.is_file():
            raise ModelError(f"{path}: model array file not found")
        if verify and sha256_file(path) != h:
            raise ModelError(f"{path}: content does not match model.json (corrupt or from another model)")
        t, key = name[: -len(".npy")].rsplit(".", 1)
        out.setdefault(t, {})[key] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    return out, digest


def _load_v1(folder: Path, meta: dict[str, Any]) -> tuple[dict[str, dict[str, np.ndarray]], str]:
    npz = folder / "arrays.npz"
    if not npz.is_file():
        raise ModelError(f"{npz}: model arrays file not found")
    if sha256_file(npz) != meta.get("arrays_sha256"):
        raise ModelError(f"{npz}: content does not match model.json (corrupt or from another model)")
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(npz, allow_pickle=False) as z:
        for k in z.files:
            t, key = k.split("/", 1)
            out.setdefault(t, {})[key] = z[k]
    return out, sha256_json({"arrays.npz": meta["arrays_sha256"]})


def _targets(lineage: dict[str, Any]) -> set[str]:
    """Targets named in a dataset lineage (nested for joined datasets); icohp when unnamed."""
    if "parts" in lineage:
        out: set[str] = set()
        for p in lineage["parts"]:
            out |= _targets(p)
        return out
    return {str(lineage.get("target", "icohp"))}


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelError(f"{path}: model metadata not found (is this a bondml model folder?)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: corrupt model metadata "
                         f"({exc.__class__.__name__} at {getattr(exc, 'pos', '?')})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise ModelError(f"{path}: not a bondml bond model (format {fmt!r})")
    v = meta.get("format_version")
    if not isinstance(v, int) or v > FORMAT_VERSION:
        raise ModelError(f"{path}: model format version {v} is newer than this bondml supports "
                         f"({FORMAT_VERSION}); upgrade bondml")
    return meta
