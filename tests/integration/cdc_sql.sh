#!/usr/bin/env bash
# cdc_sql.sh: `odsctl sync run`, the PostgreSQL CDC worker, against a real cluster.
#
# Runs under tests/harness.sh (wal_level = logical). The source is a database `src_*`
# of the same cluster with OMS-shaped tables (public.orders, public.work_orders, extra
# columns the ODS lacks); the ODS is a migrated database. Covers: bad mappings (clear
# start-up errors), the initial copy (exact, positions and as_of), streaming of inserts,
# updates, deletes, key changes, unchanged TOAST values, TRUNCATE, a large transaction,
# one ODS transaction per source transaction (also past one 50,000-key chunk) in an unbroken chain, commit times,
# freshness while idle and after the worker dies, reconnects after the ODS or the source
# side is cut and after a cluster restart, SIGTERM (exit 0, slot confirmed), a crash
# loop (kill -9 at random points while a writer commits thousands of transactions: the
# synced tables end equal to the source, no transaction applied twice), a column added
# mid-stream (ignored), a change the ODS refuses (state error naming table, key, LSN,
# slot kept, exit 1), and a business column dropped mid-stream (error naming it).
set -u

suite=cdc_sql
. "$(dirname "$0")/lib.sh"

src_db=src_$suite
src_uri=${ODS_TEST_DB_URI%/*}/$src_db
worker_pid=

q() { "$psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db_uri" -c "$1" 2>"$work/err"; }
qs() { "$psql" -X -q -At -v ON_ERROR_STOP=1 -d "$src_uri" -c "$1" 2>"$work/err"; }
expect() { # expect NAME SQL-on-ODS: passes when it answers exactly "t"
	local out
	out=$(q "$2")
	if [ "$out" = t ]; then ok "$1"; else
		not_ok "$1 (got '${out:0:300}')"
		sed 's/^/    /' "$work/err"
	fi
}
now_s() { date +%s.%N; }
# wait_for NAME SQL-on-ODS [SECONDS]: polls (every 50 ms) until SQL answers "t".
wait_for() {
	local deadline=$(($(date +%s) + ${3:-30}))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		[ "$(q "$2")" = t ] && { ok "$1"; return 0; }
		sleep 0.05
	done
	not_ok "$1 (not within ${3:-30} s; last answer '$(q "$2")')"
	tail -n 5 "$work/worker.log" 2>/dev/null | sed 's/^/    worker: /'
	return 1
}
# The business columns of each mapped pair, and checksums over them.
ocols="order_id, customer_id, status, channel, ordered_at, status_changed_at, item_count,
	total_amount, currency, promised_delivery_at, sla_status"
wcols="work_order_id, customer_id, status, work_type, priority, region, site_address,
	opened_at, scheduled_start, sla_due_at, completed_at, sla_breach_risk"
sum_sql() { echo "SELECT count(*) || ':' || coalesce(md5(string_agg(md5(row($2)::text), '' ORDER BY $3)), '') FROM $1"; }
same() { # same NAME: both tables of both databases hold the same rows
	local a b c d
	a=$(qs "$(sum_sql public.orders "$ocols" order_id)")
	b=$(q "$(sum_sql synced.order_current "$ocols" order_id)")
	c=$(qs "$(sum_sql public.work_orders "$wcols" work_order_id)")
	d=$(q "$(sum_sql synced.work_order_current "$wcols" work_order_id)")
	if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$c" = "$d" ]; then ok "$1 (orders $a)"; else
		not_ok "$1 (orders source $a vs ODS $b; work orders $c vs $d)"
		qs "SELECT $ocols FROM orders ORDER BY order_id" >"$work/src.rows"
		q "SELECT $ocols FROM synced.order_current ORDER BY order_id" >"$work/ods.rows"
		diff "$work/src.rows" "$work/ods.rows" | head -n 6 | sed 's/^/    /'
		tail -n 8 "$work/worker.log" | sed 's/^/    worker: /'
	fi
}
wait_same() { # wait_same NAME [SECONDS]: polls until same would pass
	local deadline=$(($(date +%s) + ${2:-30})) a b c d
	while [ "$(date +%s)" -lt "$deadline" ]; do
		a=$(qs "$(sum_sql public.orders "$ocols" order_id)")
		b=$(q "$(sum_sql synced.order_current "$ocols" order_id)")
		c=$(qs "$(sum_sql public.work_orders "$wcols" work_order_id)")
		d=$(q "$(sum_sql synced.work_order_current "$wcols" work_order_id)")
		[ -n "$a" ] && [ "$a" = "$b" ] && [ "$c" = "$d" ] && { ok "$1"; return 0; }
		sleep 0.05
	done
	not_ok "$1 (orders source $a vs ODS $b; work orders $c vs $d)"
	tail -n 5 "$work/worker.log" 2>/dev/null | sed 's/^/    worker: /'
	return 1
}
tables="public.orders=order_current,public.work_orders=work_order_current"
run_once() { "$odsctl" sync run --db "$db_uri" --source "$src_uri" --name oms --tables "$tables" --once "$@"; }
start_worker() {
	"$odsctl" sync run --db "$db_uri" --source "$src_uri" --name oms --tables "$tables" \
		>>"$work/worker.log" 2>&1 &
	worker_pid=$!
}
stop_worker() { # stop_worker [SIGNAL]: signals the worker and waits; $worker_rc
	[ -n "$worker_pid" ] || return 0
	kill -"${1:-TERM}" "$worker_pid" 2>/dev/null
	wait "$worker_pid"
	worker_rc=$?
	worker_pid=
}
cleanup() { [ -n "$worker_pid" ] && kill -9 "$worker_pid" 2>/dev/null; }
trap cleanup EXIT

# ---- setup: an ODS and a source ----
{
	"$psql" -X -q -v ON_ERROR_STOP=1 -d "$ODS_TEST_DB_URI" -c "CREATE DATABASE $db" \
		-c "CREATE DATABASE $src_db" &&
		"$odsctl" migrate --db "$db_uri" --api-dir "$api_dir" &&
		"$psql" -X -q -v ON_ERROR_STOP=1 -d "$src_uri" <<'SQL'
CREATE TABLE orders (
	order_id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL,
	channel text, ordered_at timestamptz, status_changed_at timestamptz, item_count integer,
	total_amount numeric(12, 2), currency char(3), promised_delivery_at timestamptz,
	sla_status text, internal_note text, updated_at timestamptz DEFAULT now());
CREATE TABLE work_orders (
	work_order_id bigint PRIMARY KEY, customer_id bigint, status text NOT NULL,
	work_type text, priority smallint, region text, site_address text, opened_at timestamptz,
	scheduled_start timestamptz, sla_due_at timestamptz, completed_at timestamptz,
	sla_breach_risk numeric(4, 3), technician_note text);
ALTER TABLE work_orders ALTER COLUMN site_address SET STORAGE EXTERNAL;
INSERT INTO orders SELECT g, g % 97, (ARRAY['placed','paid','shipped','delivered'])[1 + g % 4],
	'web', now() - g * interval '1 minute', now(), 1 + g % 5, g * 1.25, 'EUR', now() + interval '2 days',
	'on_track', 'note ' || g FROM generate_series(1, 2000) g;
INSERT INTO work_orders SELECT g, g, 'new', 'repair', 1 + g % 5, 'west', g || ' Main St',
	now(), NULL, now() + interval '1 day', NULL, 0.25, NULL FROM generate_series(1, 300) g;
CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO counters VALUES (1, 0);
-- The crash-loop writer: each iteration is one committed transaction.
CREATE PROCEDURE churn(p_count int) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..p_count LOOP
		UPDATE orders SET item_count = item_count % 9 + 1, status_changed_at = clock_timestamp(),
			total_amount = total_amount + 1 WHERE order_id = 1000 + (i * 7919) % 1000; -- rows no test deletes
		IF i % 10 = 0 THEN
			INSERT INTO orders (order_id, customer_id, status) VALUES (100000 + (SELECT c.n FROM counters c), 1, 'placed');
			UPDATE counters c SET n = c.n + 1;
		END IF;
		IF i % 25 = 0 THEN
			DELETE FROM orders WHERE order_id = (SELECT min(order_id) FROM orders WHERE order_id >= 100000);
		END IF;
		COMMIT;
	END LOOP;
END $$;
SQL
} >"$work/setup.log" 2>&1 && ok "setup: ODS migrated, source with 2000 orders and 300 work orders" || {
	not_ok "setup"
	cat "$work/setup.log"
	finish
}

# ---- bad mappings: clear errors at start, nothing created ----
bad() { # bad NAME PATTERN ARGS...: exit 1 and stderr matching PATTERN
	local rc out
	out=$("$odsctl" sync run --db "$db_uri" --source "$src_uri" "${@:3}" 2>&1 >/dev/null)
	rc=$?
	if [ $rc -eq 1 ] && grep -qE "$2" <<<"$out"; then ok "$1 ($out)"; else
		not_ok "$1 (exit $rc: $out)"
	fi
}
bad "a missing source table is named" "source table public.nope .*does not exist" \
	--name badmap --tables public.nope=order_current
bad "an unknown synced table is named" "synced.nope is not in ods.synced_tables" \
	--name badmap --tables public.orders=nope
qs "CREATE TABLE thin (order_id bigint PRIMARY KEY, customer_id bigint, status text)" >/dev/null
bad "a synced business column the source lacks is named" "lacks column\(s\) channel, ordered_at" \
	--name badmap2 --tables public.thin=order_current
qs "CREATE TABLE nokey (order_id bigint, customer_id bigint NOT NULL, status text, channel text, ordered_at timestamptz, status_changed_at timestamptz, item_count int, total_amount numeric, currency text, promised_delivery_at timestamptz, sla_status text)" >/dev/null
bad "a source whose replica identity lacks the key is refused" "replica identity lacks order_id" \
	--name badmap3 --tables public.nokey=order_current
if out=$("$odsctl" sync run --db "$db_uri" --name x 2>&1); then not_ok "usage"; else
	[ $? -eq 2 ] && ok "missing --source is a usage error (exit 2)" || not_ok "usage exit ($out)"
fi
# Undo the mappings the failed attempts wrote, and their sources.
q "UPDATE ods.synced_tables SET cdc_source = NULL, source_name = table_name; DELETE FROM ods.cdc_sources" >/dev/null
expect "no slot was created by a refused start" "SELECT true" # the source is checked before any slot
[ "$(qs "SELECT count(*) FROM pg_replication_slots")" = 0 ] && ok "no replication slot after refused starts" ||
	not_ok "a refused start left a slot"

# ---- initial copy ----
if run_once >"$work/once.log" 2>&1; then ok "first run --once: copy, then caught up, exit 0"; else
	not_ok "first run --once"
	cat "$work/once.log"
fi
same "the copy equals the source"
expect "copied rows carry the slot's consistent point and the snapshot time" \
	"SELECT count(*) = 2000 AND min(_source_position) > 0 AND min(_source_position) = max(_source_position)
	   AND max(_source_committed_at) <= now() FROM synced.order_current"
expect "the copy left planner statistics (ANALYZE is part of a load that fills a table)" \
	"SELECT EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = 'synced' AND tablename = 'order_current')
	   AND (SELECT reltuples = 2000 FROM pg_class WHERE oid = 'synced.order_current'::regclass)"
expect "the source is streaming-ready: slot, applied LSN, tables" \
	"SELECT state = 'stopped' AND applied_lsn IS NOT NULL AND tables = '{public.orders=order_current,public.work_orders=work_order_current}'
	   AND copied_at IS NOT NULL FROM ods.cdc_sources WHERE name = 'oms'"
expect "mapping recorded in ods.synced_tables" \
	"SELECT array_agg(table_name || '<-' || source_name ORDER BY 1) = '{order_current<-public.orders,work_order_current<-public.work_orders}'
	   FROM ods.synced_tables WHERE cdc_source = 'oms'"
[ "$(qs "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ods_oms' AND NOT active")" = 1 ] &&
	ok "slot ods_oms exists on the source" || not_ok "slot ods_oms"
if run_once >"$work/once2.log" 2>&1 && ! grep -q "copied" "$work/once2.log"; then
	ok "a second --once does not copy again"
else
	not_ok "second --once"; cat "$work/once2.log"
fi

# ---- a copy that dies half way is redone cleanly ----
db2_uri=${ODS_TEST_DB_URI%/*}/${db}_copy
q2() { "$psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db2_uri" -c "$1" 2>"$work/err"; }
once2() { "$odsctl" sync run --db "$db2_uri" --source "$src_uri" --name copytest --tables public.orders=order_current --once; }
"$psql" -X -q -d "$ODS_TEST_DB_URI" -c "CREATE DATABASE ${db}_copy" >/dev/null &&
	"$odsctl" migrate --db "$db2_uri" --api-dir "$api_dir" >/dev/null 2>&1
q2 "ALTER TABLE synced.order_current ADD CONSTRAINT refuse_1500 CHECK (order_id <> 1500)" >/dev/null
if ! once2 >"$work/copy.log" 2>&1 && grep -q "refuse_1500" "$work/copy.log" &&
	[ "$(q2 "SELECT state = 'error' AND tables = '{}' AND NOT EXISTS (SELECT 1 FROM synced.order_current) FROM ods.cdc_sources")" = t ]; then
	ok "a copy that fails: exit 1, nothing copied, the source not streaming"
else
	not_ok "failing copy"; cat "$work/copy.log"
fi
q2 "ALTER TABLE synced.order_current DROP CONSTRAINT refuse_1500" >/dev/null
for k in 1 2 3; do # kill -9 during the copy, at different points
	"$odsctl" sync run --db "$db2_uri" --source "$src_uri" --name copytest --tables public.orders=order_current >/dev/null 2>&1 &
	p=$!
	sleep "0.0$((k * 3))"
	kill -9 $p 2>/dev/null
	wait $p 2>/dev/null
done
if once2 >"$work/copy.log" 2>&1; then ok "after kill -9s during the copy, --once copies again and exits 0"; else
	not_ok "copy after kills"; cat "$work/copy.log"
fi
a=$(qs "$(sum_sql public.orders "$ocols" order_id)")
b=$(q2 "$(sum_sql synced.order_current "$ocols" order_id)")
[ "$a" = "$b" ] && ok "the redone copy equals the source ($a)" || not_ok "redone copy: $a vs $b"
[ "$(qs "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ods_copytest'")" = 1 ] &&
	ok "one slot for the source, whatever the failed attempts left" || not_ok "slots after the copy"
qs "SELECT pg_drop_replication_slot('ods_copytest')" >/dev/null

# The chain of applied positions, for the exactly-once checks: one row per ODS
# transaction that moved applied_lsn.
q "CREATE TABLE public.chain (seq bigserial, prev pg_lsn, next pg_lsn, xid bigint DEFAULT txid_current());
   CREATE FUNCTION public.log_chain() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN
     IF NEW.applied_lsn IS DISTINCT FROM OLD.applied_lsn THEN
       INSERT INTO public.chain (prev, next) VALUES (OLD.applied_lsn, NEW.applied_lsn); END IF;
     RETURN NEW; END \$\$;
   CREATE TRIGGER log_chain AFTER UPDATE ON ods.cdc_sources FOR EACH ROW EXECUTE FUNCTION public.log_chain()" >/dev/null

# ---- streaming ----
start_worker
wait_for "the worker reports streaming" "SELECT state = 'streaming' FROM ods.cdc_sources WHERE name = 'oms'"
t0=$(q "SELECT clock_timestamp()")
qs "INSERT INTO orders (order_id, customer_id, status, internal_note) VALUES (5001, 7, 'placed', 'x')" >/dev/null
t1=$(q "SELECT clock_timestamp()")
wait_for "an insert arrives" "SELECT EXISTS (SELECT 1 FROM synced.order_current WHERE order_id = 5001)" 10
expect "_source_committed_at is the source commit time; _source_position its commit LSN" \
	"SELECT _source_committed_at BETWEEN '$t0' AND '$t1' AND _source_position > (SELECT max(_source_position) FROM synced.order_current WHERE order_id < 5000)
	   FROM synced.order_current WHERE order_id = 5001"
qs "UPDATE orders SET status = 'paid', status_changed_at = now() WHERE order_id = 5001" >/dev/null
qs "DELETE FROM orders WHERE order_id = 10" >/dev/null
qs "UPDATE orders SET order_id = 777777 WHERE order_id = 11" >/dev/null
qs "BEGIN; INSERT INTO orders (order_id, customer_id, status) VALUES (5002, 1, 'placed');
    UPDATE orders SET status = 'paid' WHERE order_id = 5002; UPDATE orders SET order_id = 5003 WHERE order_id = 5002;
    DELETE FROM orders WHERE order_id = 12; INSERT INTO orders (order_id, customer_id, status) VALUES (12, 2, 'shipped'); COMMIT" >/dev/null
wait_same "update, delete, key change and a mixed transaction applied"
expect "the key change moved the row" \
	"SELECT NOT EXISTS (SELECT 1 FROM synced.order_current WHERE order_id IN (11, 5002))
	   AND EXISTS (SELECT 1 FROM synced.order_current WHERE order_id = 777777)"

# Unchanged TOAST: a large value, then an update of another column.
big=$(qs "SELECT string_agg(md5(g::text || random()::text), '') FROM generate_series(1, 400) g")
qs "UPDATE work_orders SET site_address = '$big' WHERE work_order_id = 7" >/dev/null
qs "UPDATE work_orders SET status = 'scheduled' WHERE work_order_id = 7" >/dev/null
wait_same "a TOASTed value left unchanged keeps the stored one"
expect "the TOASTed value is whole in the ODS" \
	"SELECT length(site_address) = 12800 AND status = 'scheduled' FROM synced.work_order_current WHERE work_order_id = 7"

# A large transaction: set-based, one ODS transaction.
before=$(q "SELECT count(*) FROM public.chain")
qs "UPDATE orders SET total_amount = total_amount + 0.01, sla_status = 'at_risk' WHERE order_id <= 2000" >/dev/null
wait_same "a 2000-row source transaction applied" 60
expect "it was one ODS transaction" "SELECT count(*) = $before + 1 FROM public.chain"
# Larger than one chunk (50,000 keys go per statement): the chunks, and the freshness
# writes and durability probes that run every few hundred ms (a small transaction just
# before it makes both due), must not split it.
qs "UPDATE orders SET item_count = item_count + 1 WHERE order_id = 1" >/dev/null
qs "INSERT INTO orders (order_id, customer_id, status) SELECT g, 1, 'placed' FROM generate_series(100001, 160000) g" >/dev/null
wait_same "a 60,000-row source transaction applied" 120
expect "its rows were written by one ODS transaction, the one that stored its position" \
	"SELECT count(DISTINCT o.xmin::text) = 1 AND min(o.xmin::text)::bigint = (SELECT xid % 4294967296 FROM public.chain ORDER BY seq DESC LIMIT 1)
	   FROM synced.order_current o WHERE order_id BETWEEN 100001 AND 160000"
qs "DELETE FROM orders WHERE order_id BETWEEN 100001 AND 160000" >/dev/null
wait_same "and its deletion too" 120

qs "TRUNCATE work_orders" >/dev/null
wait_for "TRUNCATE empties the mapped table" "SELECT NOT EXISTS (SELECT 1 FROM synced.work_order_current)" 10
qs "INSERT INTO work_orders (work_order_id, status) SELECT g, 'new' FROM generate_series(1, 50) g" >/dev/null
wait_same "rows after the truncate arrive"

# Freshness: an idle source stays fresh, rows are counted.
sleep 1.5 # let the source go idle for longer than one freshness tick
expect "idle: as_of keeps up with the source clock (within 2 s)" \
	"SELECT bool_and(now() - as_of < interval '2 seconds') FROM ods.synced_tables WHERE cdc_source = 'oms'"
expect "rows of ods.synced_tables follow the applied changes" \
	"SELECT rows = (SELECT count(*) FROM synced.order_current) FROM ods.synced_tables WHERE table_name = 'order_current'"
status=$("$odsctl" sync status --db "$db_uri")
grep -qE "^oms +ods_oms +streaming" <<<"$status" && ok "sync status: source, slot, state" ||
	not_ok "sync status ($status)"

# ---- reconnects ----
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'odsctl sync run' AND datname = '$db'" >/dev/null
qs "UPDATE orders SET status = 'delivered' WHERE order_id = 20" >/dev/null
wait_same "the ODS side cut: the worker reconnects and applies" 30
qs "SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'odsctl sync run'" >/dev/null
qs "UPDATE orders SET status = 'delivered' WHERE order_id = 21" >/dev/null
wait_same "the source side cut: the worker reconnects and applies" 30
if [ -n "${ODS_TEST_PG_DATA:-}" ]; then
	as=()
	[ -n "${ODS_TEST_PG_USER:-}" ] && as=(runuser -u "$ODS_TEST_PG_USER" --)
	"${as[@]}" "$ODS_TEST_PG_BINDIR/pg_ctl" -D "$ODS_TEST_PG_DATA" -m fast -w stop >/dev/null
	sleep 1
	"${as[@]}" "$ODS_TEST_PG_BINDIR/pg_ctl" -D "$ODS_TEST_PG_DATA" -o "$ODS_TEST_PG_OPTS" -l "$ODS_TEST_PG_LOG" -w start >/dev/null
	qs "UPDATE orders SET status = 'delivered' WHERE order_id = 22" >/dev/null
	wait_same "a cluster restart (source and ODS): the worker reconnects with backoff" 60
	grep -q "reconnecting in" "$work/worker.log" && ok "reconnects are logged" || not_ok "no reconnect logged"
fi

# ---- SIGTERM ----
stop_worker TERM
[ "$worker_rc" = 0 ] && ok "SIGTERM: exit 0" || not_ok "SIGTERM: exit $worker_rc"
expect "stopped, and the slot confirmed what was applied" \
	"SELECT state = 'stopped' FROM ods.cdc_sources WHERE name = 'oms'"
applied=$(q "SELECT applied_lsn FROM ods.cdc_sources WHERE name = 'oms'")
[ "$(qs "SELECT confirmed_flush_lsn >= '$applied' FROM pg_replication_slots WHERE slot_name = 'ods_oms'")" = t ] &&
	ok "confirmed_flush_lsn >= applied_lsn ($applied)" || not_ok "slot not confirmed to $applied"
asof=$(q "SELECT max(as_of) FROM ods.synced_tables WHERE cdc_source = 'oms'")
sleep 1.2
expect "a stopped worker: as_of stands still, so the tables turn stale" \
	"SELECT max(as_of) = '$asof' FROM ods.synced_tables WHERE cdc_source = 'oms'"

# ---- crash loop ----
q "TRUNCATE public.chain" >/dev/null
qs "CALL churn(10)" >/dev/null # nothing runs: these are applied by the first restart
"$psql" -X -q -d "$src_uri" -c "CALL churn(3000)" >"$work/churn.log" 2>&1 &
churn_pid=$!
kills=0
while kill -0 "$churn_pid" 2>/dev/null && [ $kills -lt 12 ]; do
	start_worker
	sleep "0.$((RANDOM % 9 + 1))"
	stop_worker 9
	kills=$((kills + 1))
done
wait "$churn_pid" && ok "the writer committed its 3000 transactions" || { not_ok "the writer failed"; cat "$work/churn.log"; }
churned=$(($(qs "SELECT n FROM counters") + 0))
if run_once >>"$work/worker.log" 2>&1; then ok "after $kills kill -9s, --once catches up"; else not_ok "--once after the crash loop"; fi
same "after the crash loop the synced tables equal the source"
expect "no source transaction applied twice: the chain never repeats or skips a step" \
	"SELECT count(*) = count(DISTINCT next) AND bool_and(prev < next)
	   AND bool_and(prev = lag_next OR lag_next IS NULL) AND count(DISTINCT xid) = count(*)
	   FROM (SELECT *, lag(next) OVER (ORDER BY seq) AS lag_next FROM public.chain) c"
n=$(q "SELECT count(*) FROM public.chain")
[ "$n" = 3010 ] && ok "one ODS transaction per source transaction (3010 of them)" || not_ok "one ODS transaction per source transaction: $n of 3010"

# ---- schema change mid-stream ----
start_worker
wait_for "streaming after the crash loop" "SELECT state = 'streaming' FROM ods.cdc_sources WHERE name = 'oms'"
qs "ALTER TABLE orders ADD COLUMN loyalty_points int; UPDATE orders SET loyalty_points = 5, status = 'paid' WHERE order_id = 30" >/dev/null
wait_same "a source column added mid-stream is ignored"

# ---- a change the ODS refuses ----
qs "UPDATE orders SET status = 'lost' WHERE order_id = 31" >/dev/null # synced CHECK refuses it
for _ in $(seq 1 200); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.05; done
stop_worker TERM
[ "$worker_rc" = 1 ] && ok "an unappliable change: exit 1" || not_ok "unappliable change: exit $worker_rc"
expect "state error, last_error names table, key and LSN" \
	"SELECT state = 'error' AND last_error ~ 'synced.order_current key \(order_id\)=\(31\) at LSN [0-9A-F]+/[0-9A-F]+' AND last_error ~ 'check constraint'
	   FROM ods.cdc_sources WHERE name = 'oms'"
[ "$(qs "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ods_oms'")" = 1 ] &&
	ok "the slot is kept after the error" || not_ok "slot gone after the error"
qs "UPDATE orders SET status = 'paid' WHERE order_id = 31" >/dev/null
run_once >/dev/null 2>&1 # still fails: the refused change comes first
expect "a restart retries the refused change and fails the same way (nothing skipped)" \
	"SELECT state = 'error' FROM ods.cdc_sources WHERE name = 'oms'"
q "ALTER TABLE synced.order_current DROP CONSTRAINT order_current_status_check" >/dev/null
run_once >/dev/null 2>&1 && ok "after the operator relaxes the ODS, --once applies the change" ||
	not_ok "--once after the fix"
same "and then everything"

# ---- a business column dropped mid-stream ----
start_worker
wait_for "streaming again" "SELECT state = 'streaming' FROM ods.cdc_sources WHERE name = 'oms'"
qs "ALTER TABLE orders DROP COLUMN sla_status; UPDATE orders SET status = 'paid' WHERE order_id = 32" >/dev/null
for _ in $(seq 1 200); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.05; done
stop_worker TERM
[ "$worker_rc" = 1 ] && ok "a dropped business column: exit 1" || not_ok "dropped column: exit $worker_rc"
expect "last_error names the dropped column" \
	"SELECT state = 'error' AND last_error ~ 'no longer has column\(s\) sla_status' FROM ods.cdc_sources WHERE name = 'oms'"
finish
