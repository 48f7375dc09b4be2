#!/usr/bin/env bash
# Install the system packages bondml's tests and Generate stage use (Debian/Ubuntu):
#   quantum-espresso, quantum-espresso-data -> pw.x and pseudopotentials (e.g. Cu.pbe-kjpaw.UPF)
#   slurm-wlm, slurm-client, munge          -> a real one-node Slurm for the scheduler tests
#                                              (started by the test fixture as root, never here)
#   chromium, chromium-driver               -> a headless browser for the dashboard test
# Idempotent: installs only what is missing. Needs root (or sudo) and apt-get; CI runs it as root
# on a fresh Debian machine. LOBSTER is proprietary and is not installed here.
set -euo pipefail

need=()
command -v pw.x >/dev/null 2>&1 || need+=(quantum-espresso quantum-espresso-data)
{ command -v slurmctld && command -v slurmd && command -v sbatch; } >/dev/null 2>&1 || need+=(slurm-wlm slurm-client)
command -v munged >/dev/null 2>&1 || need+=(munge)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)

if [ ${#need[@]} -eq 0 ]; then
    echo "install-system-deps: pw.x, Slurm, munge and chromium already present; nothing to do"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: apt-get not found; install by hand: ${need[*]}" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo"
    else
        echo "install-system-deps: need root (or passwordless sudo) to install: ${need[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-system-deps: installing ${need[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
# the packages' own daemons are not wanted (the tests start their own, with their own key/config)
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now munge slurmctld slurmd >/dev/null 2>&1 || true
fi

missing=()
for exe in pw.x slurmctld slurmd sbatch munged chromium chromedriver; do
    command -v "$exe" >/dev/null 2>&1 || missing+=("$exe")
done
if [ ${#missing[@]} -ne 0 ]; then
    echo "install-system-deps: installed, but not on PATH: ${missing[*]}" >&2
    exit 1
fi
echo "install-system-deps: pw.x, slurmctld/slurmd/sbatch, munged, chromium and chromedriver present"
