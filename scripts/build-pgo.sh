#!/usr/bin/env bash
# Builds gantry with profile-guided optimisation (GCC) into build-pgo/, the build bench/run.sh
# measures and the one to run in production: an instrumented build, a training run of the how-to's
# scenario (scripts/pgo-train.py), then the same tree rebuilt with the counts it wrote. Installs
# what is needed first (scripts/setup.sh); idempotent, and the profile is made afresh each time.
#   scripts/build-pgo.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build-pgo}"

scripts/setup.sh "$BUILD_DIR" -DGANTRY_PGO=GENERATE -DGANTRY_BUILD_TESTS=OFF
# Counts add up across runs: start from none.
find "$BUILD_DIR" -name '*.gcda' -delete
python3 scripts/pgo-train.py "$BUILD_DIR/src/gantry"
if ! find "$BUILD_DIR/src" -name '*.gcda' | grep -q .; then
  echo "build-pgo: the training run wrote no counts" >&2
  exit 1
fi
scripts/setup.sh "$BUILD_DIR" -DGANTRY_PGO=USE -DGANTRY_BUILD_TESTS=OFF
echo "build-pgo: $BUILD_DIR/src/gantry is built with the profile"
