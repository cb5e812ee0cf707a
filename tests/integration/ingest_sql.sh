#!/usr/bin/env bash
# ingest_sql.sh: POST /v1/ingest/debezium in SQL (api/routes/95_ingest.sql).
#
# Runs under tests/harness.sh (ODS_TEST_DB_URI: a throwaway PostgreSQL). Migrates a
# fresh database and calls ods_api.ingest_debezium the way odsd does: in one
# transaction after set_config('role', <role>, true) and set_config('request.jwt.claims',
# ..., true), so grants are enforced as in production. Checks the envelope forms
# (single, array, schema/payload wrapper), every op, the position guard (duplicates,
# older events, no resurrection after a delete, re-insert), dead letters (unmapped
# table, missing key or position, type and constraint errors, with the rest applied),
# 400s that apply nothing, truncate opt-in, Debezium value encodings, freshness (as_of,
# NOTIFY ods_freshness), grants; then a property test: one history of 1,000 events over
# 50 keys, delivered in order, reversed, in one request, in 20 random permutations with
# about 30% duplicates in random batch sizes, and by two concurrent sessions, must
# always end in the state of the history applied in order.
set -u

suite=ingest_sql
. "$(dirname "$0")/lib.sh"

# q SQL: runs SQL as the superuser; prints rows unaligned; fails on an error.
q() {
	"$psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db_uri" -c "$1" 2>"$work/err"
}

# expect NAME SQL: passes when SQL (as the superuser) answers exactly "t".
expect() {
	local out
	out=$(q "$2")
	if [ "$out" = t ]; then
		ok "$1"
	else
		not_ok "$1 (got '${out:0:300}')"
		sed 's/^/    /' "$work/err"
	fi
}

# ingest ROLE JSON: calls the function as ROLE with body JSON in one committed
# transaction, the way odsd does. Leaves the result in $r_body, $r_status, $r_dead
# and any notification lines in $r_notify; fails (with the error in $work/err) when
# the call fails.
ingest() {
	local out
	out=$("$psql" -X -q -At -v ON_ERROR_STOP=1 -v body="$2" -d "$db_uri" 2>"$work/err" <<EOF
LISTEN ods_freshness;
BEGIN;
SELECT set_config('role', '$1', true),
	set_config('request.jwt.claims', '{"sub":"ingest_sql","role":"$1","scope":"ingest:write"}', true) \\g /dev/null
SELECT body AS r_body, status AS r_status, count_ingest_dead_letters AS r_dead
FROM ods_api.ingest_debezium(p_body => :'body'::jsonb) \\gset
COMMIT;
\\echo RESULT :r_status :r_dead :r_body
EOF
	) || return 1
	r_notify=$(grep '^Asynchronous notification' <<<"$out")
	out=$(grep '^RESULT ' <<<"$out")
	read -r _ r_status r_dead r_body <<<"$out"
}

# check NAME ROLE JSON PREDICATE: ingest, then PREDICATE (SQL, as the superuser, with
# r(body jsonb, status, dead_letters) the result) must answer "t".
check() {
	local out
	if ! ingest "$2" "$3"; then
		not_ok "$1 (the call failed)"
		sed 's/^/    /' "$work/err"
		return
	fi
	out=$("$psql" -X -q -At -v ON_ERROR_STOP=1 -v rb="$r_body" -d "$db_uri" 2>"$work/err" <<EOF
SELECT ($4) FROM (SELECT :'rb'::jsonb AS body, $r_status AS status, $r_dead AS dead_letters) r;
EOF
	)
	if [ "$out" = t ]; then
		ok "$1"
	else
		not_ok "$1 (got '${out:0:300}'; response $r_status $r_body)"
		sed 's/^/    /' "$work/err"
	fi
}

# check_error NAME SQLSTATE ROLE JSON [PREDICATE]: the call fails with SQLSTATE (and
# PREDICATE, checked afterwards as the superuser, answers "t": e.g. nothing applied).
check_error() {
	local got msg
	got=$("$psql" -X -q -At -v body="$4" -d "$db_uri" 2>"$work/err" <<EOF
BEGIN;
SELECT set_config('role', '$3', true),
	set_config('request.jwt.claims', '{"sub":"ingest_sql","role":"$3"}', true) \\g /dev/null
\\o /dev/null
SELECT * FROM ods_api.ingest_debezium(p_body => :'body'::jsonb);
\\o
\\echo :LAST_ERROR_SQLSTATE
COMMIT;
EOF
	)
	got=$(tail -n 1 <<<"$got")
	msg=$(grep -m1 'ERROR' "$work/err" | sed 's/^.*ERROR: *//')
	if [ "$got" != "$2" ]; then
		not_ok "$1 (expected SQLSTATE $2, got '$got')"
		sed 's/^/    /' "$work/err"
	elif [ -n "${5:-}" ] && [ "$(q "$5")" != t ]; then
		not_ok "$1 ($2, but the check after it failed: $5)"
	else
		ok "$1 ($2: $msg)"
	fi
}

