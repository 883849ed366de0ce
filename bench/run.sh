#!/usr/bin/env bash
# Builds Gantry (installing what is needed) and runs the side-by-side benchmark.
#   bench/run.sh [--seconds 10] [--repeat 3] [--connections 50] [--workers 1] [--only gantry nginx haproxy floor]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build >/dev/null
GANTRY_BIN="$PWD/build/src/gantry" exec python3 bench/run.py "$@"
