-- 003_synced_tables.sql: the synced reference tables (DESIGN §3).
--
-- Read-only mirrors of curated gold tables or of source tables via CDC; only ods_sync
-- writes them. Each table: a primary key, its business columns, then the three columns
-- every sync path relies on by name:
--   _source_committed_at  when the source committed this version of the row
--   _synced_at            when the sync wrote it here (only changed rows get a new one)
--   _source_position      ordering for idempotent apply (LSN, Debezium offset, ...)
-- The tables sync independently, so there are no foreign keys between them; CHECK
-- constraints make a load of bad data fail here instead of reaching a console.
-- NOT NULL marks what a row means nothing without (keys, statuses, amounts, event
-- times) and the DESIGN §3 contract columns; the other business columns of the tables
-- with contract columns are nullable, so an extract or a Debezium event that carries
-- only the contract columns still loads.

-- Integrated customer profile (CRM + lakehouse segment).
CREATE TABLE IF NOT EXISTS synced.customer_current (
	customer_id          bigint PRIMARY KEY,
	email                text NOT NULL CHECK (position('@' IN email) > 1),
	full_name            text NOT NULL CHECK (full_name <> ''),
	tier                 text NOT NULL CHECK (tier IN ('bronze', 'silver', 'gold', 'platinum')),
	segment              text CHECK (segment ~ '^[a-z][a-z_]*$'),  -- NULL until first scored
	status               text CHECK (status IN ('active', 'suspended', 'closed')),
	region               text,
	city                 text,
	phone                text,
	signed_up_at         timestamptz,
	lifetime_value       numeric(12, 2) CHECK (lifetime_value >= 0),
	_source_committed_at timestamptz NOT NULL,
	_synced_at           timestamptz NOT NULL DEFAULT now(),
	_source_position     bigint NOT NULL DEFAULT 0
);

-- Latest fraud score per customer (model output). flagged_at: when the customer was
-- flagged for review, NULL when not flagged.
CREATE TABLE IF NOT EXISTS synced.risk_scores (
	customer_id          bigint PRIMARY KEY,
	risk_score           numeric(5, 4) NOT NULL CHECK (risk_score BETWEEN 0 AND 1),
	risk_band            text CHECK (risk_band IN ('low', 'medium', 'high', 'critical')),
	model_version        text NOT NULL,
	scored_at            timestamptz,
	flagged_at           timestamptz,
	top_reason           text,
	_source_committed_at timestamptz NOT NULL,
	_synced_at           timestamptz NOT NULL DEFAULT now(),
	_source_position     bigint NOT NULL DEFAULT 0
);

