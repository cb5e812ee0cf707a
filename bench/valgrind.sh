#!/usr/bin/env bash
# bench/valgrind.sh [REQUESTS] [THREADS]: odsd under valgrind memcheck over the
# mixed traffic of `make check`'s leak test (tests/mixload.h, the same code).
#
# Builds odsd without sanitizers (-O1 -g) in bench/out/build-valgrind, starts a
# PostgreSQL (tests/harness.sh), migrates, loads a 2,000-customer demo, runs
# odsd under `valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect`,
# drives REQUESTS [10000] requests from THREADS [4] client threads with
# tests/mixload, sends SIGTERM and reports valgrind's error summary and leak
# totals. Exits non-zero when valgrind found errors or definite/indirect
# leaks, or when an answer was unexpected. The full log stays in
# bench/out/valgrind-odsd.log.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
build="$out/build-valgrind"
. "$top/bench/lib.sh"
if [ -z "${ODS_TEST_DB_URI:-}" ]; then
	"$top/deploy/install-deps.sh" --bench
	bench_build "$build" "-O1 -g -fno-omit-frame-pointer" odsd odsctl tests/mixload
	ODS_HARNESS_PG=1 exec "$top/tests/harness.sh" "$0" "$@"
fi
requests=${1:-10000}
threads=${2:-4}
log="$out/valgrind-odsd.log"
bench_begin
bench_demo "$build" 2000
bench_secret

port=$((20000 + RANDOM % 20000))
ODS_LISTEN_PORT=$port ODS_DB_URI="$authn" ODS_JWT_SECRET_FILE="$work/secret" \
	ODS_OPENAPI_FILE="$top/openapi.yaml" ODS_LOG_LEVEL=warn ODS_SHUTDOWN_TIMEOUT_MS=30000 \
	valgrind --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30 \
	--log-file="$log" "$build/odsd" 2>"$work/odsd.log" &
odsd_pid=$!
bench_wait_ready "$port" 600

echo "bench/valgrind: odsd under memcheck, $requests mixed requests from $threads threads"
driver=0
"$build/tests/mixload" --port "$port" --secret-file "$work/secret" --db "$admin" \
	--requests "$requests" --threads "$threads" --seed 42 || driver=$?
kill -TERM "$odsd_pid"
rc=0
wait "$odsd_pid" || rc=$?
odsd_pid=
summary=$(grep -E 'ERROR SUMMARY|definitely lost:|indirectly lost:|possibly lost:|still reachable:|no leaks are possible' "$log" | sed 's/^==[0-9]*== */    /')
echo "  odsd exit status under valgrind: $rc (99: valgrind found errors or leaks)"
echo "$summary"
echo "  full log: $log"
if [ "$rc" -ne 0 ] || [ "$driver" -ne 0 ]; then
	grep -B2 -A20 -E 'Invalid|uninitialised|definitely lost in|indirectly lost in' "$log" | head -80 >&2 || true
	echo "bench/valgrind: FAILED" >&2
	exit 1
fi
echo "bench/valgrind: clean"
