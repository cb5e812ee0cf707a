-- 012_rls_audit.sql: the audit trail of native writes and row-level security on the
-- case tables (DESIGN sections 3 and 4).
--
-- 1. Claims. ods.jwt_claim(name) reads one claim of the verified token that odsd puts
--    in request.jwt.claims (transaction-local; NULL outside a request, also when a
--    previous transaction of the session left the setting as '').
--
-- 2. Audit. native.audit_log gets one row per INSERT, UPDATE or DELETE of a row of any
--    other native table (and one per TRUNCATE of such a table), written by an AFTER
--    trigger in the same transaction as the change:
--      actor   the token's sub; without one (loaders, psql) the database role
--      role    the database role the write ran as (odsd: the token's role); the
--              claims' role when that role is not set
--      action  insert | update | soft_delete (deleted_at went from NULL to a value) |
--              delete (hard: only owners and loaders can) | truncate
--      entity  the table's name; entity_id its primary key value (text)
--      before / after  the whole row as jsonb (NULL for insert / delete)
--    The trigger function is SECURITY DEFINER (owned by the migrating role, which
--    owns audit_log), so no app role needs, or has, any privilege on audit_log: they
--    cannot write it except through their own audited writes. ods_admin may read it.
--    The log is append-only: UPDATE, DELETE and TRUNCATE are revoked from everyone,
--    the owner included, and a statement trigger (enabled ALWAYS, so also under
--    session_replication_role = replica) refuses them even for the owner or a
--    superuser. That guards against accidents; an owner or superuser who drops or
--    disables the trigger on purpose can still rewrite history, which only an
--    external copy (WAL archive, log shipping) can prove.
--    A native table added by a later migration is audited once that migration calls
--    SELECT ods.audit_attach('native.<table>').
--
-- 3. Row-level security (ENABLE, not FORCE: the tables' owner, i.e. the migrating
--    role, and superusers such as the demo loader bypass it). Policies are
--    permissive and per role; a role without a policy on a table sees none of its
--    rows, whatever its grants (fail closed).
--      fraud_cases         fraud_analyst: only the cases whose region equals the
--                          token's region claim, for reading and writing (a case
--                          cannot be moved out of, or created outside, that region);
--                          no region claim, or a case without region: not visible to
--                          analysts. ods_admin: all.
--                          support_agent: SELECT of all regions, read-only (its grant
--                          is SELECT only). Decision: the customer 360 shows a support
--                          agent that a customer has an active fraud investigation
--                          (status, priority, reason), which support needs whatever
--                          the region, and support agents carry no region claim. The
--                          fraud queue, dispositions and analyst notes stay out of
--                          their reach (no EXECUTE, no table grant).
--      fraud_dispositions, analyst_notes
--                          visible and writable with their case: EXISTS on
--                          fraud_cases, which applies the case's own policies as the
--                          caller. An analyst note without a case (a note on the
--                          customer) is visible to every analyst.
--      support_cases       every row for support_agent and ods_admin: no row rule
--                          yet (the place for a team claim later).
--      case_notes          visible and writable with their case (EXISTS on
--                          support_cases).
--    store_actions, approvals, dispatch_assignments and work_order_updates have no
--    row rules: table grants decide.
--
-- 4. Indexes for GET /v1/cases (api/routes/31_case_writes.sql), which walks live
--    cases newest first: all of them, one status's or one assignee's.

-- ---- 1. claims ----