# ev OP ID LSN [EMAIL [TABLE [SCHEMA]]]: a PostgreSQL-connector change event for
# customer_current-shaped rows; ts_ms = 1767225600000 + LSN (2026-01-01 + LSN ms).
ev() {
	local op=$1 id=$2 lsn=$3 email=${4:-c$2.v$3@example.com} table=${5:-customer_current}
	local schema=${6:-public} ts=$((1767225600000 + $3)) before=null after
	after=$(printf '{"customer_id":%s,"email":"%s","full_name":"Customer %s","tier":"gold","segment":"retail","status":"active","lifetime_value":12.5}' \
		"$id" "$email" "$id")
	case $op in
	d) before=$(printf '{"customer_id":%s,"email":null,"full_name":null,"tier":null}' "$id") after=null ;;
	u) before=null ;;
	esac
	printf '{"before":%s,"after":%s,"source":{"version":"2.7.0.Final","connector":"postgresql","name":"crm","ts_ms":%s,"snapshot":"false","db":"crm","sequence":"[null,\\"%s\\"]","schema":"%s","table":"%s","txId":%s,"lsn":%s,"xmin":null},"op":"%s","ts_ms":%s,"transaction":null}' \
		"$before" "$after" "$ts" "$lsn" "$schema" "$table" "$((500 + lsn))" "$lsn" "$op" "$((ts + 3))"
}
row() { # row ID: "email|_source_position" of customer ID, or "" when absent
	q "SELECT email || '|' || _source_position FROM synced.customer_current WHERE customer_id = $1"
}
dead_count() { q "SELECT count(*) FROM ods.ingest_dead_letters"; }

# ---- setup ----
if "$psql" -X -q -v ON_ERROR_STOP=1 -d "$ODS_TEST_DB_URI" -c "DROP DATABASE IF EXISTS $db" \
	-c "CREATE DATABASE $db" >"$work/setup.log" 2>&1 &&
	"$odsctl" migrate --db "$db_uri" --api-dir "$api_dir" >>"$work/setup.log" 2>&1; then
	ok "migrate a fresh database"
else
	not_ok "migrate a fresh database"
	cat "$work/setup.log"
	finish
fi
expect "route registered: POST /v1/ingest/debezium, scope ingest:write, reads nothing" \
	"SELECT function = 'ods_api.ingest_debezium' AND scope = 'ingest:write' AND reads = '{}'
	 FROM ods.routes WHERE method = 'POST' AND path = '/v1/ingest/debezium'"
expect "migrate generated an apply function per synced table, matching its shape" \
	"SELECT count(*) = (SELECT count(*) FROM ods.synced_tables)
		AND bool_and(signature = ods.ingest_signature(to_regclass('synced.' || table_name)))
		AND bool_and(to_regprocedure(function || '(ods.ingest_item[], bigint, text)') IS NOT NULL)
	 FROM ods.ingest_appliers"
expect "only ods_sync may execute it" \
	"SELECT has_function_privilege('ods_sync', 'ods_api.ingest_debezium(jsonb)', 'EXECUTE')
	 AND NOT has_function_privilege('ods_admin', 'ods_api.ingest_debezium(jsonb)', 'EXECUTE')
	 AND NOT has_function_privilege('support_agent', 'ods_api.ingest_debezium(jsonb)', 'EXECUTE')"

# ---- the envelope forms and ops ----
check "single event (op c): applied, freshness columns set by the ODS" ods_sync "$(ev c 1 100)" "
	r.status = 200 AND r.dead_letters = 0
	AND r.body = '{\"received\":1,\"applied\":1,\"skipped\":0,\"dead_lettered\":0,\"ignored\":0,
		\"tables\":{\"customer_current\":{\"applied\":1,\"skipped\":0,\"dead_lettered\":0}}}'::jsonb
	AND (SELECT email = 'c1.v100@example.com' AND full_name = 'Customer 1' AND tier = 'gold'
		AND lifetime_value = 12.50 AND _source_position = 100
		AND _source_committed_at = '2026-01-01T00:00:00.1Z' AND _synced_at > now() - interval '1 minute'
		FROM synced.customer_current WHERE customer_id = 1)"
check "array of events (c, c, u): all applied" ods_sync "[$(ev c 2 110),$(ev c 3 120),$(ev u 1 130)]" "
	(r.body ->> 'received')::int = 3 AND (r.body ->> 'applied')::int = 3
	AND (SELECT count(*) = 3 FROM synced.customer_current)
	AND (SELECT email = 'c1.v130@example.com' AND _source_position = 130
		FROM synced.customer_current WHERE customer_id = 1)"
check "schema/payload wrapper (schemas.enable=true): unwrapped and applied" ods_sync \
	"{\"schema\":{\"type\":\"struct\",\"fields\":[],\"optional\":false,\"name\":\"crm.public.customer_current.Envelope\"},\"payload\":$(ev u 2 140)}" "
	(r.body ->> 'applied')::int = 1
	AND (SELECT email = 'c2.v140@example.com' FROM synced.customer_current WHERE customer_id = 2)"
check "array of wrapped events, op r (snapshot read)" ods_sync \
	"[{\"schema\":{},\"payload\":$(ev r 4 150)},{\"schema\":{},\"payload\":$(ev r 5 150)}]" "
	(r.body ->> 'applied')::int = 2
	AND (SELECT count(*) = 2 FROM synced.customer_current WHERE customer_id IN (4, 5) AND _source_position = 150)"
check "unknown columns in after are ignored" ods_sync \
	"$(ev u 5 155 | sed 's/"lifetime_value":12.5/"lifetime_value":12.5,"loyalty_points":7,"_synced_at":"garbage","_source_position":"x"/')" "
	(r.body ->> 'applied')::int = 1 AND (SELECT _source_position = 155 AND _synced_at > now() - interval '1 minute'
		FROM synced.customer_current WHERE customer_id = 5)"

# ---- the guard ----
synced_at_before=$(q "SELECT _synced_at FROM synced.customer_current WHERE customer_id = 1")
check "duplicate (the same event again): skipped, row untouched" ods_sync "$(ev u 1 130)" "
	(r.body ->> 'skipped')::int = 1 AND (r.body ->> 'applied')::int = 0
	AND (SELECT email = 'c1.v130@example.com' AND _synced_at = '$synced_at_before'
		FROM synced.customer_current WHERE customer_id = 1)"
