#!/usr/bin/env bash
# bench/writes.sh [SECONDS] [CONNECTIONS] [EVENTS] [STREAMS]: writes through odsd.
#
# Starts its own PostgreSQL (fsync on), migrates, loads a small demo (2,000
# customers), starts odsd (db_pool_size = CONNECTIONS), then measures:
#
#  1. POST /v1/cases with wrk: CONNECTIONS [16] connections for SECONDS [20],
#     16 support_agent tokens, a valid body for a random customer and a unique
#     Idempotency-Key per request (so every request creates a case, its audit
#     row and its stored idempotent response). Prints req/s, p50/p99, the
#     answers that were not 201, and checks the rows created in SQL.
#  2. POST /v1/ingest/debezium over HTTP: EVENTS [100000] pre-generated Debezium
#     change events on synced.customer_current (new keys; per key a create,
#     updates, every 4th event a delete: about 50% u, 25% c, 25% d), in batches
#     of 200 (JSON arrays; every 4th batch in the schema/payload wrapper),
#     posted with Debezium Server's header form "Authorization: Bearer: <jwt>".
#     Each stream is one curl process that posts its batches in order on one
#     keep-alive connection, like a Debezium partition. Runs with 1 stream, then
#     with STREAMS [4] streams over disjoint keys; prints events/s and checks
#     that every event was applied (the responses' counts and the table).
#  3. The same endpoint with one event per request (what Debezium Server's HTTP
#     sink sends), with wrk at 1 and CONNECTIONS connections for SECONDS / 2.
#
# ODS_HTTP_THREADS in the environment goes to odsd (default 0, odsd's own: a
# thread per connection; -1: two event loops per CPU, each blocked while its
# request is in the database). Writes wait for their commit, so the two differ
# more than for reads.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/bench/out/build-release"
. "$top/bench/lib.sh"
if [ -z "${ODS_TEST_DB_URI:-}" ]; then
	"$top/deploy/install-deps.sh" --bench
	bench_build "$build" "" odsd odsctl
	ODS_HARNESS_PG=1 ODS_HARNESS_DURABLE=1 \
		ODS_HARNESS_PG_OPTS="-c shared_buffers=256MB -c max_connections=200" \
		exec "$top/tests/harness.sh" "$0" "$@"
fi
secs=${1:-20}
conns=${2:-16}
events=${3:-100000}
streams=${4:-4}
batch=200
customers=2000
psql=psql
[ -n "${ODS_TEST_PG_BINDIR:-}" ] && [ -x "$ODS_TEST_PG_BINDIR/psql" ] && psql=$ODS_TEST_PG_BINDIR/psql
bench_begin
q() { "$psql" -qXAt -v ON_ERROR_STOP=1 "$admin" "$@"; }
now() { date +%s.%N; }

bench_demo "$build" "$customers"
bench_secret
port=$((20000 + RANDOM % 20000))
ODS_LISTEN_PORT=$port ODS_DB_URI="$authn" ODS_DB_POOL_SIZE=$conns \
	ODS_JWT_SECRET_FILE="$work/secret" ODS_LOG_LEVEL=warn ODS_MAX_CONNECTIONS=1024 \
	ODS_HTTP_THREADS=${ODS_HTTP_THREADS:-0} \
	ODS_MAX_BODY_BYTES=16777216 "$build/odsd" 2>"$work/odsd.log" &
odsd_pid=$!
bench_wait_ready "$port"
token() { # ROLE SCOPE SUB
	"$build/odsctl" token --secret-file "$work/secret" --role "$1" --scope "$2" --sub "$3" \
		--ttl 7200
}

# ---- 1. POST /v1/cases ----

: >"$work/tokens"
for i in $(seq 1 16); do
	token support_agent "cases:write" "agent$i" >>"$work/tokens"
done
cat >"$work/cases.lua" <<'LUA'
-- POST /v1/cases with a unique Idempotency-Key and a valid body per request.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

