"""The ``bondml`` command line: one sub-command group per stage, thin over the Python API."""
