"""Readers and writers for the file formats of the study (LOBSTER, Quantum ESPRESSO, LAMMPS, xyz)
and the original GETL directory convention."""
