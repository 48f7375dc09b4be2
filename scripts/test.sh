#!/usr/bin/env bash
# Set up (if needed), run the static checks (ruff, import contract, mypy) and the whole test
# suite, slow end-to-end checks included (real Slurm, Dask, pw.x, headless browser when root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/lint.sh
exec .venv/bin/python -m pytest -q "$@"
