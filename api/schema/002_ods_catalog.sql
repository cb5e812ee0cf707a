-- 002_ods_catalog.sql: ods.synced_tables, the freshness catalog (DESIGN §3, §5, §7).
--
-- One row per table in schema synced. The sync paths (snapshot loader, Debezium apply,
-- pgoutput worker) update as_of / last_sync_at / status / rows in the same transaction
-- as the rows they write; odsd serves freshness headers from an in-memory copy that a
-- notification on channel ods_freshness refreshes (payload = the table name).

CREATE TABLE IF NOT EXISTS ods.synced_tables (
	table_name    text PRIMARY KEY CHECK (table_name ~ '^[a-z_][a-z0-9_]*$'),
	-- Name of the upstream table (Debezium source.table, gold table, publication
	-- table) whose changes land here; the same as table_name unless configured.
	source_name   text NOT NULL UNIQUE,
	mode          text NOT NULL CHECK (mode IN ('snapshot', 'triggered', 'continuous')),
	tier          text NOT NULL
	              CHECK (tier IN ('real-time', 'near-real-time', 'batch', 'feedback')),
	freshness_sla interval NOT NULL CHECK (freshness_sla > interval '0'),
	as_of         timestamptz,          -- source time up to which all changes are applied
	last_sync_at  timestamptz,          -- wall-clock time of the last successful or failed sync
	status        text NOT NULL DEFAULT 'never_synced'
	              CHECK (status IN ('never_synced', 'ok', 'error')),
	last_error    text,
	rows          bigint NOT NULL DEFAULT 0 CHECK (rows >= 0)
);

-- Any change to a catalog row tells odsd to refresh that table's freshness entry,
-- whichever writer made it (loaders also NOTIFY; duplicates in one transaction fold).
CREATE OR REPLACE FUNCTION ods.synced_tables_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM pg_notify('ods_freshness', OLD.table_name);
	ELSE
		PERFORM pg_notify('ods_freshness', NEW.table_name);
	END IF;
	RETURN NULL;
END
$$;

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgname = 'synced_tables_notify'
			AND tgrelid = 'ods.synced_tables'::regclass) THEN
		CREATE TRIGGER synced_tables_notify
			AFTER INSERT OR UPDATE OR DELETE ON ods.synced_tables
			FOR EACH ROW EXECUTE FUNCTION ods.synced_tables_notify();
	END IF;
END $$;

-- Tiers follow the CIF ODS classes: real-time = seconds, near-synchronous CDC;
-- near-real-time = minutes, store-and-forward; batch = daily pipeline outputs;
-- feedback = lakehouse-computed intelligence pushed back when it is produced.
INSERT INTO ods.synced_tables (table_name, source_name, mode, tier, freshness_sla) VALUES
	-- CRM profile via CDC; support enrichment tolerates a minute.
	('customer_current',         'customer_current',         'continuous', 'near-real-time', interval '60 seconds'),
	-- Gold output of the scoring model, pushed when a scoring run finishes.
	('risk_scores',              'risk_scores',              'triggered',  'feedback',       interval '15 minutes'),
	-- Order, payment: CDC from the OMS / payment service; an agent on the phone
	-- with the customer must see the order and the charge the customer just saw.
	('order_current',            'order_current',            'continuous', 'real-time',      interval '30 seconds'),
	('payment_current',          'payment_current',          'continuous', 'real-time',      interval '30 seconds'),
	-- Carrier events arrive in bursts through the carrier integrations.
	('shipment_status_latest',   'shipment_status_latest',   'continuous', 'near-real-time', interval '60 seconds'),
	-- Short history, rebuilt by a triggered gold job; context, not the current state.
	('order_status_history_30d', 'order_status_history_30d', 'triggered',  'near-real-time', interval '5 minutes'),
	-- Store systems report positions every few minutes; gold adds stockout risk.
	('inventory_position',       'inventory_position',       'triggered',  'near-real-time', interval '5 minutes'),
	-- Reference dimension: the nightly product master.
	('product_catalog',          'product_catalog',          'snapshot',   'batch',          interval '24 hours'),
	-- Field service system via CDC; dispatch decisions need it within minutes.
	('work_order_current',       'work_order_current',       'continuous', 'near-real-time', interval '2 minutes'),
	-- HR / skills dimension: daily.
	('technician_profile',       'technician_profile',       'snapshot',   'batch',          interval '24 hours'),
	-- Recent risk signals for investigations, published with each scoring run.
	('risk_event_history_7d',    'risk_event_history_7d',    'triggered',  'near-real-time', interval '15 minutes')
ON CONFLICT (table_name) DO NOTHING;
