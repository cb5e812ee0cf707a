-- 41_fraud_writes.sql: one fraud case, its assignment and status, and dispositions
-- (DESIGN section 6). Conventions: see 10_customers.sql; write routes, body rules,
-- If-Match and ETags: see 31_case_writes.sql (whose helpers this file uses).
--
--   GET   /v1/fraud/cases/{case_id}               ods_api.fraud_case                fraud:read
--   PATCH /v1/fraud/cases/{case_id}               ods_api.fraud_case_update         fraud:write
--   POST  /v1/fraud/cases/{case_id}/dispositions  ods_api.fraud_disposition_create  fraud:write
--
-- EXECUTE: fraud_analyst and ods_admin. Row-level security (012_rls_audit.sql) shows
-- an analyst only the cases of the token's region: a case of another region is a 404
-- for reading and for writing alike, dispositions included.
--
-- Status lifecycle: open -> in_review -> closed, and open -> closed (a case can be
-- dismissed, or decided by hold/release, without a review step). Never backwards,
-- and a closed case never changes again (OD422). closed_at is set on closing.
-- Priority 1 is the most urgent (004_native_tables.sql).

-- Dropped first, so the definitions below may change arguments or result.
SELECT ods.drop_route_functions('fraud_case', 'fraud_case_update', 'fraud_disposition_create');

-- One live fraud case visible to the caller, with its dispositions and analyst notes
-- (oldest first), and its ETag: the version, then ".<n>" once it has dispositions or
-- notes (n: the sum of their versions). No row when unknown, deleted or not visible.
CREATE OR REPLACE FUNCTION ods.fraud_case_doc(p_case_id uuid)
RETURNS TABLE (body json, etag text)
LANGUAGE sql STABLE AS $$
	SELECT json_build_object(
		'case_id', f.case_id,
		'customer_id', f.customer_id,
		'status', f.status,
		'assigned_to', f.assigned_to,
		'region', f.region,
		'priority', f.priority,
		'reason', f.reason,
		'closed_at', ods.json_ts(f.closed_at),
		'created_at', ods.json_ts(f.created_at),
		'updated_at', ods.json_ts(f.updated_at),
		'created_by', f.created_by,
		'version', f.version,
		'dispositions', d.items,
		'notes', n.items),
	       f.version::text || coalesce('.' || nullif(d.marker + n.marker, 0)::text, '')
	FROM native.fraud_cases f
	CROSS JOIN LATERAL (
		SELECT coalesce(json_agg(json_build_object(
				'disposition_id', x.disposition_id,
				'decision', x.decision,
				'note', x.note,
				'created_at', ods.json_ts(x.created_at),
				'created_by', x.created_by,
				'version', x.version)
			ORDER BY x.created_at, x.disposition_id) FILTER (WHERE x.deleted_at IS NULL), '[]') AS items,
		       coalesce(sum(x.version), 0) AS marker
		FROM native.fraud_dispositions x
		WHERE x.case_id = f.case_id) d
	CROSS JOIN LATERAL (
		SELECT coalesce(json_agg(json_build_object(
				'note_id', x.note_id,
				'body', x.body,
				'created_at', ods.json_ts(x.created_at),
				'created_by', x.created_by,
				'version', x.version)
			ORDER BY x.created_at, x.note_id) FILTER (WHERE x.deleted_at IS NULL), '[]') AS items,
		       coalesce(sum(x.version), 0) AS marker
		FROM native.analyst_notes x
		WHERE x.case_id = f.case_id) n
	WHERE f.case_id = p_case_id AND f.deleted_at IS NULL
$$;

