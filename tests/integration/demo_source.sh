#!/usr/bin/env bash
# demo_source.sh: the quickstart's live source, end to end: `odsctl demo source` seeds
# the OLTP tables from `demo generate` extracts (idempotent), `odsctl demo churn` moves
# them at the asked rate, and `odsctl sync run` with the quickstart's mapping copies and
# streams them into the synced tables, whose CHECKs accept every row the churn wrote:
# all six mapped tables end equal to their source tables.
set -u

suite=demo_source
. "$(dirname "$0")/lib.sh"

src_uri=${ODS_TEST_DB_URI%/*}/src_$suite
q() { "$psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db_uri" -c "$1" 2>"$work/err"; }
qs() { "$psql" -X -q -At -v ON_ERROR_STOP=1 -d "$src_uri" -c "$1" 2>"$work/err"; }
pairs="customers:customer_current orders:order_current payments:payment_current
	shipments:shipment_status_latest work_orders:work_order_current
	order_status_history:order_status_history_30d"
tables="public.customers=customer_current,public.orders=order_current,public.payments=payment_current"
tables="$tables,public.shipments=shipment_status_latest,public.work_orders=work_order_current"
tables="$tables,public.order_status_history=order_status_history_30d"
# The synced table's business columns, in order, for checksums on both sides.
bizcols() {
	q "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
	   WHERE attrelid = 'synced.$1'::regclass AND attnum > 0 AND NOT attisdropped
	     AND attname NOT IN ('_source_committed_at', '_synced_at', '_source_position')"
}
all_equal() {
	local p s t cols a b bad=""
	for p in $pairs; do
		s=${p%%:*} t=${p##*:}
		cols=$(bizcols "$t")
		a=$(qs "SELECT count(*) || ':' || md5(coalesce(string_agg(m, '' ORDER BY m), '')) FROM (SELECT md5(row($cols)::text) AS m FROM $s) x")
		b=$(q "SELECT count(*) || ':' || md5(coalesce(string_agg(m, '' ORDER BY m), '')) FROM (SELECT md5(row($cols)::text) AS m FROM synced.$t) x")
		[ "$a" = "$b" ] || bad="$bad $t($a vs $b)"
	done
	[ -z "$bad" ] && ok "$1" || not_ok "$1:$bad"
}

if "$psql" -X -q -v ON_ERROR_STOP=1 -d "$ODS_TEST_DB_URI" -c "CREATE DATABASE $db" -c "CREATE DATABASE src_$suite" >"$work/setup.log" 2>&1 &&
	"$odsctl" migrate --db "$db_uri" --api-dir "$api_dir" >>"$work/setup.log" 2>&1 &&
	"$odsctl" demo generate --out "$work/demo" --customers 500 >>"$work/setup.log" 2>&1; then
	ok "setup: ODS migrated, 500-customer extracts"
else
	not_ok "setup"; cat "$work/setup.log"; finish
fi

if "$odsctl" demo source --db "$src_uri" --from "$work/demo" --api-dir "$api_dir" >"$work/src.log" 2>&1; then
	ok "demo source seeds the source"
else
	not_ok "demo source"; cat "$work/src.log"
fi
for p in $pairs; do
	s=${p%%:*} t=${p##*:}
	n=$(($(wc -l <"$work/demo/$t.csv") - 1))
	[ "$(qs "SELECT count(*) FROM $s")" = "$n" ] && ok "public.$s holds the $n rows of $t.csv" ||
		not_ok "public.$s rows ($(qs "SELECT count(*) FROM $s") vs $n)"
done
before=$(qs "SELECT md5(string_agg(o::text, '' ORDER BY order_id)) FROM orders o")
"$odsctl" demo source --db "$src_uri" --from "$work/demo" --api-dir "$api_dir" >"$work/src2.log" 2>&1 &&
	[ "$(grep -c 'left as it is' "$work/src2.log")" = 6 ] &&
	[ "$(qs "SELECT md5(string_agg(o::text, '' ORDER BY order_id)) FROM orders o")" = "$before" ] &&
	ok "a second demo source changes nothing" || not_ok "second demo source"

# Copy through the real sync path: the synced CHECKs accept the seeded rows.
if "$odsctl" sync run --db "$db_uri" --source "$src_uri" --name oms --tables "$tables" --once >"$work/sync.log" 2>&1; then
	ok "sync run --once copies the six tables"
else
	not_ok "sync run --once"; cat "$work/sync.log"
fi
all_equal "after the copy every continuous table equals its source"

out=$("$odsctl" demo churn --db "$src_uri" --rate 200 --duration 3 2>&1)
rate=$(sed -nE 's/.* ([0-9.]+) changes\/s .*/\1/p' <<<"$out")
if [ -n "$rate" ] && awk -v r="$rate" 'BEGIN { exit !(r >= 160 && r <= 240) }'; then
	ok "demo churn --rate 200 --duration 3 ($out)"
else
	not_ok "demo churn rate ($out)"
fi
[ "$(qs "SELECT md5(string_agg(o::text, '' ORDER BY order_id)) FROM orders o")" != "$before" ] &&
	ok "the churn changed orders" || not_ok "orders unchanged by the churn"
[ "$(qs "SELECT count(*) > $(($(wc -l <"$work/demo/order_current.csv") - 1)) FROM orders")" = t ] &&
	ok "the churn placed new orders" || not_ok "no new orders"
[ "$(qs "SELECT count(*) > 0 FROM payments WHERE status = 'captured' AND captured_at > now() - interval '1 minute'")" = t ] &&
	ok "payments were captured" || not_ok "no captured payment"
if "$odsctl" sync run --db "$db_uri" --source "$src_uri" --name oms --tables "$tables" --once >"$work/sync2.log" 2>&1; then
	ok "sync run --once applies the churn (every change passes the synced CHECKs)"
else
	not_ok "sync run after the churn"; cat "$work/sync2.log"
fi
all_equal "after the churn every continuous table equals its source"

for bad in 0 -5 abc; do
	"$odsctl" demo churn --db "$src_uri" --rate "$bad" --duration 1 >/dev/null 2>&1
	[ $? -eq 2 ] && ok "--rate $bad is a usage error" || not_ok "--rate $bad"
done
"$odsctl" demo source --db "$src_uri" --from "$work/nope" --api-dir "$api_dir" >/dev/null 2>"$work/e"
rc=$?
[ $rc -eq 1 ] && grep -q "nope" "$work/e" && ok "a missing --from names it ($(head -c 120 "$work/e"))" || not_ok "missing --from (exit $rc)"
"$odsctl" demo churn --db "${ODS_TEST_DB_URI%/*}/$db" --rate 10 --duration 1 >/dev/null 2>"$work/e"
rc=$?
[ $rc -eq 1 ] && ok "churn on a database without the source tables: exit 1 ($(head -c 100 "$work/e"))" || not_ok "churn on a wrong database (exit $rc)"
qs "SELECT pg_drop_replication_slot('ods_oms')" >/dev/null
finish
