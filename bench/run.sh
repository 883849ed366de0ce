#!/usr/bin/env bash
# Builds Gantry (installing what is needed) and runs the side-by-side benchmark. Gantry is the
# profile-guided build (scripts/build-pgo.sh, build-pgo/), the one to run in production; the floor
# relay comes from the plain build (build/). To measure another binary: GANTRY_BIN=... bench/run.py.
#   bench/run.sh [--seconds 10] [--repeat 3] [--connections 50] [--workers 1] [--only gantry nginx haproxy floor]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build >/dev/null
scripts/build-pgo.sh build-pgo >/dev/null
GANTRY_BIN="$PWD/build-pgo/src/gantry" exec python3 bench/run.py "$@"
