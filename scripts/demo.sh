#!/usr/bin/env bash
# The README's first command: install, build, and run the how-to's backend-mTLS scenario on
# localhost (https://127.0.0.1:8443). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/src/gantry demo "$@"
