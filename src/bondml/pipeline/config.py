"""The pipeline definition: one TOML file, validated into frozen dataclasses.

Sections (all optional except where noted; units: Angstrom, eV, ps, 1/s):

``[pipeline]`` name, seed; ``[data]`` GETL roots and store; ``[generate]`` compositions, runs,
sub-runs, labeler (xtb|dft), scaled MD; ``[features]`` the descriptor (bond-centred or atom SOAP)
and its settings; ``[model]`` the preset, per-type hyper-parameters or a search;
``[validation]`` the grouped protocol and learning curves;
``[deploy]`` the compression trajectory; ``[executor]`` local | slurm | pbs | dask;
``[tracking]`` MLflow; ``[active_learning]`` batch size, exploit/explore split, pool.

Errors are one line (:class:`bondml.errors.ConfigError`) naming the file, the key and the fix:
unknown keys get a did-you-mean, wrong types name the expected type, impossible compositions
are caught with :func:`bondml.types.composition_counts`.
"""

from __future__ import annotations

import difflib
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..constants import BOND_TYPES
from ..errors import BondmlError, ConfigError
from ..execution import EXECUTOR_KINDS, ExecutorConfig
from ..types import composition_counts

#: Placeholders usable in paths: the bundled reference data and the shipped 10k cell.
REFERENCE = "@reference"
PRODUCTION_CELL = "@production"


@dataclass(frozen=True)
class PipelineSection:
    """``name`` of the pipeline (used for the MLflow experiment), global ``seed``."""

    name: str = "bondml"
    seed: int = 0


@dataclass(frozen=True)
class DataSection:
    """GETL ``roots`` (``@reference`` = the bundled data; relative paths are relative to the
    config file), the ``store`` folder (empty: ``<out>/store``), and which labelled cells train:
    ``ncs``/``runs`` filter (empty = all); ``holdout_sub_runs`` are kept out of training (the
    active-learning pool of labelled-but-held-out cells)."""

    roots: tuple[str, ...] = (REFERENCE,)
    store: str = ""
    ncs: tuple[str, ...] = ()
    runs: tuple[int, ...] = ()
    holdout_sub_runs: tuple[int, ...] = ()


@dataclass(frozen=True)
class GenerateSection:
    """New data: melt-quench ``runs`` per composition (run ids from ``first_run``), augment, label
    ``sub_runs`` with ``labeler`` (``xtb``: approximate, local; ``dft``: pw.x + LOBSTER jobs on the
    executor). ``scaled`` = short documented MD protocol. ``dry_run`` writes DFT inputs only."""

    enabled: bool = False
    compositions: tuple[str, ...] = ("Zr47Cu47Al6",)
    runs: int = 1
    first_run: int = 1
    sub_runs: tuple[int, ...] = (0,)
    labeler: str = "xtb"
    scaled: bool = True
    n_atoms: int = 100
    seed: int = 0
    dry_run: bool = False
    pseudo_dir: str = ""


@dataclass(frozen=True)
class FeaturesSection:
    """The descriptor and its SOAP settings (the paper's: cutoff and atom_sigma in Angstrom).

    ``kind``: ``bond`` (SOAP expanded at the bond midpoint, one vector per bond: the default
    model's descriptor, computed with the featomic radial basis) or ``atom`` (the paper's per-atom
    QUIP SOAP, kernel on the mean of the two atoms' vectors). ``backend``: ``quippy`` or
    ``featomic`` for ``atom``; ``bond`` needs ``featomic``; empty: ``featomic`` for ``bond``,
    ``quippy`` for ``atom``. These are :class:`bondml.features.soap.FeatureSettings`."""

    kind: str = "bond"
    cutoff: float = 3.75
    l_max: int = 6
    n_max: int = 8
    atom_sigma: float = 0.5
    backend: str = ""


