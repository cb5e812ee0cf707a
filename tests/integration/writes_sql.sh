#!/usr/bin/env bash
# writes_sql.sh: the write route functions (api/routes/31_, 41_, 51_, 61_*.sql), the
# audit log and row-level security (api/schema/012_rls_audit.sql), called in SQL.
#
# Runs under tests/harness.sh (ODS_TEST_DB_URI: a throwaway PostgreSQL). Migrates a
# fresh database, loads 500 demo customers through odsctl, then calls each function
# the way odsd does: in a transaction after set_config('role', <app role>, true) and
# set_config('request.jwt.claims', <claims with sub and region>, true), so grants and
# row-level security apply as in production. Checks creates (201, Location, ETag, the
# body as the read returns it), the body rules (each error names its field;
# server-set fields refused), If-Match (OD412 leaves the row as it was), soft delete
# (then 404 and absent from lists, row kept), a keyset walk of the case queue, the
# fraud lifecycle and dispositions, regional row-level security for reads and writes,
# the audit trail of every write, and that nobody, the superuser included, can change
# or erase it.
set -u

suite=writes_sql
. "$(dirname "$0")/lib.sh"

# The token of the calls below: its sub ($sub, none when empty) and its region claim
# ($reg, none when empty); the role is each call's.
sub=writes_sql
reg=

# claims_sql ROLE: the statement that switches to ROLE with the current claims.
claims_sql() {
	local claims="{\"role\":\"$1\"${sub:+,\"sub\":\"$sub\"}${reg:+,\"region\":\"$reg\"}}"
	echo "SELECT set_config('role', '$1', true), set_config('request.jwt.claims', '$claims', true) \\g /dev/null"
}