local tokens, customers, run, n

function init(args)
  tokens = {}
  for line in io.lines(os.getenv("TOKENS")) do
    tokens[#tokens + 1] = "Bearer " .. line
  end
  customers = tonumber(os.getenv("CUSTOMERS"))
  run = os.getenv("RUN")
  n = 0
  non201 = 0
  created = 0
end

function request()
  n = n + 1
  local headers = {
    ["Authorization"] = tokens[(n % #tokens) + 1],
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("bench-%s-%d-%d", run, id, n),
  }
  local body = string.format(
    '{"customer_id":%d,"subject":"bench %s","description":"wrk","priority":%d}',
    math.random(1, customers), run, 1 + n % 5)
  return wrk.format("POST", "/v1/cases", headers, body)
end

-- wrk counts only >= 400 as errors: count every answer that is not a 201.
function response(status, headers, body)
  if status == 201 then created = created + 1 else non201 = non201 + 1 end
end

function done(summary, latency, requests)
  local bad, ok = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non201")
    ok = ok + t:get("created")
  end
  io.write(string.format("created: %d\nnon-201: %d\n", ok, bad))
end
LUA

echo "bench/writes: $customers demo customers, PostgreSQL with fsync on, odsd db_pool_size=$conns http_threads=${ODS_HTTP_THREADS:-0}"
# Warm-up (prepared statements, token cache), then the measured run.
TOKENS="$work/tokens" CUSTOMERS=$customers RUN=warm wrk -t2 -c"$conns" -d3s \
	-s "$work/cases.lua" "http://127.0.0.1:$port" >/dev/null
out=$(TOKENS="$work/tokens" CUSTOMERS=$customers RUN=run wrk -t2 -c"$conns" -d"${secs}s" \
	--latency -s "$work/cases.lua" "http://127.0.0.1:$port")
rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
created=$(echo "$out" | awk '/^created:/ {print $2}')
non201=$(echo "$out" | awk '/^non-201:/ {print $2}')
# Requests wrk cut off may still commit: wait until odsd is idle, then count in ONE
# snapshot (a case, its audit row and its idempotency key commit together).
for _ in $(seq 1 100); do
	busy=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'ods_authenticator'
		AND state <> 'idle' AND query NOT LIKE 'LISTEN%'")
	[ "$busy" = 0 ] && break
	sleep 0.1
done
IFS='|' read -r rows audits keys < <(q -c "SELECT
	(SELECT count(*) FROM native.support_cases WHERE subject = 'bench run'),
	(SELECT count(*) FROM native.audit_log a JOIN native.support_cases s
		ON a.entity = 'support_cases' AND a.entity_id = s.case_id::text AND a.action = 'insert'
		WHERE s.subject = 'bench run'),
	(SELECT count(*) FROM ods.idempotency_keys WHERE key LIKE 'bench-run-%')")
printf '  POST /v1/cases   %8.0f req/s  p50 %-8s p99 %-8s non-201 %s  (%s connections, %ss)\n' \
	"$rps" "$p50" "$p99" "$non201" "$conns" "$secs"
# wrk may cut the last in-flight requests short: their cases can exist without a 201 seen.
printf '  created: %s answered 201; in SQL %s cases, %s audit rows, %s idempotency keys\n' \
	"$created" "$rows" "$audits" "$keys"
if [ "$rows" -lt "$created" ] || [ "$rows" -gt $((created + conns)) ] ||
	[ "$audits" != "$rows" ] || [ "$keys" != "$rows" ]; then
	echo "bench/writes: the database does not match the answers" >&2
	exit 1
fi

# ---- 2. POST /v1/ingest/debezium ----

sync_token=$(token ods_sync "ingest:write" debezium)

# gen SET KEYBASE NSTREAMS: writes $work/SET/s<stream>/<n>.json, EVENTS events over
# EVENTS/4 new keys from KEYBASE on; a key's events go to stream key % NSTREAMS, in
# position order; positions start above anything applied before.
gen() {
	local set=$1 keybase=$2 nstreams=$3 keys=$((events / 4))
	mkdir -p "$work/$set"
	q -F $'\t' -c "
	WITH e AS (
		SELECT i, k, j, CASE WHEN j % 4 = 0 THEN 'c' WHEN j % 4 = 3 THEN 'd' ELSE 'u' END AS op
		FROM (SELECT i, k, (row_number() OVER (PARTITION BY k ORDER BY i) - 1)::integer AS j
			FROM (SELECT i, $keybase + (hashint4(i) & 2147483647) % $keys AS k
				FROM generate_series(1, $events) i) x) y
	), ev AS (
		SELECT i, k % $nstreams AS stream,
			(row_number() OVER (PARTITION BY k % $nstreams ORDER BY i) - 1) / $batch AS b,
			jsonb_build_object(
			'before', CASE WHEN op = 'd' THEN jsonb_build_object('customer_id', k) END,
			'after', CASE WHEN op <> 'd' THEN jsonb_build_object(
				'customer_id', k,
				'email', format('c%s.v%s@example.com', k, j),
				'full_name', format('Customer %s', k),
				'tier', (ARRAY['bronze', 'silver', 'gold', 'platinum'])[1 + (k + j) % 4],
				'segment', 'retail', 'status', 'active', 'region', 'west', 'city', 'Reno',
				'signed_up_at', 1704067200000,
				'lifetime_value', ((k * 7 + j * 13) % 100000) / 100.0) END,
			'source', jsonb_build_object('version', '2.7.0.Final', 'connector', 'postgresql',
				'name', 'crm', 'ts_ms', (extract(epoch FROM now()) * 1000)::bigint - $events + i,
				'snapshot', 'false', 'db', 'crm', 'schema', 'public',
				'table', 'customer_current', 'txId', 1000 + i,
				'lsn', $keybase::bigint * 1000 + i * 64),
			'op', op,
			'ts_ms', (extract(epoch FROM now()) * 1000)::bigint,
			'transaction', NULL) AS ev
		FROM e
	)
	SELECT stream, b, jsonb_agg(CASE WHEN b % 4 = 3
			THEN jsonb_build_object('schema', jsonb_build_object('type', 'struct'), 'payload', ev)
			ELSE ev END ORDER BY i)
	FROM ev GROUP BY stream, b ORDER BY stream, b" |
		awk -F '\t' -v d="$work/$set" '{
			f = sprintf("%s/s%d/%06d.json", d, $1, $2)
			if (!seen[$1]++) system("mkdir -p " d "/s" $1)
			print $3 > f; close(f) }'
	# Keys whose last event is not a delete stay live.
	q -c "SELECT count(*) FILTER (WHERE n % 4 <> 0) FROM (SELECT count(*) AS n FROM
		generate_series(1, $events) i GROUP BY (hashint4(i) & 2147483647) % $keys) x" \
		>"$work/$set.expected"
	# One curl config per stream: every batch in order, one keep-alive connection.
	for s in "$work/$set"/s*; do
		for f in "$s"/*.json; do
			printf 'url = "http://127.0.0.1:%s/v1/ingest/debezium"\n' "$port"
			printf 'header = "Authorization: Bearer: %s"\n' "$sync_token"
			printf 'header = "Content-Type: application/json"\n'
			printf 'data-binary = "@%s"\n' "$f"
			printf 'output = "%s.out"\n' "$f"
			printf 'write-out = "%%{http_code} %%{time_total}\\n"\n'
			printf 'next\n'
		done | sed '$d' >"$s.curl"
	done
}

# run SET KEYBASE LABEL: posts every stream of SET in parallel; prints events/s.
run_ingest() {
	local set=$1 keybase=$2 label=$3 t0 t1 codes lat applied dead table pids=()
	t0=$(now)
	for c in "$work/$set"/*.curl; do
		curl -s -K "$c" >"$c.codes" &
		pids+=($!)
	done
	wait "${pids[@]}"
	t1=$(now)
	codes=$(cut -d' ' -f1 "$work/$set"/*.codes | sort | uniq -c |
		awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')
	lat=$(cut -d' ' -f2 "$work/$set"/*.codes | sort -g |
		awk '{a[NR] = $1 * 1000} END {printf "p50 %.1fms p99 %.1fms", a[int(NR * 0.5)], a[int(NR * 0.99)]}')
	applied=$(cat "$work/$set"/s*/*.out | jq -s 'map(.applied) | add')
	dead=$(cat "$work/$set"/s*/*.out | jq -s 'map(.dead_lettered) | add')
	table=$(q -c "SELECT count(*) FROM synced.customer_current WHERE customer_id >= $keybase
		AND customer_id < $keybase + $events / 4")
	printf '  ingest %-10s %8.0f events/s  %d events in %.2fs, batches of %d (per batch %s); HTTP %s\n' \
		"$label" "$(awk -v e="$events" -v a="$t0" -v b="$t1" 'BEGIN { print e / (b - a) }')" \
		"$events" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$batch" "$lat" "$codes"
	printf '  %-17s applied %s, dead-lettered %s; %s rows live\n' "" "$applied" "$dead" "$table"
	[ "$applied" = "$events" ] && [ "$dead" = 0 ] ||
		{ echo "bench/writes: not every event was applied" >&2; exit 1; }
	expected=$(cat "$work/$set.expected")
	[ "$table" = "$expected" ] ||
		{ echo "bench/writes: $table rows live, want $expected" >&2; exit 1; }
}

gen one 10000000 1
gen many 20000000 "$streams"
# Not measured: the autovacuum the case inserts above would set off.
q -c "VACUUM ANALYZE" -c "CHECKPOINT"
run_ingest one 10000000 "1 stream"
q -c "CHECKPOINT"
run_ingest many 20000000 "$streams streams"

# ---- 3. one event per request (Debezium Server's HTTP sink posts each event alone) ----

cat >"$work/event.lua" <<'LUA'
-- POST /v1/ingest/debezium with one new-key create event per request.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  auth = "Bearer: " .. os.getenv("SYNC_TOKEN")
  n = 0
  non200 = 0
end

function request()
  n = n + 1
  local k = 40000000 + id * 1000000 + n
  local body = string.format(
    '{"before":null,"after":{"customer_id":%d,"email":"e%d@example.com","full_name":"Event %d",' ..
    '"tier":"gold","segment":"retail","status":"active"},"source":{"version":"2.7.0.Final",' ..
    '"connector":"postgresql","name":"crm","ts_ms":%d,"db":"crm","schema":"public",' ..
    '"table":"customer_current","lsn":%d},"op":"c","ts_ms":%d}',
    k, k, k, 1767225600000 + n, 900000000000 + k, 1767225600000 + n)
  return wrk.format("POST", "/v1/ingest/debezium",
    { ["Authorization"] = auth, ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non200") end
  io.write(string.format("non-200: %d\n", bad))
end
LUA
for c in 1 "$conns"; do
	out=$(SYNC_TOKEN="$sync_token" wrk -t1 -c"$c" -d"$((secs / 2 > 0 ? secs / 2 : 1))s" --latency \
		-s "$work/event.lua" "http://127.0.0.1:$port")
	printf '  ingest 1 event/request, %2d connection(s) %8.0f events/s  p50 %-8s p99 %-8s non-200 %s\n' \
		"$c" "$(echo "$out" | awk '/^Requests\/sec/ {print $2}')" \
		"$(echo "$out" | awk '$1 == "50%" {print $2}')" "$(echo "$out" | awk '$1 == "99%" {print $2}')" \
		"$(echo "$out" | awk '/^non-200:/ {print $2}')"
done
