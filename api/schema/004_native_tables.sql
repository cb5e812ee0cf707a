-- 004_native_tables.sql: app-owned workflow state (DESIGN §3).
--
-- Written through the API only. Every table has a uuid key and the same bookkeeping:
--   created_at, updated_at   set by default / by the trigger below
--   deleted_at               soft delete: NULL = live; the API never hard-deletes
--   version                  optimistic concurrency (the ETag); +1 on every UPDATE
--   created_by               the actor, from the JWT sub
-- Customer, order, store, SKU, work order and technician ids point into synced tables,
-- which sync independently: route functions check them, foreign keys cannot. Foreign
-- keys between native tables are real. Seed loaders must insert parents first:
-- support_cases, case_notes, fraud_cases, fraud_dispositions, analyst_notes,
-- store_actions, approvals, dispatch_assignments, work_order_updates.

-- Support cases: the support cockpit's work queue.
CREATE TABLE IF NOT EXISTS native.support_cases (
	case_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	customer_id bigint NOT NULL,
	status      text NOT NULL DEFAULT 'open'
	            CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
	subject     text NOT NULL CHECK (btrim(subject) <> '' AND char_length(subject) <= 500),
	description text,
	priority    smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
	assigned_to text,
	channel     text CHECK (channel IN ('phone', 'email', 'chat', 'web')),
	order_id    bigint,
	resolved_at timestamptz,
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now(),
	deleted_at  timestamptz,
	version     integer NOT NULL DEFAULT 1 CHECK (version > 0),
	created_by  text NOT NULL
);

CREATE TABLE IF NOT EXISTS native.case_notes (
	note_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	case_id    uuid NOT NULL REFERENCES native.support_cases (case_id),
	body       text NOT NULL CHECK (btrim(body) <> ''),
	visibility text NOT NULL DEFAULT 'internal' CHECK (visibility IN ('internal', 'customer')),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz,
	version    integer NOT NULL DEFAULT 1 CHECK (version > 0),
	created_by text NOT NULL
);

-- Fraud investigations; the queue shows open and in_review ones. region feeds
-- row-level security by the analyst's region claim.
CREATE TABLE IF NOT EXISTS native.fraud_cases (
	case_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	customer_id bigint NOT NULL,
	status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_review', 'closed')),
	assigned_to text,
	region      text,
	priority    smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
	reason      text,
	closed_at   timestamptz,
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now(),
	deleted_at  timestamptz,
	version     integer NOT NULL DEFAULT 1 CHECK (version > 0),
	created_by  text NOT NULL
);

CREATE TABLE IF NOT EXISTS native.fraud_dispositions (
	disposition_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	case_id        uuid NOT NULL REFERENCES native.fraud_cases (case_id),
	decision       text NOT NULL CHECK (decision IN ('hold', 'release', 'escalate')),
	note           text,
	created_at     timestamptz NOT NULL DEFAULT now(),
	updated_at     timestamptz NOT NULL DEFAULT now(),
	deleted_at     timestamptz,
	version        integer NOT NULL DEFAULT 1 CHECK (version > 0),
	created_by     text NOT NULL
);

-- Analyst notes on a customer, optionally within a fraud case.
CREATE TABLE IF NOT EXISTS native.analyst_notes (
	note_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	customer_id bigint NOT NULL,
	case_id     uuid REFERENCES native.fraud_cases (case_id),
	body        text NOT NULL CHECK (btrim(body) <> ''),
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now(),
	deleted_at  timestamptz,
	version     integer NOT NULL DEFAULT 1 CHECK (version > 0),
	created_by  text NOT NULL
);

-- Actions a store or regional manager takes on a store x SKU position.
CREATE TABLE IF NOT EXISTS native.store_actions (
	action_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	store_id     integer NOT NULL,
	sku          text NOT NULL,
	action_type  text NOT NULL CHECK (action_type IN ('override', 'replenishment', 'transfer',
	             'markdown', 'recount')),
	status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'cancelled')),
	quantity     integer CHECK (quantity >= 0),
	note         text,
	due_at       timestamptz,
	completed_at timestamptz,
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	deleted_at   timestamptz,
	version      integer NOT NULL DEFAULT 1 CHECK (version > 0),
	created_by   text NOT NULL
);

-- Which technician is sent to which work order.
CREATE TABLE IF NOT EXISTS native.dispatch_assignments (
	assignment_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	work_order_id bigint NOT NULL,
	technician_id bigint NOT NULL,
	status        text NOT NULL DEFAULT 'assigned' CHECK (status IN ('assigned', 'en_route',
	              'on_site', 'completed', 'cancelled')),
	assigned_at   timestamptz NOT NULL DEFAULT now(),
	scheduled_for timestamptz,
	note          text,
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz,
	version       integer NOT NULL DEFAULT 1 CHECK (version > 0),
	created_by    text NOT NULL
);

-- In-progress updates from the field (append-only in practice).
CREATE TABLE IF NOT EXISTS native.work_order_updates (
	update_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	work_order_id bigint NOT NULL,
	technician_id bigint NOT NULL,
	kind          text NOT NULL CHECK (kind IN ('arrived', 'progress', 'parts_needed',
	              'completed', 'note')),
	note          text,
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz,
	version       integer NOT NULL DEFAULT 1 CHECK (version > 0),
	created_by    text NOT NULL
);

-- Generic approval of an action on any entity (e.g. a store override above a limit).
-- entity_id is text so it can hold a uuid or a synced bigint id.
CREATE TABLE IF NOT EXISTS native.approvals (
	approval_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	entity_type   text NOT NULL CHECK (entity_type ~ '^[a-z][a-z_]*$'),
	entity_id     text NOT NULL CHECK (entity_id <> ''),
	status        text NOT NULL DEFAULT 'pending'
	              CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
	reason        text,
	decided_by    text,
	decided_at    timestamptz,
	decision_note text,
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz,
	version       integer NOT NULL DEFAULT 1 CHECK (version > 0),
	created_by    text NOT NULL
);

-- Every UPDATE of a native row bumps version and updated_at and keeps created_*
-- as they were, whatever the statement set: optimistic concurrency cannot be
-- forgotten by one route. (A route that also sets version = version + 1 gets the
-- same result.)
CREATE OR REPLACE FUNCTION ods.native_row_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.version := OLD.version + 1;
	NEW.updated_at := now();
	NEW.created_at := OLD.created_at;
	NEW.created_by := OLD.created_by;
	RETURN NEW;
END
$$;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['support_cases', 'case_notes', 'fraud_cases',
		'fraud_dispositions', 'analyst_notes', 'store_actions', 'dispatch_assignments',
		'work_order_updates', 'approvals']
	LOOP
		IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgname = 'native_row_touch'
				AND tgrelid = format('native.%I', t)::regclass) THEN
			EXECUTE format('CREATE TRIGGER native_row_touch BEFORE UPDATE ON native.%I '
				'FOR EACH ROW EXECUTE FUNCTION ods.native_row_touch()', t);
		END IF;
	END LOOP;
END $$;
