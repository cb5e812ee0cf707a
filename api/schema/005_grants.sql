-- 005_grants.sql: who may use what (DESIGN §4), enforced by the database.
--
-- odsd switches each transaction to the JWT's role, so these grants, not C code,
-- decide what a role can read or write. Table-level grants:
--
--   role              reads (synced)                                   reads/writes (native)
--   support_agent     customer_current, risk_scores, order_current,    support_cases, case_notes
--                     payment_current, shipment_status_latest,         (+ read fraud_cases for
--                     order_status_history_30d                           the customer 360)
--   fraud_analyst     customer_current, risk_scores, order_current,    fraud_cases,
--                     risk_event_history_7d                            fraud_dispositions, analyst_notes
--   ops_manager       inventory_position, product_catalog, the four    store_actions, approvals
--                     order tables
--   field_dispatcher  work_order_current, technician_profile          dispatch_assignments,
--                                                                      work_order_updates
--   ods_admin         member of the four roles above
--   ods_sync          SELECT/INSERT/UPDATE/DELETE on every synced table; nothing native
--
-- "Writes" is SELECT, INSERT, UPDATE: deletes are soft (UPDATE of deleted_at), so no
-- app role has DELETE anywhere, and none has any write on synced.*. Every app role
-- reads ods.synced_tables (freshness). ods_authenticator gets USAGE on ods_api and no
-- data: enough to prepare route calls before the role switch (EXECUTE is checked when
-- the call runs, as the switched-to role).

REVOKE ALL ON SCHEMA synced, native, ods, ods_api FROM PUBLIC;

GRANT USAGE ON SCHEMA ods_api TO ods_authenticator;
GRANT USAGE ON SCHEMA synced, native, ods, ods_api
	TO support_agent, fraud_analyst, ops_manager, field_dispatcher, ods_admin;
GRANT USAGE ON SCHEMA synced, ods, ods_api TO ods_sync;

GRANT SELECT ON ods.synced_tables
	TO support_agent, fraud_analyst, ops_manager, field_dispatcher, ods_admin;

-- support_agent
GRANT SELECT ON synced.customer_current, synced.risk_scores, synced.order_current,
	synced.payment_current, synced.shipment_status_latest, synced.order_status_history_30d
	TO support_agent;
GRANT SELECT, INSERT, UPDATE ON native.support_cases, native.case_notes TO support_agent;
GRANT SELECT ON native.fraud_cases TO support_agent;

-- fraud_analyst: nothing on support_cases / case_notes
GRANT SELECT ON synced.customer_current, synced.risk_scores, synced.risk_event_history_7d,
	synced.order_current
	TO fraud_analyst;
GRANT SELECT, INSERT, UPDATE ON native.fraud_cases, native.fraud_dispositions,
	native.analyst_notes
	TO fraud_analyst;

-- ops_manager
GRANT SELECT ON synced.inventory_position, synced.product_catalog, synced.order_current,
	synced.payment_current, synced.shipment_status_latest, synced.order_status_history_30d
	TO ops_manager;
GRANT SELECT, INSERT, UPDATE ON native.store_actions, native.approvals TO ops_manager;

-- field_dispatcher
GRANT SELECT ON synced.work_order_current, synced.technician_profile TO field_dispatcher;
GRANT SELECT, INSERT, UPDATE ON native.dispatch_assignments, native.work_order_updates
	TO field_dispatcher;

-- ods_admin: everything above through membership (001); nothing to grant directly.

-- ods_sync: ingest only. It advances the freshness catalog; it does not add tables to it.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA synced TO ods_sync;
GRANT SELECT, UPDATE ON ods.synced_tables TO ods_sync;

-- Default privileges for objects the migrating role creates later in this database:
-- a new synced table is writable by ods_sync and readable by ods_admin; a new native
-- table is readable/writable by ods_admin; other roles get what a migration grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA synced GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ods_sync;
ALTER DEFAULT PRIVILEGES IN SCHEMA synced GRANT SELECT ON TABLES TO ods_admin;
ALTER DEFAULT PRIVILEGES IN SCHEMA native GRANT SELECT, INSERT, UPDATE ON TABLES TO ods_admin;
-- Functions (route functions included) are not executable by PUBLIC unless granted:
-- support_agent can read fraud_cases (customer 360), so only the EXECUTE grant on the
-- fraud queue function can make it 403 for a support agent. Route migrations must
-- GRANT EXECUTE ON FUNCTION ods_api.<f> TO <roles>. (Per-schema defaults cannot revoke
-- the built-in PUBLIC EXECUTE, hence the database-wide form.)
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
