"""SOAP power spectrum through ``featomic``, configured as close as possible to QUIP's.

QUIP's ``soap`` descriptor of the paper (``cutoff=3.75 l_max=6 n_max=8 atom_sigma=0.5``, QUIP
defaults ``cutoff_transition_width=0.5``, ``central_weight=1``) expands a Gaussian neighbour
density (width ``atom_sigma``, Angstrom, the central atom included with weight 1) on QUIP's
radial basis: the polynomials ``(r_c - r)^(n+2)``, ``n = 0..n_max-1``, orthonormalised with
weight ``r^2`` on ``[0, r_c]``; neighbour weights are smoothed by a cosine from
``r_c - 0.5`` to ``r_c`` Angstrom. Here the same density, cutoff smoothing (featomic's
``ShiftedCosine`` of width 0.5 Angstrom is QUIP's cosine transition) and radial basis (a custom
:class:`QuipPolynomialBasis`, radial integrals splined by :class:`featomic.splines.SoapSpliner`)
are used, so the two power spectra span the same function space. The vector layout is featomic's
(all ``(l, n1, n2)`` per neighbour-species pair, 2688 components for three species), not QUIP's 2101;
only dot products between atoms are comparable, and they agree to a few 1e-2 (see
``docs/features.md`` for the measured figures). A model must be used with the backend it was
trained with: :class:`~bondml.features.soap.FeatureSettings` carries the backend and
``require_same`` enforces it.

``settings.extra`` may hold ``("featomic_radial", "gto")`` to use featomic's native GTO basis
instead (no spline set-up, slightly further from QUIP).

With the QUIP polynomial basis (the default) the vectors are computed by the vectorised numpy
engine of :mod:`bondml.features.fast_soap` (:func:`soap_featomic_numpy`), which evaluates
featomic's own radial-integral splines and reproduces featomic's output, layout and
normalisation to rounding (~1e-15; the tests hold it to 1e-10 of featomic itself) several times
faster; :func:`soap_featomic_library` calls featomic itself (the GTO basis always does).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

if TYPE_CHECKING:
    from .soap import FeatureSettings

from .fast_soap import (  # noqa: F401  (QUIP's defaults, shared with the numpy engine)
    CHUNK,
    QUIP_CENTRAL_WEIGHT,
    QUIP_CUTOFF_TRANSITION_WIDTH,
    SPLINE_ACCURACY,
    centre_pairs,
    fold_rows,
    l_weights,
    power_spectrum_chunk,
    quip_polynomial_basis_class,
)

RADIAL_CHOICES = ("quip_poly", "gto")


def _radial_choice(settings: FeatureSettings) -> str:
    extra = dict(settings.extra)
    choice = str(extra.get("featomic_radial", "quip_poly"))
    if choice not in RADIAL_CHOICES:
        raise ValueError(f"featomic_radial={choice!r}; choose one of {', '.join(RADIAL_CHOICES)}")
    return choice


def _quip_polynomial_basis_class() -> type:
    return quip_polynomial_basis_class()


@lru_cache(maxsize=8)
def _calculator(
    cutoff: float, l_max: int, n_max: int, atom_sigma: float, radial: str
) -> Any:
    """Build (once per settings) a featomic ``SoapPowerSpectrum`` with QUIP-like hypers."""
    from featomic import SoapPowerSpectrum
    from featomic.basis import Gto, TensorProduct
    from featomic.cutoff import Cutoff, ShiftedCosine
    from featomic.density import Gaussian

    cut = Cutoff(radius=cutoff, smoothing=ShiftedCosine(width=QUIP_CUTOFF_TRANSITION_WIDTH))
    density = Gaussian(width=atom_sigma, center_atom_weight=QUIP_CENTRAL_WEIGHT)
    if radial == "gto":
        basis = TensorProduct(max_angular=l_max, radial=Gto(max_radial=n_max - 1, radius=cutoff))
        return SoapPowerSpectrum(cutoff=cut, density=density, basis=basis)
    from featomic.splines import SoapSpliner

    poly = _quip_polynomial_basis_class()(max_radial=n_max - 1, radius=cutoff)
    basis = TensorProduct(max_angular=l_max, radial=poly, spline_accuracy=SPLINE_ACCURACY)
    spliner = SoapSpliner(cutoff=cut, density=density, basis=basis)
    return SoapPowerSpectrum(**spliner.get_hypers())


def _all_keys(species_z: tuple[int, ...]) -> Any:
    """Every (center, neighbour 1 <= neighbour 2) species block, so the layout is fixed."""
    from metatensor import Labels

    rows = [
        [c, a, b]
        for c in species_z
        for ia, a in enumerate(species_z)
        for b in species_z[ia:]
    ]
    return Labels(["center_type", "neighbor_1_type", "neighbor_2_type"], np.array(rows, dtype=np.int32))


def soap_featomic(atoms: Atoms, settings: FeatureSettings, dtype: type | np.dtype = np.float64) -> np.ndarray:
    """Per-atom SOAP power spectra of the featomic backend, shape (n_atoms, p), rows in atom order.

    The QUIP polynomial basis goes through the numpy engine (:func:`soap_featomic_numpy`, equal
    to featomic to rounding), the GTO basis through featomic (:func:`soap_featomic_library`).
    ``dtype``: float64 (default) or float32 (rounded from float64).
    """
    if _radial_choice(settings) == "quip_poly":
        return soap_featomic_numpy(atoms, settings, dtype=dtype)
    out = soap_featomic_library(atoms, settings)
    return out if np.dtype(dtype) == np.float64 else out.astype(dtype)


@lru_cache(maxsize=8)
def _atom_fold(ns: int, l_max: int, n_max: int) -> np.ndarray:
    """featomic's column order (species pair a <= b, l, n1, n2) as indices into the per-l Gram
    matrices G[l, (a, n1), (b, n2)]."""
    m = ns * n_max
    n1, n2 = np.meshgrid(np.arange(n_max), np.arange(n_max), indexing="ij")
    idx = []
    for a in range(ns):
        for b in range(a, ns):
            for ell in range(l_max + 1):
                idx.append(ell * m * m + (a * n_max + n1.ravel()) * m + b * n_max + n2.ravel())
    return np.concatenate(idx)


def soap_featomic_numpy(atoms: Atoms, settings: FeatureSettings, dtype: type | np.dtype = np.float64,
                        chunk: int = CHUNK) -> np.ndarray:
    """featomic's per-atom SOAP (QUIP polynomial basis) computed by the numpy engine.

    Same shape, column layout (species pair, l, n1, n2), normalisation and central-atom Gaussian
    (weight 1) as :func:`soap_featomic_library`, to rounding. Positions need not be wrapped; the
    cell may be smaller than the cutoff (every periodic image within the cutoff is a neighbour).
    ``dtype`` of the result: float64 or float32 (each chunk computed in float64, then rounded).
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype={dtype}: SOAP vectors are float64 or float32")
    species = tuple(int(z) for z in settings.species_z)
    ns = len(species)
    rc = float(settings.cutoff)
    l_max, n_max, sigma = int(settings.l_max), int(settings.n_max), float(settings.atom_sigma)
    n_at = len(atoms)
    fold_index = _atom_fold(ns, l_max, n_max)
    out = np.empty((n_at, fold_index.size), dtype=dtype)
    if n_at == 0:
        return out
    zmap = {z: k for k, z in enumerate(species)}
    spec = np.array([zmap[int(z)] for z in atoms.numbers], dtype=np.int64)
    a, nspec, D, d, start = centre_pairs(atoms, rc, spec)
    l_scale = l_weights(l_max)
    for s0 in range(0, n_at, chunk):
        s1 = min(s0 + chunk, n_at)
        p0, p1 = start[s0], start[s1]
        G = power_spectrum_chunk(a[p0:p1] - s0, nspec[p0:p1], D[p0:p1], d[p0:p1], s1 - s0, ns, rc, l_max,
                                 n_max, sigma, centre_species=spec[s0:s1], central_weight=QUIP_CENTRAL_WEIGHT,
                                 l_scale=l_scale)
        Gv = G.reshape(s1 - s0, l_max + 1, ns, n_max, ns, n_max)
        for sa in range(ns):  # featomic's sqrt(2) on the blocks of two different neighbour species
            Gv[:, :, sa, :, sa + 1:, :] *= np.sqrt(2.0)
        fold_rows(G, fold_index, out[s0:s1], settings.normalise, "featomic")
    return out


