#!/usr/bin/env bash
# bench/ingest.sh [EVENTS] [BATCH] [CLIENTS]: Debezium ingest throughput, in SQL.
#
# On a throwaway PostgreSQL (tests/harness.sh, fsync on), generates EVENTS [100000]
# PostgreSQL-connector change events over synced.customer_current: EVENTS / 5
# customers, each one's events cycling create, update, update, delete (so deleted keys
# come back), about 33% c, 50% u, 17% d; every 4th batch in the schema/payload wrapper
# (schemas.enable=true). Batches of BATCH [200] events, as JSON arrays.
#
# pgbench with CLIENTS [1] connections then calls ods_api.ingest_debezium the way odsd
# does (one transaction: role ods_sync, claims, statement_timeout, the call with the
# batch as a bound parameter) once per batch, in order, and prints events/s for:
#   first delivery  every batch once: the events are applied
#   redelivery     the same batches again: all skipped (at-least-once redelivery)
# Fetching each batch from a table happens outside the timed call but inside the timed
# pgbench transaction, as does sending it back: like odsd receiving the body.
# ODS_BENCH_DYNAMIC=1 drops the generated per-table apply functions first, to measure
# the fallback that builds and plans the apply statement on every request.
# With CLIENTS > 1 the batches interleave (out of order across clients); one table's
# ingests take turns on its catalog row lock, so extra clients overlap only the parsing
# and the commit.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/bench/out/build-release"
. "$top/bench/lib.sh"
if [ -z "${ODS_TEST_DB_URI:-}" ]; then
	bench_build "$build" "" odsd odsctl
	ODS_HARNESS_PG=1 ODS_HARNESS_DURABLE=1 exec "$top/tests/harness.sh" "$0" "$@"
fi
events=${1:-100000}
batch=${2:-200}
clients=${3:-1}
keys=$((events / 5))
batches=$(((events + batch - 1) / batch))
bindir=${ODS_TEST_PG_BINDIR:-}
psql=psql pgbench=pgbench
[ -n "$bindir" ] && [ -x "$bindir/psql" ] && psql=$bindir/psql
[ -n "$bindir" ] && [ -x "$bindir/pgbench" ] && pgbench=$bindir/pgbench
uri="$ODS_TEST_DB_URI"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$build/odsctl" migrate --db "$uri" --api-dir "$top/api" >"$dir/migrate.log" 2>&1 || { cat "$dir/migrate.log" >&2; exit 1; }
"$psql" -qX -v ON_ERROR_STOP=1 "$uri" <<SQL
CREATE TABLE public.bench_batches (id integer PRIMARY KEY, n integer NOT NULL, body jsonb NOT NULL);
INSERT INTO public.bench_batches
SELECT (i - 1) / $batch + 1, count(*),
	jsonb_agg(CASE WHEN ((i - 1) / $batch) % 4 = 3
		THEN jsonb_build_object('schema', jsonb_build_object('type', 'struct'), 'payload', ev)
		ELSE ev END ORDER BY i)
FROM (
	SELECT i, jsonb_build_object(
		'before', CASE WHEN op = 'd' THEN jsonb_build_object('customer_id', k) END,
		'after', CASE WHEN op <> 'd' THEN jsonb_build_object(
			'customer_id', k,
			'email', format('customer%s.v%s@example.com', k, j),
			'full_name', format('Customer %s', k),
			'tier', (ARRAY['bronze', 'silver', 'gold', 'platinum'])[1 + (k + j) % 4],
			'segment', 'retail',
			'status', 'active',
			'region', 'emea',
			'city', 'Lyon',
			'phone', '+33 4 00 00 00 00',
			'signed_up_at', '2024-01-01T00:00:00Z',
			'lifetime_value', ((k * 7 + j * 13) % 100000) / 100.0) END,
		'source', jsonb_build_object('version', '2.7.0.Final', 'connector', 'postgresql',
			'name', 'crm', 'ts_ms', 1767225600000 + i, 'snapshot', 'false', 'db', 'crm',
			'schema', 'public', 'table', 'customer_current', 'txId', 1000 + i,
			'lsn', 100000000 + i * 64, 'xmin', NULL),
		'op', op,
		'ts_ms', 1767225600000 + i + 5,
		'transaction', NULL) AS ev
	FROM (
		SELECT i, k, j, CASE WHEN j % 4 = 0 THEN 'c' WHEN j % 4 = 3 THEN 'd' ELSE 'u' END AS op
		FROM (
			SELECT i, k, (row_number() OVER (PARTITION BY k ORDER BY i) - 1)::integer AS j
			FROM (SELECT i, 1 + (hashint4(i) & 2147483647) % $keys AS k
				FROM generate_series(1, $events) i) e
		) n
	) o
) x
GROUP BY (i - 1) / $batch;
CREATE SEQUENCE public.bench_seq;
VACUUM ANALYZE;
SQL
mode="generated per-table apply functions"
if [ "${ODS_BENCH_DYNAMIC:-0}" = 1 ]; then
	"$psql" -qX -v ON_ERROR_STOP=1 "$uri" -c "DELETE FROM ods.ingest_appliers" >/dev/null
	mode="apply statement planned per request (no generated functions)"
fi
ops=$("$psql" -qXAt "$uri" -c "SELECT string_agg(op || '=' || n, ' ' ORDER BY op) FROM (SELECT e ->> 'op' AS op, count(*) n FROM public.bench_batches, jsonb_array_elements(body) x(v), LATERAL (SELECT coalesce(v -> 'payload', v) AS e) y GROUP BY 1) z")

cat >"$dir/ingest.sql" <<'SQL'
SELECT body AS b FROM public.bench_batches WHERE id = (SELECT nextval('public.bench_seq')) \gset
BEGIN;
SELECT set_config('role', 'ods_sync', true), set_config('request.jwt.claims', '{"sub":"bench","role":"ods_sync"}', true), set_config('statement_timeout', '5000', true);
SELECT * FROM ods_api.ingest_debezium(p_body => :b::jsonb);
COMMIT;
SQL

run() { # run LABEL: one pass over all batches; prints events/s
	"$psql" -qX "$uri" -c "SELECT setval('public.bench_seq', 1, false)" -c CHECKPOINT >/dev/null
	"$pgbench" -n -M prepared -c "$clients" -j "$clients" -t $((batches / clients)) \
		-f "$dir/ingest.sql" "$uri" >"$dir/pgbench.out" 2>&1 ||
		{ cat "$dir/pgbench.out" >&2; exit 1; }
	local tps
	tps=$(awk '/^tps = / {print $3}' "$dir/pgbench.out")
	local lat
	lat=$(awk '/^latency average/ {print $4}' "$dir/pgbench.out")
	printf '  %-44s %8.0f events/s  (%.1f batches/s, %s ms per batch)\n' "$1" \
		"$(awk "BEGIN { print $tps * $batch }")" "$tps" "$lat"
}

printf 'bench/ingest: %d events (%s) over %d customers, batches of %d, %d client(s), fsync on\n  %s\n' \
	"$events" "$ops" "$keys" "$batch" "$clients" "$mode"
run "first delivery (applied)"
"$psql" -qXAt "$uri" -c "SELECT format('  after it: %s rows, %s tombstones, %s dead letters, as_of %s', (SELECT count(*) FROM synced.customer_current), (SELECT count(*) FROM ods.synced_tombstones), (SELECT count(*) FROM ods.ingest_dead_letters), (SELECT as_of FROM ods.synced_tables WHERE table_name = 'customer_current'))"
run "redelivery (all skipped)"