check "older event (position below the row's): skipped" ods_sync "$(ev u 1 125 old@example.com)" "
	(r.body ->> 'skipped')::int = 1
	AND (SELECT email = 'c1.v130@example.com' AND _source_position = 130
		FROM synced.customer_current WHERE customer_id = 1)"
check "older and newer of one key in one request (newer first): the newer wins" ods_sync \
	"[$(ev u 1 170 new@example.com),$(ev u 1 160 mid@example.com),$(ev u 1 170 new@example.com)]" "
	(r.body ->> 'applied')::int = 2 AND (r.body ->> 'skipped')::int = 1
	AND (SELECT email = 'new@example.com' AND _source_position = 170
		FROM synced.customer_current WHERE customer_id = 1)"
check "delete (op d, key from before): row gone, tombstone at its position" ods_sync "$(ev d 3 200)" "
	(r.body ->> 'applied')::int = 1
	AND NOT EXISTS (SELECT FROM synced.customer_current WHERE customer_id = 3)
	AND (SELECT position = 200 AND deleted_at = '2026-01-01T00:00:00.2Z' FROM ods.synced_tombstones
		WHERE table_name = 'customer_current' AND key = '{\"customer_id\": 3}')"
check "late update after the delete: skipped, not resurrected" ods_sync "$(ev u 3 190 late@example.com)" "
	(r.body ->> 'skipped')::int = 1 AND NOT EXISTS (SELECT FROM synced.customer_current WHERE customer_id = 3)"
check "late create and duplicate delete: skipped" ods_sync "[$(ev c 3 120),$(ev d 3 200)]" "
	(r.body ->> 'skipped')::int = 2 AND NOT EXISTS (SELECT FROM synced.customer_current WHERE customer_id = 3)"
check "re-insert with a higher position: present again, tombstone removed" ods_sync "$(ev c 3 210 back@example.com)" "
	(r.body ->> 'applied')::int = 1
	AND (SELECT email = 'back@example.com' FROM synced.customer_current WHERE customer_id = 3)
	AND NOT EXISTS (SELECT FROM ods.synced_tombstones WHERE key = '{\"customer_id\": 3}')"
check "delete of a key never seen: tombstone, so its late create is skipped" ods_sync "$(ev d 77 300)" "
	(r.body ->> 'applied')::int = 1 AND EXISTS (SELECT FROM ods.synced_tombstones WHERE key = '{\"customer_id\": 77}')"
check "... the late create" ods_sync "$(ev c 77 250)" "
	(r.body ->> 'skipped')::int = 1 AND NOT EXISTS (SELECT FROM synced.customer_current WHERE customer_id = 77)"
check "key given as a string: the same typed key (\"3\" = 3)" ods_sync \
	"$(ev u 3 220 str@example.com | sed 's/"customer_id":3/"customer_id":"3"/')" "
	(r.body ->> 'applied')::int = 1
	AND (SELECT email = 'str@example.com' FROM synced.customer_current WHERE customer_id = 3)"

# ---- ignored: tombstones, heartbeats, transaction markers, logical messages ----
check "tombstones (null), heartbeats, transaction metadata and op m: ignored" ods_sync \
	"[null,{\"schema\":null,\"payload\":null},{\"ts_ms\":1767225600000},{\"status\":\"BEGIN\",\"id\":\"571:53195829\",\"ts_ms\":1,\"event_count\":null,\"data_collections\":null},{\"op\":\"m\",\"ts_ms\":1,\"source\":{\"lsn\":1},\"message\":{\"prefix\":\"x\",\"content\":\"eA==\"}},$(ev u 2 230)]" "
	(r.body ->> 'received')::int = 6 AND (r.body ->> 'ignored')::int = 5 AND (r.body ->> 'applied')::int = 1"
check "empty array: nothing to do" ods_sync "[]" "
	r.status = 200 AND (r.body ->> 'received')::int = 0 AND r.body -> 'tables' = '{}'"

# ---- dead letters: the request succeeds, the rest is applied ----
d0=$(dead_count)
check "unmapped table: dead letter, not an error" ods_sync "[$(ev c 1 1 x@example.com nope),$(ev u 2 240)]" "
	r.status = 200 AND r.dead_letters = 1 AND (r.body ->> 'dead_lettered')::int = 1
	AND (r.body ->> 'applied')::int = 1
	AND (SELECT reason LIKE 'unmapped table public.nope%' AND table_ref = 'public.nope'
		AND table_name IS NULL AND event -> 'source' ->> 'table' = 'nope'
		FROM ods.ingest_dead_letters ORDER BY dead_letter_id DESC LIMIT 1)"