CREATE OR REPLACE FUNCTION ods.jwt_claim(name text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> name;

COMMENT ON FUNCTION ods.jwt_claim(text) IS
	'One claim (as text) of the verified JWT of the current request; NULL outside a request';

REVOKE ALL ON FUNCTION ods.jwt_claim(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods.jwt_claim(text)
	TO support_agent, fraud_analyst, ops_manager, field_dispatcher, ods_admin, ods_sync;

-- ---- 2. audit ----

CREATE TABLE IF NOT EXISTS native.audit_log (
	audit_id  bigserial PRIMARY KEY,
	at        timestamptz NOT NULL DEFAULT now(),  -- the writing transaction's time (= updated_at)
	xact_id   xid8 NOT NULL DEFAULT pg_current_xact_id(),  -- groups the rows of one request
	actor     text NOT NULL,
	role      text NOT NULL,
	action    text NOT NULL
	          CHECK (action IN ('insert', 'update', 'delete', 'soft_delete', 'truncate')),
	entity    text NOT NULL,
	entity_id text,                                -- NULL only for truncate
	before    jsonb,
	after     jsonb,
	CHECK ((action = 'insert') = (before IS NULL AND after IS NOT NULL) OR action = 'truncate'),
	CHECK (action NOT IN ('update', 'soft_delete') OR (before IS NOT NULL AND after IS NOT NULL)),
	CHECK (action <> 'delete' OR (before IS NOT NULL AND after IS NULL))
);

COMMENT ON TABLE native.audit_log IS
	'Append-only trail of every write to a native table (012_rls_audit.sql)';

-- An entity's history, newest first.
CREATE INDEX IF NOT EXISTS audit_log_entity_idx ON native.audit_log (entity, entity_id, audit_id);

-- Nobody writes it directly. 005's default privileges gave ods_admin SELECT, INSERT,
-- UPDATE on every new native table: taken back here, then SELECT alone is granted.
REVOKE ALL ON native.audit_log FROM PUBLIC, support_agent, fraud_analyst, ops_manager,
	field_dispatcher, ods_admin, ods_sync, ods_authenticator;
REVOKE ALL ON SEQUENCE native.audit_log_audit_id_seq FROM PUBLIC, support_agent,
	fraud_analyst, ops_manager, field_dispatcher, ods_admin, ods_sync, ods_authenticator;
REVOKE UPDATE, DELETE, TRUNCATE ON native.audit_log FROM CURRENT_USER;
GRANT SELECT ON native.audit_log TO ods_admin;

CREATE OR REPLACE FUNCTION ods.audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
		MESSAGE = format('native.audit_log is append-only: %s refused', TG_OP);
END
$$;

DROP TRIGGER IF EXISTS audit_log_append_only ON native.audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON native.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION ods.audit_log_append_only();
ALTER TABLE native.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;

-- The row trigger. TG_ARGV holds the table's primary key column(s).
CREATE OR REPLACE FUNCTION ods.audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
	claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
	-- current_setting('role'), not current_user: this function runs as its owner.
	db_role text := coalesce(nullif(current_setting('role'), 'none'), claims ->> 'role',
		session_user::text);
	old_row jsonb;
	new_row jsonb;
	act text;
	id text;
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		INSERT INTO native.audit_log (actor, role, action, entity)
		VALUES (coalesce(claims ->> 'sub', db_role), db_role, 'truncate', TG_TABLE_NAME);
		RETURN NULL;
	END IF;
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		old_row := to_jsonb(OLD);
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		new_row := to_jsonb(NEW);
	END IF;
	act := CASE TG_OP
		WHEN 'INSERT' THEN 'insert'
		WHEN 'DELETE' THEN 'delete'
		WHEN 'UPDATE' THEN CASE
			WHEN old_row -> 'deleted_at' = 'null' AND new_row -> 'deleted_at' <> 'null'
			THEN 'soft_delete' ELSE 'update' END
		END;
	SELECT string_agg(coalesce(new_row, old_row) ->> k, '/' ORDER BY n)
	INTO id
	FROM unnest(TG_ARGV) WITH ORDINALITY AS a(k, n);
	INSERT INTO native.audit_log (actor, role, action, entity, entity_id, before, after)
	VALUES (coalesce(claims ->> 'sub', db_role), db_role, act, TG_TABLE_NAME, id,
		old_row, new_row);
	RETURN NULL;
END
$$;

-- Attaches the audit triggers to one native table (idempotent). For migrations only.
CREATE OR REPLACE FUNCTION ods.audit_attach(t regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	pk text;
BEGIN
	IF t = 'native.audit_log'::regclass THEN
		RAISE EXCEPTION 'native.audit_log does not audit itself';
	END IF;
	SELECT string_agg(quote_literal(a.attname), ', ' ORDER BY k.n)
	INTO pk
	FROM pg_index i
	CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
	JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
	WHERE i.indrelid = t AND i.indisprimary;
	IF pk IS NULL THEN
		RAISE EXCEPTION '% has no primary key to identify audited rows by', t;
	END IF;
	EXECUTE format('DROP TRIGGER IF EXISTS audit ON %s', t);
	EXECUTE format('CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON %s '
		'FOR EACH ROW EXECUTE FUNCTION ods.audit_row(%s)', t, pk);
	EXECUTE format('DROP TRIGGER IF EXISTS audit_truncate ON %s', t);
	EXECUTE format('CREATE TRIGGER audit_truncate AFTER TRUNCATE ON %s '
		'FOR EACH STATEMENT EXECUTE FUNCTION ods.audit_row()', t);
END
$$;

REVOKE ALL ON FUNCTION ods.audit_row(), ods.audit_log_append_only(), ods.audit_attach(regclass)
	FROM PUBLIC;

SELECT ods.audit_attach(c.oid)
FROM pg_class c
WHERE c.relnamespace = 'native'::regnamespace AND c.relkind IN ('r', 'p')
  AND c.relname <> 'audit_log' AND NOT c.relispartition
ORDER BY c.relname;

-- ---- 3. row-level security ----

ALTER TABLE native.fraud_cases ENABLE ROW LEVEL SECURITY;
ALTER TABLE native.fraud_dispositions ENABLE ROW LEVEL SECURITY;
ALTER TABLE native.analyst_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE native.support_cases ENABLE ROW LEVEL SECURITY;
ALTER TABLE native.case_notes ENABLE ROW LEVEL SECURITY;

-- (SELECT ods.jwt_claim(...)): an InitPlan, evaluated once per query, not per row.
DROP POLICY IF EXISTS fraud_cases_analyst_region ON native.fraud_cases;
CREATE POLICY fraud_cases_analyst_region ON native.fraud_cases
	FOR ALL TO fraud_analyst
	USING (region = (SELECT ods.jwt_claim('region')))
	WITH CHECK (region = (SELECT ods.jwt_claim('region')));
DROP POLICY IF EXISTS fraud_cases_support_read ON native.fraud_cases;
CREATE POLICY fraud_cases_support_read ON native.fraud_cases
	FOR SELECT TO support_agent
	USING (true);
DROP POLICY IF EXISTS fraud_cases_admin ON native.fraud_cases;
CREATE POLICY fraud_cases_admin ON native.fraud_cases
	FOR ALL TO ods_admin
	USING (true) WITH CHECK (true);

DROP POLICY IF EXISTS fraud_dispositions_with_case ON native.fraud_dispositions;
CREATE POLICY fraud_dispositions_with_case ON native.fraud_dispositions
	FOR ALL TO fraud_analyst, ods_admin
	USING (EXISTS (SELECT FROM native.fraud_cases f WHERE f.case_id = fraud_dispositions.case_id))
	WITH CHECK (EXISTS (SELECT FROM native.fraud_cases f
		WHERE f.case_id = fraud_dispositions.case_id));

DROP POLICY IF EXISTS analyst_notes_with_case ON native.analyst_notes;
CREATE POLICY analyst_notes_with_case ON native.analyst_notes
	FOR ALL TO fraud_analyst, ods_admin
	USING (case_id IS NULL
		OR EXISTS (SELECT FROM native.fraud_cases f WHERE f.case_id = analyst_notes.case_id))
	WITH CHECK (case_id IS NULL
		OR EXISTS (SELECT FROM native.fraud_cases f WHERE f.case_id = analyst_notes.case_id));

DROP POLICY IF EXISTS support_cases_all ON native.support_cases;
CREATE POLICY support_cases_all ON native.support_cases
	FOR ALL TO support_agent, ods_admin
	USING (true) WITH CHECK (true);

DROP POLICY IF EXISTS case_notes_with_case ON native.case_notes;
CREATE POLICY case_notes_with_case ON native.case_notes
	FOR ALL TO support_agent, ods_admin
	USING (EXISTS (SELECT FROM native.support_cases s WHERE s.case_id = case_notes.case_id))
	WITH CHECK (EXISTS (SELECT FROM native.support_cases s WHERE s.case_id = case_notes.case_id));

-- ---- 4. the support work queue ----

-- GET /v1/cases: live cases newest first, keyset (created_at, case_id). With both
-- status and assignee, 006's support_cases_queue_idx serves.
CREATE INDEX IF NOT EXISTS support_cases_recent_idx
	ON native.support_cases (created_at DESC, case_id DESC)
	WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS support_cases_status_recent_idx
	ON native.support_cases (status, created_at DESC, case_id DESC)
	WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS support_cases_assignee_recent_idx
	ON native.support_cases (assigned_to, created_at DESC, case_id DESC)
	WHERE deleted_at IS NULL;
