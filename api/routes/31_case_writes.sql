-- 31_case_writes.sql: the support case work queue and case writes (DESIGN section 6),
-- and the helpers every write route shares. Conventions: see 10_customers.sql.
--
--   GET    /v1/cases                    ods_api.support_case_queue        cases:read (paged)
--   POST   /v1/cases                    ods_api.support_case_create       cases:write
--   GET    /v1/cases/{case_id}          ods_api.support_case              cases:read
--   PATCH  /v1/cases/{case_id}          ods_api.support_case_update       cases:write
--   DELETE /v1/cases/{case_id}          ods_api.support_case_delete       cases:write
--   POST   /v1/cases/{case_id}/notes    ods_api.support_case_note_create  cases:write
--
-- EXECUTE: support_agent and ods_admin.
--
-- Write routes (odsd's side: api/schema/010_routes.sql):
--   * the JSON body arrives as p_body jsonb (NULL without a body; odsd has already
--     refused non-JSON with 415 and malformed JSON with 400), the If-Match entity tag
--     as p_if_match text (unquoted, NULL without the header);
--   * they return (body, status, location, etag): a create 201 with Location and the
--     new row's ETag, an update 200 with the ETag, a soft delete 204 with no body.
--     Idempotency-Key on POST is odsd's business (it wraps these functions);
--   * body rules, checked before anything is written, each error naming its field:
--     no body or not an object: OD400; a server-set field (ids, created_*,
--     updated_at, deleted_at, version, ...): OD422 "field x: set by the server"; a
--     field that may not change: "field x: cannot be changed"; any other field the
--     route does not take: "field x: unknown"; a required field missing or null:
--     "field x: required"; a value of the wrong JSON type or outside its rule: OD422
--     "field x: must be ..." (422 rather than 400: the body is valid JSON that breaks
--     the route's schema). Unknown path entities are OD404; ids in a body that point
--     nowhere are OD422 ("field customer_id: no such customer");
--   * If-Match: when given, it must match the entity's current ETag, else OD412 and
--     nothing changes; "*" matches any live entity; no header: the write proceeds;
--   * created_by is the token's sub (the database role without one).
--
-- ETags. A case's representation includes its notes, and a note does not touch the
-- case row, so the ETag of a case is its version, followed by ".<n>" once it has
-- notes (n: the sum of its notes' versions, which every note insert or update
-- raises): "3", then "3.1" after a note. GET with If-None-Match therefore sees a new
-- note, while If-Match on PATCH / DELETE compares only the part before the dot with
-- the case's version (a note never makes a case edit stale). The fraud case of
-- 41_fraud_writes.sql works the same way with its dispositions and analyst notes.

-- Dropped first, so the definitions below may change arguments or result.
SELECT ods.drop_route_functions('support_case_queue', 'support_case_create', 'support_case',
	'support_case_update', 'support_case_delete', 'support_case_note_create');

-- ---- shared write helpers (schema ods; later route files use them) ----
-- CREATE OR REPLACE, never dropped: 41_, 51_ and 61_ depend on them. Each is
-- SECURITY INVOKER and reads no table, so EXECUTE on them grants nothing.

-- The actor of a write: the token's sub, else the database role.
CREATE OR REPLACE FUNCTION ods.actor() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(ods.jwt_claim('sub'), current_user::text);

-- Checks the shape of a body: a JSON object whose keys are all in fields (server_set
-- and fixed keys, which it may not hold, get their own message); required keys
-- present and not null.
CREATE OR REPLACE FUNCTION ods.body_fields(body jsonb, fields text[], server_set text[],
	required text[] DEFAULT '{}', fixed text[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
	k text;
BEGIN
	IF body IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'OD400',
			MESSAGE = 'this request needs a JSON object body (Content-Type: application/json)';
	END IF;
	IF jsonb_typeof(body) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'OD400', MESSAGE = 'the body must be a JSON object';
	END IF;
	FOR k IN SELECT jsonb_object_keys(body) ORDER BY 1 LOOP
		IF k = ANY (fields) THEN
			CONTINUE;
		END IF;
		-- The name is the client's: shown, but printable and short.
		RAISE EXCEPTION USING ERRCODE = 'OD422', MESSAGE = format('field %s: %s',
			left(regexp_replace(k, '[^[:print:]]', '?', 'g'), 64),
			CASE WHEN k = ANY (server_set) THEN 'set by the server'
			     WHEN k = ANY (fixed) THEN 'cannot be changed'
			     ELSE 'unknown' END);
	END LOOP;
	FOREACH k IN ARRAY required LOOP
		IF coalesce(body -> k, 'null') = 'null' THEN
			RAISE EXCEPTION USING ERRCODE = 'OD422', MESSAGE = format('field %s: required', k);
		END IF;
	END LOOP;
END
$$;

-- A JSON null given for a field that may not be null.
CREATE OR REPLACE FUNCTION ods.body_null(body jsonb, field text, nullable boolean)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
	IF coalesce(body -> field, 'null') <> 'null' THEN
		RETURN false;
	END IF;
	IF NOT nullable AND body ? field THEN
		RAISE EXCEPTION USING ERRCODE = 'OD422', MESSAGE = format('field %s: must not be null', field);
	END IF;
	RETURN true;
END
$$;

-- body.field as text: NULL when absent or null; a string of at most max_len
-- characters (NULL: no limit), not blank when nonblank.
CREATE OR REPLACE FUNCTION ods.body_text(body jsonb, field text, max_len integer,
	nonblank boolean, nullable boolean DEFAULT true)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
	v text;
BEGIN
	IF ods.body_null(body, field, nullable) THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(body -> field) <> 'string' THEN
		RAISE EXCEPTION USING ERRCODE = 'OD422', MESSAGE = format('field %s: must be a string', field);
	END IF;
	v := body ->> field;
	IF nonblank AND btrim(v, E' \t\r\n') = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'OD422', MESSAGE = format('field %s: must not be blank', field);
	END IF;
	IF char_length(v) > max_len THEN
		RAISE EXCEPTION USING ERRCODE = 'OD422',
			MESSAGE = format('field %s: must be at most %s characters', field, max_len);
	END IF;
	RETURN v;
END
$$;

-- body.field as an integer from lo to hi (a JSON number without a fraction).
CREATE OR REPLACE FUNCTION ods.body_int(body jsonb, field text, lo bigint, hi bigint,
	nullable boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
	n numeric;
BEGIN
	IF ods.body_null(body, field, nullable) THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(body -> field) = 'number' THEN
		n := (body -> field)::numeric;
		IF n = trunc(n) AND n BETWEEN lo AND hi THEN
			RETURN n::bigint;
		END IF;
	END IF;
	RAISE EXCEPTION USING ERRCODE = 'OD422', MESSAGE = CASE
		WHEN lo = 1 AND hi = 9223372036854775807
		THEN format('field %s: must be a positive integer', field)
		ELSE format('field %s: must be an integer from %s to %s', field, lo, hi) END;
END
$$;

-- body.field as one of allowed (a string).
CREATE OR REPLACE FUNCTION ods.body_enum(body jsonb, field text, allowed text[],
	nullable boolean DEFAULT true)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
	IF ods.body_null(body, field, nullable) THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(body -> field) = 'string' AND body ->> field = ANY (allowed) THEN
		RETURN body ->> field;
	END IF;
	RAISE EXCEPTION USING ERRCODE = 'OD422',
		MESSAGE = format('field %s: must be one of %s', field, array_to_string(allowed, ', '));
END
$$;

-- body.field as a timestamp: an RFC 3339 date-time with its offset ("Z" or +hh:mm),
-- so the meaning never depends on the session time zone; no "now" or "infinity".
CREATE OR REPLACE FUNCTION ods.body_ts(body jsonb, field text, nullable boolean DEFAULT true)
RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
	v text;
BEGIN
	IF ods.body_null(body, field, nullable) THEN
		RETURN NULL;
	END IF;
	v := body ->> field;
	IF jsonb_typeof(body -> field) = 'string'
	   AND v ~ '^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,6})?([Zz]|[+-]\d\d:\d\d)$' THEN
		BEGIN
			RETURN v::timestamptz;
		EXCEPTION WHEN data_exception THEN
			NULL; -- e.g. month 13
		END;
	END IF;
	RAISE EXCEPTION USING ERRCODE = 'OD422', MESSAGE = format(
		'field %s: must be an RFC 3339 date-time with an offset, e.g. 2026-11-24T10:00:00Z', field);
END
$$;

-- If-Match against an entity's current version (see ETags above): the tag's part
-- before the first dot, or "*". NULL (no header) passes.
CREATE OR REPLACE FUNCTION ods.if_match(if_match text, version integer, what text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
	IF if_match IS NOT NULL AND if_match <> '*'
	   AND split_part(if_match, '.', 1) IS DISTINCT FROM version::text THEN
		RAISE EXCEPTION USING ERRCODE = 'OD412',
			MESSAGE = format('the %s was modified since (it is at version %s now)', what, version);
	END IF;
END
$$;

-- One path segment, percent-encoded (RFC 3986 unreserved characters stay), for
-- Location headers.
CREATE OR REPLACE FUNCTION ods.url_segment(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT coalesce(string_agg(CASE WHEN c ~ '^[A-Za-z0-9._~-]$' THEN c
		ELSE upper(regexp_replace(encode(convert_to(c, 'UTF8'), 'hex'), '(..)', '%\1', 'g'))
		END, '' ORDER BY i), '')
	FROM regexp_split_to_table(s, '') WITH ORDINALITY AS t(c, i));

REVOKE ALL ON FUNCTION ods.actor(), ods.body_fields(jsonb, text[], text[], text[], text[]),
	ods.body_null(jsonb, text, boolean), ods.body_text(jsonb, text, integer, boolean, boolean),
	ods.body_int(jsonb, text, bigint, bigint, boolean),
	ods.body_enum(jsonb, text, text[], boolean), ods.body_ts(jsonb, text, boolean),
	ods.if_match(text, integer, text), ods.url_segment(text)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods.actor(), ods.body_fields(jsonb, text[], text[], text[], text[]),
	ods.body_null(jsonb, text, boolean), ods.body_text(jsonb, text, integer, boolean, boolean),
	ods.body_int(jsonb, text, bigint, bigint, boolean),
	ods.body_enum(jsonb, text, text[], boolean), ods.body_ts(jsonb, text, boolean),
	ods.if_match(text, integer, text), ods.url_segment(text)
	TO support_agent, fraud_analyst, ops_manager, field_dispatcher, ods_admin;

-- ---- support cases ----

-- A case as lists show it (the items of GET /v1/cases, as those of a customer's
-- cases); support_case_doc below adds its notes.
CREATE OR REPLACE FUNCTION ods.support_case_json(s native.support_cases) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT json_build_object(
		'case_id', s.case_id,
		'customer_id', s.customer_id,
		'status', s.status,
		'subject', s.subject,
		'description', s.description,
		'priority', s.priority,
		'assigned_to', s.assigned_to,
		'channel', s.channel,
		'order_id', s.order_id,
		'resolved_at', ods.json_ts(s.resolved_at),
		'created_at', ods.json_ts(s.created_at),
		'updated_at', ods.json_ts(s.updated_at),
		'created_by', s.created_by,
		'version', s.version)
$$;

-- One live case with its live notes (oldest first), and its ETag; no row when the
-- case is unknown or deleted (404).
CREATE OR REPLACE FUNCTION ods.support_case_doc(p_case_id uuid)
RETURNS TABLE (body json, etag text)
LANGUAGE sql STABLE AS $$
	SELECT json_build_object(
		'case_id', s.case_id,
		'customer_id', s.customer_id,
		'status', s.status,
		'subject', s.subject,
		'description', s.description,
		'priority', s.priority,
		'assigned_to', s.assigned_to,
		'channel', s.channel,
		'order_id', s.order_id,
		'resolved_at', ods.json_ts(s.resolved_at),
		'created_at', ods.json_ts(s.created_at),
		'updated_at', ods.json_ts(s.updated_at),
		'created_by', s.created_by,
		'version', s.version,
		'notes', n.notes),
	       s.version::text || coalesce('.' || nullif(n.marker, 0)::text, '')
	FROM native.support_cases s
	CROSS JOIN LATERAL (
		SELECT coalesce(json_agg(json_build_object(
				'note_id', x.note_id,
				'body', x.body,
				'visibility', x.visibility,
				'created_at', ods.json_ts(x.created_at),
				'created_by', x.created_by,
				'updated_at', ods.json_ts(x.updated_at),
				'version', x.version)
			ORDER BY x.created_at, x.note_id) FILTER (WHERE x.deleted_at IS NULL), '[]') AS notes,
		       coalesce(sum(x.version), 0) AS marker
		FROM native.case_notes x
		WHERE x.case_id = s.case_id) n
	WHERE s.case_id = p_case_id AND s.deleted_at IS NULL
$$;

REVOKE ALL ON FUNCTION ods.support_case_json(native.support_cases), ods.support_case_doc(uuid)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods.support_case_json(native.support_cases), ods.support_case_doc(uuid)
	TO support_agent, ods_admin;

-- The work queue: live cases, newest first (keyset over created_at, case_id, both
-- descending, as a customer's cases), optionally of one status and/or one assignee.
-- limit 1-500, default 50. Always a page (never 404).
CREATE OR REPLACE FUNCTION ods_api.support_case_queue(status text, assigned_to text,
	"limit" integer, cursor text)
RETURNS TABLE (body json, next_cursor text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	lim integer := ods.page_limit(support_case_queue."limit");
	pos jsonb := ods.cursor_decode('support_case_queue', support_case_queue.cursor);
	after_t timestamptz;
	after_id uuid;
	items json;
	n bigint;
BEGIN
	PERFORM ods.check_case_status(support_case_queue.status);
	SELECT a.t, a.id INTO after_t, after_id FROM ods.case_page_after(pos) AS a;

	SELECT coalesce(json_agg(ods.support_case_json(p.r) ORDER BY p.n) FILTER (WHERE p.n <= lim), '[]'),
	       count(*),
	       max(CASE WHEN p.n = lim THEN ods.cursor_encode('support_case_queue',
			jsonb_build_object('t', (p.r).created_at, 'id', (p.r).case_id)) END)
	INTO items, n, support_case_queue.next_cursor
	FROM (SELECT s AS r, row_number() OVER (ORDER BY s.created_at DESC, s.case_id DESC) AS n
		FROM native.support_cases s
		WHERE s.deleted_at IS NULL
		  AND (support_case_queue.status IS NULL OR s.status = support_case_queue.status)
		  AND (support_case_queue.assigned_to IS NULL
		       OR s.assigned_to = support_case_queue.assigned_to)
		  AND (after_t IS NULL OR (s.created_at, s.case_id) < (after_t, after_id))
		ORDER BY s.created_at DESC, s.case_id DESC
		LIMIT lim + 1) p;

	IF n <= lim THEN
		support_case_queue.next_cursor := NULL; -- no row after this page
	END IF;
	support_case_queue.body := json_build_object('items', items,
		'next_cursor', support_case_queue.next_cursor);
	RETURN NEXT;
END
$$;

-- One case with its notes; no row (404) when unknown or deleted.
CREATE OR REPLACE FUNCTION ods_api.support_case(case_id uuid)
RETURNS TABLE (body json, etag text)
LANGUAGE sql STABLE AS $$
	SELECT d.body, d.etag FROM ods.support_case_doc(support_case.case_id) d
$$;

-- Create: {customer_id*, subject*, description, priority (1-5, default 3),
-- assigned_to, channel (phone|email|chat|web), order_id (an order of that customer)}.
-- A new case is open. The customer must be in customer_current.
CREATE OR REPLACE FUNCTION ods_api.support_case_create(p_body jsonb)
RETURNS TABLE (body json, status integer, location text, etag text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_customer bigint;
	v_subject text;
	v_description text;
	v_priority integer;
	v_assigned text;
	v_channel text;
	v_order bigint;
	v_id uuid;
BEGIN
	PERFORM ods.body_fields(p_body,
		fields => ARRAY['customer_id', 'subject', 'description', 'priority', 'assigned_to',
			'channel', 'order_id'],
		server_set => ARRAY['case_id', 'status', 'resolved_at', 'created_by', 'created_at',
			'updated_at', 'deleted_at', 'version', 'notes'],
		required => ARRAY['customer_id', 'subject']);
	v_customer := ods.body_int(p_body, 'customer_id', 1, 9223372036854775807);
	v_subject := ods.body_text(p_body, 'subject', 500, true);
	v_description := ods.body_text(p_body, 'description', NULL, false);
	v_priority := coalesce(ods.body_int(p_body, 'priority', 1, 5), 3);
	v_assigned := ods.body_text(p_body, 'assigned_to', 200, true);
	v_channel := ods.body_enum(p_body, 'channel', ARRAY['phone', 'email', 'chat', 'web']);
	v_order := ods.body_int(p_body, 'order_id', 1, 9223372036854775807);

	IF NOT EXISTS (SELECT FROM synced.customer_current c WHERE c.customer_id = v_customer) THEN
		RAISE EXCEPTION USING ERRCODE = 'OD422', MESSAGE = 'field customer_id: no such customer';
	END IF;
	IF v_order IS NOT NULL AND NOT EXISTS (SELECT FROM synced.order_current o
			WHERE o.order_id = v_order AND o.customer_id = v_customer) THEN
		RAISE EXCEPTION USING ERRCODE = 'OD422',
			MESSAGE = 'field order_id: no such order of this customer';
	END IF;

	INSERT INTO native.support_cases AS s (customer_id, subject, description, priority,
		assigned_to, channel, order_id, created_by)
	VALUES (v_customer, v_subject, v_description, v_priority, v_assigned, v_channel, v_order,
		ods.actor())
	RETURNING s.case_id INTO v_id;

	SELECT d.body, d.etag INTO support_case_create.body, support_case_create.etag
	FROM ods.support_case_doc(v_id) d;
	support_case_create.status := 201;
	support_case_create.location := '/v1/cases/' || v_id;
	RETURN NEXT;
END
$$;

-- Update: {status, assigned_to, priority, subject, description}, each optional;
-- assigned_to and description take null (unassign, clear). Any status may follow any
-- other; resolving sets resolved_at, reopening (open, pending) clears it, closing
-- keeps it. {} changes nothing (200 with the case as it is).
CREATE OR REPLACE FUNCTION ods_api.support_case_update(case_id uuid, p_body jsonb,
	p_if_match text)
RETURNS TABLE (body json, status integer, location text, etag text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	c native.support_cases;
	v_status text;
	v_priority integer;
	v_subject text;
	v_assigned text;
	v_description text;
BEGIN
	PERFORM ods.body_fields(p_body,
		fields => ARRAY['status', 'assigned_to', 'priority', 'subject', 'description'],
		server_set => ARRAY['case_id', 'resolved_at', 'created_by', 'created_at', 'updated_at',
			'deleted_at', 'version', 'notes'],
		fixed => ARRAY['customer_id', 'channel', 'order_id']);
	v_status := ods.body_enum(p_body, 'status', ARRAY['open', 'pending', 'resolved', 'closed'],
		nullable => false);
	v_priority := ods.body_int(p_body, 'priority', 1, 5, nullable => false);
	v_subject := ods.body_text(p_body, 'subject', 500, true, nullable => false);
	v_assigned := ods.body_text(p_body, 'assigned_to', 200, true);
	v_description := ods.body_text(p_body, 'description', NULL, false);

	SELECT * INTO c FROM native.support_cases s
	WHERE s.case_id = support_case_update.case_id AND s.deleted_at IS NULL
	FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'OD404',
			MESSAGE = format('no case %s', support_case_update.case_id);
	END IF;
	PERFORM ods.if_match(p_if_match, c.version, 'case');

	IF p_body <> '{}' THEN
		UPDATE native.support_cases s SET
			status = coalesce(v_status, s.status),
			priority = coalesce(v_priority, s.priority),
			subject = coalesce(v_subject, s.subject),
			assigned_to = CASE WHEN p_body ? 'assigned_to' THEN v_assigned ELSE s.assigned_to END,
			description = CASE WHEN p_body ? 'description' THEN v_description ELSE s.description END,
			resolved_at = CASE
				WHEN v_status = 'resolved' AND s.status <> 'resolved' THEN now()
				WHEN v_status IN ('open', 'pending') THEN NULL
				ELSE s.resolved_at END
		WHERE s.case_id = c.case_id;
	END IF;

	SELECT d.body, d.etag INTO support_case_update.body, support_case_update.etag
	FROM ods.support_case_doc(c.case_id) d;
	support_case_update.status := 200;
	RETURN NEXT;
END
$$;

-- Soft delete: deleted_at = now(); 204. The row and its notes stay; reads and lists
-- skip it from now on (a second DELETE is a 404).
CREATE OR REPLACE FUNCTION ods_api.support_case_delete(case_id uuid, p_if_match text)
RETURNS TABLE (body json, status integer, location text, etag text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	c native.support_cases;
BEGIN
	SELECT * INTO c FROM native.support_cases s
	WHERE s.case_id = support_case_delete.case_id AND s.deleted_at IS NULL
	FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'OD404',
			MESSAGE = format('no case %s', support_case_delete.case_id);
	END IF;
	PERFORM ods.if_match(p_if_match, c.version, 'case');
	UPDATE native.support_cases s SET deleted_at = now() WHERE s.case_id = c.case_id;
	support_case_delete.status := 204;
	RETURN NEXT;
END
$$;

-- A note: {body*, visibility (internal|customer, default internal)} on a live case.
-- 201 with the note; Location is the case, with the note's anchor. The case row is
-- not touched (its ETag changes through its notes, see above).
CREATE OR REPLACE FUNCTION ods_api.support_case_note_create(case_id uuid, p_body jsonb)
RETURNS TABLE (body json, status integer, location text, etag text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_body text;
	v_visibility text;
	n native.case_notes;
BEGIN
	PERFORM ods.body_fields(p_body,
		fields => ARRAY['body', 'visibility'],
		server_set => ARRAY['note_id', 'case_id', 'created_by', 'created_at', 'updated_at',
			'deleted_at', 'version'],
		required => ARRAY['body']);
	v_body := ods.body_text(p_body, 'body', NULL, true);
	v_visibility := coalesce(ods.body_enum(p_body, 'visibility', ARRAY['internal', 'customer']),
		'internal');

	-- FOR SHARE: a concurrent DELETE of the case waits for this note, or this note
	-- for the DELETE (and then finds no live case).
	PERFORM 1 FROM native.support_cases s
	WHERE s.case_id = support_case_note_create.case_id AND s.deleted_at IS NULL
	FOR SHARE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'OD404',
			MESSAGE = format('no case %s', support_case_note_create.case_id);
	END IF;

	INSERT INTO native.case_notes AS x (case_id, body, visibility, created_by)
	VALUES (support_case_note_create.case_id, v_body, v_visibility, ods.actor())
	RETURNING x.* INTO n;

	support_case_note_create.body := json_build_object(
		'note_id', n.note_id,
		'case_id', n.case_id,
		'body', n.body,
		'visibility', n.visibility,
		'created_at', ods.json_ts(n.created_at),
		'created_by', n.created_by,
		'updated_at', ods.json_ts(n.updated_at),
		'version', n.version);
	support_case_note_create.status := 201;
	support_case_note_create.location := format('/v1/cases/%s#note-%s', n.case_id, n.note_id);
	support_case_note_create.etag := n.version::text;
	RETURN NEXT;
END
$$;

INSERT INTO ods.routes (method, path, function, scope, reads, paged, summary) VALUES
	('GET', '/v1/cases', 'ods_api.support_case_queue', 'cases:read', '{}', true,
	 'Support work queue: live cases newest first, optionally by status and assignee'),
	('POST', '/v1/cases', 'ods_api.support_case_create', 'cases:write', '{customer_current}', false,
	 'Open a support case for a customer'),
	('GET', '/v1/cases/{case_id}', 'ods_api.support_case', 'cases:read', '{}', false,
	 'One support case with its notes'),
	('PATCH', '/v1/cases/{case_id}', 'ods_api.support_case_update', 'cases:write', '{}', false,
	 'Update a support case (status, assignee, priority, subject, description); honours If-Match'),
	('DELETE', '/v1/cases/{case_id}', 'ods_api.support_case_delete', 'cases:write', '{}', false,
	 'Soft-delete a support case; honours If-Match'),
	('POST', '/v1/cases/{case_id}/notes', 'ods_api.support_case_note_create', 'cases:write', '{}', false,
	 'Append a note to a support case')
ON CONFLICT (method, path) DO UPDATE SET function = EXCLUDED.function, scope = EXCLUDED.scope,
	reads = EXCLUDED.reads, paged = EXCLUDED.paged, summary = EXCLUDED.summary;

REVOKE ALL ON FUNCTION ods_api.support_case_queue(text, text, integer, text),
	ods_api.support_case(uuid), ods_api.support_case_create(jsonb),
	ods_api.support_case_update(uuid, jsonb, text), ods_api.support_case_delete(uuid, text),
	ods_api.support_case_note_create(uuid, jsonb)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.support_case_queue(text, text, integer, text),
	ods_api.support_case(uuid), ods_api.support_case_create(jsonb),
	ods_api.support_case_update(uuid, jsonb, text), ods_api.support_case_delete(uuid, text),
	ods_api.support_case_note_create(uuid, jsonb)
	TO support_agent, ods_admin;
