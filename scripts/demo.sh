#!/usr/bin/env bash
# Set up (if needed) and run the bondml demo end to end on the bundled real data.
set -euo pipefail
cd "$(dirname "$0")/.."
BONDML_SKIP_SYSTEM_DEPS=1 bash scripts/setup.sh
exec .venv/bin/bondml run configs/demo.toml --out "${1:-demo-output}"