@dataclass(frozen=True)
class ModelSection:
    """Bond GPR per type: ``hyperparameters`` {type: {sigma (A), gamma, zeta}} override the paper's;
    ``search = true`` picks them by grouped CV over a grid first; ``max_train_per_type`` caps the
    training bonds (seeded); ``preset`` as ``bondml train --preset`` (``default``: the default
    model; ``paper``: the paper's); ``use_prior`` fits the GP on the residual of the distance
    model trained on the label-only tables (unset: as the preset says). ``fallback_tables``: GETL
    root whose label-only tables (PBSSDB, DB4, DB8) train the distance-only model, the fallback for types without enough
    SOAP-labelled bonds (Al-Al in run 21); empty = no fallback. ``name``: registered model name."""

    max_train_per_type: int = 600
    #: the model preset of ``bondml train`` (:func:`bondml.evaluate.shift.train_model`): default
    #: (the shift protocols' choice, per descriptor kind) | paper | tuned (needs use_prior = true)
    preset: str = "default"
    #: unset: the preset's mean function (default: the distance prior on DEFAULT_PRIOR_TYPES;
    #: paper: zero mean); true: the distance prior on every type; false: zero mean
    use_prior: bool | None = None
    search: bool = False
    search_max_train: int = 300
    hyperparameters: dict[str, dict[str, float]] = field(default_factory=dict)
    fallback_tables: str = REFERENCE
    name: str = "bondml-bond-model"


@dataclass(frozen=True)
class ValidationSection:
    """Honest protocol: ``protocol`` = leave-deformation-group-out (the shift protocol inside a
    run: whole deformation families out, see :mod:`bondml.evaluate.splits`) | leave-one-cell-out |
    group-kfold (whole ``level`` groups: cell, run or nc held out); ``max_train`` bonds per type
    per fold; learning curves over ``learning_curve_sizes`` bonds per type and ``learning_curve_seeds``."""

    protocol: str = "leave-one-cell-out"
    level: str = "cell"
    n_splits: int = 5
    max_train: int = 600
    learning_curve_sizes: tuple[int, ...] = (50, 100, 200, 400)
    learning_curve_seeds: tuple[int, ...] = (0, 1)


@dataclass(frozen=True)
class DeploySection:
    """Compression MD + per-frame inference. ``cell`` (``@production`` = the shipped 10k cell);
    ``cut_side`` (Angstrom, 0 = whole cell) cuts a periodic cube; ``protocol`` = scaled | full
    (the study's); the other keys override the protocol (ps, 1/s, strain < 0)."""

    enabled: bool = False
    cell: str = PRODUCTION_CELL
    cut_side: float = 0.0
    protocol: str = "scaled"
    strain_rate_per_s: float = 0.0
    final_strain: float = 0.0
    frame_ps: float = 0.0
    nvt_ps: float = -1.0
    nve_ps: float = -1.0
    seed: int = 12345
    threads: int = 0


#: The ``[executor]`` table: :class:`bondml.execution.ExecutorConfig` (kind = local | slurm | pbs |
#: torque | dask; see :mod:`bondml.execution` for every key). Generate's DFT jobs use the same one.
ExecutorSection = ExecutorConfig


@dataclass(frozen=True)
class TrackingSection:
    """MLflow: ``uri`` (empty: ``sqlite:///<out>/mlflow.db``, artifacts in ``<out>/mlartifacts``;
    an ``http://`` server is a configuration), ``experiment`` name, ``register`` model versions."""

    enabled: bool = True
    uri: str = ""
    experiment: str = ""
    register: bool = True


