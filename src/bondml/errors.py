"""One exception family. Every message is one line naming the file or value and the problem."""

from __future__ import annotations


class BondmlError(Exception):
    """Base class of every error bondml raises on purpose (bad input, bad state)."""


class InputFileError(BondmlError):
    """A file is missing, truncated, corrupt or inconsistent with another file."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnknownElementError(BondmlError):
    """An element outside the model's or the study's element set."""


class FeatureMismatchError(BondmlError):
    """Features computed with other settings than the ones a model or dataset expects."""


class ModelError(BondmlError):
    """A model file is missing, corrupt, of an unsupported version, or used out of scope."""


class StoreError(BondmlError):
    """The bond store is missing, locked, or a requested version does not exist."""


class ConfigError(BondmlError):
    """An invalid configuration value (unknown key, wrong type, impossible value)."""


class JobError(BondmlError):
    """An external job (LAMMPS, pw.x, LOBSTER, scheduler) failed or could not start."""
