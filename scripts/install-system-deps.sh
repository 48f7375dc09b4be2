#!/usr/bin/env bash
# Install the system packages bondml's Generate stage needs (Debian/Ubuntu):
#   quantum-espresso       -> pw.x (Quantum ESPRESSO SCF)
#   quantum-espresso-data  -> pseudopotentials, e.g. Cu.pbe-kjpaw.UPF (PBE PAW)
# Idempotent: does nothing when pw.x is already on PATH. Needs root (or sudo) and apt-get.
# LOBSTER is proprietary and is not installed here.
set -euo pipefail

if command -v pw.x >/dev/null 2>&1; then
    echo "install-system-deps: pw.x already present at $(command -v pw.x); nothing to do"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: apt-get not found; install Quantum ESPRESSO (pw.x) by hand" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-system-deps: need root or sudo to run apt-get" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends quantum-espresso quantum-espresso-data

if ! command -v pw.x >/dev/null 2>&1; then
    echo "install-system-deps: quantum-espresso installed but pw.x is not on PATH" >&2
    exit 1
fi
echo "install-system-deps: pw.x at $(command -v pw.x)"
