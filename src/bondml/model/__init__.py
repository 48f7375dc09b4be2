"""Train: the paper's bond GPR (``BondGPR``), the per-type ``BondModel`` and the distance-only model."""

from .bondmodel import BondModel
from .distance import DistanceModel
from .gpr import BondGPR
from .kernel import bond_kernel, bond_kernel_paper

__all__ = ["BondGPR", "BondModel", "DistanceModel", "bond_kernel", "bond_kernel_paper"]