check "CHECK violation: dead letter with SQLSTATE and reason, the others applied" ods_sync \
	"[$(ev c 10 300),$(ev c 11 300 not-an-email),$(ev c 12 300),$(ev u 2 300)]" "
	r.dead_letters = 1 AND (r.body ->> 'applied')::int = 3
	AND (r.body #>> '{tables,customer_current,dead_lettered}')::int = 1
	AND (SELECT count(*) = 2 FROM synced.customer_current WHERE customer_id IN (10, 12))
	AND NOT EXISTS (SELECT FROM synced.customer_current WHERE customer_id = 11)
	AND (SELECT sqlstate = '23514' AND reason LIKE '%check constraint%' AND position = 300
		AND table_name = 'customer_current' AND op = 'c'
		FROM ods.ingest_dead_letters ORDER BY dead_letter_id DESC LIMIT 1)
	AND (SELECT status = 'ok' AND last_error LIKE '1 of 4 events dead-lettered%check constraint%'
		FROM ods.synced_tables WHERE table_name = 'customer_current')"
check "type error and NOT NULL violation: dead letters" ods_sync \
	"[$(ev c 13 310 | sed 's/"lifetime_value":12.5/"lifetime_value":12.5,"signed_up_at":"not a time"/'),$(ev c 14 310 | sed 's/"tier":"gold",//'),$(ev c 15 310)]" "
	r.dead_letters = 2 AND (r.body ->> 'applied')::int = 1
	AND (SELECT array_agg(sqlstate ORDER BY sqlstate) = '{22007,23502}' FROM
		(SELECT sqlstate FROM ods.ingest_dead_letters ORDER BY dead_letter_id DESC LIMIT 2) x)
	AND EXISTS (SELECT FROM synced.customer_current WHERE customer_id = 15)"
check "missing key column: dead letter" ods_sync \
	"$(ev c 16 320 | sed 's/"customer_id":16,//')" "
	r.dead_letters = 1 AND (SELECT reason LIKE 'no value for a key column of synced.customer_current (customer_id)%'
		FROM ods.ingest_dead_letters ORDER BY dead_letter_id DESC LIMIT 1)"
check "missing position (no source.lsn): dead letter, no fallback" ods_sync \
	"$(ev c 17 330 | sed 's/"lsn":330,//')" "
	r.dead_letters = 1 AND NOT EXISTS (SELECT FROM synced.customer_current WHERE customer_id = 17)
	AND (SELECT reason LIKE 'source.lsn is missing%' FROM ods.ingest_dead_letters
		ORDER BY dead_letter_id DESC LIMIT 1)"
check "delete without before (REPLICA IDENTITY NOTHING): dead letter" ods_sync \
	'{"before":null,"after":null,"source":{"schema":"public","table":"customer_current","ts_ms":1767225600000,"lsn":340},"op":"d"}' "
	r.dead_letters = 1 AND (SELECT reason LIKE 'delete without \"before\"%' FROM ods.ingest_dead_letters
		ORDER BY dead_letter_id DESC LIMIT 1)"
# 60 events over keys 20..29 (key 20 + i % 10, position 1000 + i) in one request, three
# of them poison: i = 53 and 58 are the newest events of keys 23 and 28, found by
# bisection and dead-lettered, so those keys end at their previous events (43, 48), as
# applying one by one in position order would; i = 17 is superseded in the request by
# newer events of key 27, so it is never written and never checked (its key ends at 57).
big="" sep=""
for i in $(seq 1 60); do
	k=$((20 + i % 10)) e="k$((20 + i % 10)).e$i@example.com"
	case $i in 17 | 53 | 58) e=poison ;; esac
	big="$big$sep$(ev u "$k" $((1000 + i)) "$e")" sep=,
done
check "60 events with 2 poison ones: bisection dead-letters them, the rest applied in position order" ods_sync "[$big]" "
	r.dead_letters = 2 AND (r.body ->> 'applied')::int = 58
	AND (SELECT count(*) = 10 FROM synced.customer_current WHERE customer_id BETWEEN 20 AND 29)
	AND (SELECT email = 'k23.e43@example.com' AND _source_position = 1043 FROM synced.customer_current WHERE customer_id = 23)
	AND (SELECT email = 'k28.e48@example.com' AND _source_position = 1048 FROM synced.customer_current WHERE customer_id = 28)
	AND (SELECT email = 'k27.e57@example.com' AND _source_position = 1057 FROM synced.customer_current WHERE customer_id = 27)
	AND (SELECT array_agg(position ORDER BY position) = '{1053,1058}' FROM
		(SELECT position FROM ods.ingest_dead_letters ORDER BY dead_letter_id DESC LIMIT 2) x)"
expect "dead letters keep the event (payload) and are readable by ods_admin only" \
	"SELECT count(*) > $d0 AND bool_and(event ? 'op') FROM ods.ingest_dead_letters"
expect "grants: ods_sync inserts dead letters but cannot read them; ods_admin reads" \
	"SELECT has_table_privilege('ods_sync', 'ods.ingest_dead_letters', 'INSERT')
	 AND NOT has_table_privilege('ods_sync', 'ods.ingest_dead_letters', 'SELECT')
	 AND has_table_privilege('ods_admin', 'ods.ingest_dead_letters', 'SELECT')
	 AND NOT has_table_privilege('support_agent', 'ods.synced_tombstones', 'SELECT')"

# ---- malformed requests: 400, nothing applied ----
before=$(q "SELECT md5(string_agg(t::text, ',' ORDER BY customer_id)) FROM synced.customer_current t")
unchanged="SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY customer_id)) FROM synced.customer_current t) = '$before'"
d1=$(dead_count)
check_error "body is not an object or array" OD400 ods_sync '"hello"' "$unchanged"
check_error "body is JSON null" OD400 ods_sync 'null' "$unchanged"
check_error "unknown op in the 3rd event: nothing applied, not even the first two" OD400 ods_sync \
	"[$(ev c 40 400),$(ev u 1 400),$(ev u 1 401 | sed 's/"op":"u"/"op":"x"/')]" \
	"$unchanged AND NOT EXISTS (SELECT FROM synced.customer_current WHERE customer_id = 40)"
check_error "an event without source" OD400 ods_sync \
	"[$(ev c 41 400),{\"op\":\"c\",\"after\":{\"customer_id\":41}}]" "$unchanged"
check_error "an event without op (not an envelope)" OD400 ods_sync \
	"[$(ev c 42 400),{\"customer_id\":42,\"email\":\"x@y.z\"}]" "$unchanged"
check_error "an element that is not an object" OD400 ods_sync "[$(ev c 43 400),42]" "$unchanged"
check_error "op c without after" OD400 ods_sync \
	'{"before":null,"after":null,"source":{"schema":"public","table":"customer_current","ts_ms":1,"lsn":1},"op":"c"}' \
	"$unchanged"
