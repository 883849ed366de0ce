#!/usr/bin/env bash
# The README's second command (and what CI runs): install, build with warnings as errors, run
# every test; build the profile-guided binary (its training run of the how-to's scenario must
# serve every request); then rebuild with ASan+UBSan and run the unit, translator and integration
# tests again (the integration tests drive the sanitized gantry binary through every request path).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="$(nproc)"

scripts/setup.sh build -DGANTRY_WERROR=ON
(cd build && ctest --output-on-failure -j"$JOBS")

scripts/build-pgo.sh build-pgo

scripts/setup.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DGANTRY_SANITIZE=ON -DGANTRY_WERROR=ON
# Sanitizer reports go to files (a gantry that dies of one in the middle of an integration test, or
# leaks at exit, may not fail an assertion) and are shown here; any report fails the run.
reports="$(mktemp -d)"
status=0
(cd build-asan && ASAN_OPTIONS="detect_leaks=1:log_path=$reports/asan" \
  UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan" \
  ctest --output-on-failure -j"$JOBS" -L 'unit|golden|integration') || status=$?
if compgen -G "$reports/*" >/dev/null; then
  echo "sanitizer reports:" >&2
  cat "$reports"/* >&2
  status=1
fi
rm -rf "$reports"
exit "$status"
