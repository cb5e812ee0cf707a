-- The route catalog (DESIGN section 2): every API endpoint is a row binding an
-- HTTP method + path template to a function in schema ods_api. odsd loads it at
-- start and again on NOTIFY ods_routes, which the trigger below sends on every
-- change, so adding an endpoint is a migration, not a C change.
--
-- Function conventions (what odsd relies on):
--   * path and query parameters bind to the function's arguments BY NAME
--     (`{customer_id}` -> argument customer_id); a JSON body binds to p_body jsonb;
--     an absent query parameter is passed as NULL, so functions coalesce NULL to
--     their default;
--   * the result is `SELECT * FROM fn(...)`: one json column is the body (NULL body
--     = 404), or named columns body [, status, location, etag, next_cursor];
--   * errors: RAISE with SQLSTATE OD400/OD404/OD409/OD412/OD422 and a message that
--     is safe to show the client.

CREATE TABLE IF NOT EXISTS ods.routes (
	method    text NOT NULL CHECK (method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')),
	path      text NOT NULL CHECK (path ~ '^(/[A-Za-z0-9_.-]+|/\{[a-z_][a-z0-9_]*\})+$'),
	function  text NOT NULL CHECK (function ~ '^ods_api\.[a-z_][a-z0-9_]*$'),
	scope     text,                       -- NULL: any valid token
	reads     text[] NOT NULL DEFAULT '{}', -- synced tables whose freshness the response carries
	paged     boolean NOT NULL DEFAULT false, -- keyset list: Link rel=next from next_cursor
	summary   text NOT NULL DEFAULT '',
	PRIMARY KEY (method, path)
);

COMMENT ON TABLE ods.routes IS 'API routes: method + path template -> ods_api function (odsd reloads on NOTIFY ods_routes)';

CREATE OR REPLACE FUNCTION ods.routes_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('ods_routes', '');
	RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS routes_changed ON ods.routes;
CREATE TRIGGER routes_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ods.routes
	FOR EACH STATEMENT EXECUTE FUNCTION ods.routes_changed();

-- odsd's pool and listener connect as ods_authenticator: they read the catalog and
-- the freshness table, nothing else in schema ods.
GRANT USAGE ON SCHEMA ods TO ods_authenticator;
GRANT SELECT ON ods.routes, ods.synced_tables TO ods_authenticator;