expect "... and no dead letters either" "SELECT count(*) = $d1 FROM ods.ingest_dead_letters"
if check_error "the message names the event index" OD400 ods_sync "[$(ev c 44 400),$(ev c 45 400),{\"op\":7,\"source\":{}}]" &&
	grep -q 'events\[2\]: unknown op 7' "$work/err"; then
	ok "... events[2]: unknown op 7"
else
	not_ok "... the message names the event index: $(cat "$work/err")"
fi

# ---- grants ----
check_error "support_agent may not call it" 42501 support_agent "$(ev c 50 500)" \
	"SELECT NOT EXISTS (SELECT FROM synced.customer_current WHERE customer_id = 50)"
check_error "ods_admin may not call it either (ingest is ods_sync's alone)" 42501 ods_admin "$(ev c 50 500)"

# ---- freshness ----
q "UPDATE ods.synced_tables SET as_of = NULL, status = 'never_synced', last_error = NULL WHERE table_name = 'order_current'" >/dev/null
oev() { # oev OP ID LSN STATUS: an order_current event from the OMS
	local ts=$((1767225600000 + $3))
	printf '{"before":%s,"after":%s,"source":{"connector":"postgresql","schema":"oms","table":"orders","ts_ms":%s,"lsn":%s},"op":"%s","ts_ms":%s}' \
		"$([ "$1" = d ] && printf '{"order_id":%s}' "$2" || echo null)" \
		"$([ "$1" = d ] && echo null || printf '{"order_id":%s,"customer_id":1,"status":"%s","channel":"web","total_amount":"AeI=","currency":"EUR","ordered_at":1767225600000000}' "$2" "$4")" \
		"$ts" "$3" "$1" "$ts"
}
check "source_name mapping: oms.orders is not mapped yet (dead letter)" ods_sync "$(oev c 1 10 placed)" \
	"r.dead_letters = 1"
q "UPDATE ods.synced_tables SET source_name = 'oms.orders' WHERE table_name = 'order_current'" >/dev/null
check "source_name = oms.orders maps oms.orders to order_current; precise decimal and epoch-us decoded" \
	ods_sync "[$(oev c 1 10 placed),$(oev c 2 20 paid),$(oev u 1 30 shipped)]" "
	(r.body #>> '{tables,order_current,applied}')::int = 3
	AND (SELECT status = 'shipped' AND total_amount = 4.82 AND ordered_at = '2026-01-01T00:00:00Z'
		FROM synced.order_current WHERE order_id = 1)"
if [ -n "$r_notify" ] && grep -q 'notification "ods_freshness" with payload "order_current"' <<<"$r_notify"; then
	ok "NOTIFY ods_freshness (payload order_current) at commit"
else
	not_ok "NOTIFY ods_freshness at commit (got '$r_notify')"
fi
expect "as_of = the newest source commit time applied; last_sync_at, status ok, rows" "
	SELECT as_of = '2026-01-01T00:00:00.03Z' AND last_sync_at > now() - interval '1 minute'
		AND status = 'ok' AND last_error IS NULL AND rows = 2
	FROM ods.synced_tables WHERE table_name = 'order_current'"
check "an older event never moves as_of back" ods_sync "$(oev u 2 15 placed)" "
	(r.body ->> 'skipped')::int = 1 AND (SELECT as_of = '2026-01-01T00:00:00.03Z'
		FROM ods.synced_tables WHERE table_name = 'order_current')"
check "a request of dead letters only: status error with last_error" ods_sync \
	"$(oev c 3 40 lost)" "r.dead_letters = 1 AND (SELECT status = 'error' AND last_error LIKE '1 of 1 events%'
		FROM ods.synced_tables WHERE table_name = 'order_current')"
check "the next good request clears it" ods_sync "$(oev c 3 50 placed)" "
	(SELECT status = 'ok' AND last_error IS NULL AND rows = 3 FROM ods.synced_tables WHERE table_name = 'order_current')"
expect "customer_current rows counter matches the table" "
	SELECT rows = (SELECT count(*) FROM synced.customer_current)
	FROM ods.synced_tables WHERE table_name = 'customer_current'"

# ---- composite key, placeholders, dates, position_field ----
iev() { # iev OP STORE SKU LSN ON_HAND
	local ts=$((1767225600000 + $4))
	printf '{"before":%s,"after":%s,"source":{"schema":"stores","table":"inventory_position","ts_ms":%s,"lsn":%s},"op":"%s"}' \
		"$([ "$1" = d ] && printf '{"store_id":%s,"sku":"%s"}' "$2" "$3" || echo null)" \
		"$([ "$1" = d ] && echo null || printf '{"store_id":%s,"sku":"%s","on_hand":%s,"reserved":0,"in_transit":0,"stockout_risk":0.1,"next_delivery_at":"2026-01-02T00:00:00Z"}' "$2" "$3" "$5")" \
		"$ts" "$4" "$1"
}
check "composite key: upsert, delete, tombstone key with both columns" ods_sync \
	"[$(iev c 1 SKU-1 10 5),$(iev c 1 SKU-2 10 6),$(iev u 1 SKU-1 20 7),$(iev d 1 SKU-2 30)]" "
	(r.body ->> 'applied')::int = 4
	AND (SELECT on_hand = 7 FROM synced.inventory_position WHERE store_id = 1 AND sku = 'SKU-1')
	AND NOT EXISTS (SELECT FROM synced.inventory_position WHERE sku = 'SKU-2')
	AND EXISTS (SELECT FROM ods.synced_tombstones WHERE table_name = 'inventory_position'
		AND key = '{\"store_id\": 1, \"sku\": \"SKU-2\"}')"
