-- 20_orders.sql: order fulfillment across the order, payment and shipment systems
-- (DESIGN section 6). Conventions: see 10_customers.sql.
--
--   GET /v1/orders/{order_id}  ods_api.order_fulfillment  orders:read

-- Dropped first, so the definitions below may change arguments or result.
SELECT ods.drop_route_functions('order_fulfillment');

-- The order, its payments (oldest attempt first), its shipments and its status
-- transitions of the last 30 days (in order), each part with its row's _meta.
-- NULL (404) when the order is not in order_current.
CREATE OR REPLACE FUNCTION ods_api.order_fulfillment(order_id bigint) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
	doc json;
BEGIN
	SELECT json_build_object(
		'order_id', o.order_id,
		'order', json_build_object(
			'order_id', o.order_id,
			'customer_id', o.customer_id,
			'status', o.status,
			'channel', o.channel,
			'ordered_at', ods.json_ts(o.ordered_at),
			'status_changed_at', ods.json_ts(o.status_changed_at),
			'item_count', o.item_count,
			'total_amount', o.total_amount,
			'currency', o.currency,
			'promised_delivery_at', ods.json_ts(o.promised_delivery_at),
			'sla_status', o.sla_status,
			'_meta', ods.json_meta(o._source_committed_at, o._synced_at)),
		'payments', (SELECT coalesce(json_agg(json_build_object(
				'payment_id', p.payment_id,
				'method', p.method,
				'status', p.status,
				'amount', p.amount,
				'currency', p.currency,
				'card_last4', p.card_last4,
				'initiated_at', ods.json_ts(p.initiated_at),
				'captured_at', ods.json_ts(p.captured_at),
				'status_changed_at', ods.json_ts(p.status_changed_at),
				'_meta', ods.json_meta(p._source_committed_at, p._synced_at))
			ORDER BY p.initiated_at, p.payment_id), '[]')
			FROM synced.payment_current p
			WHERE p.order_id = o.order_id),
		'shipments', (SELECT coalesce(json_agg(json_build_object(
				'shipment_id', s.shipment_id,
				'carrier', s.carrier,
				'tracking_number', s.tracking_number,
				'status', s.status,
				'last_event_at', ods.json_ts(s.last_event_at),
				'last_location', s.last_location,
				'estimated_delivery_at', ods.json_ts(s.estimated_delivery_at),
				'delivered_at', ods.json_ts(s.delivered_at),
				'_meta', ods.json_meta(s._source_committed_at, s._synced_at))
			ORDER BY s.shipment_id), '[]')
			FROM synced.shipment_status_latest s
			WHERE s.order_id = o.order_id),
		'status_history', (SELECT coalesce(json_agg(json_build_object(
				'seq', h.seq,
				'status', h.status,
				'changed_at', ods.json_ts(h.changed_at),
				'changed_by', h.changed_by,
				'reason', h.reason,
				'_meta', ods.json_meta(h._source_committed_at, h._synced_at))
			ORDER BY h.seq), '[]')
			FROM synced.order_status_history_30d h
			WHERE h.order_id = o.order_id))
	INTO doc
	FROM synced.order_current o
	WHERE o.order_id = order_fulfillment.order_id;
	RETURN doc;
END
$$;

INSERT INTO ods.routes (method, path, function, scope, reads, paged, summary) VALUES
	('GET', '/v1/orders/{order_id}', 'ods_api.order_fulfillment', 'orders:read',
	 '{order_current,payment_current,shipment_status_latest,order_status_history_30d}', false,
	 'Order fulfillment: the order, its payments and shipments, and its status history of the last 30 days')
ON CONFLICT (method, path) DO UPDATE SET function = EXCLUDED.function, scope = EXCLUDED.scope,
	reads = EXCLUDED.reads, paged = EXCLUDED.paged, summary = EXCLUDED.summary;

REVOKE ALL ON FUNCTION ods_api.order_fulfillment(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.order_fulfillment(bigint)
	TO support_agent, ops_manager, ods_admin;
