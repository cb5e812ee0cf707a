-- source_schema.sql: the demo's OLTP source database (`odsctl demo source`), the side
-- the CDC worker (`odsctl sync run`) reads: an order management system, payments, a
-- CRM and field service. Each table carries the business columns of the synced table
-- it feeds (same names, compatible types, the same CHECKs, so no change the ODS
-- refuses can be made here) plus columns the ODS does not mirror (updated_at,
-- internal notes): the worker ignores those. Idempotent.

CREATE TABLE IF NOT EXISTS customers (
	customer_id    bigint PRIMARY KEY,
	email          text NOT NULL CHECK (position('@' IN email) > 1),
	full_name      text NOT NULL CHECK (full_name <> ''),
	tier           text NOT NULL CHECK (tier IN ('bronze', 'silver', 'gold', 'platinum')),
	segment        text CHECK (segment ~ '^[a-z][a-z_]*$'),
	status         text CHECK (status IN ('active', 'suspended', 'closed')),
	region         text,
	city           text,
	phone          text,
	signed_up_at   timestamptz,
	lifetime_value numeric(12, 2) CHECK (lifetime_value >= 0),
	crm_owner      text,                          -- not mirrored
	updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS orders (
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
	internal_note        text,                    -- not mirrored
	updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_status ON orders (status, order_id);

CREATE TABLE IF NOT EXISTS payments (
	payment_id        bigint PRIMARY KEY,
	order_id          bigint NOT NULL,
	customer_id       bigint NOT NULL,
	method            text NOT NULL CHECK (method IN ('card', 'paypal', 'bank_transfer', 'gift_card')),
	status            text NOT NULL
	                  CHECK (status IN ('authorized', 'captured', 'voided', 'refunded', 'failed')),
	amount            numeric(12, 2) NOT NULL CHECK (amount >= 0),
	currency          char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	card_last4        text CHECK (card_last4 ~ '^[0-9]{4}$'),
	initiated_at      timestamptz NOT NULL,
	captured_at       timestamptz,
	status_changed_at timestamptz NOT NULL,
	processor_ref     text,                       -- not mirrored
	updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS payments_order ON payments (order_id);

CREATE TABLE IF NOT EXISTS shipments (
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
	updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS shipments_status ON shipments (status, shipment_id);
CREATE INDEX IF NOT EXISTS shipments_order ON shipments (order_id);

CREATE TABLE IF NOT EXISTS work_orders (
	work_order_id   bigint PRIMARY KEY,
	customer_id     bigint,
	status          text NOT NULL CHECK (status IN ('new', 'scheduled', 'dispatched',
	                'in_progress', 'on_hold', 'completed', 'cancelled')),
	work_type       text CHECK (work_type IN ('install', 'repair', 'maintenance', 'inspection')),
	priority        smallint CHECK (priority BETWEEN 1 AND 5),
	region          text,
	site_address    text,
	opened_at       timestamptz,
	scheduled_start timestamptz,
	sla_due_at      timestamptz,
	completed_at    timestamptz,
	sla_breach_risk numeric(4, 3) CHECK (sla_breach_risk BETWEEN 0 AND 1),
	technician_note text,                         -- not mirrored
	updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS work_orders_status ON work_orders (status, work_order_id);

-- Every status an order took (the OMS's audit trail); seq numbers them per order.
-- The ODS mirrors it as synced.order_status_history_30d (the window is the ODS's
-- retention, not the source's).
CREATE TABLE IF NOT EXISTS order_status_history (
	order_id   bigint NOT NULL,
	seq        integer NOT NULL CHECK (seq > 0),
	status     text NOT NULL
	           CHECK (status IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled')),
	changed_at timestamptz NOT NULL,
	changed_by text NOT NULL,
	reason     text,
	PRIMARY KEY (order_id, seq)
);
