#!/usr/bin/env bash
# bench/cdc.sh [ROWS] [SMALL_TXNS] [RUNS]: the CDC worker (odsctl sync run)
# against PostgreSQL's own logical replication, in one run.
#
# One throwaway PostgreSQL cluster (tests/harness.sh, fsync on, wal_level =
# logical) holds three databases: `src` (the source OLTP database, with
# public.order_current: the business columns of synced.order_current, ROWS
# [100000] orders plus a sentinel and a probe row), `postgres` (the ODS,
# migrated; the worker applies into synced.order_current) and `sub` (the
# reference: CREATE SUBSCRIPTION into public.order_current, the same table as
# synced.order_current, freshness columns defaulted). Both apply sides share
# one PostgreSQL, its fsync and its two CPUs; both run at their defaults (a
# subscription commits with synchronous_commit = off, so does the worker).
# Both first copy the table (subscription copy_data = true; the worker's
# first run); only the apply after that is measured.
#
#  1. Apply throughput, changes/s. With the subscription disabled and the
#     worker stopped, the source WAL is written first: (a) SMALL_TXNS [20000]
#     transactions of one UPDATE each (pgbench -t, 4 clients); (b) one UPDATE
#     of all ROWS orders in one transaction. Each ends with a sentinel update
#     (its marker). Then, one after the other (the order alternates per run):
#     ALTER SUBSCRIPTION ENABLE, and `odsctl sync run --once`, each timed until
#     the sentinel's marker is visible in its target table (a point lookup
#     every 5 ms by bench/cdcprobe; transactions apply in commit order, so
#     everything before it is there), then the subscription is disabled again.
#     After each run the three tables' business columns must be identical.
#     Medians of RUNS [3]; ratio = worker / subscription; targets >= 0.8 (a),
#     >= 1.0 (b).
#  2. Latency, source commit -> visible: the worker runs continuously
#     (`odsctl sync run` in the background) and odsd serves GET
#     /v1/orders/{id}; pgbench offers CDC_LAT_RATES ["1000 5000"] single-row
#     updates per second (-R, CDC_LAT_SECONDS [20] each) while bench/cdcprobe,
#     every 50 ms, updates the probe order's item_count to a new marker on
#     the source (its own connection; the clock is read when COMMIT returns)
#     and polls GET /v1/orders/{id} (keep-alive, 1 ms pause) until the marker
#     shows. p50/p99 per rate; target p99 < 1 s at 5k changes/s. The same
#     probe against the subscription (polling its table, worker stopped) is
#     the reference (CDC_LAT_REFERENCE=0 skips it).
#  3. Worker RSS: CDC_SOAK_SECONDS [300] at 1000 changes/s, VmRSS of the
#     worker every 5 s into bench/out/cdc-rss.csv; bench/soak.sh's rule:
#     start = mean of the second fifth, end = mean of the last fifth, FLAT
#     unless end - start > max(1 MiB, 5% of start).
#
# CDC_SKIP_APPLY=1, CDC_SKIP_LATENCY=1, CDC_SKIP_SOAK=1 skip a section; CDC_PROFILE=1
# prints, per timed apply, the CPU seconds of each process involved (on stderr); with
# CDC_PG_OPTS="-c shared_preload_libraries=pg_stat_statements" (CDC_PG_OPTS goes to the
# cluster) also the ODS's top statements. CDC_PERF=1 wraps each timed worker run in
# `perf record -a -g` (bench/out/perf-worker-{small,large}.data); it slows the worker's
# side only, so quote ratios from a run without it.
# Without `odsctl sync run` in the build, the worker's parts are skipped and
# only the references run.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
build="$out/build-release"
probe="$out/cdcprobe"
. "$top/bench/lib.sh"
if [ -z "${ODS_TEST_DB_URI:-}" ]; then
	"$top/deploy/install-deps.sh" --bench
	bench_build "$build" "" odsd odsctl
	# shellcheck disable=SC2046
	cc -O2 -Wall -std=c11 $(pkg-config --cflags libpq) -o "$probe" "$top/bench/cdcprobe.c" \
		$(pkg-config --libs libpq)
	ODS_HARNESS_PG=1 ODS_HARNESS_DURABLE=1 ODS_HARNESS_PG_OPTS="-c shared_buffers=256MB \
-c max_connections=200 -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 \
${CDC_PG_OPTS:-}" \
		exec "$top/tests/harness.sh" "$0" "$@"
