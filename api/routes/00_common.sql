-- 00_common.sql: helpers shared by the route functions (repeatable; sorts first, so
-- every later route file can use them).
--
-- They live in schema ods (machinery), not ods_api, so they can never be mistaken
-- for routes. Each is SECURITY INVOKER and touches no table: EXECUTE on them grants
-- nothing. The two formatting helpers are single-expression SQL functions, which the
-- planner inlines into the route queries.
--
--   ods.json_ts(t)              RFC 3339 UTC text, whole seconds ("2026-11-24T10:00:00Z"),
--                               the format of the ODS-Freshness header; NULL -> NULL
--   ods.json_meta(c, s)         {"source_committed_at": ..., "synced_at": ...} for a
--                               synced row (DESIGN section 5, row-level freshness)
--   ods.page_limit(n)           a list's ?limit=: NULL -> 50; 1..500, else OD400
--   ods.cursor_encode(kind, k)  opaque ?cursor= text: base64url of {"k": kind, ...k}
--   ods.cursor_decode(kind, c)  its inverse; OD400 unless c is a cursor of that kind
--   ods.check_case_status(s)    a case list's ?status=: NULL or open|pending|resolved|closed, else OD400
--   ods.case_page_after(pos)    (t, id): the (created_at, case_id) a decoded case-list
--                               cursor continues after; NULLs for the first page; OD400
--                               when the cursor lacks them
--   ods.drop_route_functions(name, ...)  for route files only (not granted): drops
--                               every ods_api function of these names, whatever its
--                               arguments, so a file can change a signature or a
--                               return type (CREATE OR REPLACE can do neither; a new
--                               signature would leave an overload odsd refuses)
--
-- Cursors carry the keyset position of the last row of a page (exact values: to_jsonb
-- of a timestamptz keeps its microseconds and offset) and the list they belong to, so
-- a cursor of one list given to another is a 400, not a silently wrong page.

CREATE OR REPLACE FUNCTION ods.json_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');

CREATE OR REPLACE FUNCTION ods.json_meta(source_committed_at timestamptz, synced_at timestamptz)
RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
RETURN json_build_object('source_committed_at', ods.json_ts(source_committed_at),
	'synced_at', ods.json_ts(synced_at));

CREATE OR REPLACE FUNCTION ods.page_limit(n integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
	IF n IS NULL THEN
		RETURN 50;
	END IF;
	IF n < 1 OR n > 500 THEN
		RAISE EXCEPTION USING ERRCODE = 'OD400',
			MESSAGE = 'limit must be an integer from 1 to 500';
	END IF;
	RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION ods.cursor_encode(kind text, keyset jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN rtrim(translate(encode(convert_to((jsonb_build_object('k', kind) || keyset)::text,
	'UTF8'), 'base64'), E'+/\n', '-_'), '=');

CREATE OR REPLACE FUNCTION ods.cursor_decode(kind text, cursor text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
	v jsonb;
BEGIN
	IF cursor IS NULL THEN
		RETURN NULL;
	END IF;
	IF length(cursor) <= 4096 AND cursor ~ '^[A-Za-z0-9_-]+$' THEN
		BEGIN
			v := convert_from(decode(translate(cursor, '-_', '+/')
				|| repeat('=', (4 - length(cursor) % 4) % 4), 'base64'), 'UTF8')::jsonb;
		EXCEPTION WHEN data_exception THEN
			v := NULL; -- not base64, not UTF-8 or not JSON
		END;
	END IF;
	IF jsonb_typeof(v) IS DISTINCT FROM 'object' OR v->>'k' IS DISTINCT FROM kind THEN
		RAISE EXCEPTION USING ERRCODE = 'OD400',
			MESSAGE = 'cursor is not valid for this list (use the next_cursor of its previous page)';
	END IF;
	RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION ods.drop_route_functions(VARIADIC names text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
		WHERE p.pronamespace = 'ods_api'::regnamespace AND p.proname = ANY (names)
	LOOP
		EXECUTE format('DROP FUNCTION %s', f);
	END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION ods.check_case_status(status text) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
	IF status IS NOT NULL AND status NOT IN ('open', 'pending', 'resolved', 'closed') THEN
		RAISE EXCEPTION USING ERRCODE = 'OD400',
			MESSAGE = 'status must be one of open, pending, resolved, closed';
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION ods.case_page_after(pos jsonb, OUT t timestamptz, OUT id uuid)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
	IF pos IS NULL THEN
		RETURN;
	END IF;
	BEGIN
		t := (pos->>'t')::timestamptz;
		id := (pos->>'id')::uuid;
	EXCEPTION WHEN data_exception THEN
		t := NULL;
	END;
	IF t IS NULL OR id IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'OD400',
			MESSAGE = 'cursor is not valid for this list (use the next_cursor of its previous page)';
	END IF;
END
$$;

-- Explicit, whatever the default privileges of the migrating role: EXECUTE is the
-- grant that matters for route functions, so no function here relies on defaults.
REVOKE ALL ON FUNCTION ods.json_ts(timestamptz), ods.json_meta(timestamptz, timestamptz),
	ods.page_limit(integer), ods.cursor_encode(text, jsonb), ods.cursor_decode(text, text),
	ods.check_case_status(text), ods.case_page_after(jsonb), ods.drop_route_functions(text[])
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods.json_ts(timestamptz), ods.json_meta(timestamptz, timestamptz),
	ods.page_limit(integer), ods.cursor_encode(text, jsonb), ods.cursor_decode(text, text),
	ods.check_case_status(text), ods.case_page_after(jsonb)
	TO support_agent, fraud_analyst, ops_manager, field_dispatcher, ods_admin;