# sql ROLE SQL: runs SQL (";"-terminated statements) as ROLE the way odsd does, in one
# transaction; ROLE "" runs it as the superuser. Prints the rows unaligned; on an
# error prints nothing on stdout, the error on stderr, and fails.
# A check that reads what a write of the same statement did must be a later
# statement (a statement and the STABLE functions it calls read the database as it
# was when the statement began): writes go into temp tables first, e.g.
#   CREATE TEMP TABLE w AS SELECT * FROM ods_api.x(...); SELECT <check> FROM w;
sql() {
	local setup=""
	[ -n "$1" ] && setup=$(claims_sql "$1")
	"$psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db_uri" 2>"$work/err" <<EOF
BEGIN;
$setup
$2
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

# expect_id NAME ROLE SQL: SQL answers one row "true|<id>" (a check cast to text, then
# the id of what it created); passes and sets $id, else fails and empties it.
id=
expect_id() {
	local out
	out=$(sql "$2" "$3")
	if [ "${out%%|*}" = true ] && [ -n "${out#true|}" ] && [ "${out#true|}" != "$out" ]; then
		id=${out#true|}
		ok "$1"
	else
		id=
		not_ok "$1 (got '${out:0:300}')"
		sed 's/^/    /' "$work/err"
	fi
}

# expect_error NAME SQLSTATE ROLE SQL [MESSAGE]: passes when SQL fails with SQLSTATE
# (and, when given, a message that contains MESSAGE); nothing is committed.
expect_error() {
	local got setup=""
	[ -n "$3" ] && setup=$(claims_sql "$3")
	got=$("$psql" -X -q -At -d "$db_uri" 2>"$work/err" <<EOF
BEGIN;
$setup
\\o /dev/null
$4
\\o
\\echo :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE
ROLLBACK;
EOF
	)
	local state=${got%% *} msg=${got#* }
	if [ "$state" = "$2" ] && { [ -z "${5:-}" ] || [[ "$msg" == *"$5"* ]]; }; then
		ok "$1 ($2${5:+: $5})"
	else
		not_ok "$1 (expected SQLSTATE $2${5:+ with '$5'}, got '$got')"
		sed 's/^/    /' "$work/err"
	fi
}

# need VALUE WHAT: stops here (the checks after depend on it) when VALUE is empty.
need() {
	[ -n "$1" ] && return
	not_ok "cannot go on without $2"
	finish
}

# ---- setup ----
if "$psql" -X -q -v ON_ERROR_STOP=1 -d "$ODS_TEST_DB_URI" -c "DROP DATABASE IF EXISTS $db" \
	-c "CREATE DATABASE $db" >"$work/setup.log" 2>&1 &&
	"$odsctl" migrate --db "$db_uri" --api-dir "$api_dir" >>"$work/setup.log" 2>&1 &&
	"$odsctl" demo generate --out "$work/demo" --customers 500 >>"$work/setup.log" 2>&1 &&
	"$odsctl" demo load --db "$db_uri" --from "$work/demo" >>"$work/setup.log" 2>&1; then
	ok "migrate and load 500 demo customers"
else
	not_ok "migrate and load 500 demo customers"
	cat "$work/setup.log"
	finish
fi

# ---- catalog, grants, row-level security, audit wiring ----
expect "the write routes are registered as designed" "" "
SELECT string_agg(format('%s %s %s %s %s', method, path, function, scope, paged::text), ';'
	ORDER BY path, method) =
	'GET /v1/cases ods_api.support_case_queue cases:read true;'
	'POST /v1/cases ods_api.support_case_create cases:write false;'
	'DELETE /v1/cases/{case_id} ods_api.support_case_delete cases:write false;'
	'GET /v1/cases/{case_id} ods_api.support_case cases:read false;'
	'PATCH /v1/cases/{case_id} ods_api.support_case_update cases:write false;'
	'POST /v1/cases/{case_id}/notes ods_api.support_case_note_create cases:write false;'
	'GET /v1/fraud/cases/{case_id} ods_api.fraud_case fraud:read false;'
	'PATCH /v1/fraud/cases/{case_id} ods_api.fraud_case_update fraud:write false;'
	'POST /v1/fraud/cases/{case_id}/dispositions ods_api.fraud_disposition_create fraud:write false;'
	'POST /v1/inventory/{store_id}/{sku}/actions ods_api.store_action_create inventory:write false;'
	'POST /v1/work-orders/{work_order_id}/assignments ods_api.dispatch_assignment_create workorders:write false;'
	'POST /v1/work-orders/{work_order_id}/updates ods_api.work_order_update_create workorders:write false'
FROM ods.routes WHERE path LIKE '/v1/cases%' OR path LIKE '/v1/fraud/cases%'
	OR path LIKE '/v1/inventory/%/actions' OR path LIKE '/v1/work-orders/%/%';"
expect "write routes return (body, status, location, etag); single reads (body, etag)" "" "
SELECT bool_and(CASE WHEN r.method = 'GET' AND NOT r.paged
		THEN p.proargnames[p.pronargs + 1:] = ARRAY['body', 'etag']
		WHEN r.method = 'GET' THEN p.proargnames[p.pronargs + 1:] = ARRAY['body', 'next_cursor']
		ELSE p.proargnames[p.pronargs + 1:] = ARRAY['body', 'status', 'location', 'etag'] END
	AND NOT p.prosecdef AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
	AND (r.method IN ('GET', 'DELETE') OR 'p_body' = ANY (p.proargnames))
	AND (r.method NOT IN ('PATCH', 'DELETE') OR 'p_if_match' = ANY (p.proargnames)))
	AND count(*) = 12
FROM ods.routes r JOIN pg_proc p ON p.oid = to_regproc(r.function)
WHERE r.path LIKE '/v1/cases%' OR r.path LIKE '/v1/fraud/cases%'
	OR r.path LIKE '/v1/inventory/%/actions' OR r.path LIKE '/v1/work-orders/%/%';"
while read -r fn roles; do
	expect "EXECUTE on $fn: exactly $roles (and ods_admin)" "" "
SELECT coalesce(string_agg(r, ',' ORDER BY r), '') = '$roles'
	AND has_function_privilege('ods_admin', '$fn', 'EXECUTE')
FROM unnest(ARRAY['support_agent', 'fraud_analyst', 'ops_manager', 'field_dispatcher',
	'ods_sync', 'ods_authenticator']) r
WHERE has_function_privilege(r, '$fn', 'EXECUTE');"
done <<'EOF'
ods_api.support_case_queue(text,text,integer,text) support_agent
ods_api.support_case_create(jsonb) support_agent
ods_api.support_case(uuid) support_agent
ods_api.support_case_update(uuid,jsonb,text) support_agent
ods_api.support_case_delete(uuid,text) support_agent
ods_api.support_case_note_create(uuid,jsonb) support_agent
ods_api.fraud_case(uuid) fraud_analyst
ods_api.fraud_case_update(uuid,jsonb,text) fraud_analyst
ods_api.fraud_disposition_create(uuid,jsonb,text) fraud_analyst
ods_api.store_action_create(integer,text,jsonb) ops_manager
ods_api.dispatch_assignment_create(bigint,jsonb) field_dispatcher
ods_api.work_order_update_create(bigint,jsonb) field_dispatcher
EOF
expect "row-level security: enabled, not forced, on the case tables only" "" "
SELECT string_agg(relname, ',' ORDER BY relname) = 'analyst_notes,case_notes,fraud_cases,fraud_dispositions,support_cases'
	AND NOT bool_or(relforcerowsecurity)
FROM pg_class WHERE relnamespace = 'native'::regnamespace AND relkind = 'r' AND relrowsecurity;"
expect "audit triggers on every native table but audit_log; the function is SECURITY DEFINER with a fixed search_path" "" "
SELECT (SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
		WHERE c.relnamespace = 'native'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> 'audit_log')
	= (SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
		WHERE t.tgname = 'audit' AND t.tgfoid = 'ods.audit_row'::regproc AND t.tgenabled = 'O')
	AND (SELECT count(*) = 1 FROM pg_trigger WHERE tgrelid = 'native.audit_log'::regclass AND NOT tgisinternal)
	AND EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'native.audit_log'::regclass
		AND tgname = 'audit_log_append_only' AND tgenabled = 'A')
	AND (SELECT prosecdef AND proconfig = '{search_path=pg_catalog}' FROM pg_proc
		WHERE oid = 'ods.audit_row'::regproc);"

# Test data from the demo.
cust=$(sql "" "SELECT min(customer_id) FROM synced.customer_current;")
other_order=$(sql "" "SELECT min(order_id) FROM synced.order_current WHERE customer_id <> $cust;")
own_order=$(sql "" "SELECT min(order_id) FROM synced.order_current WHERE customer_id = $cust;")
read -r region_a region_b < <(sql "" "SELECT string_agg(region, ' ' ORDER BY region) FROM (
	SELECT region FROM native.fraud_cases WHERE region IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 2) x;")
read -r store sku < <(sql "" "SELECT store_id || ' ' || sku FROM synced.inventory_position ORDER BY 1 LIMIT 1;")
wo=$(sql "" "SELECT min(work_order_id) FROM synced.work_order_current;")
tech=$(sql "" "SELECT min(t.technician_id) FROM synced.technician_profile t WHERE NOT EXISTS (
	SELECT FROM native.dispatch_assignments a WHERE a.work_order_id = $wo AND a.technician_id = t.technician_id);")
if [ -n "$cust" ] && [ -n "$other_order" ] && [ -n "$region_b" ] && [ -n "$sku" ] && [ -n "$tech" ]; then
	ok "test data: customer $cust, regions $region_a and $region_b, position $store/$sku, work order $wo, technician $tech"
else
	not_ok "test data from the demo ('$cust' '$other_order' '$region_a' '$region_b' '$store' '$sku' '$wo' '$tech')"
	cat "$work/err"
	finish
fi

# ---- support cases ----
sub=agent-ana
expect_id "POST /v1/cases: 201, Location, ETag 1, the case as GET returns it, created_by = sub" support_agent "
CREATE TEMP TABLE c AS SELECT * FROM ods_api.support_case_create(jsonb_build_object('customer_id', $cust,
	'subject', 'Parcel lost', 'description', 'Customer called twice', 'channel', 'chat'));
SELECT (c.status = 201 AND c.location = '/v1/cases/' || (c.body->>'case_id') AND c.etag = '1'
	AND c.body->>'created_by' = 'agent-ana' AND (c.body->>'priority')::int = 3
	AND c.body->>'status' = 'open' AND c.body->>'subject' = 'Parcel lost'
	AND c.body::jsonb->'notes' = '[]' AND (c.body->>'version')::int = 1
	AND (c.body->>'customer_id')::bigint = $cust AND c.body->>'channel' = 'chat'
	AND c.body::jsonb = (SELECT g.body::jsonb FROM ods_api.support_case((c.body->>'case_id')::uuid) g)
	AND (SELECT g.etag FROM ods_api.support_case((c.body->>'case_id')::uuid) g) = '1')::text
	|| '|' || (c.body->>'case_id')
FROM c;"
case1=$id
need "$case1" "the case"
expect "the row is there, created_by from the token's sub" "" "
SELECT created_by = 'agent-ana' AND version = 1 AND deleted_at IS NULL AND priority = 3
FROM native.support_cases WHERE case_id = '$case1';"
expect "POST /v1/cases: priority, assigned_to and an order of the customer taken" support_agent "
SELECT (c.body->>'priority')::int = 1 AND c.body->>'assigned_to' = 'agent.bo'
	AND ('$own_order' = '' OR (c.body->>'order_id')::bigint = nullif('$own_order', '')::bigint)
FROM ods_api.support_case_create(jsonb_build_object('customer_id', $cust, 'subject', 'Refund',
	'priority', 1, 'assigned_to', 'agent.bo', 'order_id', nullif('$own_order', '')::bigint)) c;"
sub=
expect "without a sub claim, created_by is the role" support_agent "
SELECT body->>'created_by' = 'support_agent'
FROM ods_api.support_case_create(jsonb_build_object('customer_id', $cust, 'subject', 'No sub'));"
sub=agent-ana

create="SELECT * FROM ods_api.support_case_create"
expect_error "POST /v1/cases without a body" OD400 support_agent "$create(NULL);" "JSON object body"
expect_error "POST /v1/cases with an array" OD400 support_agent "$create('[1]');" "must be a JSON object"
expect_error "POST /v1/cases without subject" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', $cust));" "field subject: required"
expect_error "POST /v1/cases with subject null" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', $cust, 'subject', NULL));" "field subject: required"
expect_error "POST /v1/cases without customer_id" OD422 support_agent \
	"$create(jsonb_build_object('subject', 'x'));" "field customer_id: required"
expect_error "POST /v1/cases: priority 7" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', $cust, 'subject', 'x', 'priority', 7));" \
	"field priority: must be an integer from 1 to 5"
expect_error "POST /v1/cases: priority 2.5" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', $cust, 'subject', 'x', 'priority', 2.5));" \
	"field priority: must be an integer from 1 to 5"
expect_error "POST /v1/cases: priority \"2\" (a string)" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', $cust, 'subject', 'x', 'priority', '2'));" \
	"field priority: must be an integer from 1 to 5"
expect_error "POST /v1/cases: customer_id \"7\" (a string)" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', '7', 'subject', 'x'));" "field customer_id: must be a positive integer"
expect_error "POST /v1/cases: an unknown customer" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', 987654321, 'subject', 'x'));" "field customer_id: no such customer"
expect_error "POST /v1/cases: another customer's order" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', $cust, 'subject', 'x', 'order_id', $other_order));" "field order_id:"
expect_error "POST /v1/cases: a blank subject" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', $cust, 'subject', '  '));" "field subject: must not be blank"
expect_error "POST /v1/cases: a subject of 501 characters" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', $cust, 'subject', repeat('x', 501)));" \
	"field subject: must be at most 500 characters"
expect_error "POST /v1/cases: subject 42 (a number)" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', $cust, 'subject', 42));" "field subject: must be a string"
expect_error "POST /v1/cases: an unknown channel" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', $cust, 'subject', 'x', 'channel', 'fax'));" \
	"field channel: must be one of phone, email, chat, web"
expect_error "POST /v1/cases: an unknown field" OD422 support_agent \
	"$create(jsonb_build_object('customer_id', $cust, 'subject', 'x', 'foo', 1));" "field foo: unknown"
for f in case_id status created_by created_at updated_at deleted_at version resolved_at; do
	expect_error "POST /v1/cases: $f is server-set" OD422 support_agent \
		"$create(jsonb_build_object('customer_id', $cust, 'subject', 'x', '$f', NULL));" "field $f: set by the server"
done
expect_error "POST /v1/cases as fraud_analyst" 42501 fraud_analyst \
	"$create(jsonb_build_object('customer_id', $cust, 'subject', 'x'));"
expect "no case was created by the refused calls" "" "
SELECT count(*) = 3 FROM native.support_cases WHERE customer_id = $cust AND created_by IN ('agent-ana', 'support_agent');"

# PATCH and If-Match
update="SELECT * FROM ods_api.support_case_update"
expect "PATCH /v1/cases/{id} with If-Match 1: 200, ETag 2, fields changed" support_agent "
SELECT status = 200 AND etag = '2' AND location IS NULL AND body->>'status' = 'pending'
	AND body->>'assigned_to' = 'agent.cy' AND (body->>'priority')::int = 2
	AND body->>'description' = 'Customer called twice' AND (body->>'version')::int = 2
	AND body::jsonb->'notes' = '[]'
FROM ods_api.support_case_update('$case1', jsonb_build_object('status', 'pending',
	'assigned_to', 'agent.cy', 'priority', 2), '1');"
expect_error "PATCH with a stale If-Match" OD412 support_agent \
	"$update('$case1', jsonb_build_object('status', 'closed'), '1');" "the case was modified since"
expect "after the OD412 the row is unchanged" "" "
SELECT version = 2 AND status = 'pending' FROM native.support_cases WHERE case_id = '$case1';"
expect "PATCH with If-Match * and without If-Match" support_agent "
CREATE TEMP TABLE p1 AS SELECT * FROM ods_api.support_case_update('$case1', jsonb_build_object('subject', 'Parcel lost (2)'), '*');
CREATE TEMP TABLE p2 AS SELECT * FROM ods_api.support_case_update('$case1', jsonb_build_object('description', NULL), NULL);
SELECT (SELECT etag FROM p1) = '3' AND (SELECT etag FROM p2) = '4'
	AND (SELECT description IS NULL AND subject = 'Parcel lost (2)' FROM native.support_cases WHERE case_id = '$case1');"
expect "PATCH resolved sets resolved_at; back to open clears it; closed keeps it" support_agent "
CREATE TEMP TABLE r (n int, status text, resolved_at text);
INSERT INTO r SELECT 1, body->>'status', body->>'resolved_at' FROM ods_api.support_case_update('$case1', '{\"status\": \"resolved\"}', NULL);
INSERT INTO r SELECT 2, body->>'status', body->>'resolved_at' FROM ods_api.support_case_update('$case1', '{\"status\": \"open\"}', NULL);
INSERT INTO r SELECT 3, body->>'status', body->>'resolved_at' FROM ods_api.support_case_update('$case1', '{\"status\": \"closed\"}', NULL);
INSERT INTO r SELECT 4, body->>'status', body->>'resolved_at' FROM ods_api.support_case_update('$case1', '{\"status\": \"resolved\"}', NULL);
INSERT INTO r SELECT 5, body->>'status', body->>'resolved_at' FROM ods_api.support_case_update('$case1', '{\"status\": \"closed\"}', NULL);
SELECT array_agg(status ORDER BY n) = ARRAY['resolved', 'open', 'closed', 'resolved', 'closed']
	AND array_agg(resolved_at IS NOT NULL ORDER BY n) = ARRAY[true, false, false, true, true]
FROM r;"
expect "PATCH {} changes nothing (200, same version)" support_agent "
SELECT status = 200 AND etag = '9' AND (body->>'version')::int = 9
FROM ods_api.support_case_update('$case1', '{}', '9');"
expect "PATCH assigned_to null unassigns" support_agent "
SELECT body::jsonb->'assigned_to' = 'null' FROM ods_api.support_case_update('$case1', '{\"assigned_to\": null}', NULL);"
expect_error "PATCH: an unknown status" OD422 support_agent "$update('$case1', '{\"status\": \"done\"}', NULL);" \
	"field status: must be one of open, pending, resolved, closed"
expect_error "PATCH: status null" OD422 support_agent "$update('$case1', '{\"status\": null}', NULL);" \
	"field status: must not be null"
expect_error "PATCH: priority 0" OD422 support_agent "$update('$case1', '{\"priority\": 0}', NULL);" \
	"field priority: must be an integer from 1 to 5"
expect_error "PATCH: customer_id" OD422 support_agent "$update('$case1', '{\"customer_id\": 1}', NULL);" \
	"field customer_id: cannot be changed"
expect_error "PATCH: version" OD422 support_agent "$update('$case1', '{\"version\": 1}', NULL);" \
	"field version: set by the server"
expect_error "PATCH: an unknown field" OD422 support_agent "$update('$case1', '{\"colour\": \"red\"}', NULL);" \
	"field colour: unknown"
expect_error "PATCH: an unknown case" OD404 support_agent \
	"$update('00000000-0000-0000-0000-000000000000', '{\"status\": \"open\"}', NULL);" "no case 00000000-0000-0000-0000-000000000000"
expect_error "PATCH as ops_manager" 42501 ops_manager "$update('$case1', '{\"status\": \"open\"}', NULL);"

# Notes
expect_id "POST /v1/cases/{id}/notes: 201, Location with the note, ETag 1; the case row untouched" support_agent "
SELECT (n.status = 201 AND n.etag = '1'
	AND n.location = '/v1/cases/$case1#note-' || (n.body->>'note_id')
	AND n.body->>'body' = 'Called back' AND n.body->>'visibility' = 'internal'
	AND n.body->>'created_by' = 'agent-ana' AND n.body->>'case_id' = '$case1'
	AND (SELECT version = 10 FROM native.support_cases WHERE case_id = '$case1'))::text
	|| '|' || (n.body->>'note_id')
FROM ods_api.support_case_note_create('$case1', '{\"body\": \"Called back\"}') n;"
note1=$id
need "$note1" "the note"
expect "GET /v1/cases/{id}: the note, and an ETag that changed with it (10.1)" support_agent "
SELECT etag = '10.1' AND body->'notes'->0->>'note_id' = '$note1' AND json_array_length(body->'notes') = 1
FROM ods_api.support_case('$case1');"
expect "If-Match with the GET ETag (10.1) and with the version alone (11) both pass" support_agent "
CREATE TEMP TABLE p1 AS SELECT * FROM ods_api.support_case_update('$case1', '{\"priority\": 4}', '10.1');
CREATE TEMP TABLE p2 AS SELECT * FROM ods_api.support_case_update('$case1', '{\"priority\": 3}', '11');
SELECT (SELECT etag FROM p1) = '11.1' AND (SELECT etag FROM p2) = '12.1';"
expect_error "PATCH with a stale GET ETag (10.1)" OD412 support_agent "$update('$case1', '{\"priority\": 1}', '10.1');"
expect_error "POST note without body" OD422 support_agent \
	"SELECT * FROM ods_api.support_case_note_create('$case1', '{\"visibility\": \"customer\"}');" "field body: required"
expect_error "POST note: a blank body" OD422 support_agent \
	"SELECT * FROM ods_api.support_case_note_create('$case1', '{\"body\": \"\"}');" "field body: must not be blank"
expect_error "POST note: note_id is server-set" OD422 support_agent \
	"SELECT * FROM ods_api.support_case_note_create('$case1', '{\"body\": \"x\", \"note_id\": \"x\"}');" "field note_id: set by the server"
expect_error "POST note on an unknown case" OD404 support_agent \
	"SELECT * FROM ods_api.support_case_note_create('00000000-0000-0000-0000-000000000000', '{\"body\": \"x\"}');" "no case"

# Soft delete
delete="SELECT * FROM ods_api.support_case_delete"
expect_error "DELETE with a stale If-Match" OD412 support_agent "$delete('$case1', '3');" "the case was modified since"
expect "after the OD412 the case is live" "" "SELECT deleted_at IS NULL AND version = 12 FROM native.support_cases WHERE case_id = '$case1';"
expect "DELETE /v1/cases/{id} with If-Match: 204, no body" support_agent "
SELECT status = 204 AND body IS NULL AND location IS NULL AND etag IS NULL
FROM ods_api.support_case_delete('$case1', '12.1');"
expect "after DELETE: GET has no row (404), lists omit it" support_agent "
SELECT NOT EXISTS (SELECT FROM ods_api.support_case('$case1'))
	AND NOT EXISTS (SELECT FROM ods_api.support_case_queue(NULL, NULL, 500, NULL) q,
		json_array_elements(q.body->'items') e WHERE e->>'case_id' = '$case1')
	AND NOT EXISTS (SELECT FROM ods_api.customer_cases($cust, NULL, 500, NULL) q,
		json_array_elements(q.body->'items') e WHERE e->>'case_id' = '$case1')
	AND NOT EXISTS (SELECT FROM json_array_elements(ods_api.customer_360($cust)->'open_cases') e
		WHERE e->>'case_id' = '$case1');"
expect "after DELETE: the row remains, deleted_at set, notes kept" "" "
SELECT deleted_at IS NOT NULL AND version = 13
	AND (SELECT count(*) = 1 FROM native.case_notes WHERE case_id = '$case1')
FROM native.support_cases WHERE case_id = '$case1';"
expect_error "DELETE again" OD404 support_agent "$delete('$case1', NULL);" "no case $case1"
expect_error "PATCH a deleted case" OD404 support_agent "$update('$case1', '{\"status\": \"open\"}', NULL);"
expect_error "POST a note on a deleted case" OD404 support_agent \
	"SELECT * FROM ods_api.support_case_note_create('$case1', '{\"body\": \"x\"}');"

# The work queue: a keyset walk. Seven cases for one assignee, five created in one
# transaction (the same created_at: case_id breaks the tie) and two in another.
if sql support_agent "
SELECT FROM generate_series(1, 5) g, ods_api.support_case_create(jsonb_build_object('customer_id', $cust,
	'subject', 'walk ' || g, 'assigned_to', 'agent.walk')) c;" >/dev/null &&
	sql support_agent "
SELECT FROM generate_series(6, 7) g, ods_api.support_case_create(jsonb_build_object('customer_id', $cust,
	'subject', 'walk ' || g, 'assigned_to', 'agent.walk')) c;" >/dev/null &&
	sql support_agent "
CREATE TEMP TABLE c AS SELECT * FROM ods_api.support_case_create(
	jsonb_build_object('customer_id', $cust, 'subject', 'walk deleted', 'assigned_to', 'agent.walk'));
SELECT FROM c, ods_api.support_case_delete((c.body->>'case_id')::uuid, NULL) x;" >/dev/null; then
	ok "eight cases for agent.walk (five in one transaction), one of them deleted"
else
	not_ok "eight cases for agent.walk"
	cat "$work/err"
fi
# walk_queue LIMIT STATUS ASSIGNEE: the case ids of a whole walk, in order.
walk_queue() {
	local cursor=NULL out all="" pages=0
	while :; do
		out=$(sql support_agent "
SELECT coalesce(string_agg(e->>'case_id', ' ' ORDER BY n), '') || '#' || coalesce(q.next_cursor, '')
	|| '#' || bool_and(q.body->>'next_cursor' IS NOT DISTINCT FROM q.next_cursor)
FROM ods_api.support_case_queue(status => $2, assigned_to => $3, \"limit\" => $1, cursor => $cursor) q
LEFT JOIN LATERAL json_array_elements(q.body->'items') WITH ORDINALITY AS x(e, n) ON true
GROUP BY q.next_cursor;") || return 1
		[ "${out##*#}" = true ] || return 1
		out=${out%#*}
		all="$all${all:+ }${out%%#*}"
		pages=$((pages + 1))
		[ -z "${out#*#}" ] && break
		cursor="'${out#*#}'"
		[ $pages -gt 200 ] && return 1
	done
	echo "$pages:$all"
}
expected_queue() { # STATUS ASSIGNEE
	sql "" "SELECT string_agg(case_id::text, ' ' ORDER BY created_at DESC, case_id DESC)
	FROM native.support_cases WHERE deleted_at IS NULL AND ($1 IS NULL OR status = $1)
	  AND ($2 IS NULL OR assigned_to = $2);"
}
while read -r limit status assignee pages; do
	expected=$(expected_queue "$status" "$assignee")
	got=$(walk_queue "$limit" "$status" "$assignee")
	n=$(echo "$expected" | wc -w)
	if [ "${got#*:}" = "$expected" ] && { [ "$pages" = any ] || [ "${got%%:*}" = "$pages" ]; }; then
		ok "GET /v1/cases walk (limit $limit, status $status, assigned_to $assignee): $n cases in ${got%%:*} pages, each once, newest first"
	else
		not_ok "GET /v1/cases walk (limit $limit, status $status, assigned_to $assignee): got '${got:0:200}', expected $n cases"
		cat "$work/err"
	fi
done <<'EOF'
2 NULL 'agent.walk' 4
7 NULL 'agent.walk' 1
6 NULL 'agent.walk' 2
1 'open' 'agent.walk' 7
500 NULL NULL 1
7 NULL NULL any
3 'pending' NULL any
EOF
expect "GET /v1/cases: the seven walk cases, the deleted one absent" support_agent "
SELECT json_array_length(body->'items') = 7 AND next_cursor IS NULL
	AND NOT EXISTS (SELECT FROM json_array_elements(body->'items') e WHERE e->>'subject' = 'walk deleted')
FROM ods_api.support_case_queue(NULL, 'agent.walk', NULL, NULL);"
expect_error "GET /v1/cases: a bad status" OD400 support_agent "SELECT * FROM ods_api.support_case_queue('new', NULL, NULL, NULL);"
expect_error "GET /v1/cases: limit 0" OD400 support_agent "SELECT * FROM ods_api.support_case_queue(NULL, NULL, 0, NULL);"
expect_error "GET /v1/cases: a cursor of another list" OD400 support_agent "
SELECT * FROM ods_api.support_case_queue(NULL, NULL, NULL, ods.cursor_encode('customer_cases', jsonb_build_object('t', now(), 'id', gen_random_uuid())));"
expect_error "GET /v1/cases as fraud_analyst" 42501 fraud_analyst "SELECT * FROM ods_api.support_case_queue(NULL, NULL, NULL, NULL);"

# ---- fraud cases ----
# Cases of two regions, made by the superuser: a1..a4 in region_a, b1 in region_b.
fraud_ids=$(sql "" "
INSERT INTO native.fraud_cases (customer_id, status, region, priority, reason, created_by)
SELECT $cust, s, r, p, 'writes_sql ' || n, 'writes_sql' FROM (VALUES
	(1, 'open', '$region_a', 3), (2, 'open', '$region_a', 1), (3, 'in_review', '$region_a', 3),
	(4, 'open', '$region_a', 3), (5, 'open', '$region_b', 3)) v(n, s, r, p)
RETURNING case_id;" | tr '\n' ' ')
read -r a1 a2 a3 a4 b1 <<<"$fraud_ids"
need "$b1" "the fraud cases"
sub=analyst-fei
reg=$region_a
fupdate="SELECT * FROM ods_api.fraud_case_update"
fdecide="SELECT * FROM ods_api.fraud_disposition_create"
expect "GET /v1/fraud/cases/{id} (region $region_a analyst, own region): the case, ETag 1" fraud_analyst "
SELECT etag = '1' AND body->>'case_id' = '$a1' AND body->>'region' = '$region_a'
	AND body::jsonb->'dispositions' = '[]' AND body::jsonb->'notes' = '[]' AND body->>'status' = 'open'
FROM ods_api.fraud_case('$a1');"
expect "GET /v1/fraud/cases/{id} of region $region_b: no row (404) for a $region_a analyst" fraud_analyst "
SELECT NOT EXISTS (SELECT FROM ods_api.fraud_case('$b1'))
	AND NOT EXISTS (SELECT FROM native.fraud_cases WHERE case_id = '$b1');"
expect "fraud queue of the $region_a analyst: never a $region_b case" fraud_analyst "
SELECT bool_and(e->>'region' = '$region_a') AND bool_or(e->>'case_id' = '$a1')
	AND NOT bool_or(e->>'case_id' = '$b1')
FROM ods_api.fraud_queue(500, NULL, NULL) q, json_array_elements(q.body->'items') e;"
expect "PATCH /v1/fraud/cases/{id} with If-Match 1: assign and move to in_review" fraud_analyst "
SELECT status = 200 AND etag = '2' AND body->>'status' = 'in_review' AND body->>'assigned_to' = 'analyst-fei'
	AND body::jsonb->'closed_at' = 'null'
FROM ods_api.fraud_case_update('$a1', '{\"status\": \"in_review\", \"assigned_to\": \"analyst-fei\"}', '1');"
expect_error "PATCH fraud case with a stale If-Match" OD412 fraud_analyst "$fupdate('$a1', '{\"assigned_to\": null}', '1');" \
	"the fraud case was modified since"
expect "after the OD412 the fraud case is unchanged" "" "
SELECT version = 2 AND assigned_to = 'analyst-fei' FROM native.fraud_cases WHERE case_id = '$a1';"
expect_error "PATCH fraud case: in_review back to open" OD422 fraud_analyst "$fupdate('$a1', '{\"status\": \"open\"}', NULL);" \
	"field status: a case cannot go from in_review to open"
expect_error "PATCH fraud case: an unknown status" OD422 fraud_analyst "$fupdate('$a1', '{\"status\": \"done\"}', NULL);" \
	"field status: must be one of open, in_review, closed"
expect_error "PATCH fraud case: region" OD422 fraud_analyst "$fupdate('$a1', jsonb_build_object('region', '$region_b'), NULL);" \
	"field region: cannot be changed"
expect_error "PATCH fraud case: closed_at" OD422 fraud_analyst "$fupdate('$a1', '{\"closed_at\": null}', NULL);" \
	"field closed_at: set by the server"
expect "PATCH fraud case: open straight to closed sets closed_at" fraud_analyst "
SELECT body->>'status' = 'closed' AND body->>'closed_at' IS NOT NULL FROM ods_api.fraud_case_update('$a4', '{\"status\": \"closed\"}', NULL);"
expect_error "PATCH a closed fraud case: status" OD422 fraud_analyst "$fupdate('$a4', '{\"status\": \"in_review\"}', NULL);" \
	"field status: the case is closed"
expect_error "PATCH a closed fraud case: assigned_to" OD422 fraud_analyst "$fupdate('$a4', '{\"assigned_to\": \"x\"}', NULL);" \
	"field assigned_to: the case is closed"

# RLS on writes: a region_b case is a 404 for the region_a analyst, and untouched.
expect_error "PATCH a $region_b case as a $region_a analyst" OD404 fraud_analyst \
	"$fupdate('$b1', '{\"status\": \"in_review\"}', NULL);" "no fraud case $b1"
expect_error "a disposition on a $region_b case as a $region_a analyst" OD404 fraud_analyst \
	"$fdecide('$b1', '{\"decision\": \"hold\"}', NULL);" "no fraud case $b1"
expect "a direct UPDATE of the $region_b case by the $region_a analyst changes 0 rows" fraud_analyst "
WITH u AS (UPDATE native.fraud_cases SET status = 'closed' WHERE case_id = '$b1' RETURNING 1)
SELECT count(*) = 0 FROM u;"
expect_error "the $region_a analyst cannot move a case to $region_b" 42501 fraud_analyst \
	"UPDATE native.fraud_cases SET region = '$region_b' WHERE case_id = '$a2';" "row-level security"
expect_error "the $region_a analyst cannot create a $region_b case" 42501 fraud_analyst \
	"INSERT INTO native.fraud_cases (customer_id, region, created_by) VALUES ($cust, '$region_b', 'x');" "row-level security"
expect_error "the $region_a analyst cannot add a disposition to the $region_b case directly" 42501 fraud_analyst \
	"INSERT INTO native.fraud_dispositions (case_id, decision, created_by) VALUES ('$b1', 'hold', 'x');" "row-level security"
expect "the $region_b case is unchanged, without dispositions" "" "
SELECT version = 1 AND status = 'open' AND region = '$region_b'
	AND NOT EXISTS (SELECT FROM native.fraud_dispositions d WHERE d.case_id = '$b1')
FROM native.fraud_cases WHERE case_id = '$b1';"
reg=
expect "an analyst without a region claim sees no fraud case" fraud_analyst "
SELECT NOT EXISTS (SELECT FROM ods_api.fraud_case('$a2')) AND NOT EXISTS (SELECT FROM native.fraud_cases);"
expect_error "an analyst without a region claim cannot decide" OD404 fraud_analyst "$fdecide('$a2', '{\"decision\": \"hold\"}', NULL);"
reg=$region_b
expect "the $region_b analyst sees the $region_b case, not the $region_a ones" fraud_analyst "
SELECT EXISTS (SELECT FROM ods_api.fraud_case('$b1')) AND NOT EXISTS (SELECT FROM ods_api.fraud_case('$a2'));"
sub=admin-ada
reg=
expect_id "ods_admin decides a $region_b case (escalate): 201, the case's new state" ods_admin "
SELECT (status = 201 AND etag = '1' AND body->>'decision' = 'escalate' AND body::jsonb->'note' = 'null'
	AND body->'case'->>'status' = 'open' AND (body->'case'->>'priority')::int = 2
	AND body->'case'->'dispositions'->0->>'decision' = 'escalate'
	AND location = '/v1/fraud/cases/$b1#disposition-' || (body->>'disposition_id'))::text || '|' || (body->>'disposition_id')
FROM ods_api.fraud_disposition_create('$b1', '{\"decision\": \"escalate\"}', NULL);"
sub=analyst-fei
reg=$region_a
out=$(sql fraud_analyst "SELECT NOT EXISTS (SELECT FROM native.fraud_dispositions WHERE case_id = '$b1');
SELECT set_config('role', 'ods_admin', true) \\g /dev/null
SELECT EXISTS (SELECT FROM native.fraud_dispositions WHERE case_id = '$b1');" | tr '\n' ' ')
if [ "$out" = "t t " ]; then
	ok "the $region_a analyst cannot read the $region_b case's disposition; ods_admin can"
else
	not_ok "dispositions follow their case's visibility (got '$out')"
fi

# Dispositions
expect_id "POST dispositions: hold closes the case (201, Location, ETag 1, the case's new state)" fraud_analyst "
SELECT (status = 201 AND etag = '1' AND body->>'decision' = 'hold' AND body->>'note' = 'card testing'
	AND body->>'created_by' = 'analyst-fei' AND body->>'case_id' = '$a1'
	AND body->'case'->>'status' = 'closed' AND body->'case'->>'closed_at' IS NOT NULL
	AND (body->'case'->>'version')::int = 3 AND json_array_length(body->'case'->'dispositions') = 1
	AND location = '/v1/fraud/cases/$a1#disposition-' || (body->>'disposition_id'))::text || '|' || (body->>'disposition_id')
FROM ods_api.fraud_disposition_create('$a1', '{\"decision\": \"hold\", \"note\": \"card testing\"}', '2');"
disp1=$id
need "$disp1" "the disposition"
expect "GET the decided case: ETag 3.1 (version 3, one disposition), not in the queue" fraud_analyst "
SELECT (SELECT etag = '3.1' AND body->'dispositions'->0->>'disposition_id' = '$disp1' FROM ods_api.fraud_case('$a1'))
	AND NOT EXISTS (SELECT FROM ods_api.fraud_queue(500, NULL, NULL) q, json_array_elements(q.body->'items') e
		WHERE e->>'case_id' = '$a1');"
expect_error "a disposition on a closed case" OD422 fraud_analyst "$fdecide('$a1', '{\"decision\": \"release\"}', NULL);" \
	"field decision: the case is closed"
expect "release closes an in_review case" fraud_analyst "
SELECT body->'case'->>'status' = 'closed' AND body->'case'->>'closed_at' IS NOT NULL
FROM ods_api.fraud_disposition_create('$a3', '{\"decision\": \"release\"}', NULL);"
expect "escalate keeps the status and raises the urgency, down to priority 1" fraud_analyst "
CREATE TEMP TABLE d AS SELECT * FROM ods_api.fraud_disposition_create('$a2', '{\"decision\": \"escalate\", \"note\": \"again\"}', NULL);
SELECT (SELECT body->'case'->>'status' = 'open' AND (body->'case'->>'priority')::int = 1 FROM d)
	AND (SELECT status = 'open' AND priority = 1 AND closed_at IS NULL AND version = 2
		FROM native.fraud_cases WHERE case_id = '$a2');"
expect_error "a disposition with a stale If-Match" OD412 fraud_analyst "$fdecide('$a2', '{\"decision\": \"hold\"}', '1');"
expect_error "a disposition: an unknown decision" OD422 fraud_analyst "$fdecide('$a2', '{\"decision\": \"maybe\"}', NULL);" \
	"field decision: must be one of hold, release, escalate"
expect_error "a disposition without decision" OD422 fraud_analyst "$fdecide('$a2', '{\"note\": \"x\"}', NULL);" \
	"field decision: required"
expect_error "a disposition: case is server-set" OD422 fraud_analyst "$fdecide('$a2', '{\"decision\": \"hold\", \"case\": {}}', NULL);" \
	"field case: set by the server"
expect_error "a disposition on an unknown case" OD404 fraud_analyst \
	"$fdecide('00000000-0000-0000-0000-000000000000', '{\"decision\": \"hold\"}', NULL);" "no fraud case"
expect_error "PATCH fraud case as support_agent" 42501 support_agent "$fupdate('$a2', '{\"status\": \"closed\"}', NULL);"
expect_error "a disposition as support_agent" 42501 support_agent "$fdecide('$a2', '{\"decision\": \"hold\"}', NULL);"
expect_error "GET /v1/fraud/cases/{id} as support_agent" 42501 support_agent "SELECT * FROM ods_api.fraud_case('$a2');"
expect "support agents read fraud cases of every region (customer 360), read-only" support_agent "
SELECT (SELECT count(*) FROM native.fraud_cases WHERE case_id IN ('$a2', '$b1')) = 2
	AND NOT has_table_privilege('native.fraud_cases', 'UPDATE');"

# ---- store actions ----
sub=manager-omar
reg=
expect_id "POST /v1/inventory/{store}/{sku}/actions: 201, Location, ETag 1; the inventory read lists it" ops_manager "
CREATE TEMP TABLE a AS SELECT * FROM ods_api.store_action_create($store, '$sku', '{\"action_type\": \"replenishment\", \"quantity\": 24,
	\"note\": \"weekend\", \"due_at\": \"2026-12-01T10:30:00+01:00\"}');
SELECT (a.status = 201 AND a.etag = '1' AND a.body->>'action_type' = 'replenishment'
	AND (a.body->>'quantity')::int = 24 AND a.body->>'status' = 'open'
	AND a.body->>'due_at' = '2026-12-01T09:30:00Z' AND a.body->>'created_by' = 'manager-omar'
	AND a.location = '/v1/inventory/$store/' || ods.url_segment('$sku') || '#action-' || (a.body->>'action_id')
	AND EXISTS (SELECT FROM json_array_elements(ods_api.inventory_position($store, '$sku')->'open_actions') e
		WHERE e->>'action_id' = a.body->>'action_id' AND e->>'created_by' = 'manager-omar'))::text
	|| '|' || (a.body->>'action_id')
FROM a;"
action1=$id
need "$action1" "the store action"
saction="SELECT * FROM ods_api.store_action_create"
expect_error "store action on an unknown position" OD404 ops_manager "$saction($store, 'NO-SUCH-SKU', '{\"action_type\": \"override\"}');" \
	"no inventory position for SKU NO-SUCH-SKU in store $store"
expect_error "store action without action_type" OD422 ops_manager "$saction($store, '$sku', '{\"quantity\": 1}');" "field action_type: required"
expect_error "store action: an unknown action_type" OD422 ops_manager "$saction($store, '$sku', '{\"action_type\": \"steal\"}');" \
	"field action_type: must be one of override, replenishment"
expect_error "store action: quantity -1" OD422 ops_manager "$saction($store, '$sku', '{\"action_type\": \"override\", \"quantity\": -1}');" \
	"field quantity: must be an integer from 0 to"
expect_error "store action: due_at tomorrow" OD422 ops_manager "$saction($store, '$sku', '{\"action_type\": \"override\", \"due_at\": \"tomorrow\"}');" \
	"field due_at: must be an RFC 3339 date-time"
expect_error "store action: due_at without an offset" OD422 ops_manager "$saction($store, '$sku', '{\"action_type\": \"override\", \"due_at\": \"2026-12-01T10:00:00\"}');" \
	"field due_at:"
expect_error "store action: due_at in month 13" OD422 ops_manager "$saction($store, '$sku', '{\"action_type\": \"override\", \"due_at\": \"2026-13-01T10:00:00Z\"}');" \
	"field due_at:"
expect_error "store action: status is server-set" OD422 ops_manager "$saction($store, '$sku', '{\"action_type\": \"override\", \"status\": \"done\"}');" \
	"field status: set by the server"
expect_error "store action as support_agent" 42501 support_agent "$saction($store, '$sku', '{\"action_type\": \"override\"}');"
expect "ods.url_segment percent-encodes a SKU for Location" "" "
SELECT ods.url_segment('SKU-1_a.b~c') = 'SKU-1_a.b~c' AND ods.url_segment('A B/é') = 'A%20B%2F%C3%A9';"

# ---- dispatch ----
sub=dispatcher-dee
expect_id "POST /v1/work-orders/{id}/assignments: 201, Location, ETag 1; the work order read shows it" field_dispatcher "
CREATE TEMP TABLE a AS SELECT * FROM ods_api.dispatch_assignment_create($wo, '{\"technician_id\": $tech, \"scheduled_for\": \"2026-12-02T08:00:00Z\", \"note\": \"bring a ladder\"}');
SELECT (a.status = 201 AND a.etag = '1' AND a.body->>'status' = 'assigned'
	AND (a.body->>'technician_id')::bigint = $tech AND a.body->>'scheduled_for' = '2026-12-02T08:00:00Z'
	AND a.body->>'created_by' = 'dispatcher-dee'
	AND a.location = '/v1/work-orders/$wo#assignment-' || (a.body->>'assignment_id')
	AND EXISTS (SELECT FROM json_array_elements(ods_api.work_order($wo)->'technicians') t,
		json_array_elements(t->'assignments') x
		WHERE (t->>'technician_id')::bigint = $tech AND x->>'assignment_id' = a.body->>'assignment_id'))::text
	|| '|' || (a.body->>'assignment_id')
FROM a;"
assignment1=$id
need "$assignment1" "the assignment"
expect_error "a second active assignment of the technician" OD409 field_dispatcher \
	"SELECT * FROM ods_api.dispatch_assignment_create($wo, '{\"technician_id\": $tech}');" "already has an active assignment"
expect_error "an assignment of an unknown technician" OD422 field_dispatcher \
	"SELECT * FROM ods_api.dispatch_assignment_create($wo, '{\"technician_id\": 987654321}');" "field technician_id: no such technician"
expect_error "an assignment to an unknown work order" OD404 field_dispatcher \
	"SELECT * FROM ods_api.dispatch_assignment_create(987654321, '{\"technician_id\": $tech}');" "no work order 987654321"
expect_error "an assignment without technician_id" OD422 field_dispatcher \
	"SELECT * FROM ods_api.dispatch_assignment_create($wo, '{\"note\": \"x\"}');" "field technician_id: required"
expect_error "an assignment: technician_id 0" OD422 field_dispatcher \
	"SELECT * FROM ods_api.dispatch_assignment_create($wo, '{\"technician_id\": 0}');" "field technician_id: must be a positive integer"
expect_error "an assignment as ops_manager" 42501 ops_manager \
	"SELECT * FROM ods_api.dispatch_assignment_create($wo, '{\"technician_id\": $tech}');"
expect "POST updates: arrived puts the assignment on_site" field_dispatcher "
SELECT status = 201 AND etag = '1' AND body->>'kind' = 'arrived'
	AND location = '/v1/work-orders/$wo#update-' || (body->>'update_id')
	AND body->'assignments'->0->>'status' = 'on_site'
FROM ods_api.work_order_update_create($wo, '{\"technician_id\": $tech, \"kind\": \"arrived\"}');"
expect "POST updates: completed completes the open assignment; the work order read shows both updates" field_dispatcher "
CREATE TEMP TABLE u AS SELECT * FROM ods_api.work_order_update_create($wo, '{\"technician_id\": $tech, \"kind\": \"completed\", \"note\": \"replaced the fuse\"}');
SELECT body->'assignments'->0->>'status' = 'completed' AND body->>'note' = 'replaced the fuse'
	AND (SELECT json_array_length(t->'updates') = 2 AND t->'assignments'->0->>'status' = 'completed'
		FROM json_array_elements(ods_api.work_order($wo)->'technicians') t
		WHERE (t->>'technician_id')::bigint = $tech)
FROM u;"
expect "after completion the technician can be assigned again" field_dispatcher "
SELECT status = 201 FROM ods_api.dispatch_assignment_create($wo, '{\"technician_id\": $tech}');"
expect_error "an update: an unknown kind" OD422 field_dispatcher \
	"SELECT * FROM ods_api.work_order_update_create($wo, '{\"technician_id\": $tech, \"kind\": \"lunch\"}');" \
	"field kind: must be one of arrived, progress"
expect_error "an update without kind" OD422 field_dispatcher \
	"SELECT * FROM ods_api.work_order_update_create($wo, '{\"technician_id\": $tech}');" "field kind: required"
expect_error "an update of an unknown technician" OD422 field_dispatcher \
	"SELECT * FROM ods_api.work_order_update_create($wo, '{\"technician_id\": 987654321, \"kind\": \"progress\"}');" \
	"field technician_id: no such technician"
expect_error "an update on an unknown work order" OD404 field_dispatcher \
	"SELECT * FROM ods_api.work_order_update_create(987654321, '{\"technician_id\": $tech, \"kind\": \"progress\"}');"

# ---- audit ----
expect "audit: the case's life, each write by the agent, before and after" "" "
SELECT array_agg(action ORDER BY audit_id) = ARRAY['insert', 'update', 'update', 'update', 'update',
		'update', 'update', 'update', 'update', 'update', 'update', 'update', 'soft_delete']
	AND bool_and(actor = 'agent-ana' AND role = 'support_agent' AND entity = 'support_cases')
	AND bool_and(CASE action WHEN 'insert' THEN before IS NULL AND after->>'case_id' = '$case1'
		ELSE (after->>'version')::int = (before->>'version')::int + 1 END)
	AND bool_and(action <> 'soft_delete' OR (before->'deleted_at' = 'null' AND after->>'deleted_at' IS NOT NULL))
FROM native.audit_log WHERE entity = 'support_cases' AND entity_id = '$case1';"
expect "audit: the first PATCH's before and after" "" "
SELECT before->>'status' = 'open' AND after->>'status' = 'pending' AND after->>'assigned_to' = 'agent.cy'
FROM native.audit_log WHERE entity = 'support_cases' AND entity_id = '$case1' AND action = 'update'
ORDER BY audit_id LIMIT 1;"
expect "audit: the note, the disposition with its case update in one transaction, the action and the dispatch rows" "" "
SELECT (SELECT actor = 'agent-ana' AND action = 'insert' FROM native.audit_log WHERE entity = 'case_notes' AND entity_id = '$note1')
	AND (SELECT count(DISTINCT xact_id) = 1 AND count(*) = 2 AND bool_and(actor = 'analyst-fei' AND role = 'fraud_analyst')
		AND bool_or(entity = 'fraud_cases' AND before->>'status' = 'in_review' AND after->>'status' = 'closed')
		FROM native.audit_log WHERE xact_id = (SELECT xact_id FROM native.audit_log
			WHERE entity = 'fraud_dispositions' AND entity_id = '$disp1'))
	AND (SELECT actor = 'manager-omar' AND role = 'ops_manager' FROM native.audit_log
		WHERE entity = 'store_actions' AND entity_id = '$action1')
	AND (SELECT array_agg(after->>'status' ORDER BY audit_id) = ARRAY['assigned', 'on_site', 'completed']
		AND bool_and(actor = 'dispatcher-dee') FROM native.audit_log
		WHERE entity = 'dispatch_assignments' AND entity_id = '$assignment1')
	AND (SELECT count(*) = 2 FROM native.audit_log WHERE entity = 'work_order_updates' AND actor = 'dispatcher-dee');"
expect "audit: refused and rolled back writes left nothing (one row per committed write of this test)" "" "
SELECT (SELECT count(*) FROM native.audit_log WHERE actor IN ('agent-ana', 'support_agent') AND entity = 'support_cases')
	= (SELECT count(*) FROM native.support_cases WHERE created_by IN ('agent-ana', 'support_agent'))
	  + (SELECT sum(version - 1) FROM native.support_cases WHERE created_by IN ('agent-ana', 'support_agent'))
	AND (SELECT array_agg(actor ORDER BY audit_id) FROM native.audit_log
		WHERE entity = 'fraud_cases' AND entity_id = '$b1') = ARRAY[current_user::text, 'admin-ada']
	AND NOT EXISTS (SELECT FROM native.audit_log WHERE entity = 'fraud_cases' AND entity_id = '$b1'
		AND actor = 'analyst-fei');"
expect "audit: the superuser's own writes are logged too (actor: the database role)" "" "
UPDATE native.fraud_cases SET reason = 'edited by hand' WHERE case_id = '$a4';
SELECT actor = current_user AND role = current_user AND after->>'reason' = 'edited by hand'
FROM native.audit_log WHERE entity = 'fraud_cases' AND entity_id = '$a4' ORDER BY audit_id DESC LIMIT 1;"
for stmt in "UPDATE native.audit_log SET actor = 'nobody'" "DELETE FROM native.audit_log" \
	"DELETE FROM native.audit_log WHERE false" "TRUNCATE native.audit_log"; do
	expect_error "audit_log is append-only for the superuser: $stmt" 42501 "" "$stmt;" "append-only"
done
expect_error "audit_log is append-only under session_replication_role = replica too" 42501 "" \
	"SET LOCAL session_replication_role = replica; DELETE FROM native.audit_log;" "append-only"
for role in support_agent fraud_analyst ops_manager field_dispatcher ods_admin ods_sync ods_authenticator; do
	expect_error "no INSERT into audit_log as $role" 42501 "$role" \
		"INSERT INTO native.audit_log (actor, role, action, entity, entity_id) VALUES ('x', 'x', 'insert', 'x', 'x');"
done
expect_error "no UPDATE of audit_log as ods_admin" 42501 ods_admin "UPDATE native.audit_log SET actor = 'x';"
expect_error "no reading of audit_log as support_agent" 42501 support_agent "SELECT count(*) FROM native.audit_log;"
expect "ods_admin reads audit_log" ods_admin "SELECT count(*) > 0 FROM native.audit_log;"
expect "audit_log privileges: SELECT for ods_admin, nothing else for any app role" "" "
SELECT bool_and(NOT has_table_privilege(r, 'native.audit_log', 'INSERT')
		AND NOT has_table_privilege(r, 'native.audit_log', 'UPDATE')
		AND NOT has_table_privilege(r, 'native.audit_log', 'DELETE')
		AND NOT has_table_privilege(r, 'native.audit_log', 'TRUNCATE')
		AND has_table_privilege(r, 'native.audit_log', 'SELECT') = (r = 'ods_admin'))
FROM unnest(ARRAY['support_agent', 'fraud_analyst', 'ops_manager', 'field_dispatcher', 'ods_admin',
	'ods_sync', 'ods_authenticator']) r;"
expect "the audit rows are all still there" "" "
SELECT count(*) > 0 AND bool_and(actor <> 'nobody') FROM native.audit_log;"

# ---- bodies against the schemas of openapi.yaml (once the write paths are in it) ----
if ! python3 -c 'import yaml, jsonschema' 2>/dev/null; then
	skipped "write bodies match openapi.yaml: python3 with yaml and jsonschema is not installed"
elif ! grep -q '^    SupportCaseDetail:' "$top/openapi.yaml" 2>/dev/null; then
	skipped "write bodies match openapi.yaml: its components have no SupportCaseDetail yet"
else
	sub=writes_sql
	sql ods_admin "
SELECT 'SupportCaseDetail' || E'\t' || body::text FROM native.support_cases s, ods_api.support_case(s.case_id) WHERE s.customer_id = $cust;
SELECT 'SupportCasePage' || E'\t' || body::text FROM ods_api.support_case_queue(NULL, NULL, 500, NULL);
SELECT 'FraudCase' || E'\t' || body::text FROM native.fraud_cases f, ods_api.fraud_case(f.case_id) WHERE f.customer_id = $cust;
SELECT 'InventoryPosition' || E'\t' || ods_api.inventory_position($store, '$sku')::text;
SELECT 'WorkOrder' || E'\t' || ods_api.work_order($wo)::text;" >"$work/bodies.tsv"
	sql support_agent "
SELECT 'SupportCaseNote' || E'\t' || body::text FROM ods_api.support_case_note_create(
	(SELECT (body->>'case_id')::uuid FROM ods_api.support_case_create(jsonb_build_object('customer_id', $cust, 'subject', 'schema'))),
	'{\"body\": \"schema\"}');" >>"$work/bodies.tsv"
	sql ods_admin "
SELECT 'FraudDisposition' || E'\t' || body::text FROM ods_api.fraud_disposition_create('$b1', '{\"decision\": \"release\"}', NULL);
SELECT 'StoreAction' || E'\t' || body::text FROM ods_api.store_action_create($store, '$sku', '{\"action_type\": \"recount\"}');
SELECT 'DispatchAssignmentCreated' || E'\t' || body::text FROM ods_api.dispatch_assignment_create($wo, jsonb_build_object('technician_id',
	(SELECT min(t.technician_id) FROM synced.technician_profile t WHERE NOT EXISTS (SELECT FROM native.dispatch_assignments a
		WHERE a.work_order_id = $wo AND a.technician_id = t.technician_id AND a.status IN ('assigned', 'en_route', 'on_site')))));
SELECT 'WorkOrderUpdateCreated' || E'\t' || body::text FROM ods_api.work_order_update_create($wo, jsonb_build_object('technician_id', $tech, 'kind', 'progress'));" \
		>>"$work/bodies.tsv"
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
sys.exit(1 if bad or n < 10 else 0)
EOF
	then
		ok "write bodies match openapi.yaml ($(tail -n 1 "$work/schema.log"))"
	else
		not_ok "write bodies match openapi.yaml:"
		head -n 20 "$work/schema.log" "$work/err"
	fi
fi

finish