fi
rows=${1:-100000}
small=${2:-20000}
runs=${3:-3}
clients=4        # pgbench clients for the apply section's load
paced_clients=16 # and for the paced loads (group commit, to reach 5k/s with fsync on)
small=$(((small + clients - 1) / clients * clients)) # pgbench -t is per client
lat_secs=${CDC_LAT_SECONDS:-20}
lat_rates=${CDC_LAT_RATES:-1000 5000}
soak_secs=${CDC_SOAK_SECONDS:-300}
[ "${CDC_SKIP_SOAK:-0}" = 1 ] || [ "$soak_secs" -ge 60 ] ||
	{ echo "bench/cdc: CDC_SOAK_SECONDS must be at least 60" >&2; exit 2; }
odsctl="$build/odsctl"
sentinel=$((rows + 1))
probe_id=$((rows + 2))

worker_pid= load_pid= sampler_pid=
bench_on_exit() {
	local p
	for p in "$profile_pid" "$sampler_pid" "$load_pid" "$worker_pid"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	return 0
}
bench_begin
ods="$admin"
base=${admin%/*}
src="$base/src"
sub="$base/sub"
pgport=${admin##*:}
pgport=${pgport%%/*}
q() { local db=$1; shift; psql -qXAt -v ON_ERROR_STOP=1 "$db" "$@"; }
now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
pct() { sort -g | awk -v p="$1" '{a[NR]=$1} END {i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; print a[i]}'; }

have_worker=0
case $("$odsctl" --help 2>&1 || true) in *"sync run"*) have_worker=1 ;; esac

# ---- setup: source, ODS, subscriber; both initial copies ----

"$odsctl" migrate --db "$ods" --api-dir "$top/api" >"$work/migrate.log" 2>&1 ||
	{ cat "$work/migrate.log" >&2; exit 1; }
q "$ods" -c "CREATE DATABASE src" -c "CREATE DATABASE sub"
# The source table: synced.order_current's business columns (types, NOT NULL), its key.
cols=$(q "$ods" -c "SELECT string_agg(format('%I %s%s', attname, format_type(atttypid, atttypmod),
	CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END), ', ' ORDER BY attnum)
	FROM pg_attribute WHERE attrelid = 'synced.order_current'::regclass AND attnum > 0
	AND NOT attisdropped AND attname NOT LIKE '\_%'")
names=$(q "$ods" -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
	FROM pg_attribute WHERE attrelid = 'synced.order_current'::regclass AND attnum > 0
	AND NOT attisdropped AND attname NOT LIKE '\_%'")
q "$src" -c "CREATE TABLE public.order_current ($cols, PRIMARY KEY (order_id))" -c "
	INSERT INTO public.order_current ($names)
	SELECT g, 1 + (hashint4(g) & 2147483647) % ($rows / 3 + 1),
		(ARRAY['placed', 'paid', 'shipped', 'delivered', 'cancelled'])[1 + g % 5],
		(ARRAY['web', 'mobile', 'store', 'phone'])[1 + g % 4],
		now() - (g % 90) * interval '1 day', now() - (g % 90) * interval '1 day' + interval '1 hour',
		1 + g % 9, 1 + (g % 50000) / 100.0, 'USD', now() + (g % 7) * interval '1 day',
		CASE WHEN g % 5 = 4 THEN NULL ELSE (ARRAY['on_track', 'at_risk', 'breached', 'met'])[1 + g % 4] END
	FROM generate_series(1, $rows + 2) g" \
	-c "CREATE PUBLICATION bench_sub FOR TABLE public.order_current" \
	-c "SELECT 1 FROM pg_create_logical_replication_slot('bench_sub', 'pgoutput')" >/dev/null
# The subscriber's table: synced.order_current itself (constraints, indexes), in public,
# with the freshness columns defaulted (the subscription does not send them).
pg_dump -s --no-owner --no-privileges -t synced.order_current "$ods" |
	sed 's/synced\.order_current/public.order_current/g' | q "$sub" >/dev/null
q "$sub" -c "ALTER TABLE public.order_current ALTER _source_committed_at SET DEFAULT now()"

marker=1000
# mark: a new marker on the sentinel row, committed on the source after everything before.
mark() { marker=$((marker + 1)); q "$src" -c "UPDATE public.order_current SET item_count = $marker WHERE order_id = $sentinel"; }
# wait_bg DB TABLE: starts a waiter for the current marker; its pid in $wait_pid, time in $work/seen.
wait_bg() {
	"$probe" wait "$1" "$2" "$sentinel" "$marker" "${3:-600000}" >"$work/seen" &
	wait_pid=$!
}
# The launcher starts no apply worker within wal_retrieve_retry_interval (5 s) of its last
# start; waiting that out before ENABLE (untimed) keeps the delay out of the measurement.
# (The time of the last ENABLE is kept in a file: apply_sub runs in a subshell.)
echo 0 >"$work/sub_started"
sub_wait_retry() {
	sleep "$(awk -v s="$(cat "$work/sub_started")" -v n="$(now)" 'BEGIN { d = s + 5.5 - n; print (d > 0) ? d : 0 }')"
}
sub_enable() {
	sub_wait_retry
	q "$sub" -c "ALTER SUBSCRIPTION bench_sub ENABLE"
	now >"$work/sub_started"
}
sub_disable() {
	q "$sub" -c "ALTER SUBSCRIPTION bench_sub DISABLE"
	for _ in $(seq 1 300); do
		[ "$(q "$src" -c "SELECT active FROM pg_replication_slots WHERE slot_name = 'bench_sub'")" = f ] &&
			[ "$(q "$sub" -c "SELECT count(pid) FROM pg_stat_subscription WHERE subname = 'bench_sub'")" = 0 ] &&
			return 0
		sleep 0.1
	done
	echo "bench/cdc: the subscription did not stop" >&2
	exit 1
}
worker_args=(sync run --db "$ods" --source "$src" --name bench --tables public.order_current=order_current)
sums() { # the business columns of the three tables, in one line each
	local db t
	for db in src sub ods; do
		t=public.order_current
		[ $db = ods ] && t=synced.order_current
		[ $db = ods ] && [ $have_worker = 0 ] && continue
		q "${!db}" -c "SELECT md5(string_agg(x::text, ',' ORDER BY order_id)) FROM (SELECT $names FROM $t) x"
	done
}
check_same() { # LABEL
	if [ "$(sums | sort -u | wc -l)" != 1 ]; then
		echo "bench/cdc: $1: the tables differ (source, subscriber, ODS):" >&2
		sums >&2
		q "$src" -c "COPY (SELECT $names FROM public.order_current ORDER BY order_id) TO STDOUT" >"$out/cdc-diff-src.tsv"
		q "$sub" -c "COPY (SELECT $names FROM public.order_current ORDER BY order_id) TO STDOUT" >"$out/cdc-diff-sub.tsv"
		[ $have_worker = 1 ] && q "$ods" -c "COPY (SELECT $names, _source_committed_at, _source_position
			FROM synced.order_current ORDER BY order_id) TO STDOUT" >"$out/cdc-diff-ods.tsv"
		echo "rows in $out/cdc-diff-{src,sub,ods}.tsv; source vs ODS:" >&2
		diff <(cut -f1-11 "$out/cdc-diff-src.tsv") <(cut -f1-11 "$out/cdc-diff-ods.tsv") | head -20 >&2 || true
		exit 1
	fi
}

mark
t0=$(now)
q "$sub" -c "CREATE SUBSCRIPTION bench_sub CONNECTION 'host=127.0.0.1 port=$pgport dbname=src user=ods_test'
	PUBLICATION bench_sub WITH (create_slot = false, slot_name = 'bench_sub', copy_data = true)"
now >"$work/sub_started"
wait_bg "$sub" public.order_current
wait "$wait_pid"
copy_sub=$(calc "$(cat "$work/seen") - $t0")
sub_disable
copy_worker=
if [ $have_worker = 1 ]; then
	t0=$(now)
	"$odsctl" "${worker_args[@]}" --once >"$work/worker-copy.log" 2>&1 ||
		{ cat "$work/worker-copy.log" >&2; exit 1; }
	copy_worker=$(calc "$(now) - $t0")
	# The first run's copy and catch-up must have brought the sentinel's marker.
	"$probe" wait "$ods" synced.order_current "$sentinel" "$marker" 1000 >/dev/null
fi
check_same "initial copy"
echo "bench/cdc: one PostgreSQL $(q "$ods" -c "SHOW server_version" | cut -d' ' -f1) cluster" \
	"(fsync on, wal_level=logical, shared_buffers=256MB) holding the source (db src)," \
	"the ODS (db postgres) and the subscription reference (db sub); $(nproc) CPUs"
printf '  initial copy of %d orders: subscription %.2f s, worker %s\n' "$((rows + 2))" "$copy_sub" \
	"$([ -n "$copy_worker" ] && printf '%.2f s (first odsctl sync run --once)' "$copy_worker" || echo 'not built')"

# ---- 1. apply throughput ----

cat >"$work/small.sql" <<SQL
\\set id random(1, $rows)
UPDATE public.order_current SET item_count = item_count % 50 + 1, status_changed_at = clock_timestamp() WHERE order_id = :id;
SQL
# CDC_PROFILE=1: where the CPU of each timed apply goes. Every 100 ms the CPU ticks of the
# cluster's processes and the worker go to a file; per process title (the walsender,
# the subscription's apply worker, the ODS backend, odsctl), the ticks it used.
profile_pid=
postmaster=$(head -n 1 "$ODS_TEST_PG_DATA/postmaster.pid")
pss=0
case ${CDC_PG_OPTS:-} in *pg_stat_statements*) pss=1 ;; esac
profile_start() {
	[ "${CDC_PROFILE:-0}" = 1 ] || return 0
	[ $pss = 0 ] || q "$ods" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
		-c "SELECT pg_stat_statements_reset()" >/dev/null
	(
		while :; do
			ps -eo pid=,args= | awk '$2 ~ /^postgres:/ || /odsctl sync run/ { print "T", $0 }'
			awk -v pm="$postmaster" '($2 == "(postgres)" && ($4 == pm || $1 == pm)) || $2 == "(odsctl)" {
				print "C", $1, $14 + $15 }' /proc/[0-9]*/stat
			sleep 0.1
		done
	) >"$work/profile" 2>/dev/null &
	profile_pid=$!
}
profile_stop() { # LABEL
	[ -n "$profile_pid" ] || return 0
	kill "$profile_pid"
	wait "$profile_pid" 2>/dev/null || true
	profile_pid=
	awk -v hz="$(getconf CLK_TCK)" -v label="$1" '
	$1 == "T" { pid = $2; $1 = ""; $2 = ""; t = $0; sub(/^ +/, "", t); sub(/\([0-9]+\)/, "", t)
		sub(/ (idle|active|idle in transaction|START_REPLICATION|SELECT|UPDATE|COMMIT|BEGIN|CHECKPOINT).*$/, "", t)
		if (t ~ /odsctl/) t = "odsctl sync run"
		name[pid] = t; next }
	$1 == "C" { if (!($2 in lo)) lo[$2] = $3; hi[$2] = $3 }
	END {
		for (p in hi) if (p in name) cpu[name[p]] += hi[p] - lo[p]
		for (n in cpu) if (cpu[n] > 0) printf "      profile %-12s %6.2f CPU s  %s\n", label, cpu[n] / hz, n
	}' "$work/profile" | sort -k3 -rn >&2
	[ $pss = 0 ] || q "$ods" -F ' | ' -c "SELECT 'pss ' || calls || ' calls', round(total_exec_time::numeric / calls * 1000) || ' us/call',
		plans || ' plans', round(total_plan_time::numeric / calls * 1000) || ' us plan/call',
		left(regexp_replace(query, '\s+', ' ', 'g'), 120)
		FROM pg_stat_statements WHERE calls > 0 AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY total_exec_time + total_plan_time DESC LIMIT 6" >&2
}
# apply_sub / apply_worker: seconds until the current marker is visible.
apply_sub() {
	q "$src" -c "CHECKPOINT"
	wait_bg "$sub" public.order_current
	local t0
	sub_wait_retry
	profile_start
	t0=$(now)
	sub_enable
	wait "$wait_pid" || { echo "bench/cdc: the subscription did not catch up" >&2; exit 1; }
	calc "$(cat "$work/seen") - $t0"
	profile_stop subscription
	sub_disable
}
apply_worker() {
	q "$src" -c "CHECKPOINT"
	wait_bg "$ods" synced.order_current
	local t0 rc=0
	t0=$(now)
	local TIMEFORMAT='%U %S'
	profile_start
	local perf_pid=
	if [ "${CDC_PERF:-0}" = 1 ]; then
		perf record -a -g -o "$out/perf-worker-$perf_kind.data" >/dev/null 2>&1 &
		perf_pid=$!
	fi
	{ time "$odsctl" "${worker_args[@]}" --once >>"$work/worker-once.log" 2>&1; } 2>"$work/cpu" || rc=$?
	local t1
	t1=$(now)
	[ $rc = 0 ] || { tail -n 20 "$work/worker-once.log" >&2; echo "bench/cdc: sync run --once exited $rc" >&2; exit 1; }
	wait "$wait_pid" || { echo "bench/cdc: the worker exited without the marker" >&2; exit 1; }
	[ -z "$perf_pid" ] || { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
	profile_stop worker
	echo "$(calc "$(cat "$work/seen") - $t0") $(calc "$t1 - $t0") $(awk '{print $1 + $2}' "$work/cpu")"
}
# run_apply KIND CHANGES: the load is already in the WAL; times both sides, order by run.
declare -A res
run_apply() {
	local kind=$1 n=$2 i=$3 s w
	perf_kind=$kind
	if [ $((i % 2)) = 1 ] || [ $have_worker = 0 ]; then
		s=$(apply_sub)
		[ $have_worker = 1 ] && w=$(apply_worker)
	else
		w=$(apply_worker)
		s=$(apply_sub)
	fi
	res[$kind.sub]+="$(calc "$n / $s") "
	local wv wo wc
	if [ $have_worker = 1 ]; then
		read -r wv wo wc <<<"$w"
		res[$kind.worker]+="$(calc "$n / $wv") "
		res[$kind.once]+="$wo "
		res[$kind.cpu]+="$(calc "$wc / $n * 10000") "
	fi
	check_same "$kind run $i"
	printf '    run %d %-6s subscription %.3f s%s\n' "$i" "$kind" "$s" \
		"$([ $have_worker = 1 ] && printf ', worker %.3f s to visible (--once exited after %.3f s, %.2f CPU s)' "$wv" "$wo" "$wc")"
}
if [ "${CDC_SKIP_APPLY:-0}" != 1 ]; then
	echo "  1. apply: $small transactions of 1 UPDATE (small) and 1 transaction of $rows UPDATEs (large), $runs runs"
	for i in $(seq 1 "$runs"); do
		out_pg=$(timeout 900 pgbench -n -c $clients -j 2 -t $((small / clients)) -f "$work/small.sql" "$src" 2>&1) ||
			{ echo "$out_pg" >&2; exit 1; }
		mark
		[ "$i" = 1 ] && printf '    source load: %s\n' "$(echo "$out_pg" | awk '/^tps =/ {printf "%.0f txn/s", $3}')"
		run_apply small $((small + 1)) "$i"
		q "$src" -c "UPDATE public.order_current SET item_count = item_count % 50 + 1,
			status_changed_at = clock_timestamp() WHERE order_id <= $rows"
		mark
		run_apply large $((rows + 1)) "$i"
	done
fi

# ---- 2. latency ----

cat >"$work/lat.sql" <<SQL
\\set id random(1, $rows)
UPDATE public.order_current SET status = (ARRAY['placed', 'paid', 'shipped', 'delivered'])[1 + :id % 4], status_changed_at = clock_timestamp() WHERE order_id = :id;
SQL
# paced RATE SECONDS: pgbench in the background (pid in $load_pid, output in $work/paced.out).
paced() {
	timeout $(($2 + 60)) pgbench -n -c $paced_clients -j 2 -R "$1" -T "$2" -f "$work/lat.sql" "$src" \
		>"$work/paced.out" 2>&1 &
	load_pid=$!
}
paced_done() { # sets $achieved (not in a subshell: pgbench is this shell's child)
	wait "$load_pid" || { cat "$work/paced.out" >&2; exit 1; }
	load_pid=
	achieved=$(awk '/^tps =/ {printf "%.0f", $3}' "$work/paced.out")
}
pmarker=1000000
# latency NAME RATE TARGET...: one pass; fills lat[NAME.RATE]
declare -A lat
latency() {
	local name=$1 rate=$2 got n p50 p99 to achieved
	shift 2
	paced "$rate" "$lat_secs"
	sleep 1
	pmarker=$((pmarker + 1000000))
	"$probe" "$src" "$probe_id" "$pmarker" 50 $((lat_secs - 2)) 100000 10000 "$@" >"$work/lat-$name-$rate"
	paced_done
	got=$(grep -vc timeout "$work/lat-$name-$rate" || true)
	to=$(grep -c timeout "$work/lat-$name-$rate" || true)
	p50=$(grep -v timeout "$work/lat-$name-$rate" | pct 50)
	p99=$(grep -v timeout "$work/lat-$name-$rate" | pct 99)
	[ "$to" = 0 ] || p99=">10000"
	lat[$name.$rate]="$p50 $p99 $got $achieved"
	printf '    %-12s offered %5d/s (source achieved %5d/s): %4d samples, p50 %s ms, p99 %s ms%s\n' \
		"$name" "$rate" "$achieved" "$got" "$p50" "$p99" "$([ "$to" = 0 ] || echo ", a sample timed out after 10 s")"
}
# start_worker: the continuous worker, started when not running, and caught up (a new
# marker visible); the seconds that took in $caught_up.
start_worker() {
	local t0
	if [ -z "$worker_pid" ]; then
		"$odsctl" "${worker_args[@]}" >"$work/worker.log" 2>&1 &
		worker_pid=$!
	fi
	t0=$(now)
	mark
	"$probe" wait "$ods" synced.order_current "$sentinel" "$marker" 600000 >/dev/null ||
		{ cat "$work/worker.log" >&2; exit 1; }
	caught_up=$(calc "$(now) - $t0")
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
if [ "${CDC_SKIP_LATENCY:-0}" != 1 ]; then
	echo "  2. latency, source commit -> visible (probe every 50 ms, ${lat_secs}s per rate)"
	if [ "${CDC_LAT_REFERENCE:-1}" = 1 ]; then
		sub_enable
		mark
		wait_bg "$sub" public.order_current
		wait "$wait_pid"
		for r in $lat_rates; do latency subscription "$r" pg "$sub"; done
		sub_disable
	fi
	if [ $have_worker = 1 ]; then
		bench_secret
		"$odsctl" token --secret-file "$work/secret" --role support_agent --scope orders:read \
			--sub cdcprobe --ttl 7200 >"$work/token"
		port=$((20000 + RANDOM % 20000))
		ODS_LISTEN_PORT=$port ODS_DB_URI="$authn" ODS_JWT_SECRET_FILE="$work/secret" \
			ODS_LOG_LEVEL=warn "$build/odsd" 2>"$work/odsd.log" &
		odsd_pid=$!
		bench_wait_ready "$port"
		for r in $lat_rates; do
			start_worker # caught up before each rate
			c0=$(cpu_ticks "$worker_pid")
			latency odsd "$r" http "$port" "$work/token"
			c1=$(cpu_ticks "$worker_pid")
			lat[odsd.$r]+=" $(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" -v s="$lat_secs" \
				'BEGIN { printf "%.0f", (b - a) / hz / s * 100 }')"
			start_worker
			printf '    %-12s caught up %.1f s after the load ended; worker CPU %s%% of one CPU during the load\n' \
				"" "$caught_up" "${lat[odsd.$r]##* }"
		done
		kill "$odsd_pid"
		wait "$odsd_pid" || true
		odsd_pid=
	fi
fi

# ---- 3. worker RSS ----

csv="$out/cdc-rss.csv"
soak=
if [ "${CDC_SKIP_SOAK:-0}" != 1 ] && [ $have_worker = 1 ]; then
	echo "  3. worker RSS: ${soak_secs}s at 1000 changes/s"
	start_worker
	echo "t_s,rss_kb" >"$csv"
	(
		t0=$(date +%s)
		while kill -0 "$worker_pid" 2>/dev/null; do
			echo "$(($(date +%s) - t0)),$(awk '/^VmRSS/ {print $2}' "/proc/$worker_pid/status")" >>"$csv"
			sleep 5
		done
	) &
	sampler_pid=$!
	paced 1000 "$soak_secs"
	paced_done
	soak_rate=$achieved
	kill "$sampler_pid" 2>/dev/null || true
	wait "$sampler_pid" 2>/dev/null || true
	sampler_pid=
	kill -0 "$worker_pid" 2>/dev/null || { cat "$work/worker.log" >&2; echo "bench/cdc: the worker died" >&2; exit 1; }
	soak=$(awk -F, -v secs="$soak_secs" 'NR > 1 && $2 != "" { t[++n] = $1; r[n] = $2; if ($2 > max) max = $2 }
	END {
		fifth = secs / 5
		for (i = 1; i <= n; i++) {
			if (t[i] >= fifth && t[i] < 2 * fifth) { s += r[i]; sn++ }
			if (t[i] >= secs - fifth) { e += r[i]; en++ }
		}
		if (!sn || !en) { print "too few RSS samples"; exit }
		s /= sn; e /= en
		limit = s * 0.05; if (limit < 1024) limit = 1024
		printf "first %.1f, last %.1f, max %.1f MiB; end - start %+.0f KiB: %s\n",
			r[1] / 1024, r[n] / 1024, max / 1024, e - s, (e - s > limit) ? "GROWING" : "FLAT"
	}' "$csv")
	printf '    source achieved %s changes/s; RSS %s' "$soak_rate" "$soak"
fi

# Everything applied, in both: the last check. One marker after all the load, seen by
# both; then the worker gets SIGTERM (it must exit 0).
[ $have_worker = 1 ] && start_worker
sub_enable
mark
wait_bg "$sub" public.order_current
wait "$wait_pid"
sub_disable
if [ $have_worker = 1 ]; then
	"$probe" wait "$ods" synced.order_current "$sentinel" "$marker" 600000 >/dev/null
	kill "$worker_pid"
	wait "$worker_pid" || { tail -n 20 "$work/worker.log" >&2; echo "bench/cdc: the worker did not exit 0 on SIGTERM" >&2; exit 1; }
	worker_pid=
fi
check_same "the end"

# ---- the table ----

echo
echo "bench/cdc: order_current, $rows orders; apply figures are medians of $runs runs"
row() { printf '| %-56s | %-40s | %-36s | %-5s | %-10s |\n' "$@"; }
row measurement "odsd worker" "ceiling / reference" ratio target
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..58})" "$(printf -- '-%.0s' {1..42})" \
	"$(printf -- '-%.0s' {1..38})" "$(printf -- '-%.0s' {1..7})" "$(printf -- '-%.0s' {1..12})"
