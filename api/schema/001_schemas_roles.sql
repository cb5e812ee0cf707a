-- 001_schemas_roles.sql: the four schemas and the cluster-wide roles (DESIGN §3, §4).
--
-- Roles live in the cluster while this file runs once per database, and one cluster
-- holds many databases (tests, branches) that may migrate at the same time. So every
-- role and membership is created only when missing, and losing a creation race to a
-- concurrent migration is not an error. Passwords are never set here: operators give
-- ods_authenticator one (or a certificate / trust rule) out of band.

CREATE SCHEMA IF NOT EXISTS synced;   -- read-only mirrors of gold tables / CDC; only ods_sync writes
CREATE SCHEMA IF NOT EXISTS native;   -- app-owned workflow state (cases, notes, dispatch, ...)
CREATE SCHEMA IF NOT EXISTS ods;      -- catalog and machinery
CREATE SCHEMA IF NOT EXISTS ods_api;  -- route functions, one JSON document per call

-- ods_authenticator: what the odsd pool logs in as. NOINHERIT: it holds no privileges of
-- its own beyond USAGE on ods_api, and acts only after switching to an app role.
-- App roles: NOLOGIN, reached only through ods_authenticator. ods_sync: ingest only.
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT * FROM (VALUES
		('ods_authenticator', true,  false),
		('support_agent',     false, true),
		('fraud_analyst',     false, true),
		('ops_manager',       false, true),
		('field_dispatcher',  false, true),
		('ods_admin',         false, true),
		('ods_sync',          false, true)) AS v(name, can_login, inherit)
	LOOP
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r.name) THEN
			BEGIN
				EXECUTE format('CREATE ROLE %I %s %s', r.name,
					CASE WHEN r.can_login THEN 'LOGIN' ELSE 'NOLOGIN' END,
					CASE WHEN r.inherit THEN 'INHERIT' ELSE 'NOINHERIT' END);
			EXCEPTION WHEN duplicate_object OR unique_violation THEN
				NULL; -- another database's migration created it first
			END;
		ELSIF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r.name
				AND rolcanlogin = r.can_login AND rolinherit = r.inherit) THEN
			-- Pre-created with other attributes (e.g. an INHERIT authenticator would
			-- hold every app role's privileges at once): bring it back to the contract.
			EXECUTE format('ALTER ROLE %I %s %s', r.name,
				CASE WHEN r.can_login THEN 'LOGIN' ELSE 'NOLOGIN' END,
				CASE WHEN r.inherit THEN 'INHERIT' ELSE 'NOINHERIT' END);
		END IF;
	END LOOP;
END $$;

-- Memberships. ods_authenticator may switch to every role odsd accepts from a JWT
-- (DESIGN §9 app_roles, ods_sync included for POST /v1/ingest/debezium) and to no
-- other. ods_admin inherits the four app roles, so "everything above" stays true
-- when a later migration grants one of them something new.
DO $$
DECLARE
	m record;
BEGIN
	FOR m IN SELECT * FROM (VALUES
		('support_agent',    'ods_authenticator'),
		('fraud_analyst',    'ods_authenticator'),
		('ops_manager',      'ods_authenticator'),
		('field_dispatcher', 'ods_authenticator'),
		('ods_admin',        'ods_authenticator'),
		('ods_sync',         'ods_authenticator'),
		('support_agent',    'ods_admin'),
		('fraud_analyst',    'ods_admin'),
		('ops_manager',      'ods_admin'),
		('field_dispatcher', 'ods_admin')) AS v(role_name, member_name)
	LOOP
		IF NOT EXISTS (SELECT FROM pg_auth_members am
				JOIN pg_roles g ON g.oid = am.roleid
				JOIN pg_roles u ON u.oid = am.member
				WHERE g.rolname = m.role_name AND u.rolname = m.member_name) THEN
			BEGIN
				EXECUTE format('GRANT %I TO %I', m.role_name, m.member_name);
			EXCEPTION WHEN duplicate_object OR unique_violation THEN
				NULL; -- granted concurrently by another database's migration
			END;
		END IF;
	END LOOP;
END $$;
