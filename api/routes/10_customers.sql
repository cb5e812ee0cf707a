-- 10_customers.sql: the customer 360 and a customer's support cases (DESIGN section 6).
--
--   GET /v1/customers/{customer_id}        ods_api.customer_360     customers:read
--   GET /v1/customers/{customer_id}/cases  ods_api.customer_cases   cases:read (paged)
--
-- Conventions for every route file (api/schema/010_routes.sql has odsd's side):
--   * the file drops its functions first (ods.drop_route_functions) and recreates them,
--     registers its routes (upsert into ods.routes, which NOTIFYs odsd), then REVOKEs
--     EXECUTE from PUBLIC and GRANTs it to the roles of DESIGN section 4, explicitly;
--   * functions are SECURITY INVOKER and run as the JWT's role: the table grants of
--     005_grants.sql and these EXECUTE grants decide who may call what;
--   * every table is schema-qualified; arguments are written function.argument, since
--     they share names with columns (customer_id, status, ...);
--   * JSON is built here, once, and odsd passes it through. Timestamps are RFC 3339
--     UTC strings with whole seconds (ods.json_ts); every synced part of a body carries
--     "_meta": {"source_committed_at", "synced_at"} (ods.json_meta); native rows with
--     deleted_at set are never returned;
--   * lists return (body, next_cursor): {"items": [...], "next_cursor": ...} and the
--     same cursor as a column, which odsd turns into Link: rel="next".
--
-- plpgsql rather than sql: plpgsql keeps its statements' plans for the session (odsd's
-- connections are pooled and long-lived), where a non-inlined sql function plans its
-- body again on every call; and it can RAISE and branch on privileges.

-- Dropped first, so the definitions below may change arguments or result.
SELECT ods.drop_route_functions('customer_360', 'customer_cases');

