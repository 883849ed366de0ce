#!/bin/bash
# Coroutine frame sizes of a binary built with debug information (e.g. -DCMAKE_BUILD_TYPE=RelWithDebInfo).
# GCC describes each coroutine's frame as a structure named "<mangled function>.Frame"; its
# DW_AT_byte_size is what every call of that coroutine allocates.
#   tools/coroutine_frames.sh build-dbg/src/gantry              # Gantry's coroutines, largest last
#   tools/coroutine_frames.sh build-dbg/src/gantry 'Connection::'
set -euo pipefail
bin=${1:?usage: $0 BINARY [REGEX]}
pattern=${2:-gantry::}
readelf --debug-dump=info "$bin" 2>/dev/null |
  awk '/DW_AT_name.*\): _Z[A-Za-z0-9_]*\.Frame$/ { sub(/.*\): /, ""); sub(/\.Frame$/, ""); name = $0; next }
       name != "" && /DW_AT_byte_size/ { print $NF, name; name = "" }
       /Abbrev Number/ { name = "" }' |
  sort -u | while read -r size mangled; do
    printf '%6d %s\n' "$size" "$(c++filt "$mangled" | cut -c1-150)"
  done | grep -E -- "$pattern" | sort -n