check "__debezium_unavailable_value and absent columns keep the stored value" ods_sync \
	"{\"after\":{\"customer_id\":2,\"email\":\"__debezium_unavailable_value\",\"full_name\":\"Renamed\",\"tier\":\"gold\"},\"source\":{\"schema\":\"public\",\"table\":\"customer_current\",\"ts_ms\":1767225600000,\"lsn\":600},\"op\":\"u\"}" "
	(SELECT email = 'c2.v300@example.com' AND full_name = 'Renamed' AND segment = 'retail'
		AND _source_position = 600 FROM synced.customer_current WHERE customer_id = 2)"
check "date as days since the epoch (io.debezium.time.Date)" ods_sync \
	'{"after":{"sku":"SKU-1","product_name":"P","category":"c","brand":"b","unit_price":"1.50","currency":"EUR","status":"active","pack_size":1,"supplier_lead_days":2,"launched_on":20454},"source":{"schema":"public","table":"product_catalog","ts_ms":1767225600000,"lsn":5},"op":"r"}' "
	(SELECT launched_on = '2026-01-01' AND unit_price = 1.50 FROM synced.product_catalog WHERE sku = 'SKU-1')"
q "UPDATE ods.synced_tables SET position_field = 'ts_ms' WHERE table_name = 'risk_scores'" >/dev/null
rev() { # rev ID TS_MS SCORE: a risk_scores event ordered by source.ts_ms (no lsn)
	printf '{"after":{"customer_id":%s,"risk_score":%s,"model_version":"m1"},"source":{"schema":"gold","table":"risk_scores","ts_ms":%s},"op":"u"}' "$1" "$3" "$2"
}
check "position_field = ts_ms: ordered by source.ts_ms" ods_sync "$(rev 1 1767225600500 0.5)" "
	(r.body ->> 'applied')::int = 1
	AND (SELECT risk_score = 0.5 AND _source_position = 1767225600500 FROM synced.risk_scores WHERE customer_id = 1)"
check "... an event with an older source.ts_ms is skipped" ods_sync "$(rev 1 1767225600400 0.4)" "
	(r.body ->> 'skipped')::int = 1
	AND (SELECT risk_score = 0.5 FROM synced.risk_scores WHERE customer_id = 1)"

# ---- a table changed after its apply function was generated ----
wev() { # wev ID LSN CREW: a work order event with a column added after generation
	printf '{"after":{"work_order_id":%s,"status":"new","crew":"%s"},"source":{"schema":"fsm","table":"work_order_current","ts_ms":1767225600000,"lsn":%s},"op":"c"}' "$1" "$3" "$2"
}
q "ALTER TABLE synced.work_order_current ADD COLUMN crew text" >/dev/null
check "a column added after generation: the stale function is not used, the column is filled" ods_sync \
	"$(wev 1 10 alpha)" "
	(r.body ->> 'applied')::int = 1 AND (SELECT crew = 'alpha' FROM synced.work_order_current WHERE work_order_id = 1)"
generated=$(q "SELECT ods.ingest_generate_all()")
expect "ods.ingest_generate_all() regenerates every apply function ($generated)" \
	"SELECT $generated = (SELECT count(*) FROM ods.synced_tables)
	 AND (SELECT signature = ods.ingest_signature('synced.work_order_current') FROM ods.ingest_appliers
	      WHERE table_name = 'work_order_current')"
check "... and the regenerated one fills the new column" ods_sync "$(wev 2 20 bravo)" "
	(SELECT crew = 'bravo' FROM synced.work_order_current WHERE work_order_id = 2)"
q "ALTER TABLE synced.work_order_current DROP COLUMN crew" >/dev/null
check "a column dropped after generation: still applied (the column is ignored)" ods_sync "$(wev 3 30 charlie)" "
	(r.body ->> 'applied')::int = 1 AND EXISTS (SELECT FROM synced.work_order_current WHERE work_order_id = 3)"
q "SELECT ods.ingest_generate_all()" >/dev/null

# ---- truncate (opt-in) ----
check "truncate, not enabled: dead letter, nothing removed" ods_sync \
	'{"before":null,"after":null,"source":{"schema":"stores","table":"inventory_position","ts_ms":1767225600100,"lsn":100},"op":"t"}' "
	r.dead_letters = 1 AND EXISTS (SELECT FROM synced.inventory_position)
	AND (SELECT reason LIKE 'truncate events are not enabled%' FROM ods.ingest_dead_letters ORDER BY dead_letter_id DESC LIMIT 1)"
q "UPDATE ods.synced_tables SET allow_truncate = true WHERE table_name = 'inventory_position'" >/dev/null
check "truncate, enabled: rows below its position go, a newer event in the request stays" ods_sync \
	"[$(iev c 2 SKU-9 120 1),{\"before\":null,\"after\":null,\"source\":{\"schema\":\"stores\",\"table\":\"inventory_position\",\"ts_ms\":1767225600100,\"lsn\":100},\"op\":\"t\"},$(iev u 1 SKU-1 90 99)]" "
	(r.body ->> 'applied')::int = 2 AND (r.body ->> 'skipped')::int = 1
	AND (SELECT array_agg(sku) = '{SKU-9}' FROM synced.inventory_position)
	AND NOT EXISTS (SELECT FROM ods.synced_tombstones WHERE table_name = 'inventory_position')
	AND (SELECT truncate_position = 100 AND rows = 1 FROM ods.synced_tables WHERE table_name = 'inventory_position')"
