-- 60_work_orders.sql: a field-service work order and who worked it (DESIGN section 6).
-- Conventions: see 10_customers.sql.
--
--   GET /v1/work-orders/{work_order_id}  ods_api.work_order  workorders:read

-- Dropped first, so the definitions below may change arguments or result.
SELECT ods.drop_route_functions('work_order');

-- The work order and the technicians who worked it in the last 7 days: those with a
-- field update on it or an assignment to it made since now() - 7 days, or an
-- assignment to it that is still active (assigned, en_route, on_site). updated_at is
-- not activity: any edit of a row bumps it. Each technician carries the profile (null
-- fields and _meta when technician_profile does not have them yet: the work is still
-- shown), their live assignments to this work order and their updates of the last 7
-- days, oldest first. Technicians are ordered by their latest activity (update or
-- assignment), newest first. NULL (404) when the work order is not in
-- work_order_current.
CREATE OR REPLACE FUNCTION ods_api.work_order(work_order_id bigint) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
	since timestamptz := now() - interval '7 days';
	doc json;
BEGIN
	SELECT json_build_object(
		'work_order_id', w.work_order_id,
		'customer_id', w.customer_id,
		'status', w.status,
		'work_type', w.work_type,
		'priority', w.priority,
		'region', w.region,
		'site_address', w.site_address,
		'opened_at', ods.json_ts(w.opened_at),
		'scheduled_start', ods.json_ts(w.scheduled_start),
		'sla_due_at', ods.json_ts(w.sla_due_at),
		'completed_at', ods.json_ts(w.completed_at),
		'sla_breach_risk', w.sla_breach_risk,
		'_meta', ods.json_meta(w._source_committed_at, w._synced_at),
		'technicians', (SELECT coalesce(json_agg(json_build_object(
				'technician_id', t.technician_id,
				'full_name', p.full_name,
				'email', p.email,
				'phone', p.phone,
				'region', p.region,
				'skills', p.skills,
				'certification_level', p.certification_level,
				'status', p.status,
				'_meta', CASE WHEN p.technician_id IS NOT NULL
					THEN ods.json_meta(p._source_committed_at, p._synced_at) END,
				'last_activity_at', ods.json_ts(t.last_activity_at),
				'assignments', (SELECT coalesce(json_agg(json_build_object(
						'assignment_id', a.assignment_id,
						'status', a.status,
						'assigned_at', ods.json_ts(a.assigned_at),
						'scheduled_for', ods.json_ts(a.scheduled_for),
						'note', a.note,
						'updated_at', ods.json_ts(a.updated_at),
						'version', a.version)
					ORDER BY a.assigned_at, a.assignment_id), '[]')
					FROM native.dispatch_assignments a
					WHERE a.work_order_id = w.work_order_id
					  AND a.technician_id = t.technician_id AND a.deleted_at IS NULL),
				'updates', (SELECT coalesce(json_agg(json_build_object(
						'update_id', u.update_id,
						'kind', u.kind,
						'note', u.note,
						'created_at', ods.json_ts(u.created_at))
					ORDER BY u.created_at, u.update_id), '[]')
					FROM native.work_order_updates u
					WHERE u.work_order_id = w.work_order_id
					  AND u.technician_id = t.technician_id AND u.deleted_at IS NULL
					  AND u.created_at >= since))
			ORDER BY t.last_activity_at DESC, t.technician_id), '[]')
			FROM (SELECT x.technician_id, max(x.at) AS last_activity_at
				FROM (SELECT a.technician_id, a.assigned_at AS at
					FROM native.dispatch_assignments a
					WHERE a.work_order_id = w.work_order_id AND a.deleted_at IS NULL
					  AND (a.assigned_at >= since
					       OR a.status IN ('assigned', 'en_route', 'on_site'))
					UNION ALL
					SELECT u.technician_id, u.created_at
					FROM native.work_order_updates u
					WHERE u.work_order_id = w.work_order_id AND u.deleted_at IS NULL
					  AND u.created_at >= since) x
				GROUP BY x.technician_id) t
			LEFT JOIN synced.technician_profile p ON p.technician_id = t.technician_id))
	INTO doc
	FROM synced.work_order_current w
	WHERE w.work_order_id = work_order.work_order_id;
	RETURN doc;
END
$$;

INSERT INTO ods.routes (method, path, function, scope, reads, paged, summary) VALUES
	('GET', '/v1/work-orders/{work_order_id}', 'ods_api.work_order', 'workorders:read',
	 '{work_order_current,technician_profile}', false,
	 'Work order with the technicians who worked it in the last 7 days and their recent updates')
ON CONFLICT (method, path) DO UPDATE SET function = EXCLUDED.function, scope = EXCLUDED.scope,
	reads = EXCLUDED.reads, paged = EXCLUDED.paged, summary = EXCLUDED.summary;

REVOKE ALL ON FUNCTION ods_api.work_order(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.work_order(bigint) TO field_dispatcher, ods_admin;
