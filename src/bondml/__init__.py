"""bondml: machine-learned DFT bond strengths (-ICOHP) for metallic glasses at MD scale.

Rebuilds and extends the Generate+ETL pipeline of the Zr-Cu-Al metallic-glass study
(Phys. Rev. Materials 4, 113603, 2020). Units: Angstrom, eV, GPa, ps.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