def soap_featomic_library(atoms: Atoms, settings: FeatureSettings) -> np.ndarray:
    """Per-atom SOAP power spectra from featomic itself, shape (n_atoms, p), rows in atom order.

    ``p = n_species(n_species+1)/2 * (l_max+1) * n_max^2`` (2688 for the paper's settings):
    as in QUIP, atoms of every central species share the same columns (so the kernel between a
    Zr and a Cu centre is not zero by construction); the layout does not depend on which species
    the cell holds. Rows have unit
    Euclidean norm when ``settings.normalise``. Positions need not be wrapped into the cell.
    Species must have been checked by the caller (:func:`bondml.features.soap.compute_soap`).
    """
    calc = _calculator(
        float(settings.cutoff), int(settings.l_max), int(settings.n_max), float(settings.atom_sigma),
        _radial_choice(settings),
    )
    species = tuple(int(z) for z in settings.species_z)
    desc = calc.compute(atoms, selected_keys=_all_keys(species))
    # one block per center species -> stack: samples (system, atom) get the center type as a column
    desc = desc.keys_to_properties(["neighbor_1_type", "neighbor_2_type"])
    desc = desc.keys_to_samples("center_type")
    block = desc.block()
    atom = block.samples.column("atom")
    values = np.asarray(block.values, dtype=float)
    n = len(atoms)
    if atom.size != n or np.unique(atom).size != n:
        raise RuntimeError(f"featomic returned {atom.size} descriptors for {n} atoms")
    out = np.empty((n, values.shape[1]), dtype=float)
    out[np.asarray(atom, dtype=np.int64)] = values
    if settings.normalise:
        norm = np.linalg.norm(out, axis=1)
        if np.any(norm == 0.0):
            raise RuntimeError("featomic returned an all-zero SOAP vector (isolated atom?)")
        out /= norm[:, None]
    return out