if [ "${CDC_SKIP_APPLY:-0}" != 1 ]; then
	for kind in small large; do
		ms=$(echo "${res[$kind.sub]}" | tr ' ' '\n' | grep . | median)
		if [ $have_worker = 1 ]; then
			mw=$(echo "${res[$kind.worker]}" | tr ' ' '\n' | grep . | median)
			mo=$(echo "${res[$kind.once]}" | tr ' ' '\n' | grep . | median)
			mc=$(echo "${res[$kind.cpu]}" | tr ' ' '\n' | grep . | median)
			wcol=$(printf '%.0f changes/s' "$mw")
			ratio=$(printf '%.2f' "$(calc "$mw / $ms")")
		else
			wcol="not built" ratio=-
		fi
		if [ $kind = small ]; then
			label="apply, $small txns x 1 UPDATE" target=">= 0.8"
		else
			label="apply, 1 txn x $rows UPDATEs" target=">= 1.0"
		fi
		row "$label" "$wcol" "$(printf '%.0f changes/s (subscription)' "$ms")" "$ratio" "$target"
		if [ $have_worker = 1 ]; then
			row "  ($kind: --once exits after / worker CPU)" "$(printf '%.3f s / %.2f s per 10k' "$mo" "$mc")" "" "" ""
		fi
	done