check "after a truncate, an older event cannot bring a row back" ods_sync "$(iev u 1 SKU-1 95 3)" "
	(r.body ->> 'skipped')::int = 1 AND NOT EXISTS (SELECT FROM synced.inventory_position WHERE sku = 'SKU-1')"
check "the same truncate again: skipped" ods_sync \
	'{"before":null,"after":null,"source":{"schema":"stores","table":"inventory_position","ts_ms":1767225600100,"lsn":100},"op":"t"}' "
	(r.body ->> 'skipped')::int = 1 AND EXISTS (SELECT FROM synced.inventory_position WHERE sku = 'SKU-9')"

# ---- property: any delivery order, with duplicates, ends in the in-order state ----
# 1,000 events over customers 900001..900050 (fixed seed): c or r when absent, then u
# (80%) or d (20%), so keys are deleted and re-created; positions increase (lsn).
if q "
CREATE TABLE public.hist (seq integer PRIMARY KEY, k bigint, op text, lsn bigint, ev jsonb);
DO \$\$
DECLARE
	present boolean[] := array_fill(false, ARRAY[50]);
	k integer;
	op text;
BEGIN
	PERFORM setseed(0.4242);
	FOR i IN 1 .. 1000 LOOP
		k := 1 + floor(random() * 50)::integer;
		IF NOT present[k] THEN
			op := CASE WHEN random() < 0.2 THEN 'r' ELSE 'c' END;
			present[k] := true;
		ELSIF random() < 0.2 THEN
			op := 'd';
			present[k] := false;
		ELSE
			op := 'u';
		END IF;
		INSERT INTO public.hist VALUES (i, 900000 + k, op, 100000 + i * 10, jsonb_build_object(
			'before', CASE WHEN op = 'd' THEN jsonb_build_object('customer_id', 900000 + k) END,
			'after', CASE WHEN op <> 'd' THEN jsonb_build_object('customer_id', 900000 + k,
				'email', format('k%s.s%s@example.com', k, i), 'full_name', format('Key %s step %s', k, i),
				'tier', (ARRAY['bronze', 'silver', 'gold', 'platinum'])[1 + floor(random() * 4)::integer],
				'segment', CASE WHEN random() < 0.3 THEN NULL ELSE 'seg_' || chr(97 + i % 7) END,
				'lifetime_value', round((random() * 10000)::numeric, 2)) END,
			'source', jsonb_build_object('connector', 'postgresql', 'schema', 'public',
				'table', 'customer_current', 'ts_ms', 1767225600000 + i * 7, 'lsn', 100000 + i * 10),
			'op', op, 'ts_ms', 1767225600000 + i * 7 + 2));
	END LOOP;
