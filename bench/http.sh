#!/usr/bin/env bash
# bench/http.sh [SECONDS] [CONNECTIONS]: GET /v1/customers/{id} through odsd
# versus pgbench running the SAME SQL transaction, on 100k demo customers.
#
# Starts its own PostgreSQL, migrates, loads the demo (100k customers), then
# for HS256 and RS256 tokens runs wrk (CONNECTIONS [32] connections, random
# customer ids, 16 valid tokens) against odsd (db_pool_size = CONNECTIONS)
# for SECONDS [20], and pgbench with the same transaction and connection
# count, with and without \startpipeline. Prints req/s, p50/p99, odsd CPU
# seconds per 10k requests, odsd peak RSS and the ratios odsd / pgbench.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/bench/out/build-release"
. "$top/bench/lib.sh"
if [ -z "${ODS_TEST_DB_URI:-}" ]; then
	"$top/deploy/install-deps.sh" --bench
	bench_build "$build" "" odsd odsctl
	ODS_HARNESS_PG=1 ODS_HARNESS_PG_OPTS="-c shared_buffers=512MB -c max_connections=200" \
		exec "$top/tests/harness.sh" "$0" "$@"
fi
secs=${1:-20}
conns=${2:-32}
customers=100000
bench_begin
bench_demo "$build" "$customers"
# The freshness columns would make every answer stale after a minute; keep them current.
psql -qX "$admin" -c "UPDATE ods.synced_tables SET as_of = now()"

bench_secret
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/rsa.pem" 2>/dev/null
openssl pkey -in "$work/rsa.pem" -pubout -out "$work/rsa.pub"

port=$((20000 + RANDOM % 20000))
# pgbench would take ":read" for a variable: the same claims, colon-free.
claims='{"role":"support_agent","sub":"bench","scope":"customers_read"}'

start_odsd() { # ALG
	local alg=$1
	ODS_LISTEN_PORT=$port ODS_DB_URI="$authn" ODS_DB_POOL_SIZE=$conns \
		ODS_JWT_ALGORITHMS=$alg ODS_JWT_SECRET_FILE="$work/secret" \
		ODS_JWT_PUBLIC_KEY_FILE="$work/rsa.pub" ODS_LOG_LEVEL=warn \
		ODS_MAX_CONNECTIONS=1024 ODS_HTTP_THREADS=${ODS_HTTP_THREADS:-0} "$build/odsd" 2>"$work/odsd.log" &
	odsd_pid=$!
	bench_wait_ready "$port"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_odsd() { # ALG
	local alg=$1 key=() t0 t1 hz out reqs
	[ "$alg" = RS256 ] && key=(--alg RS256 --key-file "$work/rsa.pem")
	: >"$work/tokens"
	for i in $(seq 1 16); do
		"$build/odsctl" token --secret-file "$work/secret" "${key[@]}" --role support_agent \
			--scope "customers:read" --sub "agent$i" --ttl 7200 >>"$work/tokens"
	done
	start_odsd "$alg"
	# Warm up: the first requests prepare statements and fill the token cache.
	TOKENS="$work/tokens" CUSTOMERS=$customers wrk -t2 -c"$conns" -d3s \
		-s "$top/bench/customer.lua" "http://127.0.0.1:$port" >/dev/null
	t0=$(cpu_ticks "$odsd_pid")
	out=$(TOKENS="$work/tokens" CUSTOMERS=$customers wrk -t2 -c"$conns" -d"${secs}s" \
		--latency -s "$top/bench/customer.lua" "http://127.0.0.1:$port")
	t1=$(cpu_ticks "$odsd_pid")
	hz=$(getconf CLK_TCK)
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
	p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
	p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
	non200=$(echo "$out" | awk '/^non-200/ {print $2}')
	cpu10k=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v n="$reqs" \
		'BEGIN { printf "%.3f", (b - a) / hz / n * 10000 }')
	rss=$(awk '/VmHWM/ {printf "%.1f MB", $2 / 1024}' "/proc/$odsd_pid/status")
	kill "$odsd_pid"
	wait "$odsd_pid" || true
	odsd_pid=
	printf '  odsd %-6s %9.0f req/s  p50 %-8s p99 %-8s cpu %s s/10k req  peak RSS %s  non-200 %s\n' \
		"$alg" "$rps" "$p50" "$p99" "$cpu10k" "$rss" "$non200"
	eval "rps_$alg=$rps"
}

# The exact transaction odsd sends for GET /v1/customers/{id} (see src/db/call.h).
cat >"$work/plain.sql" <<SQL
\set id random(1, $customers)
BEGIN;
SELECT set_config('role', 'support_agent', true), set_config('request.jwt.claims', '$claims', true), set_config('statement_timeout', '5000', true);
SELECT * FROM ods_api.customer_360("customer_id" => :id::bigint);
COMMIT;
SQL
{
	echo "\\set id random(1, $customers)"
	echo "\\startpipeline"
	sed -n '2,5p' "$work/plain.sql"
	echo "\\endpipeline"
} >"$work/pipelined.sql"

run_pgbench() { # NAME FILE
	local out tps
	out=$(pgbench -n -M prepared -c "$conns" -j 2 -T "$secs" -f "$2" "$authn" 2>&1)
	tps=$(echo "$out" | awk '/^tps =/ {print $3}')
	lat=$(echo "$out" | awk '/^latency average/ {print $4 " " $5}')
	printf '  pgbench %-10s %9.0f tps   latency avg %s\n' "$1" "$tps" "$lat"
	eval "tps_$1=$tps"
}

echo "bench/http: GET /v1/customers/{id}, $customers customers, $conns connections, ${secs}s per run, http_threads=${ODS_HTTP_THREADS:-0}"
run_odsd HS256
run_odsd RS256
run_pgbench plain "$work/plain.sql"
run_pgbench pipelined "$work/pipelined.sql"
awk -v h="$rps_HS256" -v r="$rps_RS256" -v p="$tps_pipelined" -v q="$tps_plain" 'BEGIN {
	printf "  ratio odsd/pgbench pipelined: HS256 %.2f, RS256 %.2f\n", h / p, r / p
	printf "  ratio odsd/pgbench plain:     HS256 %.2f, RS256 %.2f\n", h / q, r / q
}'
