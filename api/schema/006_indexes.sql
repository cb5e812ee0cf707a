-- 006_indexes.sql: indexes for the operational access paths of DESIGN §6.
--
-- Point lookups and short, ordered lists for consoles; not analytical scans.
-- Primary keys already serve: customer_current / risk_scores by customer_id,
-- order_current by order_id, order_status_history_30d by order_id (PK prefix),
-- inventory_position by (store_id, sku), work_order_current by work_order_id.

-- Customer 360: recent orders of a customer.
CREATE INDEX IF NOT EXISTS order_current_customer_idx
	ON synced.order_current (customer_id, ordered_at DESC);
-- Order view: its payments and shipments.
CREATE INDEX IF NOT EXISTS payment_current_order_idx
	ON synced.payment_current (order_id);
CREATE INDEX IF NOT EXISTS shipment_status_latest_order_idx
	ON synced.shipment_status_latest (order_id);
-- Fraud triage ordering: highest score first, earliest flag first.
CREATE INDEX IF NOT EXISTS risk_scores_triage_idx
	ON synced.risk_scores (risk_score DESC, flagged_at);
-- A customer's recent risk signals.
CREATE INDEX IF NOT EXISTS risk_event_history_7d_customer_idx
	ON synced.risk_event_history_7d (customer_id, occurred_at DESC);
-- Availability of one SKU across stores.
CREATE INDEX IF NOT EXISTS inventory_position_sku_idx
	ON synced.inventory_position (sku);
-- Dispatch board: a customer's work orders.
CREATE INDEX IF NOT EXISTS work_order_current_customer_idx
	ON synced.work_order_current (customer_id);

-- Support: a customer's cases; the work queue by status and assignee.
CREATE INDEX IF NOT EXISTS support_cases_customer_idx
	ON native.support_cases (customer_id);
CREATE INDEX IF NOT EXISTS support_cases_queue_idx
	ON native.support_cases (status, assigned_to, created_at)
	WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS case_notes_case_idx
	ON native.case_notes (case_id, created_at);

-- Fraud: the live queue (small, partial) and a customer's cases.
CREATE INDEX IF NOT EXISTS fraud_cases_queue_idx
	ON native.fraud_cases (status)
	WHERE status IN ('open', 'in_review') AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS fraud_cases_customer_idx
	ON native.fraud_cases (customer_id);
CREATE INDEX IF NOT EXISTS fraud_dispositions_case_idx
	ON native.fraud_dispositions (case_id, created_at);
CREATE INDEX IF NOT EXISTS analyst_notes_customer_idx
	ON native.analyst_notes (customer_id, created_at);
CREATE INDEX IF NOT EXISTS analyst_notes_case_idx
	ON native.analyst_notes (case_id);

-- Store ops: actions on a position.
CREATE INDEX IF NOT EXISTS store_actions_position_idx
	ON native.store_actions (store_id, sku);
CREATE INDEX IF NOT EXISTS approvals_entity_idx
	ON native.approvals (entity_type, entity_id);
CREATE INDEX IF NOT EXISTS approvals_pending_idx
	ON native.approvals (created_at)
	WHERE status = 'pending' AND deleted_at IS NULL;

-- Field: who worked a work order (last 7 days), and its updates in order.
CREATE INDEX IF NOT EXISTS dispatch_assignments_work_order_idx
	ON native.dispatch_assignments (work_order_id);
CREATE INDEX IF NOT EXISTS dispatch_assignments_technician_idx
	ON native.dispatch_assignments (technician_id, assigned_at);
CREATE INDEX IF NOT EXISTS work_order_updates_work_order_idx
	ON native.work_order_updates (work_order_id, created_at);
