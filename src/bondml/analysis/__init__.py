"""Analysis of a deployment run: stress-strain, distributions, per-atom correlations, bond
exchange, spatial maps, and a report bundling them. Each function returns data; the ``plot_*``
functions write a PNG. Units: Angstrom, eV, GPa, ps."""

from .distributions import type_distributions
from .exchange import bond_exchange, exchange_between
from .maps import slice_map
from .peratom import per_atom_sums, stress_correlation
from .report import analyze
from .stress import StressStrain, stress_strain

__all__ = [
    "StressStrain",
    "analyze",
    "bond_exchange",
    "exchange_between",
    "per_atom_sums",
    "slice_map",
    "stress_correlation",
    "stress_strain",
    "type_distributions",
]
