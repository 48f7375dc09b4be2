"""One exception family. Every message is one line naming the file or value and the problem."""

from __future__ import annotations


class BondmlError(Exception):
    """Base class of every error bondml raises on purpose (bad input, bad state).

    ``exit_code`` is the CLI's exit status for it: 2 = bad input or usage, nothing changed.
    """

    exit_code = 2


class PartialFailure(BondmlError):  # noqa: N818 - public API name, not an "error" (exit 1)
    """The command did what it could, but some items (cells, frames, jobs) failed: exit status 1.

    The message is the one-line summary; the per-item lines were reported before.
    """

    exit_code = 1


class InputFileError(BondmlError):
    """A file is missing, truncated, corrupt or inconsistent with another file."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[object, ...]:  # survives the trip back from a worker process
        return (type(self), (self.path, self.problem))


class UnknownElementError(BondmlError):
    """An element outside the model's or the study's element set."""


class FeatureMismatchError(BondmlError):
    """Features computed with other settings than the ones a model or dataset expects."""


class ModelError(BondmlError, ValueError):
    """A model file is missing, corrupt, of an unsupported version, or used out of scope.

    Also a :class:`ValueError`: an invalid estimator parameter or input array raises it, as
    scikit-learn's conventions (``set_params``, ``clone``, its estimator checks) expect.
    """


class StoreError(BondmlError):
    """The bond store is missing, locked, or a requested version does not exist."""


class ConfigError(BondmlError):
    """An invalid configuration value (unknown key, wrong type, impossible value)."""


class JobError(BondmlError):
    """An external job (LAMMPS, pw.x, LOBSTER, scheduler) failed or could not start."""
