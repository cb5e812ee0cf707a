-- 90_freshness.sql: freshness of every synced table (DESIGN section 5). Conventions:
-- see 10_customers.sql.
--
--   GET /v1/freshness  ods_api.freshness  any valid token (scope NULL)
--
-- The same facts as `odsctl freshness` and the ODS-Freshness header, computed with the
-- database clock at call time: lag_s = now - as_of in whole seconds (floor, never
-- negative; null while never synced), sla_s = the SLA in whole seconds (ceil), stale = never synced or
-- lag_s > sla_s. It reads the catalog, not the synced tables, so reads is empty and
-- the response carries no freshness headers of its own.
--
-- RETURNS TABLE (body json) rather than RETURNS json: odsd's catalog query reads the
-- argument names of each route function, and a function without arguments and
-- without named result columns has none (proargnames NULL).

-- Dropped first, so the definitions below may change arguments or result.
SELECT ods.drop_route_functions('freshness');

CREATE OR REPLACE FUNCTION ods_api.freshness() RETURNS TABLE (body json)
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('tables', coalesce(json_agg(json_build_object(
			'table', 'synced.' || t.table_name,
			'source_name', t.source_name,
			'tier', t.tier,
			'mode', t.mode,
			'sla_s', x.sla_s,
			'as_of', ods.json_ts(t.as_of),
			'lag_s', x.lag_s,
			'stale', t.as_of IS NULL OR x.lag_s > x.sla_s,
			'last_sync_at', ods.json_ts(t.last_sync_at),
			'status', t.status,
			'last_error', t.last_error,
			'rows', t.rows)
		ORDER BY t.table_name), '[]'))
	FROM ods.synced_tables t
	CROSS JOIN LATERAL (SELECT ceil(extract(epoch FROM t.freshness_sla))::bigint AS sla_s,
		-- greatest() skips NULLs: keep lag_s null while never synced
		CASE WHEN t.as_of IS NOT NULL
			THEN greatest(floor(extract(epoch FROM now() - t.as_of)), 0)::bigint END AS lag_s) x
$$;

INSERT INTO ods.routes (method, path, function, scope, reads, paged, summary) VALUES
	('GET', '/v1/freshness', 'ods_api.freshness', NULL, '{}', false,
	 'Freshness of every synced table: tier, mode, SLA, as-of, lag, staleness, last sync and last error')
ON CONFLICT (method, path) DO UPDATE SET function = EXCLUDED.function, scope = EXCLUDED.scope,
	reads = EXCLUDED.reads, paged = EXCLUDED.paged, summary = EXCLUDED.summary;

REVOKE ALL ON FUNCTION ods_api.freshness() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.freshness()
	TO support_agent, fraud_analyst, ops_manager, field_dispatcher, ods_admin, ods_sync;
