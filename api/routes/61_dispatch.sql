-- 61_dispatch.sql: dispatching technicians to work orders and their field updates
-- (DESIGN section 6). Conventions: see 10_customers.sql; write routes and body rules:
-- see 31_case_writes.sql (whose helpers this file uses).
--
--   POST /v1/work-orders/{work_order_id}/assignments  ods_api.dispatch_assignment_create  workorders:write
--   POST /v1/work-orders/{work_order_id}/updates      ods_api.work_order_update_create    workorders:write
--
-- EXECUTE: field_dispatcher and ods_admin. Both need the work order in
-- work_order_current (else 404) and the technician in technician_profile (else 422).
-- GET /v1/work-orders/{work_order_id} shows the new rows at once (an active
-- assignment, an update of the last 7 days). Writes on one work order are serialized
-- (a transaction-scoped advisory lock), so the duplicate check below is exact.

-- Dropped first, so the definitions below may change arguments or result.
SELECT ods.drop_route_functions('dispatch_assignment_create', 'work_order_update_create');

-- The checks both routes share: the work order exists (OD404), the technician exists
-- (OD422); then the work order's writes are serialized.
CREATE OR REPLACE FUNCTION ods.work_order_write_check(p_work_order_id bigint, p_technician_id bigint)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM synced.work_order_current w WHERE w.work_order_id = p_work_order_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'OD404', MESSAGE = format('no work order %s', p_work_order_id);
	END IF;
	IF NOT EXISTS (SELECT FROM synced.technician_profile t WHERE t.technician_id = p_technician_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'OD422', MESSAGE = 'field technician_id: no such technician';
	END IF;
	PERFORM pg_advisory_xact_lock(hashtextextended('ods.work_order:' || p_work_order_id, 0));
END
$$;

REVOKE ALL ON FUNCTION ods.work_order_write_check(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods.work_order_write_check(bigint, bigint) TO field_dispatcher, ods_admin;

-- An assignment as the work order read shows it, plus its ids and bookkeeping.
CREATE OR REPLACE FUNCTION ods.dispatch_assignment_json(a native.dispatch_assignments) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT json_build_object(
		'assignment_id', a.assignment_id,
		'work_order_id', a.work_order_id,
		'technician_id', a.technician_id,
		'status', a.status,
		'assigned_at', ods.json_ts(a.assigned_at),
		'scheduled_for', ods.json_ts(a.scheduled_for),
		'note', a.note,
		'created_at', ods.json_ts(a.created_at),
		'created_by', a.created_by,
		'updated_at', ods.json_ts(a.updated_at),
		'version', a.version)
$$;

REVOKE ALL ON FUNCTION ods.dispatch_assignment_json(native.dispatch_assignments) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods.dispatch_assignment_json(native.dispatch_assignments)
	TO field_dispatcher, ods_admin;

-- Assign: {technician_id*, scheduled_for (RFC 3339), note}. 409 when the technician
-- already has an active assignment (assigned, en_route, on_site) to this work order.
-- 201 with the assignment (status assigned); Location is the work order, with the
-- assignment's anchor.
CREATE OR REPLACE FUNCTION ods_api.dispatch_assignment_create(work_order_id bigint, p_body jsonb)
RETURNS TABLE (body json, status integer, location text, etag text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_technician bigint;
	v_scheduled timestamptz;
	v_note text;
	a native.dispatch_assignments;
BEGIN
	PERFORM ods.body_fields(p_body,
		fields => ARRAY['technician_id', 'scheduled_for', 'note'],
		server_set => ARRAY['assignment_id', 'status', 'assigned_at', 'created_by', 'created_at',
			'updated_at', 'deleted_at', 'version'],
		required => ARRAY['technician_id'],
		fixed => ARRAY['work_order_id']);
	v_technician := ods.body_int(p_body, 'technician_id', 1, 9223372036854775807);
	v_scheduled := ods.body_ts(p_body, 'scheduled_for');
	v_note := ods.body_text(p_body, 'note', NULL, false);

	PERFORM ods.work_order_write_check(dispatch_assignment_create.work_order_id, v_technician);
	IF EXISTS (SELECT FROM native.dispatch_assignments x
			WHERE x.work_order_id = dispatch_assignment_create.work_order_id
			  AND x.technician_id = v_technician AND x.deleted_at IS NULL
			  AND x.status IN ('assigned', 'en_route', 'on_site')) THEN
		RAISE EXCEPTION USING ERRCODE = 'OD409', MESSAGE = format(
			'technician %s already has an active assignment to work order %s', v_technician,
			dispatch_assignment_create.work_order_id);
	END IF;

	INSERT INTO native.dispatch_assignments AS x (work_order_id, technician_id, scheduled_for,
		note, created_by)
	VALUES (dispatch_assignment_create.work_order_id, v_technician, v_scheduled, v_note,
		ods.actor())
	RETURNING x.* INTO a;

	dispatch_assignment_create.body := ods.dispatch_assignment_json(a);
	dispatch_assignment_create.status := 201;
	dispatch_assignment_create.location := format('/v1/work-orders/%s#assignment-%s',
		a.work_order_id, a.assignment_id);
	dispatch_assignment_create.etag := a.version::text;
	RETURN NEXT;
END
$$;

-- A field update: {technician_id*, kind* (arrived|progress|parts_needed|completed|note),
-- note}. The technician's active assignments to this work order follow: arrived puts
-- those assigned or en_route on_site; completed completes every active one. A
-- technician may report without an assignment. 201 with the update and the
-- technician's assignments to this work order as they are now ("assignments").
CREATE OR REPLACE FUNCTION ods_api.work_order_update_create(work_order_id bigint, p_body jsonb)
RETURNS TABLE (body json, status integer, location text, etag text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_technician bigint;
	v_kind text;
	v_note text;
	u native.work_order_updates;
BEGIN
	PERFORM ods.body_fields(p_body,
		fields => ARRAY['technician_id', 'kind', 'note'],
		server_set => ARRAY['update_id', 'created_by', 'created_at', 'updated_at', 'deleted_at',
			'version', 'assignments'],
		required => ARRAY['technician_id', 'kind'],
		fixed => ARRAY['work_order_id']);
	v_technician := ods.body_int(p_body, 'technician_id', 1, 9223372036854775807);
	v_kind := ods.body_enum(p_body, 'kind',
		ARRAY['arrived', 'progress', 'parts_needed', 'completed', 'note']);
	v_note := ods.body_text(p_body, 'note', NULL, false);

	PERFORM ods.work_order_write_check(work_order_update_create.work_order_id, v_technician);

	INSERT INTO native.work_order_updates AS x (work_order_id, technician_id, kind, note,
		created_by)
	VALUES (work_order_update_create.work_order_id, v_technician, v_kind, v_note, ods.actor())
	RETURNING x.* INTO u;

	IF v_kind IN ('arrived', 'completed') THEN
		UPDATE native.dispatch_assignments x
		SET status = CASE v_kind WHEN 'arrived' THEN 'on_site' ELSE 'completed' END
		WHERE x.work_order_id = u.work_order_id AND x.technician_id = u.technician_id
		  AND x.deleted_at IS NULL
		  AND x.status = ANY (CASE v_kind WHEN 'arrived' THEN ARRAY['assigned', 'en_route']
			ELSE ARRAY['assigned', 'en_route', 'on_site'] END);
	END IF;

	work_order_update_create.body := json_build_object(
		'update_id', u.update_id,
		'work_order_id', u.work_order_id,
		'technician_id', u.technician_id,
		'kind', u.kind,
		'note', u.note,
		'created_at', ods.json_ts(u.created_at),
		'created_by', u.created_by,
		'version', u.version,
		'assignments', (SELECT coalesce(json_agg(ods.dispatch_assignment_json(x)
				ORDER BY x.assigned_at, x.assignment_id), '[]')
			FROM native.dispatch_assignments x
			WHERE x.work_order_id = u.work_order_id AND x.technician_id = u.technician_id
			  AND x.deleted_at IS NULL));
	work_order_update_create.status := 201;
	work_order_update_create.location := format('/v1/work-orders/%s#update-%s', u.work_order_id,
		u.update_id);
	work_order_update_create.etag := u.version::text;
	RETURN NEXT;
END
$$;

INSERT INTO ods.routes (method, path, function, scope, reads, paged, summary) VALUES
	('POST', '/v1/work-orders/{work_order_id}/assignments', 'ods_api.dispatch_assignment_create',
	 'workorders:write', '{work_order_current,technician_profile}', false,
	 'Assign a technician to a work order'),
	('POST', '/v1/work-orders/{work_order_id}/updates', 'ods_api.work_order_update_create',
	 'workorders:write', '{work_order_current,technician_profile}', false,
	 'Record a technician''s field update on a work order (arrived, progress, completed, ...)')
ON CONFLICT (method, path) DO UPDATE SET function = EXCLUDED.function, scope = EXCLUDED.scope,
	reads = EXCLUDED.reads, paged = EXCLUDED.paged, summary = EXCLUDED.summary;

REVOKE ALL ON FUNCTION ods_api.dispatch_assignment_create(bigint, jsonb),
	ods_api.work_order_update_create(bigint, jsonb)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.dispatch_assignment_create(bigint, jsonb),
	ods_api.work_order_update_create(bigint, jsonb)
	TO field_dispatcher, ods_admin;
