-- Idempotency-Key for POST routes (src/ods/idempotency.h has the whole model).
-- odsd calls ods.idempotency_check before the route's function and
-- ods.idempotency_store after it, in the same transaction as the write, under
-- the caller's role: both are SECURITY DEFINER so that no app role needs
-- privileges on the table itself, and both take the scope (the token's sub)
-- from the verified claims, never from the client.

CREATE TABLE IF NOT EXISTS ods.idempotency_keys (
	scope        text NOT NULL,        -- the token's sub (or role:<role> without one)
	key          text NOT NULL,
	request_hash text NOT NULL,        -- SHA-256 of method, path, query, body
	status       integer NOT NULL,
	location     text,
	etag         text,
	body         text,
	created_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON ods.idempotency_keys (created_at);
REVOKE ALL ON ods.idempotency_keys FROM PUBLIC;

CREATE OR REPLACE FUNCTION ods.idempotency_scope() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
	SELECT coalesce(c ->> 'sub', 'role:' || (c ->> 'role'))
	  FROM (SELECT current_setting('request.jwt.claims', true)::jsonb AS c) x
$$;

-- Keys live 24 hours (the IETF draft's suggestion); older ones count as unused.
CREATE OR REPLACE FUNCTION ods.idempotency_check(p_key text, p_hash text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
	v_scope text := ods.idempotency_scope();
	k ods.idempotency_keys;
BEGIN
	-- Held until this transaction ends: a concurrent duplicate cannot get it.
	IF NOT pg_try_advisory_xact_lock(hashtextextended(v_scope || E'\n' || p_key, 4242)) THEN
		RAISE EXCEPTION USING ERRCODE = 'OD409',
			MESSAGE = 'a request with this Idempotency-Key is still in progress';
	END IF;
	SELECT * INTO k FROM ods.idempotency_keys
	 WHERE scope = v_scope AND key = p_key AND created_at > now() - interval '24 hours';
	IF NOT FOUND THEN
		RETURN;
	END IF;
	IF k.request_hash <> p_hash THEN
		RAISE EXCEPTION USING ERRCODE = 'OD422',
			MESSAGE = 'this Idempotency-Key was already used with a different request';
	END IF;
	-- Done before: abort this transaction (nothing is written) and hand the
	-- stored response to odsd, which replays it.
	RAISE EXCEPTION USING ERRCODE = 'OD200', MESSAGE = 'idempotent replay',
		DETAIL = json_build_object('status', k.status, 'location', k.location,
		                           'etag', k.etag, 'body', k.body)::text;
END $$;

CREATE OR REPLACE FUNCTION ods.idempotency_store(p_key text, p_hash text, p_status integer,
	p_location text, p_etag text, p_body text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
	v_scope text := ods.idempotency_scope();
BEGIN
	-- Expired keys of this scope go now; the others wait for their owner's next write.
	DELETE FROM ods.idempotency_keys
	 WHERE scope = v_scope AND created_at < now() - interval '24 hours';
	INSERT INTO ods.idempotency_keys (scope, key, request_hash, status, location, etag, body)
	VALUES (v_scope, p_key, p_hash, coalesce(p_status, 200), p_location, p_etag, p_body);
	RETURN true;
END $$;

REVOKE ALL ON FUNCTION ods.idempotency_scope(), ods.idempotency_check(text, text),
	ods.idempotency_store(text, text, integer, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods.idempotency_scope(), ods.idempotency_check(text, text),
	ods.idempotency_store(text, text, integer, text, text, text)
	TO support_agent, fraud_analyst, ops_manager, field_dispatcher, ods_admin, ods_sync;
