#!/usr/bin/env bash
# Runs every test suite: the Check unit suites under ASan+UBSan (build/asan),
# then the fault and fuzz-corpus suites; integration tests (label integration)
# against the non-ASan build/. Prints Check's and ctest's summaries
# and a final "N passed, N failed, N skipped" line. Exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.."

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-300}

log=$(mktemp)
ctest --test-dir build/asan --output-on-failure -j 2 --timeout 900 -LE integration 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# Integration tests drive the real stratad, so they run against the non-ASan build/.
ctest --test-dir build --output-on-failure --timeout 900 -L integration 2>&1 | tee -a "$log"
irc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] || rc=$irc

passed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* +Passed' "$log")
failed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*Failed|\*\*\*Exception|\*\*\*Timeout|Not Run)' "$log")
skipped=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*\*\*\*Skipped' "$log")
rm -f "$log"
# Check's own per-suite summary lines ("100%: Checks: 9, Failures: 0, Errors: 0").
grep -hE '^[0-9]+%: Checks: ' build/asan/Testing/Temporary/LastTest.log 2>/dev/null | sed 's/^/  check: /'
echo "suites: $passed passed, $failed failed, $skipped skipped"
exit "$rc"
