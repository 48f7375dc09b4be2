"""The pipeline's task runner: :class:`bondml.execution.Engine` on the ``[executor]`` table.

Stages call :meth:`TaskRunner.map` (or ``submit``) and never see the engine; the engine starts
lazily on the first task, so a fully cached re-run never starts it. The DFT jobs of the generate
stage run on an engine built from the same :class:`~bondml.execution.ExecutorConfig`, so one
``[executor]`` table gives the same provider, launcher and retry policy everywhere.
"""

from __future__ import annotations

from ..execution import Engine as TaskRunner
from ..execution import ExecutorConfig, build_parsl_config

#: ``parsl_config(ex, run_dir)``: the parsl configuration of an executor table.
parsl_config = build_parsl_config

__all__ = ["TaskRunner", "ExecutorConfig", "parsl_config"]
