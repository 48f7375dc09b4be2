#!/usr/bin/env bash
# Static checks of the tree: ruff (rule set in pyproject.toml), the import-layer contract
# (import-linter, [tool.importlinter] in pyproject.toml) and mypy on the typed packages
# (core, io, structure, features, model, md, evaluate.active, deploy.outputs). Exit status non-zero when any check fails.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BONDML_VENV:-.venv}/bin
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
rc=0
echo "== ruff";         "$BIN/ruff" check src tests bench || rc=1
echo "== lint-imports"; "$BIN/lint-imports" --config pyproject.toml || rc=1
echo "== mypy";         "$BIN/mypy" || rc=1
exit $rc
