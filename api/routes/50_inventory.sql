-- 50_inventory.sql: a store x SKU position (DESIGN section 6). Conventions: see
-- 10_customers.sql.
--
--   GET /v1/inventory/{store_id}/{sku}  ods_api.inventory_position  inventory:read

-- Dropped first, so the definitions below may change arguments or result.
SELECT ods.drop_route_functions('inventory_position');

-- The position with sellable = on_hand - reserved + in_transit (top-level key), its
-- stockout risk, the product, and the store's open actions on it (oldest first).
-- NULL (404) when the position is not in inventory_position; product is null when
-- the SKU is not (yet) in product_catalog.
CREATE OR REPLACE FUNCTION ods_api.inventory_position(store_id integer, sku text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
	doc json;
BEGIN
	SELECT json_build_object(
		'store_id', i.store_id,
		'sku', i.sku,
		'sellable', i.on_hand - i.reserved + i.in_transit,
		'on_hand', i.on_hand,
		'reserved', i.reserved,
		'in_transit', i.in_transit,
		'stockout_risk', i.stockout_risk,
		'reorder_point', i.reorder_point,
		'next_delivery_at', ods.json_ts(i.next_delivery_at),
		'last_counted_at', ods.json_ts(i.last_counted_at),
		'_meta', ods.json_meta(i._source_committed_at, i._synced_at),
		'product', (SELECT json_build_object(
				'sku', p.sku,
				'product_name', p.product_name,
				'category', p.category,
				'brand', p.brand,
				'unit_price', p.unit_price,
				'currency', p.currency,
				'status', p.status,
				'pack_size', p.pack_size,
				'supplier_lead_days', p.supplier_lead_days,
				'launched_on', p.launched_on,
				'_meta', ods.json_meta(p._source_committed_at, p._synced_at))
			FROM synced.product_catalog p
			WHERE p.sku = i.sku),
		'open_actions', (SELECT coalesce(json_agg(json_build_object(
				'action_id', a.action_id,
				'action_type', a.action_type,
				'status', a.status,
				'quantity', a.quantity,
				'note', a.note,
				'due_at', ods.json_ts(a.due_at),
				'created_at', ods.json_ts(a.created_at),
				'created_by', a.created_by,
				'updated_at', ods.json_ts(a.updated_at),
				'version', a.version)
			ORDER BY a.created_at, a.action_id), '[]')
			FROM native.store_actions a
			WHERE a.store_id = i.store_id AND a.sku = i.sku
			  AND a.status = 'open' AND a.deleted_at IS NULL))
	INTO doc
	FROM synced.inventory_position i
	WHERE i.store_id = inventory_position.store_id AND i.sku = inventory_position.sku;
	RETURN doc;
END
$$;

INSERT INTO ods.routes (method, path, function, scope, reads, paged, summary) VALUES
	('GET', '/v1/inventory/{store_id}/{sku}', 'ods_api.inventory_position', 'inventory:read',
	 '{inventory_position,product_catalog}', false,
	 'Inventory position of a SKU in a store: sellable quantity, stockout risk, product and open store actions')
ON CONFLICT (method, path) DO UPDATE SET function = EXCLUDED.function, scope = EXCLUDED.scope,
	reads = EXCLUDED.reads, paged = EXCLUDED.paged, summary = EXCLUDED.summary;

REVOKE ALL ON FUNCTION ods_api.inventory_position(integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.inventory_position(integer, text) TO ops_manager, ods_admin;
