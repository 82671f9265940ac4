#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: the Release build, then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer. Exits non-zero on any failure.
#   scripts/test.sh [--fast]   (--fast: skip the sanitizer pass)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
(cd build && ctest --output-on-failure -j "$(nproc)")

if [ "${1:-}" != "--fast" ]; then
  scripts/setup.sh --sanitize
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j "$(nproc)")
fi
