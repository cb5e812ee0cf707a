-- 51_store_actions.sql: a store manager's action on a store x SKU position (DESIGN
-- section 6). Conventions: see 10_customers.sql; write routes and body rules: see
-- 31_case_writes.sql (whose helpers this file uses).
--
--   POST /v1/inventory/{store_id}/{sku}/actions  ods_api.store_action_create  inventory:write
--
-- EXECUTE: ops_manager and ods_admin. The new action is open, so GET
-- /v1/inventory/{store_id}/{sku} lists it under open_actions at once.

-- Dropped first, so the definitions below may change arguments or result.
SELECT ods.drop_route_functions('store_action_create');

-- {action_type* (override|replenishment|transfer|markdown|recount), quantity (an
-- integer >= 0), note, due_at (RFC 3339)}. 404 when the store has no position for
-- the SKU in inventory_position. 201 with the action; Location is the position, with
-- the action's anchor.
CREATE OR REPLACE FUNCTION ods_api.store_action_create(store_id integer, sku text, p_body jsonb)
RETURNS TABLE (body json, status integer, location text, etag text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_type text;
	v_quantity integer;
	v_note text;
	v_due timestamptz;
	a native.store_actions;
BEGIN
	PERFORM ods.body_fields(p_body,
		fields => ARRAY['action_type', 'quantity', 'note', 'due_at'],
		server_set => ARRAY['action_id', 'status', 'completed_at', 'created_by', 'created_at',
			'updated_at', 'deleted_at', 'version'],
		required => ARRAY['action_type'],
		fixed => ARRAY['store_id', 'sku']);
	v_type := ods.body_enum(p_body, 'action_type',
		ARRAY['override', 'replenishment', 'transfer', 'markdown', 'recount']);
	v_quantity := ods.body_int(p_body, 'quantity', 0, 2147483647);
	v_note := ods.body_text(p_body, 'note', NULL, false);
	v_due := ods.body_ts(p_body, 'due_at');

	IF NOT EXISTS (SELECT FROM synced.inventory_position i
			WHERE i.store_id = store_action_create.store_id AND i.sku = store_action_create.sku) THEN
		RAISE EXCEPTION USING ERRCODE = 'OD404', MESSAGE = format(
			'no inventory position for SKU %s in store %s', store_action_create.sku,
			store_action_create.store_id);
	END IF;

	INSERT INTO native.store_actions AS x (store_id, sku, action_type, quantity, note, due_at,
		created_by)
	VALUES (store_action_create.store_id, store_action_create.sku, v_type, v_quantity, v_note,
		v_due, ods.actor())
	RETURNING x.* INTO a;

	store_action_create.body := json_build_object(
		'action_id', a.action_id,
		'store_id', a.store_id,
		'sku', a.sku,
		'action_type', a.action_type,
		'status', a.status,
		'quantity', a.quantity,
		'note', a.note,
		'due_at', ods.json_ts(a.due_at),
		'created_at', ods.json_ts(a.created_at),
		'created_by', a.created_by,
		'updated_at', ods.json_ts(a.updated_at),
		'version', a.version);
	store_action_create.status := 201;
	store_action_create.location := format('/v1/inventory/%s/%s#action-%s', a.store_id,
		ods.url_segment(a.sku), a.action_id);
	store_action_create.etag := a.version::text;
	RETURN NEXT;
END
$$;

INSERT INTO ods.routes (method, path, function, scope, reads, paged, summary) VALUES
	('POST', '/v1/inventory/{store_id}/{sku}/actions', 'ods_api.store_action_create',
	 'inventory:write', '{inventory_position}', false,
	 'Open a store action (override, replenishment, ...) on a store x SKU position')
ON CONFLICT (method, path) DO UPDATE SET function = EXCLUDED.function, scope = EXCLUDED.scope,
	reads = EXCLUDED.reads, paged = EXCLUDED.paged, summary = EXCLUDED.summary;

REVOKE ALL ON FUNCTION ods_api.store_action_create(integer, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.store_action_create(integer, text, jsonb) TO ops_manager, ods_admin;