fi
if [ "${CDC_SKIP_LATENCY:-0}" != 1 ]; then
	for r in $lat_rates; do
		w=- s=-
		if [ -n "${lat[odsd.$r]:-}" ]; then
			read -r p50 p99 n ach cpu <<<"${lat[odsd.$r]}"
			w="p50 $p50 / p99 $p99 ms"
			label="latency commit->GET, $r/s offered ($ach/s achieved)"
		else
			label="latency commit->visible, $r/s offered"
		fi
		if [ -n "${lat[subscription.$r]:-}" ]; then
			read -r p50 p99 n ach <<<"${lat[subscription.$r]}"
			s="p50 $p50 / p99 $p99 ms (sub table)"
		fi
		tgt=-
		[ "$r" = 5000 ] && tgt="p99 < 1000"
		row "$label" "$w" "$s" "" "$tgt"
		if [ -n "${lat[odsd.$r]:-}" ]; then
			row "  (worker CPU during that run)" "${cpu}% of one CPU" "" "" ""
		fi
	done
fi
[ -z "$soak" ] || row "worker RSS, ${soak_secs}s at 1000/s" "$soak" "" "" "FLAT"
[ $have_worker = 1 ] || echo "(odsctl sync run is not in this build: the worker's rows are missing)"
exit 0
