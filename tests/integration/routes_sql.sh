#!/usr/bin/env bash
# routes_sql.sh: the read route functions (api/routes/*.sql), called in SQL.
#
# Runs under tests/harness.sh (ODS_TEST_DB_URI: a throwaway PostgreSQL). Migrates a
# fresh database, loads 2,000 demo customers through odsctl, adds rows for the edge
# cases the demo lacks (unscored customers, ties, deleted and closed rows, activity
# older than 7 days), then calls each function the way odsd does: inside a
# transaction after set_config('role', <app role>, true) and
# set_config('request.jwt.claims', ..., true), so grants are enforced as in
# production. The claims carry a region (that of the top-scored customer's fraud
# case): row-level security (api/schema/012_rls_audit.sql) shows a fraud analyst only
# the fraud cases of its region, so the queue is checked against that region's cases
# and the edge-case fraud cases are put in it. Checks the bodies, the grants (42501
# where a role has none), the regional filter, the client errors (SQLSTATE OD400),
# keyset walks and, when python3 has yaml and jsonschema, that the bodies match the
# schemas of openapi.yaml.
set -u

suite=routes_sql
. "$(dirname "$0")/lib.sh"

# sql ROLE SQL: runs SQL (";"-terminated statements) as ROLE the way odsd does, in
# one transaction; ROLE "" runs it as the superuser. The claims carry the region
# $region (set once the demo is loaded; $claim_region overrides it, "" for none).
# Prints the rows unaligned; on an error prints nothing on stdout, the error on
# stderr, and fails.
region=
sql() {
	local role=$1 body=$2 setup="" r=${claim_region-$region}
	[ -n "$role" ] && setup="SELECT set_config('role', '$role', true), set_config('request.jwt.claims', '{\"sub\":\"routes_sql\",\"role\":\"$role\"${r:+,\"region\":\"$r\"}}', true) \\g /dev/null"
	"$psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db_uri" 2>"$work/err" <<EOF
BEGIN;
$setup
$body
COMMIT;
EOF
}

# expect NAME ROLE SQL: passes when SQL (one query) answers exactly "t".
expect() {
	local out
	out=$(sql "$2" "$3")
	if [ "$out" = t ]; then
		ok "$1"
	else
		not_ok "$1 (got '${out:0:300}')"
		sed 's/^/    /' "$work/err"
	fi
}

# expect_error NAME SQLSTATE ROLE SQL: passes when SQL fails with SQLSTATE.
expect_error() {
	local got
	got=$("$psql" -X -q -At -d "$db_uri" 2>"$work/err" <<EOF
BEGIN;
SELECT set_config('role', '$3', true) \\g /dev/null
\\o /dev/null
$4
\\o
\\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
EOF
	)
	if [ "$got" = "$2" ]; then
		ok "$1 ($2)"
	else
		not_ok "$1 (expected SQLSTATE $2, got '$got')"
		sed 's/^/    /' "$work/err"
	fi
}

# ---- setup ----
if "$psql" -X -q -v ON_ERROR_STOP=1 -d "$ODS_TEST_DB_URI" -c "DROP DATABASE IF EXISTS $db" \
	-c "CREATE DATABASE $db" >"$work/setup.log" 2>&1 &&
	"$odsctl" migrate --db "$db_uri" --api-dir "$api_dir" >>"$work/setup.log" 2>&1 &&
	"$odsctl" demo generate --out "$work/demo" --customers 2000 >>"$work/setup.log" 2>&1 &&
	"$odsctl" demo load --db "$db_uri" --from "$work/demo" >>"$work/setup.log" 2>&1; then
	ok "migrate and load 2000 demo customers"
else
	not_ok "migrate and load 2000 demo customers"
	cat "$work/setup.log"
	finish
fi