-- Current state of each order. sla_status: delivery promise kept (met), at risk,
-- breached; NULL for cancelled orders.
CREATE TABLE IF NOT EXISTS synced.order_current (
	order_id             bigint PRIMARY KEY,
	customer_id          bigint NOT NULL,
	status               text NOT NULL
	                     CHECK (status IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled')),
	channel              text CHECK (channel IN ('web', 'mobile', 'store', 'phone')),
	ordered_at           timestamptz,
	status_changed_at    timestamptz,
	item_count           integer CHECK (item_count > 0),
	total_amount         numeric(12, 2) CHECK (total_amount >= 0),
	currency             char(3) CHECK (currency ~ '^[A-Z]{3}$'),
	promised_delivery_at timestamptz,
	sla_status           text CHECK (sla_status IN ('on_track', 'at_risk', 'breached', 'met')),
	_source_committed_at timestamptz NOT NULL,
	_synced_at           timestamptz NOT NULL DEFAULT now(),
	_source_position     bigint NOT NULL DEFAULT 0
);

-- Current state of each payment (one or more per order).
CREATE TABLE IF NOT EXISTS synced.payment_current (
	payment_id           bigint PRIMARY KEY,
	order_id             bigint NOT NULL,
	customer_id          bigint NOT NULL,
	method               text NOT NULL
	                     CHECK (method IN ('card', 'paypal', 'bank_transfer', 'gift_card')),
	status               text NOT NULL
	                     CHECK (status IN ('authorized', 'captured', 'voided', 'refunded', 'failed')),
	amount               numeric(12, 2) NOT NULL CHECK (amount >= 0),
	currency             char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	card_last4           text CHECK (card_last4 ~ '^[0-9]{4}$'),
	initiated_at         timestamptz NOT NULL,
	captured_at          timestamptz,
	status_changed_at    timestamptz NOT NULL,
	_source_committed_at timestamptz NOT NULL,
	_synced_at           timestamptz NOT NULL DEFAULT now(),
	_source_position     bigint NOT NULL DEFAULT 0
);

-- Latest carrier status of each shipment.
CREATE TABLE IF NOT EXISTS synced.shipment_status_latest (
	shipment_id           bigint PRIMARY KEY,
	order_id              bigint NOT NULL,
	carrier               text NOT NULL,
	tracking_number       text NOT NULL,
	status                text NOT NULL CHECK (status IN ('label_created', 'in_transit',
	                      'out_for_delivery', 'delivered', 'exception', 'returned_to_sender')),
	last_event_at         timestamptz NOT NULL,
	last_location         text,
	estimated_delivery_at timestamptz,
	delivered_at          timestamptz,
	_source_committed_at  timestamptz NOT NULL,
	_synced_at            timestamptz NOT NULL DEFAULT now(),
	_source_position      bigint NOT NULL DEFAULT 0
);

-- Order status transitions of the last 30 days. seq numbers the transitions of one
-- order over its whole life, so older ones aging out leaves the keys of the rest alone.
CREATE TABLE IF NOT EXISTS synced.order_status_history_30d (
	order_id             bigint NOT NULL,
	seq                  integer NOT NULL CHECK (seq > 0),
	status               text NOT NULL
	                     CHECK (status IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled')),
	changed_at           timestamptz NOT NULL,
	changed_by           text NOT NULL,
	reason               text,
	_source_committed_at timestamptz NOT NULL,
	_synced_at           timestamptz NOT NULL DEFAULT now(),
	_source_position     bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (order_id, seq)
);

-- Current availability per store and SKU. sellable = on_hand - reserved + in_transit;
-- stockout_risk is the predicted probability of a stockout before the next delivery.
CREATE TABLE IF NOT EXISTS synced.inventory_position (
	store_id             integer NOT NULL,
	sku                  text NOT NULL,
	on_hand              integer NOT NULL CHECK (on_hand >= 0),
	reserved             integer NOT NULL CHECK (reserved >= 0),
	in_transit           integer NOT NULL CHECK (in_transit >= 0),
	stockout_risk        numeric(4, 3) NOT NULL CHECK (stockout_risk BETWEEN 0 AND 1),
	reorder_point        integer CHECK (reorder_point >= 0),
	next_delivery_at     timestamptz,
	last_counted_at      timestamptz,
	_source_committed_at timestamptz NOT NULL,
	_synced_at           timestamptz NOT NULL DEFAULT now(),
	_source_position     bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (store_id, sku)
);

-- Product master.
CREATE TABLE IF NOT EXISTS synced.product_catalog (
	sku                  text PRIMARY KEY CHECK (sku ~ '^[A-Z0-9][A-Z0-9-]*$'),
	product_name         text NOT NULL CHECK (product_name <> ''),
	category             text NOT NULL,
	brand                text NOT NULL,
	unit_price           numeric(10, 2) NOT NULL CHECK (unit_price >= 0),
	currency             char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	status               text NOT NULL CHECK (status IN ('active', 'discontinued')),
	pack_size            integer NOT NULL CHECK (pack_size > 0),
	supplier_lead_days   integer NOT NULL CHECK (supplier_lead_days >= 0),
	launched_on          date,
	_source_committed_at timestamptz NOT NULL,
	_synced_at           timestamptz NOT NULL DEFAULT now(),
	_source_position     bigint NOT NULL DEFAULT 0
);

-- Current state of each field-service work order. sla_breach_risk: predicted
-- probability of missing sla_due_at (0 once completed or cancelled).
CREATE TABLE IF NOT EXISTS synced.work_order_current (
	work_order_id        bigint PRIMARY KEY,
	customer_id          bigint,
	status               text NOT NULL CHECK (status IN ('new', 'scheduled', 'dispatched',
	                     'in_progress', 'on_hold', 'completed', 'cancelled')),
	work_type            text CHECK (work_type IN ('install', 'repair', 'maintenance', 'inspection')),
	priority             smallint CHECK (priority BETWEEN 1 AND 5),
	region               text,
	site_address         text,
	opened_at            timestamptz,
	scheduled_start      timestamptz,
	sla_due_at           timestamptz,
	completed_at         timestamptz,
	sla_breach_risk      numeric(4, 3) CHECK (sla_breach_risk BETWEEN 0 AND 1),
	_source_committed_at timestamptz NOT NULL,
	_synced_at           timestamptz NOT NULL DEFAULT now(),
	_source_position     bigint NOT NULL DEFAULT 0
);

-- Technician skills and availability (HR / workforce management).
CREATE TABLE IF NOT EXISTS synced.technician_profile (
	technician_id        bigint PRIMARY KEY,
	full_name            text NOT NULL CHECK (full_name <> ''),
	email                text NOT NULL CHECK (position('@' IN email) > 1),
	phone                text,
	region               text NOT NULL,
	skills               text[] NOT NULL,
	certification_level  smallint NOT NULL CHECK (certification_level BETWEEN 1 AND 3),
	status               text NOT NULL CHECK (status IN ('active', 'on_leave', 'inactive')),
	hired_on             date NOT NULL,
	_source_committed_at timestamptz NOT NULL,
	_synced_at           timestamptz NOT NULL DEFAULT now(),
	_source_position     bigint NOT NULL DEFAULT 0
);

-- Risk signals of the last 7 days, for investigations.
CREATE TABLE IF NOT EXISTS synced.risk_event_history_7d (
	event_id             bigint PRIMARY KEY,
	customer_id          bigint NOT NULL,
	event_type           text NOT NULL CHECK (event_type IN ('new_device_login', 'velocity_spike',
	                     'geo_mismatch', 'card_added', 'password_reset', 'large_order',
	                     'chargeback')),
	severity             text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
	score_impact         numeric(5, 4) NOT NULL CHECK (score_impact BETWEEN -1 AND 1),
	occurred_at          timestamptz NOT NULL,
	order_id             bigint,
	detail               text,
	_source_committed_at timestamptz NOT NULL,
	_synced_at           timestamptz NOT NULL DEFAULT now(),
	_source_position     bigint NOT NULL DEFAULT 0
);
