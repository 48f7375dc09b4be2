"""The ``bondml`` command line: one sub-command group per stage, thin over the Python API.

Consoles for user text (no markup, no hard wrapping, wide when piped): :mod:`bondml.cli._io`.
"""