-- Customer 360: profile, latest risk score, open support cases, last 10 orders, active
-- fraud cases. NULL (404) when the customer is not in customer_current.
--
-- fraud_analyst may open the 360 but may not read support cases (005_grants.sql): for
-- a role without SELECT on native.support_cases, open_cases is null ("not visible to
-- you"), which is not the same as [] ("none"). The check must be a separate statement:
-- a statement that names a table needs the privilege even when no row is read.
CREATE OR REPLACE FUNCTION ods_api.customer_360(customer_id bigint) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
	cases json;
	doc json;
BEGIN
	IF has_table_privilege('native.support_cases', 'SELECT') THEN
		SELECT coalesce(json_agg(json_build_object(
				'case_id', s.case_id,
				'status', s.status,
				'subject', s.subject,
				'priority', s.priority,
				'assigned_to', s.assigned_to,
				'channel', s.channel,
				'order_id', s.order_id,
				'created_at', ods.json_ts(s.created_at),
				'updated_at', ods.json_ts(s.updated_at),
				'version', s.version)
			ORDER BY s.created_at DESC, s.case_id DESC), '[]')
		INTO cases
		FROM (SELECT * FROM native.support_cases s
			WHERE s.customer_id = customer_360.customer_id
			  AND s.status IN ('open', 'pending') AND s.deleted_at IS NULL
			ORDER BY s.created_at DESC, s.case_id DESC
			LIMIT 20) s;
	END IF;

	SELECT json_build_object(
		'customer_id', c.customer_id,
		'profile', json_build_object(
			'customer_id', c.customer_id,
			'email', c.email,
			'full_name', c.full_name,
			'tier', c.tier,
			'segment', c.segment,
			'status', c.status,
			'region', c.region,
			'city', c.city,
			'phone', c.phone,
			'signed_up_at', ods.json_ts(c.signed_up_at),
			'lifetime_value', c.lifetime_value,
			'_meta', ods.json_meta(c._source_committed_at, c._synced_at)),
		'risk', (SELECT json_build_object(
				'risk_score', r.risk_score,
				'risk_band', r.risk_band,
				'model_version', r.model_version,
				'scored_at', ods.json_ts(r.scored_at),
				'flagged_at', ods.json_ts(r.flagged_at),
				'top_reason', r.top_reason,
				'_meta', ods.json_meta(r._source_committed_at, r._synced_at))
			FROM synced.risk_scores r
			WHERE r.customer_id = c.customer_id),
		'open_cases', cases,
		'recent_orders', (SELECT coalesce(json_agg(json_build_object(
				'order_id', o.order_id,
				'status', o.status,
				'channel', o.channel,
				'ordered_at', ods.json_ts(o.ordered_at),
				'status_changed_at', ods.json_ts(o.status_changed_at),
				'item_count', o.item_count,
				'total_amount', o.total_amount,
				'currency', o.currency,
				'promised_delivery_at', ods.json_ts(o.promised_delivery_at),
				'sla_status', o.sla_status,
				'_meta', ods.json_meta(o._source_committed_at, o._synced_at))
			ORDER BY o.ordered_at DESC NULLS LAST, o.order_id DESC), '[]')
			FROM (SELECT * FROM synced.order_current o
				WHERE o.customer_id = c.customer_id
				ORDER BY o.ordered_at DESC NULLS LAST, o.order_id DESC
				LIMIT 10) o),
		'fraud_cases', (SELECT coalesce(json_agg(json_build_object(
				'case_id', f.case_id,
				'status', f.status,
				'assigned_to', f.assigned_to,
				'priority', f.priority,
				'reason', f.reason,
				'created_at', ods.json_ts(f.created_at),
				'updated_at', ods.json_ts(f.updated_at),
				'version', f.version)
			ORDER BY f.created_at DESC, f.case_id DESC), '[]')
			FROM native.fraud_cases f
			WHERE f.customer_id = c.customer_id
			  AND f.status IN ('open', 'in_review') AND f.deleted_at IS NULL))
	INTO doc
	FROM synced.customer_current c
	WHERE c.customer_id = customer_360.customer_id;
	RETURN doc;
END
$$;

-- A customer's support cases, newest first: keyset pages over (created_at, case_id),
-- both descending. status filters (open | pending | resolved | closed); limit 1-500,
-- default 50. 404 when the customer is unknown: not in customer_current and without
-- any case (cases of a customer the sync has not delivered yet stay reachable).
CREATE OR REPLACE FUNCTION ods_api.customer_cases(customer_id bigint, status text,
	"limit" integer, cursor text)
RETURNS TABLE (body json, next_cursor text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	lim integer := ods.page_limit(customer_cases."limit");
	pos jsonb := ods.cursor_decode('customer_cases', customer_cases.cursor);
	after_t timestamptz;
	after_id uuid;
	items json;
	n bigint;
BEGIN
	PERFORM ods.check_case_status(customer_cases.status);
	SELECT a.t, a.id INTO after_t, after_id FROM ods.case_page_after(pos) AS a;

	SELECT coalesce(json_agg(p.item ORDER BY p.n) FILTER (WHERE p.n <= lim), '[]'),
	       count(*),
	       max(CASE WHEN p.n = lim THEN ods.cursor_encode('customer_cases',
			jsonb_build_object('t', p.created_at, 'id', p.case_id)) END)
	INTO items, n, customer_cases.next_cursor
	FROM (SELECT row_number() OVER (ORDER BY s.created_at DESC, s.case_id DESC) AS n,
		     json_build_object(
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
			'version', s.version) AS item,
		     s.created_at, s.case_id
		FROM (SELECT * FROM native.support_cases s
			WHERE s.customer_id = customer_cases.customer_id AND s.deleted_at IS NULL
			  AND (customer_cases.status IS NULL OR s.status = customer_cases.status)
			  AND (after_t IS NULL OR (s.created_at, s.case_id) < (after_t, after_id))
			ORDER BY s.created_at DESC, s.case_id DESC
			LIMIT lim + 1) s) p;

	IF n <= lim THEN
		customer_cases.next_cursor := NULL; -- no row after this page
	END IF;
	IF n = 0 AND pos IS NULL
	   AND NOT EXISTS (SELECT FROM synced.customer_current c
			WHERE c.customer_id = customer_cases.customer_id)
	   AND NOT EXISTS (SELECT FROM native.support_cases s
			WHERE s.customer_id = customer_cases.customer_id AND s.deleted_at IS NULL) THEN
		RETURN; -- no row: 404
	END IF;
	customer_cases.body := json_build_object('items', items,
		'next_cursor', customer_cases.next_cursor);
	RETURN NEXT;
END
$$;

INSERT INTO ods.routes (method, path, function, scope, reads, paged, summary) VALUES
	('GET', '/v1/customers/{customer_id}', 'ods_api.customer_360', 'customers:read',
	 '{customer_current,risk_scores,order_current}', false,
	 'Customer 360: profile, latest risk score, open support cases, recent orders and active fraud cases'),
	('GET', '/v1/customers/{customer_id}/cases', 'ods_api.customer_cases', 'cases:read',
	 '{customer_current}', true,
	 'A customer''s support cases, newest first, optionally filtered by status')
ON CONFLICT (method, path) DO UPDATE SET function = EXCLUDED.function, scope = EXCLUDED.scope,
	reads = EXCLUDED.reads, paged = EXCLUDED.paged, summary = EXCLUDED.summary;

REVOKE ALL ON FUNCTION ods_api.customer_360(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.customer_360(bigint)
	TO support_agent, fraud_analyst, ods_admin;
REVOKE ALL ON FUNCTION ods_api.customer_cases(bigint, text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.customer_cases(bigint, text, integer, text)
	TO support_agent, ods_admin;