END \$\$;
-- The in-order state, computed from the history alone: per key the last event; a
-- delete leaves no row and a tombstone at its position.
CREATE TABLE public.expected AS
SELECT (ev #>> '{after,customer_id}')::bigint AS customer_id, ev #>> '{after,email}' AS email,
	ev #>> '{after,full_name}' AS full_name, ev #>> '{after,tier}' AS tier,
	ev #>> '{after,segment}' AS segment, (ev #>> '{after,lifetime_value}')::numeric AS lifetime_value,
	timestamptz 'epoch' + (ev #>> '{source,ts_ms}')::bigint * interval '1 millisecond' AS committed,
	lsn
FROM (SELECT DISTINCT ON (k) * FROM public.hist ORDER BY k, lsn DESC) last WHERE op <> 'd';
CREATE TABLE public.expected_tombstones AS
SELECT k, lsn FROM (SELECT DISTINCT ON (k) * FROM public.hist ORDER BY k, lsn DESC) last WHERE op = 'd';
-- Deliveries: 0 in order (batches of 50), 1 reversed (batches of 37), 2 all in one
-- request, 3..22 random permutations of the history plus ~30% duplicates in random
-- batch sizes (1..150), 23 and 24 the same but split over two concurrent sessions.
CREATE TABLE public.deliveries (delivery integer, batch integer, body jsonb, PRIMARY KEY (delivery, batch));
DO \$\$
DECLARE
	r record;
	b integer;
	left_in_batch integer;
	acc jsonb;
BEGIN
	INSERT INTO public.deliveries
	SELECT 0, (seq - 1) / 50, jsonb_agg(ev ORDER BY seq) FROM public.hist GROUP BY (seq - 1) / 50;
	INSERT INTO public.deliveries
	SELECT 1, (1000 - seq) / 37, jsonb_agg(ev ORDER BY seq DESC) FROM public.hist GROUP BY (1000 - seq) / 37;
	INSERT INTO public.deliveries SELECT 2, 0, jsonb_agg(ev ORDER BY seq) FROM public.hist;
	FOR p IN 3 .. 24 LOOP
		PERFORM setseed(p / 100.0);
		b := 0; acc := '[]'; left_in_batch := 1 + floor(random() * 150)::integer;
		FOR r IN SELECT ev FROM (SELECT ev FROM public.hist
				UNION ALL SELECT ev FROM public.hist WHERE random() < 0.3) x ORDER BY random()
		LOOP
			acc := acc || jsonb_build_array(r.ev);
			left_in_batch := left_in_batch - 1;
			IF left_in_batch = 0 THEN
				INSERT INTO public.deliveries VALUES (p, b, acc);
				b := b + 1; acc := '[]'; left_in_batch := 1 + floor(random() * 150)::integer;
			END IF;
		END LOOP;
		IF jsonb_array_length(acc) > 0 THEN
			INSERT INTO public.deliveries VALUES (p, b, acc);
		END IF;
	END LOOP;
END \$\$;
SELECT count(*) FROM public.deliveries;" >/dev/null; then
	ok "property: history of $(q "SELECT sum(n) || ' events (' || string_agg(op || '=' || n, ' ') || ')' FROM (SELECT op, count(*) n FROM public.hist GROUP BY op ORDER BY op) x") over 50 keys, $(q "SELECT count(*) FROM public.expected") rows and $(q "SELECT count(*) FROM public.expected_tombstones") tombstones expected"
else
	not_ok "property: generate the history and its deliveries"
	cat "$work/err"
	finish
fi

# deliver D [SESSION_MOD SESSION]: a psql script applying delivery D's batches (those
# with batch % SESSION_MOD = SESSION) as ods_sync, one transaction per batch.
deliver() {
	local mod=${2:-1} sess=${3:-0} b
	for b in $(q "SELECT batch FROM public.deliveries WHERE delivery = $1 AND batch % $mod = $sess ORDER BY batch"); do
		cat <<EOF
SELECT body AS b FROM public.deliveries WHERE delivery = $1 AND batch = $b \\gset
BEGIN;
SELECT set_config('role', 'ods_sync', true), set_config('request.jwt.claims', '{"sub":"ingest_sql","role":"ods_sync"}', true) \\g /dev/null
SELECT count_ingest_dead_letters FROM ods_api.ingest_debezium(p_body => :'b'::jsonb) \\g /dev/null
COMMIT;
EOF
	done
}
reset_sql="DELETE FROM synced.customer_current WHERE customer_id BETWEEN 900001 AND 900050;
	DELETE FROM ods.synced_tombstones WHERE table_name = 'customer_current'
		AND (key ->> 'customer_id')::bigint BETWEEN 900001 AND 900050;"
compare_sql="SELECT NOT EXISTS (
		(SELECT * FROM public.expected
		 EXCEPT SELECT customer_id, email, full_name, tier, segment, lifetime_value,
			_source_committed_at, _source_position
		 FROM synced.customer_current WHERE customer_id BETWEEN 900001 AND 900050)
		UNION ALL
		(SELECT customer_id, email, full_name, tier, segment, lifetime_value,
			_source_committed_at, _source_position
		 FROM synced.customer_current WHERE customer_id BETWEEN 900001 AND 900050
		 EXCEPT SELECT * FROM public.expected))
	AND NOT EXISTS (
		(SELECT k, lsn FROM public.expected_tombstones
		 EXCEPT SELECT (key ->> 'customer_id')::bigint, position FROM ods.synced_tombstones
		 WHERE table_name = 'customer_current' AND (key ->> 'customer_id')::bigint BETWEEN 900001 AND 900050)
		UNION ALL
		(SELECT (key ->> 'customer_id')::bigint, position FROM ods.synced_tombstones
		 WHERE table_name = 'customer_current' AND (key ->> 'customer_id')::bigint BETWEEN 900001 AND 900050
		 EXCEPT SELECT k, lsn FROM public.expected_tombstones))"
# run_delivery D LABEL: applies delivery D to a fresh copy of the keys and compares.
run_delivery() {
	local d=$1 what rc rc0 rc1 p0
	case $d in
	0) what="in order, batches of 50" ;;
	1) what="reversed, batches of 37" ;;
	2) what="all 1,000 in one request" ;;
	23 | 24) what="random permutation with duplicates, two concurrent sessions" ;;
	*) what="random permutation $((d - 2)) with duplicates" ;;
	esac
	what="$2$what: $(q "SELECT sum(jsonb_array_length(body)) || ' events in ' || count(*) || ' requests' FROM public.deliveries WHERE delivery = $d")"
	q "$reset_sql" >/dev/null
	if [ "$d" -ge 23 ]; then
		deliver "$d" 2 0 >"$work/s0.sql"
		deliver "$d" 2 1 >"$work/s1.sql"
		"$psql" -X -q -v ON_ERROR_STOP=1 -d "$db_uri" -f "$work/s0.sql" >"$work/s0.log" 2>&1 &
		p0=$!
		"$psql" -X -q -v ON_ERROR_STOP=1 -d "$db_uri" -f "$work/s1.sql" >"$work/s1.log" 2>&1
		rc1=$? rc0=0
		wait "$p0" || rc0=$?
		rc=$((rc0 + rc1))
		cat "$work/s0.log" "$work/s1.log" >"$work/err"
	else
		deliver "$d" >"$work/s.sql"
		"$psql" -X -q -v ON_ERROR_STOP=1 -d "$db_uri" -f "$work/s.sql" >"$work/err" 2>&1
		rc=$?
	fi
	if [ "$rc" -ne 0 ]; then
		not_ok "property, delivery $d ($what): a call failed"
		sed 's/^/    /' "$work/err" | head -20
	elif [ "$(q "$compare_sql")" = t ]; then
		ok "property, delivery $d ($what): rows, values and tombstones equal the in-order state"
	else
		not_ok "property, delivery $d ($what): final state differs from the in-order state"
		q "SELECT 'expected only: ' || e::text FROM (SELECT * FROM public.expected EXCEPT SELECT customer_id, email, full_name, tier, segment, lifetime_value, _source_committed_at, _source_position FROM synced.customer_current) e LIMIT 5" | sed 's/^/    /'
	fi
}
d2=$(dead_count)
for d in $(seq 0 24); do
	run_delivery "$d" ""
done
# The same through the fallback that plans the statement per request (no generated
# function): a few deliveries, concurrent ones included.
q "DELETE FROM ods.ingest_appliers" >/dev/null
for d in 0 1 5 23; do
	run_delivery "$d" "statement planned per request, "
done
q "SELECT ods.ingest_generate_all()" >/dev/null
expect "property: no event of any delivery was dead-lettered" "SELECT count(*) = $d2 FROM ods.ingest_dead_letters"

finish
