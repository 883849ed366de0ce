#!/usr/bin/env bash
# The README's second command (and what CI runs): install, build with warnings as errors, run
# every test; build the profile-guided binary (its training run of the how-to's scenario must
# serve every request); then rebuild with ASan+UBSan and run the unit and translator tests again.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="$(nproc)"

scripts/setup.sh build -DGANTRY_WERROR=ON
(cd build && ctest --output-on-failure -j"$JOBS")

scripts/build-pgo.sh build-pgo

scripts/setup.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DGANTRY_SANITIZE=ON -DGANTRY_WERROR=ON
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j"$JOBS" -L 'unit|golden')