@dataclass(frozen=True)
class ActiveLearningSection:
    """Next batch: ``batch_size`` cells, ``explore_fraction`` of them new runs / compositions,
    the rest exploit (augmentations of existing cells); ``top_fraction`` of the most uncertain
    candidates enter the diversity (greedy max-min SOAP) selection. Pool: held-out labelled
    cells, ``augmentations`` new deformations of existing sub-run-0 cells (names like
    ``shear-xy-0.25``, ``axial-x-0.9``, ``iso-0.95``), ``explore_compositions`` new runs.
    ``explore_runs`` new melt-quench candidates per composition, quenched with
    ``QuenchProtocol.scaled(explore_md_scale)`` (short: candidates only need a plausible glass to
    be scored). ``benchmark`` runs the uncertainty-vs-random learning curve on the labelled cells."""

    enabled: bool = True
    batch_size: int = 4
    explore_fraction: float = 0.5
    top_fraction: float = 0.5
    augmentations: tuple[str, ...] = ("shear-xy-0.25", "shear-yz-0.25", "axial-x-0.9", "axial-z-1.05", "iso-0.95")
    explore_compositions: tuple[str, ...] = ("Zr47Cu47Al6",)
    explore_runs: int = 2
    explore_md_scale: float = 0.25
    benchmark: bool = False
    benchmark_seeds: tuple[int, ...] = (0, 1, 2)
    benchmark_test_cells: int = 4
    benchmark_max_train: int = 600


@dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline definition; ``source`` is the config file (for relative paths)."""

    pipeline: PipelineSection = field(default_factory=PipelineSection)
    data: DataSection = field(default_factory=DataSection)
    generate: GenerateSection = field(default_factory=GenerateSection)
    features: FeaturesSection = field(default_factory=FeaturesSection)
    model: ModelSection = field(default_factory=ModelSection)
    validation: ValidationSection = field(default_factory=ValidationSection)
    deploy: DeploySection = field(default_factory=DeploySection)
    executor: ExecutorSection = field(default_factory=ExecutorSection)
    tracking: TrackingSection = field(default_factory=TrackingSection)
    active_learning: ActiveLearningSection = field(default_factory=ActiveLearningSection)
    source: str = ""

    def section(self, name: str) -> dict[str, Any]:
        """A section as a plain dict (what goes into cache keys and manifests)."""
        return asdict(getattr(self, name))

    def resolve_path(self, text: str) -> Path:
        """A path of the config: ``@reference`` / ``@production`` placeholders, relative to the file."""
        from ..data import production_cell, reference_root

        if text == REFERENCE:
            return reference_root()
        if text == PRODUCTION_CELL:
            return production_cell()
        p = Path(text).expanduser()
        if not p.is_absolute() and self.source:
            p = Path(self.source).resolve().parent / p
        return p


SECTION_TYPES: dict[str, type] = {
    "pipeline": PipelineSection, "data": DataSection, "generate": GenerateSection,
    "features": FeaturesSection, "model": ModelSection, "validation": ValidationSection,
    "deploy": DeploySection, "executor": ExecutorSection, "tracking": TrackingSection,
    "active_learning": ActiveLearningSection,
}
LABELERS = ("xtb", "dft")
PROTOCOLS = ("leave-deformation-group-out", "leave-one-cell-out", "group-kfold")
KINDS = ("bond", "atom")
LEVELS = ("cell", "run", "nc")


def _did_you_mean(word: str, choices: list[str]) -> str:
    m = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f"; did you mean {m[0]!r}?" if m else f"; allowed: {', '.join(choices)}"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(where: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp`` (int, float, str, bool, tuple[X, ...], dict)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and type(None) in args:  # ``X | None``: a key left unset
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(where, value, inner)
    if origin is tuple:
        (item, _) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list of {_type_name(item)}, got {type(value).__name__} {value!r}")
        return tuple(_coerce(f"{where}[{k}]", v, item) for k, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover


def _build_section(name: str, raw: Any, where: str) -> Any:
    cls = SECTION_TYPES[name]
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {name}.{key}{_did_you_mean(key, allowed)}")
        kwargs[key] = _coerce(f"{where}: {name}.{key}", value, hints[key])
    return cls(**kwargs)


def parse_config(raw: dict[str, Any], source: str = "<config>") -> PipelineConfig:
    """Validate a parsed TOML document into a :class:`PipelineConfig` (one-line ConfigError)."""
    if "executor" not in raw:
        raise ConfigError(f"{source}: missing [executor] section (e.g. [executor] kind = \"local\", workers = 2)")
    if isinstance(raw["executor"], dict) and "kind" not in raw["executor"]:
        raise ConfigError(f"{source}: executor.kind is missing; use one of {', '.join(EXECUTOR_KINDS)}")
    sections = {}
    for name, value in raw.items():
        if name not in SECTION_TYPES:
            raise ConfigError(f"{source}: unknown section [{name}]{_did_you_mean(name, list(SECTION_TYPES))}")
        sections[name] = _build_section(name, value, source)
    cfg = PipelineConfig(**sections, source=source if source != "<config>" else "")
    check_config(cfg, source)
    return cfg


def _check_choice(where: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{where} = {value!r} is not one of {', '.join(choices)}"
                          f"{_did_you_mean(value, list(choices))}")


def _range(source: str, key: str, value: float, low: float, open_low: bool = False, unit: str = "") -> None:
    """ConfigError naming the key, the value and the valid range."""
    import math

    bad = (isinstance(value, float) and not math.isfinite(value)) or (value <= low if open_low else value < low)
    if bad:
        raise ConfigError(f"{source}: {key} = {value!r}: must be {'>' if open_low else '>='} {low:g}{unit}")


def check_config(cfg: PipelineConfig, source: str = "<config>") -> None:
    """Cross-field checks: compositions, choices, ranges, executor completeness."""
    ex = cfg.executor
    _check_choice(f"{source}: executor.kind", ex.kind, EXECUTOR_KINDS)
    try:
        ex.validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    g = cfg.generate
    _check_choice(f"{source}: generate.labeler", g.labeler, LABELERS)
    for nc in (*g.compositions, *cfg.active_learning.explore_compositions):
        try:
            composition_counts(nc, g.n_atoms)
        except BondmlError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    if g.runs < 1:
        raise ConfigError(f"{source}: generate.runs must be >= 1, got {g.runs}")
    bad = [k for k in g.sub_runs if not 0 <= k <= 14]
    if bad:
        raise ConfigError(f"{source}: generate.sub_runs {bad} outside 0..14")
    if g.labeler == "xtb" and ex.kind not in ("local", "dask") and g.enabled:
        raise ConfigError(f"{source}: the xtb labeler runs locally; use executor.kind = 'local' or labeler = 'dft'")
    f = cfg.features
    _check_choice(f"{source}: features.kind", f.kind, KINDS)
    if f.backend:
        _check_choice(f"{source}: features.backend", f.backend, ("quippy", "featomic"))
    if f.kind == "bond" and f.backend == "quippy":
        raise ConfigError(f"{source}: features.backend = 'quippy' cannot compute the bond-centred SOAP "
                          "(features.kind = 'bond'); use backend = 'featomic' (or leave it out), or kind = 'atom'")
    _range(source, "features.cutoff", f.cutoff, 0.0, open_low=True, unit=" Angstrom")
    _range(source, "features.atom_sigma", f.atom_sigma, 0.0, open_low=True, unit=" Angstrom")
    _range(source, "features.n_max", f.n_max, 1)
    _range(source, "features.l_max", f.l_max, 0)
    _range(source, "pipeline.seed", cfg.pipeline.seed, 0)
    _range(source, "generate.seed", g.seed, 0)
    _range(source, "generate.n_atoms", g.n_atoms, 2)
    _range(source, "generate.first_run", g.first_run, 0)
    _range(source, "deploy.seed", cfg.deploy.seed, 0)
    _range(source, "deploy.threads", cfg.deploy.threads, 0)
    _range(source, "deploy.strain_rate_per_s", cfg.deploy.strain_rate_per_s, 0.0)
    _range(source, "deploy.frame_ps", cfg.deploy.frame_ps, 0.0)
    _range(source, "executor.retries", ex.retries, 0)
    _range(source, "executor.blas_threads", ex.blas_threads, 0)
    _range(source, "model.search_max_train", cfg.model.search_max_train, 1)
    _range(source, "validation.max_train", cfg.validation.max_train, 1)
    _range(source, "validation.n_splits", cfg.validation.n_splits, 2)
    for k, n in enumerate(cfg.validation.learning_curve_sizes):
        _range(source, f"validation.learning_curve_sizes[{k}]", n, 1)
    for n in (*cfg.validation.learning_curve_seeds, *cfg.active_learning.benchmark_seeds):
        _range(source, f"seed {n} (validation.learning_curve_seeds / active_learning.benchmark_seeds)", n, 0)
    _range(source, "active_learning.benchmark_test_cells", cfg.active_learning.benchmark_test_cells, 1)
    _range(source, "active_learning.benchmark_max_train", cfg.active_learning.benchmark_max_train, 1)
    for t, hp in cfg.model.hyperparameters.items():
        if t not in BOND_TYPES:
            raise ConfigError(f"{source}: model.hyperparameters has unknown bond type {t!r}"
                              f"{_did_you_mean(t, list(BOND_TYPES))}")
        for k, v in hp.items():
            if k not in ("sigma", "gamma", "zeta"):
                raise ConfigError(f"{source}: model.hyperparameters.{t}.{k} unknown"
                                  f"{_did_you_mean(k, ['sigma', 'gamma', 'zeta'])}")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError(f"{source}: model.hyperparameters.{t}.{k} must be a positive number, got {v!r}")
    _check_choice(f"{source}: model.preset", cfg.model.preset, ("paper", "default", "tuned"))
    if cfg.model.preset == "tuned" and cfg.model.use_prior is not True:
        raise ConfigError(f"{source}: model.preset = 'tuned' needs model.use_prior = true")
    if cfg.model.max_train_per_type < 10:
        raise ConfigError(f"{source}: model.max_train_per_type must be >= 10")
    v = cfg.validation
    _check_choice(f"{source}: validation.protocol", v.protocol, PROTOCOLS)
    _check_choice(f"{source}: validation.level", v.level, LEVELS)
    d = cfg.deploy
    _check_choice(f"{source}: deploy.protocol", d.protocol, ("scaled", "full"))
    if d.final_strain > 0:
        raise ConfigError(f"{source}: deploy.final_strain must be negative (compression), got {d.final_strain}")
    if d.cut_side < 0:
        raise ConfigError(f"{source}: deploy.cut_side must be >= 0 Angstrom")
    al = cfg.active_learning
    if al.batch_size < 1 or not 0.0 <= al.explore_fraction <= 1.0 or not 0.0 < al.top_fraction <= 1.0:
        raise ConfigError(f"{source}: active_learning needs batch_size >= 1, 0 <= explore_fraction <= 1, "
                          "0 < top_fraction <= 1")
    if al.explore_md_scale <= 0 or al.explore_runs < 0:
        raise ConfigError(f"{source}: active_learning.explore_md_scale must be > 0 and explore_runs >= 0")
    from .active import parse_augmentation

    for name in al.augmentations:
        try:
            parse_augmentation(name)
        except ConfigError as exc:
            raise ConfigError(f"{source}: active_learning.augmentations: {exc}") from None


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a TOML pipeline file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file (invalid UTF-8); give a TOML pipeline file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    return parse_config(raw, str(p))


def config_to_dict(cfg: PipelineConfig) -> dict[str, Any]:
    """Plain dict of every section (for manifests and tracking)."""
    return {name: cfg.section(name) for name in SECTION_TYPES}


__all__ = ["PipelineConfig", "load_config", "parse_config", "config_to_dict", "SECTION_TYPES"]
