-- 011_route_indexes.sql: indexes the route functions' plans need beyond 006.
--
-- Fraud queue (api/routes/40_fraud.sql): a page walks customers in risk order
-- (risk_scores_triage_idx) and probes each for cases in the queue. The queue is
-- small while closed cases pile up, so the probe uses a partial index that holds only
-- queued cases: one index descent, no heap visit for closed ones.
CREATE INDEX IF NOT EXISTS fraud_cases_queue_customer_idx
	ON native.fraud_cases (customer_id)
	WHERE status IN ('open', 'in_review') AND deleted_at IS NULL;