# The analysts' region: that of the top-scored customer's live fraud case.
region=$(sql "" "SELECT f.region FROM native.fraud_cases f
	JOIN synced.risk_scores r USING (customer_id)
	WHERE f.status IN ('open', 'in_review') AND f.deleted_at IS NULL AND f.region IS NOT NULL
	ORDER BY r.risk_score DESC, r.flagged_at, f.case_id LIMIT 1;")
other_region=$(sql "" "SELECT min(region) FROM native.fraud_cases
	WHERE region <> '$region' AND status IN ('open', 'in_review') AND deleted_at IS NULL;")
if [ -n "$region" ] && [ -n "$other_region" ]; then
	ok "the analysts' region is $region (another: $other_region)"
else
	not_ok "no region among the demo fraud cases ('$region', '$other_region')"
	finish
fi

# Edge cases the demo data lacks (as the superuser; ids 9000000xx are new customers).
# top: the customer with the highest score and earliest flag; third: the third one.
# Their fraud cases are in the analysts' region.
if sql "" "
CREATE TEMP TABLE top3 AS SELECT * FROM synced.risk_scores ORDER BY risk_score DESC, flagged_at LIMIT 3;
-- fraud queue: customers without a score come last, ordered by case id
INSERT INTO native.fraud_cases (customer_id, status, region, created_by) VALUES
	(900000001, 'open', '$region', 'routes_sql'), (900000001, 'in_review', '$region', 'routes_sql'),
	(900000002, 'open', '$region', 'routes_sql');
-- ties on (risk_score, flagged_at) across customers and within one customer
INSERT INTO synced.risk_scores (customer_id, risk_score, risk_band, model_version, scored_at,
	flagged_at, _source_committed_at)
SELECT c, t.risk_score, t.risk_band, t.model_version, t.scored_at, t.flagged_at, now()
FROM (SELECT * FROM top3 ORDER BY risk_score DESC, flagged_at LIMIT 1) t,
	(VALUES (900000003), (900000004)) v(c);
INSERT INTO native.fraud_cases (customer_id, status, region, created_by)
SELECT c, 'open', '$region', 'routes_sql' FROM (VALUES (900000003), (900000004), (900000004)) v(c)
UNION ALL SELECT customer_id, 'in_review', '$region', 'routes_sql'
	FROM (SELECT * FROM top3 ORDER BY risk_score DESC, flagged_at LIMIT 1) t;
-- the same score as the third, never flagged: after it
INSERT INTO synced.risk_scores (customer_id, risk_score, risk_band, model_version,
	_source_committed_at)
SELECT 900000005, risk_score, risk_band, model_version, now()
FROM (SELECT * FROM top3 ORDER BY risk_score DESC, flagged_at OFFSET 2) t;
INSERT INTO native.fraud_cases (customer_id, status, region, created_by) VALUES (900000005, 'open', '$region', 'routes_sql');
-- never in the queue: closed, and soft-deleted
INSERT INTO native.fraud_cases (customer_id, status, region, closed_at, created_by)
SELECT customer_id, 'closed', '$region', now(), 'routes_sql' FROM top3;
INSERT INTO native.fraud_cases (customer_id, status, region, deleted_at, created_by)
SELECT customer_id, 'open', '$region', now(), 'routes_sql' FROM top3;

-- support cases of customer 7 (replaced): open, resolved, a soft-deleted open one
DELETE FROM native.case_notes WHERE case_id IN (SELECT case_id FROM native.support_cases WHERE customer_id = 7);
DELETE FROM native.support_cases WHERE customer_id = 7;
INSERT INTO native.support_cases (customer_id, status, subject, created_at, created_by, deleted_at) VALUES
	(7, 'open', 'routes_sql open', now() - interval '1 hour', 'routes_sql', NULL),
	(7, 'resolved', 'routes_sql resolved', now() - interval '2 hours', 'routes_sql', NULL),
	(7, 'open', 'routes_sql deleted', now() - interval '3 hours', 'routes_sql', now()),
	(7, 'pending', 'routes_sql same time 1', now() - interval '4 hours', 'routes_sql', NULL),
	(7, 'pending', 'routes_sql same time 2', now() - interval '4 hours', 'routes_sql', NULL);
-- a customer without score, orders or cases; and one without cases
INSERT INTO synced.customer_current (customer_id, email, full_name, tier, _source_committed_at)
VALUES (900000010, 'routes.sql@example.com', 'Routes Sql', 'gold', now());
DELETE FROM native.case_notes WHERE case_id IN (SELECT case_id FROM native.support_cases WHERE customer_id = 8);
DELETE FROM native.support_cases WHERE customer_id = 8;

-- store actions on store 1 x the first SKU: open (shown), done and deleted (not)
INSERT INTO native.store_actions (store_id, sku, action_type, status, created_by, deleted_at)
SELECT 1, min(sku), t, s, 'routes_sql', d FROM synced.inventory_position,
	(VALUES ('recount', 'open', NULL::timestamptz), ('markdown', 'done', NULL),
	        ('override', 'open', now())) v(t, s, d)
WHERE store_id = 1 GROUP BY t, s, d;

-- work order 1 (reset): technician 1 worked it 10 days ago, technician 2 updated it
-- 2 days ago, technician 3 has an active assignment made 12 days ago, technician 4 a
-- deleted update of yesterday
DELETE FROM native.work_order_updates WHERE work_order_id = 1;
DELETE FROM native.dispatch_assignments WHERE work_order_id = 1;
INSERT INTO native.dispatch_assignments (work_order_id, technician_id, status, assigned_at,
	created_at, updated_at, created_by) VALUES
	(1, 1, 'completed', now() - interval '10 days', now() - interval '10 days', now() - interval '10 days', 'routes_sql'),
	(1, 3, 'on_site', now() - interval '12 days', now() - interval '12 days', now() - interval '12 days', 'routes_sql');
INSERT INTO native.work_order_updates (work_order_id, technician_id, kind, created_at,
	updated_at, created_by, deleted_at) VALUES
	(1, 1, 'arrived', now() - interval '9 days', now() - interval '9 days', 'routes_sql', NULL),
	(1, 2, 'progress', now() - interval '2 days', now() - interval '2 days', 'routes_sql', NULL),
	(1, 4, 'note', now() - interval '1 day', now() - interval '1 day', 'routes_sql', now());
ANALYZE;
" >/dev/null; then
	ok "add edge-case rows"
else
	not_ok "add edge-case rows"
	cat "$work/err"
	finish
fi

# ---- catalog and grants ----
expect "every route function exists, once, as SECURITY INVOKER, with no EXECUTE for PUBLIC" "" "
SELECT bool_and(p.oid IS NOT NULL AND NOT p.prosecdef
	AND NOT has_function_privilege('public', p.oid, 'EXECUTE'))
	AND count(*) = (SELECT count(*) FROM ods.routes)
FROM ods.routes r LEFT JOIN pg_proc p ON p.oid = to_regproc(r.function);"
expect "every route has a summary and reads only known synced tables" "" "
SELECT bool_and(r.summary <> '' AND NOT EXISTS (SELECT FROM unnest(r.reads) t
	WHERE regexp_replace(t, '^synced\.', '') NOT IN (SELECT table_name FROM ods.synced_tables)))
FROM ods.routes r;"
expect "the read routes are registered as designed" "" "
SELECT string_agg(format('%s %s %s %s %s', method, path, function, coalesce(scope, '-'), paged::text), ';'
	ORDER BY path) = 'GET /v1/customers/{customer_id} ods_api.customer_360 customers:read false;'
	'GET /v1/customers/{customer_id}/cases ods_api.customer_cases cases:read true;'
	'GET /v1/fraud/queue ods_api.fraud_queue fraud:read true;'
	'GET /v1/freshness ods_api.freshness - false;'
	'GET /v1/inventory/{store_id}/{sku} ods_api.inventory_position inventory:read false;'
	'GET /v1/orders/{order_id} ods_api.order_fulfillment orders:read false;'
	'GET /v1/work-orders/{work_order_id} ods_api.work_order workorders:read false'
FROM ods.routes WHERE function IN ('ods_api.customer_360', 'ods_api.customer_cases',
	'ods_api.fraud_queue', 'ods_api.freshness', 'ods_api.inventory_position',
	'ods_api.order_fulfillment', 'ods_api.work_order');"
while read -r fn roles; do
	expect "EXECUTE on $fn: exactly $roles" "" "
SELECT coalesce(string_agg(r, ',' ORDER BY r), '') = '$roles'
FROM unnest(ARRAY['support_agent', 'fraud_analyst', 'ops_manager', 'field_dispatcher',
	'ods_sync', 'ods_authenticator']) r
WHERE has_function_privilege(r, '$fn', 'EXECUTE');"
	expect "EXECUTE on $fn: ods_admin" "" "SELECT has_function_privilege('ods_admin', '$fn', 'EXECUTE');"
done <<'EOF'
ods_api.customer_360(bigint) fraud_analyst,support_agent
ods_api.customer_cases(bigint,text,integer,text) support_agent
ods_api.order_fulfillment(bigint) ops_manager,support_agent
ods_api.fraud_queue(integer,text,text) fraud_analyst
ods_api.inventory_position(integer,text) ops_manager
ods_api.work_order(bigint) field_dispatcher
ods_api.freshness() field_dispatcher,fraud_analyst,ods_sync,ops_manager,support_agent
EOF

# Repeatable: applying the route files again (as migrate does when one changes) gives
# the same functions, grants and catalog rows.
catalog_state="SELECT string_agg(p.oid::regprocedure::text || ' ' || coalesce(p.proacl::text, '-'), ';'
		ORDER BY p.oid::regprocedure::text) || ';' || (SELECT string_agg(r::text, ';' ORDER BY r::text) FROM ods.routes r)
FROM pg_proc p WHERE p.pronamespace IN ('ods'::regnamespace, 'ods_api'::regnamespace);"
before=$(sql "" "$catalog_state")
reapplied=true
for f in "$api_dir"/routes/*.sql; do
	"$psql" -X -q -1 -v ON_ERROR_STOP=1 -d "$db_uri" -f "$f" >/dev/null 2>"$work/err" ||
		{ reapplied=false; echo "    $f:"; sed 's/^/    /' "$work/err"; }
done
after=$(sql "" "$catalog_state")
if $reapplied && [ -n "$before" ] && [ "$before" = "$after" ]; then
	ok "route files re-apply to the same functions, grants and routes"
else
	not_ok "route files re-apply to the same functions, grants and routes"
	diff <(echo "$before" | tr ';' '\n') <(echo "$after" | tr ';' '\n') | head -n 20
fi

# ---- customer 360 ----
c360=$(sql "" "SELECT s.customer_id FROM native.support_cases s
	JOIN synced.order_current o USING (customer_id) JOIN synced.risk_scores r USING (customer_id)
	WHERE s.status IN ('open', 'pending') AND s.deleted_at IS NULL
	GROUP BY 1 ORDER BY count(DISTINCT o.order_id) DESC, 1 LIMIT 1;")
expect "customer_360($c360): profile, risk and every synced part with _meta" support_agent "
SELECT d ?& ARRAY['customer_id', 'profile', 'risk', 'open_cases', 'recent_orders', 'fraud_cases']
	AND (d->>'customer_id')::bigint = $c360
	AND d->'profile'->'_meta' ?& ARRAY['source_committed_at', 'synced_at']
	AND d->'profile'->'_meta'->>'synced_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$'
	AND d->'risk'->'_meta' ?& ARRAY['source_committed_at', 'synced_at']
	AND (d->'risk'->>'risk_score')::numeric = (SELECT risk_score FROM synced.risk_scores WHERE customer_id = $c360)
	AND jsonb_array_length(d->'recent_orders') > 0
	AND NOT jsonb_path_exists(d, '\$.recent_orders[*] ? (!exists(@._meta.synced_at))')
FROM (SELECT ods_api.customer_360($c360)::jsonb AS d) x;"
expect "customer_360: the 10 latest orders, newest first" support_agent "
SELECT array(SELECT (e->>'order_id')::bigint FROM jsonb_array_elements(ods_api.customer_360($c360)::jsonb->'recent_orders') e)
	= array(SELECT order_id FROM synced.order_current WHERE customer_id = $c360
		ORDER BY ordered_at DESC NULLS LAST, order_id DESC LIMIT 10);"
same_time=$(sql "" "SELECT string_agg(subject, '|' ORDER BY case_id DESC) FROM native.support_cases
	WHERE customer_id = 7 AND subject LIKE 'routes_sql same time%';")
expect "customer_360: open and pending live cases, newest first" support_agent "
SELECT array(SELECT e->>'subject' FROM jsonb_array_elements(ods_api.customer_360(7)::jsonb->'open_cases') e)
	= ARRAY['routes_sql open'] || string_to_array('$same_time', '|');"
expect "customer_360: fraud cases only open or in_review, not deleted" fraud_analyst "
SELECT jsonb_array_length(d->'fraud_cases') = 2
	AND NOT jsonb_path_exists(d, '\$.fraud_cases[*] ? (@.status != \"open\" && @.status != \"in_review\")')
FROM (SELECT ods_api.customer_360(customer_id)::jsonb AS d FROM synced.risk_scores
	WHERE customer_id < 900000000 ORDER BY risk_score DESC, flagged_at LIMIT 1) x;"
expect "customer_360: a customer without score, orders or cases" support_agent "
SELECT d->'risk' = 'null' AND d->'recent_orders' = '[]' AND d->'open_cases' = '[]'
	AND d->'fraud_cases' = '[]' AND d->'profile'->>'full_name' = 'Routes Sql'
FROM (SELECT ods_api.customer_360(900000010)::jsonb AS d) x;"
expect "customer_360: an unknown customer is NULL (404)" support_agent \
	"SELECT ods_api.customer_360(-1) IS NULL AND ods_api.customer_360(900000001) IS NULL;"
expect "customer_360 as fraud_analyst: open_cases null (may not read support cases)" fraud_analyst "
SELECT d->'open_cases' = 'null' AND d->'profile' IS NOT NULL AND jsonb_typeof(d->'recent_orders') = 'array'
FROM (SELECT ods_api.customer_360($c360)::jsonb AS d) x;"
expect "customer_360 as ods_admin: open_cases shown" ods_admin \
	"SELECT jsonb_typeof(ods_api.customer_360(7)::jsonb->'open_cases') = 'array';"
expect_error "customer_360 as ops_manager" 42501 ops_manager "SELECT ods_api.customer_360($c360);"

# ---- a customer's cases ----
# walk_cases LIMIT STATUS: the subjects of customer 7's cases, walking next_cursor.
walk_cases() {
	local cursor=NULL out all="" pages=0
	while :; do
		out=$(sql support_agent "
SELECT coalesce(string_agg(e->>'subject', '|' ORDER BY n), '') || '#' || coalesce(q.next_cursor, '')
	|| '#' || bool_and(q.body->>'next_cursor' IS NOT DISTINCT FROM q.next_cursor)
FROM ods_api.customer_cases(customer_id => 7, status => $2, \"limit\" => $1, cursor => $cursor) q
LEFT JOIN LATERAL json_array_elements(q.body->'items') WITH ORDINALITY AS x(e, n) ON true
GROUP BY q.next_cursor;") || return 1
		[ "${out##*#}" = true ] || return 1
		out=${out%#*}
		all=$all${all:+|}${out%%#*}
		pages=$((pages + 1))
		[ -z "${out#*#}" ] && break
		cursor="'${out#*#}'"
		[ $pages -gt 20 ] && return 1
	done
	echo "$pages:$all"
}
got=$(walk_cases 1 NULL)
if [ "$got" = "4:routes_sql open|routes_sql resolved|$same_time" ]; then
	ok "customer_cases: a walk with limit 1 returns the live cases once each, newest first"
else
	not_ok "customer_cases: walk with limit 1 (got '$got')"
	cat "$work/err"
fi
got=$(walk_cases 2 "'pending'")
if [ "$got" = "1:$same_time" ]; then
	ok "customer_cases: status filter"
else
	not_ok "customer_cases: status filter (got '$got')"
fi
expect "customer_cases: a known customer without cases has an empty page" support_agent "
SELECT body::jsonb = '{\"items\": [], \"next_cursor\": null}' AND next_cursor IS NULL
FROM ods_api.customer_cases(customer_id => 8, status => NULL, \"limit\" => NULL, cursor => NULL);"
expect "customer_cases: an unknown customer has no row (404)" support_agent "
SELECT count(*) = 0 FROM ods_api.customer_cases(customer_id => 900000001, status => NULL, \"limit\" => NULL, cursor => NULL);"
expect "customer_cases: default limit 50, limit 500 accepted" support_agent "
SELECT (SELECT count(*) FROM ods_api.customer_cases(7, NULL, NULL, NULL)) = 1
	AND (SELECT count(*) FROM ods_api.customer_cases(7, NULL, 500, NULL)) = 1;"
expect_error "customer_cases: bad status" OD400 support_agent "SELECT * FROM ods_api.customer_cases(7, 'nope', NULL, NULL);"
expect_error "customer_cases: limit 0" OD400 support_agent "SELECT * FROM ods_api.customer_cases(7, NULL, 0, NULL);"
expect_error "customer_cases: limit 501" OD400 support_agent "SELECT * FROM ods_api.customer_cases(7, NULL, 501, NULL);"
expect_error "customer_cases: bad cursor" OD400 support_agent "SELECT * FROM ods_api.customer_cases(7, NULL, NULL, 'bm90IGEgY3Vyc29y');"
expect_error "customer_cases as fraud_analyst" 42501 fraud_analyst "SELECT * FROM ods_api.customer_cases(7, NULL, NULL, NULL);"

# ---- fraud queue ----
expected_queue() { # STATUS: the region's case ids in queue order, straight from the tables
	sql "" "SELECT string_agg(f.case_id::text, ' ' ORDER BY r.risk_score DESC NULLS LAST,
		r.flagged_at ASC NULLS LAST, f.case_id)
	FROM native.fraud_cases f LEFT JOIN synced.risk_scores r USING (customer_id)
	WHERE f.status IN ('open', 'in_review') AND f.deleted_at IS NULL AND f.region = '$region'
	  AND ($1 IS NULL OR f.status = $1);"
}
# walk_queue LIMIT STATUS: the case ids of a whole walk, in order; pages on stderr.
walk_queue() {
	local cursor=NULL out all="" pages=0
	while :; do
		out=$(sql fraud_analyst "
SELECT coalesce(string_agg(e->>'case_id', ' ' ORDER BY n), '') || '#' || coalesce(q.next_cursor, '')
FROM ods_api.fraud_queue(\"limit\" => $1, cursor => $cursor, status => $2) q
LEFT JOIN LATERAL json_array_elements(q.body->'items') WITH ORDINALITY AS x(e, n) ON true
GROUP BY q.next_cursor;") || return 1
		all="$all${all:+ }${out%%#*}"
		pages=$((pages + 1))
		[ -z "${out#*#}" ] && break
		cursor="'${out#*#}'"
		[ $pages -gt 1000 ] && return 1
	done
	echo "$pages pages" >&2
	echo "$all"
}
queue_count=$(sql "" "SELECT count(*) FROM native.fraud_cases WHERE status IN ('open', 'in_review') AND deleted_at IS NULL AND region = '$region';")
while read -r limit status; do
	set -- "$limit" "$status"
	expected=$(expected_queue "$2")
	got=$(walk_queue "$1" "$2" 2>"$work/pages")
	n=$(echo "$got" | wc -w)
	distinct=$(echo "$got" | tr ' ' '\n' | sort -u | grep -c .)
	if [ "$got" = "$expected" ] && [ "$n" = "$distinct" ]; then
		ok "fraud_queue walk (limit $1, status $2): $n cases in $(cat "$work/pages"), each once, in queue order"
	else
		not_ok "fraud_queue walk (limit $1, status $2): got $n cases ($distinct distinct), expected $(echo "$expected" | wc -w)"
		cat "$work/err"
	fi
done <<'EOF'
7 NULL
50 NULL
500 NULL
3 'in_review'
1 'open'
EOF
# A tie group larger than the fast path's window (200 customers): 250 customers with
# the same top score and flag time, one case each, ordered by case id only.
if sql "" "
INSERT INTO synced.risk_scores (customer_id, risk_score, risk_band, model_version, flagged_at,
	_source_committed_at)
SELECT 910000000 + g, 1, 'critical', 'routes_sql', '2026-01-01T00:00:00Z', now()
FROM generate_series(1, 250) g;
INSERT INTO native.fraud_cases (customer_id, status, region, created_by)
SELECT 910000000 + g, 'open', '$region', 'routes_sql' FROM generate_series(1, 250) g;" >/dev/null; then
	for limit in 7 60; do
		expected=$(expected_queue NULL)
		got=$(walk_queue "$limit" NULL 2>"$work/pages")
		if [ "$got" = "$expected" ]; then
			ok "fraud_queue walk across a 250-customer tie (limit $limit): $(echo "$got" | wc -w) cases in $(cat "$work/pages"), in queue order"
		else
			not_ok "fraud_queue walk across a 250-customer tie (limit $limit): $(echo "$got" | wc -w) cases, expected $(echo "$expected" | wc -w)"
			cat "$work/err"
		fi
	done
	sql "" "DELETE FROM native.fraud_cases WHERE customer_id > 910000000;
		DELETE FROM synced.risk_scores WHERE customer_id > 910000000;" >/dev/null
else
	not_ok "add a 250-customer tie"
	cat "$work/err"
fi
got=$(walk_queue 7 NULL 2>/dev/null)
if [ "$(echo "$got" | wc -w)" = "$queue_count" ]; then
	ok "fraud_queue walk with limit 7 visits all $queue_count open/in_review cases"
else
	not_ok "fraud_queue walk with limit 7: $(echo "$got" | wc -w) cases, expected $queue_count"
fi
# (The region's queue may be shorter than a page: then its unscored cases, without
# risk or customer, end the first page.)
expect "fraud_queue: first page sorted by risk_score desc, flagged_at asc, with risk and customer" fraud_analyst "
SELECT bool_and(e ?& ARRAY['case_id', 'customer_id', 'status', 'risk', 'customer'])
	AND bool_and(e->'risk' = 'null' OR e->'risk'->'_meta' ? 'synced_at')
	AND bool_and(e->'customer' = 'null' OR e->'customer'->'_meta' ? 'synced_at')
	AND count(*) FILTER (WHERE e->'risk' <> 'null' AND e->'customer' <> 'null') > 0
	AND bool_and(e->>'status' IN ('open', 'in_review'))
	AND array_agg((e->'risk'->>'risk_score')::numeric ORDER BY n)
	    = array_agg((e->'risk'->>'risk_score')::numeric ORDER BY (e->'risk'->>'risk_score')::numeric DESC NULLS LAST, n)
	AND count(*) = least(50, $queue_count) AND (q.next_cursor IS NOT NULL) = ($queue_count > 50)
FROM ods_api.fraud_queue(NULL, NULL, NULL) q,
	jsonb_array_elements(q.body::jsonb->'items') WITH ORDINALITY x(e, n)
GROUP BY q.next_cursor;"
expect "fraud_queue: cases without a score come last (by case id), risk null" fraud_analyst "
SELECT array_agg(e->>'customer_id' ORDER BY e->>'customer_id') = ARRAY['900000001', '900000001', '900000002']
	AND array_agg(e->>'case_id' ORDER BY n) = array_agg(e->>'case_id' ORDER BY (e->>'case_id')::uuid)
	AND bool_and(json_typeof(e->'risk') = 'null')
FROM ods_api.fraud_queue(500, NULL, NULL) q,
	json_array_elements(q.body->'items') WITH ORDINALITY x(e, n)
WHERE n > json_array_length(q.body->'items') - 3;"
# Row-level security: an analyst sees the cases of the token's region only, none
# without a region claim; ods_admin sees every region; support agents read every
# region's fraud cases in the customer 360.
claim_region=$other_region
expect "fraud_queue as an analyst of $other_region: exactly that region's cases" fraud_analyst "
SELECT count(*) = (SELECT count(*) FROM native.fraud_cases WHERE region = '$other_region'
		AND status IN ('open', 'in_review') AND deleted_at IS NULL)
	AND count(*) > 0 AND bool_and(e->>'region' = '$other_region')
FROM ods_api.fraud_queue(500, NULL, NULL) q, json_array_elements(q.body->'items') e;"
expect "customer_360 as an analyst of $other_region: no fraud case of $region" fraud_analyst "
SELECT ods_api.customer_360(customer_id)::jsonb->'fraud_cases' = '[]'
FROM synced.risk_scores WHERE customer_id < 900000000 ORDER BY risk_score DESC, flagged_at LIMIT 1;"
claim_region=
expect "fraud_queue as an analyst without a region claim: empty" fraud_analyst "
SELECT body::jsonb = '{\"items\": [], \"next_cursor\": null}' FROM ods_api.fraud_queue(500, NULL, NULL);"
unset claim_region
expect "fraud_queue as ods_admin: every region" ods_admin "
SELECT json_array_length(body->'items') = (SELECT count(*) FROM native.fraud_cases
	WHERE status IN ('open', 'in_review') AND deleted_at IS NULL)
	AND (SELECT count(DISTINCT e->>'region') FROM json_array_elements(body->'items') e) > 2
FROM ods_api.fraud_queue(500, NULL, NULL);"
expect "customer_360 as support_agent: fraud cases of every region" support_agent "
SELECT jsonb_array_length(ods_api.customer_360(customer_id)::jsonb->'fraud_cases') = 2
FROM synced.risk_scores WHERE customer_id < 900000000 ORDER BY risk_score DESC, flagged_at LIMIT 1;"
expect_error "fraud_queue as support_agent" 42501 support_agent "SELECT * FROM ods_api.fraud_queue(NULL, NULL, NULL);"
expect_error "fraud_queue as ops_manager" 42501 ops_manager "SELECT * FROM ods_api.fraud_queue(NULL, NULL, NULL);"
expect_error "fraud_queue: limit 0" OD400 fraud_analyst "SELECT * FROM ods_api.fraud_queue(0, NULL, NULL);"
expect_error "fraud_queue: limit 501" OD400 fraud_analyst "SELECT * FROM ods_api.fraud_queue(501, NULL, NULL);"
expect_error "fraud_queue: bad status" OD400 fraud_analyst "SELECT * FROM ods_api.fraud_queue(NULL, NULL, 'closed');"
expect_error "fraud_queue: garbage cursor" OD400 fraud_analyst "SELECT * FROM ods_api.fraud_queue(NULL, 'not a cursor!', NULL);"
expect_error "fraud_queue: cursor of another list" OD400 fraud_analyst "
SELECT * FROM ods_api.fraud_queue(NULL, ods.cursor_encode('customer_cases', jsonb_build_object('t', now(), 'id', gen_random_uuid())), NULL);"
expect_error "fraud_queue: cursor without its keys" OD400 fraud_analyst "
SELECT * FROM ods_api.fraud_queue(NULL, ods.cursor_encode('fraud_queue', '{\"id\": \"x\"}'), NULL);"
expect_error "fraud_queue: cursor with a bad value" OD400 fraud_analyst "
SELECT * FROM ods_api.fraud_queue(NULL, ods.cursor_encode('fraud_queue', '{\"s\": \"high\", \"f\": null, \"id\": \"00000000-0000-0000-0000-000000000000\"}'), NULL);"

# ---- orders ----
order_id=$(sql "" "SELECT o.order_id FROM synced.order_current o
	WHERE EXISTS (SELECT FROM synced.shipment_status_latest s WHERE s.order_id = o.order_id)
	  AND (SELECT count(*) FROM synced.order_status_history_30d h WHERE h.order_id = o.order_id) > 1
	ORDER BY o.order_id LIMIT 1;")
expect "order_fulfillment($order_id): order, payments, shipments, 30-day history, each with _meta" support_agent "
SELECT d ?& ARRAY['order_id', 'order', 'payments', 'shipments', 'status_history']
	AND d->'order'->'_meta' ? 'source_committed_at'
	AND jsonb_array_length(d->'payments') = (SELECT count(*) FROM synced.payment_current WHERE order_id = $order_id)
	AND jsonb_array_length(d->'shipments') = (SELECT count(*) FROM synced.shipment_status_latest WHERE order_id = $order_id)
	AND array(SELECT (e->>'seq')::int FROM jsonb_array_elements(d->'status_history') e)
	    = array(SELECT seq FROM synced.order_status_history_30d WHERE order_id = $order_id ORDER BY seq)
	AND NOT jsonb_path_exists(d, '\$.payments[*] ? (!exists(@._meta.synced_at))')
	AND NOT jsonb_path_exists(d, '\$.shipments[*] ? (!exists(@._meta.synced_at))')
	AND NOT jsonb_path_exists(d, '\$.status_history[*] ? (!exists(@._meta.synced_at))')
FROM (SELECT ods_api.order_fulfillment($order_id)::jsonb AS d) x;"
expect "order_fulfillment: an unknown order is NULL (404)" ops_manager "SELECT ods_api.order_fulfillment(-1) IS NULL;"
expect_error "order_fulfillment as fraud_analyst" 42501 fraud_analyst "SELECT ods_api.order_fulfillment($order_id);"

# ---- inventory ----
expect "inventory_position: sellable = on_hand - reserved + in_transit for every position" ops_manager "
SELECT bool_and((d->>'sellable')::int = i.on_hand - i.reserved + i.in_transit
		AND (d->>'stockout_risk')::numeric = i.stockout_risk
		AND d->'_meta' ? 'synced_at' AND d->'product'->'_meta' ? 'synced_at')
	AND count(*) = (SELECT count(*) FROM synced.inventory_position)
FROM synced.inventory_position i, LATERAL (SELECT ods_api.inventory_position(i.store_id, i.sku)::jsonb AS d) x;"
expect "inventory_position: open store actions only, not deleted" ops_manager "
SELECT array(SELECT e->>'action_id' FROM jsonb_array_elements(ods_api.inventory_position(1, sku)::jsonb->'open_actions') e ORDER BY 1)
	= array(SELECT action_id::text FROM native.store_actions a WHERE a.store_id = 1 AND a.sku = p.sku
		AND status = 'open' AND deleted_at IS NULL ORDER BY 1)
	AND jsonb_path_query_array(ods_api.inventory_position(1, sku)::jsonb, '\$.open_actions[*].action_type') @> '[\"recount\"]'
	AND NOT jsonb_path_query_array(ods_api.inventory_position(1, sku)::jsonb, '\$.open_actions[*].action_type') @> '[\"override\"]'
FROM (SELECT min(sku) AS sku FROM synced.inventory_position WHERE store_id = 1) p;"
expect "inventory_position: an unknown position is NULL (404)" ops_manager \
	"SELECT ods_api.inventory_position(1, 'NO-SUCH-SKU') IS NULL AND ods_api.inventory_position(-1, (SELECT min(sku) FROM synced.product_catalog)) IS NULL;"
expect_error "inventory_position as support_agent" 42501 support_agent "SELECT ods_api.inventory_position(1, 'X');"

# ---- work orders ----
expect "work_order(1): technicians of the last 7 days (update, or active assignment), latest first" field_dispatcher "
SELECT array(SELECT (e->>'technician_id')::int FROM jsonb_array_elements(d->'technicians') e) = ARRAY[2, 3]
	AND jsonb_array_length(d->'technicians'->0->'updates') = 1
	AND jsonb_array_length(d->'technicians'->0->'assignments') = 0
	AND jsonb_array_length(d->'technicians'->1->'updates') = 0
	AND d->'technicians'->1->'assignments'->0->>'status' = 'on_site'
	AND d->'technicians'->0->'_meta' ? 'synced_at' AND d->'_meta' ? 'synced_at'
FROM (SELECT ods_api.work_order(1)::jsonb AS d) x;"
expect "work_order: for every work order, exactly the technicians active within 7 days" field_dispatcher "
SELECT bool_and(array(SELECT (e->>'technician_id')::bigint FROM jsonb_array_elements(ods_api.work_order(w.work_order_id)::jsonb->'technicians') e ORDER BY 1)
	= array(SELECT DISTINCT t FROM (
		SELECT technician_id FROM native.dispatch_assignments a WHERE a.work_order_id = w.work_order_id
			AND a.deleted_at IS NULL AND (a.assigned_at >= now() - interval '7 days' OR a.status IN ('assigned', 'en_route', 'on_site'))
		UNION SELECT technician_id FROM native.work_order_updates u WHERE u.work_order_id = w.work_order_id
			AND u.deleted_at IS NULL AND u.created_at >= now() - interval '7 days') s(t) ORDER BY 1))
	AND NOT bool_or(jsonb_path_exists(ods_api.work_order(w.work_order_id)::jsonb,
		'\$.technicians[*].updates[*] ? (@.created_at < \$since)',
		jsonb_build_object('since', ods.json_ts(now() - interval '7 days'))))
FROM synced.work_order_current w;"
expect "work_order: an unknown work order is NULL (404)" field_dispatcher "SELECT ods_api.work_order(-1) IS NULL;"
expect_error "work_order as ops_manager" 42501 ops_manager "SELECT ods_api.work_order(1);"

# ---- freshness ----
for role in support_agent fraud_analyst ops_manager field_dispatcher ods_admin; do
	expect "freshness as $role lists the 11 synced tables" "$role" "
SELECT jsonb_array_length(d->'tables') = 11
	AND jsonb_array_length(d->'tables') = (SELECT count(*) FROM ods.synced_tables)
	AND NOT jsonb_path_exists(d, '\$.tables[*] ? (!exists(@.table) || !exists(@.tier) || !exists(@.mode)
		|| !exists(@.sla_s) || !exists(@.as_of) || !exists(@.lag_s) || !exists(@.stale)
		|| !exists(@.last_sync_at) || !exists(@.status) || !exists(@.last_error) || !exists(@.rows))')
	AND d->'tables'->0->>'table' = 'synced.customer_current'
FROM (SELECT body::jsonb AS d FROM ods_api.freshness()) x;"
done
expect "freshness: lag and stale computed with now()" "" "
UPDATE ods.synced_tables SET as_of = now() - freshness_sla - interval '10 seconds' WHERE table_name = 'risk_scores';
UPDATE ods.synced_tables SET as_of = now() WHERE table_name = 'product_catalog';
UPDATE ods.synced_tables SET as_of = NULL, status = 'never_synced' WHERE table_name = 'technician_profile';
SELECT set_config('role', 'support_agent', true) \\g /dev/null
SELECT (t->'risk_scores'->>'stale')::boolean AND (t->'risk_scores'->>'lag_s')::int >= 910
	AND (t->'risk_scores'->>'sla_s')::int = 900
	AND NOT (t->'product_catalog'->>'stale')::boolean AND (t->'product_catalog'->>'lag_s')::int = 0
	AND (t->'technician_profile'->>'stale')::boolean AND t->'technician_profile'->'lag_s' = 'null'
	AND t->'technician_profile'->'as_of' = 'null'
FROM (SELECT jsonb_object_agg(regexp_replace(e->>'table', '^synced\.', ''), e) AS t
	FROM ods_api.freshness() f, jsonb_array_elements(f.body::jsonb->'tables') e) x;
ROLLBACK; BEGIN;"
# DESIGN section 6: /v1/freshness is open to any valid token, the sync role's included
# (the EXECUTE matrix above checks the grant).

# ---- bodies against the schemas of openapi.yaml ----
if ! python3 -c 'import yaml, jsonschema' 2>/dev/null; then
	skipped "bodies match openapi.yaml: python3 with yaml and jsonschema is not installed"
elif [ ! -r "$top/openapi.yaml" ]; then
	not_ok "bodies match openapi.yaml: $top/openapi.yaml is missing"
else
	sql ods_admin "
SELECT 'Customer360' || E'\t' || ods_api.customer_360(customer_id)::text FROM synced.customer_current WHERE customer_id % 40 = 7;
SELECT 'SupportCasePage' || E'\t' || q.body::text FROM (SELECT DISTINCT customer_id FROM native.support_cases LIMIT 40) c,
	ods_api.customer_cases(c.customer_id, NULL, NULL, NULL) q;
SELECT 'OrderFulfillment' || E'\t' || ods_api.order_fulfillment(order_id)::text FROM synced.order_current WHERE order_id % 50 = 3;
SELECT 'FraudQueuePage' || E'\t' || body::text FROM ods_api.fraud_queue(500, NULL, NULL);
SELECT 'InventoryPosition' || E'\t' || ods_api.inventory_position(store_id, sku)::text FROM synced.inventory_position WHERE store_id = 1;
SELECT 'WorkOrder' || E'\t' || ods_api.work_order(work_order_id)::text FROM synced.work_order_current;
SELECT 'Freshness' || E'\t' || body::text FROM ods_api.freshness();" >"$work/bodies.tsv"
	sql fraud_analyst "SELECT 'Customer360' || E'\t' || ods_api.customer_360(7)::text;" >>"$work/bodies.tsv"
	if python3 - "$top/openapi.yaml" "$work/bodies.tsv" >"$work/schema.log" 2>&1 <<'EOF'
import json, sys, yaml
from jsonschema import Draft202012Validator, FormatChecker
doc = yaml.safe_load(open(sys.argv[1]))
validators, bad, n = {}, 0, 0
for line in open(sys.argv[2]):
    name, body = line.rstrip('\n').split('\t', 1)
    if name not in validators:
        root = dict(doc, **{'$ref': '#/components/schemas/' + name})
        validators[name] = Draft202012Validator(root, format_checker=FormatChecker())
    n += 1
    for e in list(validators[name].iter_errors(json.loads(body)))[:2]:
        bad += 1
        print(f'{name}: {"/".join(map(str, e.absolute_path))}: {e.message[:300]}')
print(f'{n} bodies, {bad} problems')
sys.exit(1 if bad or n == 0 else 0)
EOF
	then
		ok "bodies match openapi.yaml ($(tail -n 1 "$work/schema.log"))"
	else
		not_ok "bodies match openapi.yaml:"
		head -n 20 "$work/schema.log" "$work/err"
	fi
fi

finish
