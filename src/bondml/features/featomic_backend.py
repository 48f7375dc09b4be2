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
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

if TYPE_CHECKING:
    from .soap import FeatureSettings

#: QUIP's default ``cutoff_transition_width`` (Angstrom).
QUIP_CUTOFF_TRANSITION_WIDTH = 0.5
#: QUIP's default ``central_weight`` (weight of the central atom's own Gaussian).
QUIP_CENTRAL_WEIGHT = 1.0
#: Accuracy requested from featomic's radial-integral spline.
SPLINE_ACCURACY = 1e-6
RADIAL_CHOICES = ("quip_poly", "gto")


def _radial_choice(settings: FeatureSettings) -> str:
    extra = dict(settings.extra)
    choice = str(extra.get("featomic_radial", "quip_poly"))
    if choice not in RADIAL_CHOICES:
        raise ValueError(f"featomic_radial={choice!r}; choose one of {', '.join(RADIAL_CHOICES)}")
    return choice


def _quip_polynomial_basis_class() -> type:
    from featomic.basis import RadialBasis

    class QuipPolynomialBasis(RadialBasis):
        """QUIP's SOAP radial basis: ``(r_c - r)^(n+2)`` on ``[0, r_c]`` (r in Angstrom).

        featomic orthonormalises it (Loewdin, weight ``r^2``) as QUIP does (``S^-1/2``).
        """

        def compute_primitive(self, positions: np.ndarray, n: int, *, derivative: bool) -> np.ndarray:
            x = np.clip(self.radius - np.asarray(positions, dtype=float), 0.0, None)
            if derivative:
                return -(n + 2) * x ** (n + 1)
            return x ** (n + 2)

    return QuipPolynomialBasis


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


def soap_featomic(atoms: Atoms, settings: FeatureSettings) -> np.ndarray:
    """Per-atom SOAP power spectra from featomic, shape (n_atoms, p), rows in atom order.

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