REVOKE ALL ON FUNCTION ods.fraud_case_doc(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods.fraud_case_doc(uuid) TO fraud_analyst, ods_admin;

-- One fraud case; no row (404) when unknown, deleted or of another region.
CREATE OR REPLACE FUNCTION ods_api.fraud_case(case_id uuid)
RETURNS TABLE (body json, etag text)
LANGUAGE sql STABLE AS $$
	SELECT d.body, d.etag FROM ods.fraud_case_doc(fraud_case.case_id) d
$$;

-- The caller's live case, locked for the write; OD404 when it cannot see it.
CREATE OR REPLACE FUNCTION ods.fraud_case_lock(p_case_id uuid) RETURNS native.fraud_cases
LANGUAGE plpgsql AS $$
DECLARE
	f native.fraud_cases;
BEGIN
	SELECT * INTO f FROM native.fraud_cases x
	WHERE x.case_id = p_case_id AND x.deleted_at IS NULL
	FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'OD404', MESSAGE = format('no fraud case %s', p_case_id);
	END IF;
	RETURN f;
END
$$;

REVOKE ALL ON FUNCTION ods.fraud_case_lock(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods.fraud_case_lock(uuid) TO fraud_analyst, ods_admin;

-- Assign / status: {assigned_to (null unassigns), status (open|in_review|closed)},
-- If-Match. Only the lifecycle's forward moves; giving the current status is no move.
-- {} changes nothing.
CREATE OR REPLACE FUNCTION ods_api.fraud_case_update(case_id uuid, p_body jsonb, p_if_match text)
RETURNS TABLE (body json, status integer, location text, etag text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	f native.fraud_cases;
	v_status text;
	v_assigned text;
BEGIN
	PERFORM ods.body_fields(p_body,
		fields => ARRAY['assigned_to', 'status'],
		server_set => ARRAY['case_id', 'closed_at', 'created_by', 'created_at', 'updated_at',
			'deleted_at', 'version', 'dispositions', 'notes'],
		fixed => ARRAY['customer_id', 'region', 'priority', 'reason']);
	v_status := ods.body_enum(p_body, 'status', ARRAY['open', 'in_review', 'closed'],
		nullable => false);
	v_assigned := ods.body_text(p_body, 'assigned_to', 200, true);

	f := ods.fraud_case_lock(fraud_case_update.case_id);
	PERFORM ods.if_match(p_if_match, f.version, 'fraud case');
	IF f.status = 'closed' AND p_body <> '{}' THEN
		RAISE EXCEPTION USING ERRCODE = 'OD422', MESSAGE = format('field %s: the case is closed',
			CASE WHEN p_body ? 'status' THEN 'status' ELSE 'assigned_to' END);
	END IF;
	IF v_status IS NOT NULL AND v_status <> f.status
	   AND NOT (f.status, v_status) IN (('open', 'in_review'), ('open', 'closed'),
		('in_review', 'closed')) THEN
		RAISE EXCEPTION USING ERRCODE = 'OD422',
			MESSAGE = format('field status: a case cannot go from %s to %s', f.status, v_status);
	END IF;

	IF p_body <> '{}' THEN
		UPDATE native.fraud_cases x SET
			status = coalesce(v_status, x.status),
			assigned_to = CASE WHEN p_body ? 'assigned_to' THEN v_assigned ELSE x.assigned_to END,
			closed_at = CASE WHEN v_status = 'closed' THEN now() ELSE x.closed_at END
		WHERE x.case_id = f.case_id;
	END IF;

	SELECT d.body, d.etag INTO fraud_case_update.body, fraud_case_update.etag
	FROM ods.fraud_case_doc(f.case_id) d;
	fraud_case_update.status := 200;
	RETURN NEXT;
END
$$;

-- A decision: {decision* (hold|release|escalate), note} on an open or in-review case.
-- hold and release close the case (closed_at now); escalate keeps its status and
-- raises its urgency by one (priority - 1, at least 1). If-Match, when given, is the
-- case's ETag. 201 with the disposition and the case's new state ("case"); Location
-- is the case, with the disposition's anchor; ETag the disposition's version.
CREATE OR REPLACE FUNCTION ods_api.fraud_disposition_create(case_id uuid, p_body jsonb,
	p_if_match text)
RETURNS TABLE (body json, status integer, location text, etag text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	f native.fraud_cases;
	v_decision text;
	v_note text;
	d native.fraud_dispositions;
	doc json;
BEGIN
	PERFORM ods.body_fields(p_body,
		fields => ARRAY['decision', 'note'],
		server_set => ARRAY['disposition_id', 'case_id', 'created_by', 'created_at', 'updated_at',
			'deleted_at', 'version', 'case'],
		required => ARRAY['decision']);
	v_decision := ods.body_enum(p_body, 'decision', ARRAY['hold', 'release', 'escalate']);
	v_note := ods.body_text(p_body, 'note', NULL, true);

	f := ods.fraud_case_lock(fraud_disposition_create.case_id);
	PERFORM ods.if_match(p_if_match, f.version, 'fraud case');
	IF f.status = 'closed' THEN
		RAISE EXCEPTION USING ERRCODE = 'OD422', MESSAGE = 'field decision: the case is closed';
	END IF;

	INSERT INTO native.fraud_dispositions AS x (case_id, decision, note, created_by)
	VALUES (f.case_id, v_decision, v_note, ods.actor())
	RETURNING x.* INTO d;
	UPDATE native.fraud_cases x SET
		status = CASE WHEN v_decision IN ('hold', 'release') THEN 'closed' ELSE x.status END,
		closed_at = CASE WHEN v_decision IN ('hold', 'release') THEN now() ELSE x.closed_at END,
		priority = CASE WHEN v_decision = 'escalate' THEN greatest(1, x.priority - 1)
			ELSE x.priority END
	WHERE x.case_id = f.case_id;

	SELECT c.body INTO doc FROM ods.fraud_case_doc(f.case_id) c;
	fraud_disposition_create.body := json_build_object(
		'disposition_id', d.disposition_id,
		'case_id', d.case_id,
		'decision', d.decision,
		'note', d.note,
		'created_at', ods.json_ts(d.created_at),
		'created_by', d.created_by,
		'version', d.version,
		'case', doc);
	fraud_disposition_create.status := 201;
	fraud_disposition_create.location := format('/v1/fraud/cases/%s#disposition-%s', d.case_id,
		d.disposition_id);
	fraud_disposition_create.etag := d.version::text;
	RETURN NEXT;
END
$$;

INSERT INTO ods.routes (method, path, function, scope, reads, paged, summary) VALUES
	('GET', '/v1/fraud/cases/{case_id}', 'ods_api.fraud_case', 'fraud:read', '{}', false,
	 'One fraud case with its dispositions and analyst notes'),
	('PATCH', '/v1/fraud/cases/{case_id}', 'ods_api.fraud_case_update', 'fraud:write', '{}', false,
	 'Assign a fraud case or move its status (open, in_review, closed); honours If-Match'),
	('POST', '/v1/fraud/cases/{case_id}/dispositions', 'ods_api.fraud_disposition_create',
	 'fraud:write', '{}', false,
	 'Decide a fraud case: hold or release closes it, escalate raises its priority')
ON CONFLICT (method, path) DO UPDATE SET function = EXCLUDED.function, scope = EXCLUDED.scope,
	reads = EXCLUDED.reads, paged = EXCLUDED.paged, summary = EXCLUDED.summary;

REVOKE ALL ON FUNCTION ods_api.fraud_case(uuid), ods_api.fraud_case_update(uuid, jsonb, text),
	ods_api.fraud_disposition_create(uuid, jsonb, text)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.fraud_case(uuid), ods_api.fraud_case_update(uuid, jsonb, text),
	ods_api.fraud_disposition_create(uuid, jsonb, text)
	TO fraud_analyst, ods_admin;
