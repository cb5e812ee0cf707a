-- 40_fraud.sql: the fraud queue (DESIGN section 6). Conventions: see 10_customers.sql.
--
--   GET /v1/fraud/queue  ods_api.fraud_queue  fraud:read (paged)
--
-- EXECUTE goes to fraud_analyst and ods_admin only. A support agent can read
-- native.fraud_cases (for the customer 360), so this missing grant is what makes the
-- queue a 403 (SQLSTATE 42501) for a support agent, whatever scopes its token carries.

-- Dropped first, so the definitions below may change arguments or result.
SELECT ods.drop_route_functions('fraud_queue');

-- Fraud cases that are open or in_review, each with its customer's latest risk score
-- (risk_scores holds one, the latest, per customer) and profile, ordered by
--   risk_score DESC NULLS LAST, flagged_at ASC NULLS LAST, case_id ASC
-- (cases of customers without a score come last). status narrows to open or
-- in_review; limit 1-500, default 50.
--
-- Keyset paging over exactly that order, rewritten as the all-ascending key
--   k = (coalesce(-risk_score, 'Infinity'), coalesce(flagged_at, 'infinity'), case_id)
-- so "after the cursor" is one row comparison; case_id makes the order total. The
-- cursor holds the last row's raw risk_score, flagged_at (exact, nulls kept) and
-- case_id. A walk returns every case that stays in the queue with an unchanged score
-- exactly once; a case whose score changes mid-walk may cross the cursor (keyset).
--
-- The sort key lives in risk_scores, the filter in fraud_cases: sorting the whole
-- queue costs one risk_scores probe per queued case (~7 ms for 3,000 cases). So a
-- page is first looked for in a window of the next customers in score order (index
-- risk_scores_triage_idx from the cursor on, one probe of the queue index per
-- customer): queued cases are mostly the top-scored customers, whom the triage job
-- flagged. The window's answer is exact for every customer before its last score
-- and flag (a tie group may continue past the window), or for all of it when the
-- window reached the end of risk_scores. When that does not fill the page (the end of
-- the queue, sparse queues, cases of unscored customers) the whole queue from the
-- cursor on is sorted instead. Both paths yield the case ids of the page in order;
-- one query then renders them.
CREATE OR REPLACE FUNCTION ods_api.fraud_queue("limit" integer, cursor text, status text)
RETURNS TABLE (body json, next_cursor text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	lim integer := ods.page_limit(fraud_queue."limit");
	pos jsonb := ods.cursor_decode('fraud_queue', fraud_queue.cursor);
	window_size integer := greatest(200, 4 * (lim + 1));
	-- The cursor's k; before every row when there is no cursor.
	k_score numeric := '-Infinity';
	k_flag timestamptz := '-infinity';
	k_id uuid := '00000000-0000-0000-0000-000000000000';
	ids uuid[];  -- the page's case ids in queue order, plus the next one if any
	items json;
BEGIN
	IF fraud_queue.status IS NOT NULL AND fraud_queue.status NOT IN ('open', 'in_review') THEN
		RAISE EXCEPTION USING ERRCODE = 'OD400',
			MESSAGE = 'status must be one of open, in_review';
	END IF;
	IF pos IS NOT NULL THEN
		BEGIN
			k_score := coalesce(-(pos->>'s')::numeric, 'Infinity');
			k_flag := coalesce((pos->>'f')::timestamptz, 'infinity');
			k_id := (pos->>'id')::uuid;
		EXCEPTION WHEN data_exception THEN
			k_id := NULL;
		END;
		IF k_id IS NULL OR NOT pos ?& ARRAY['s', 'f'] OR k_score = '-Infinity'
		   OR k_score = 'NaN' OR k_flag = '-infinity' THEN
			RAISE EXCEPTION USING ERRCODE = 'OD400',
				MESSAGE = 'cursor is not valid for this list (use the next_cursor of its previous page)';
		END IF;
	END IF;

	-- Fast path: the window of the next window_size scored customers.
	IF k_score < 'Infinity' THEN
		WITH w AS MATERIALIZED (
			SELECT r.customer_id, -r.risk_score AS k1,
			       coalesce(r.flagged_at, 'infinity') AS k2
			FROM synced.risk_scores r
			WHERE r.risk_score <= -k_score
			  AND (-r.risk_score, coalesce(r.flagged_at, 'infinity')) >= (k_score, k_flag)
			ORDER BY r.risk_score DESC, r.flagged_at
			LIMIT window_size),
		b AS (  -- is the window full, and its last (greatest) key
			SELECT (SELECT count(*) FROM w) = window_size AS full, w.k1, w.k2
			FROM w
			ORDER BY w.k1 DESC, w.k2 DESC
			LIMIT 1)
		SELECT CASE WHEN count(*) FILTER (WHERE x.exact) > lim
			THEN (array_agg(x.case_id ORDER BY x.k1, x.k2, x.case_id)
				FILTER (WHERE x.exact))[1:lim + 1] END
		INTO ids
		FROM (SELECT f.case_id, w.k1, w.k2,
			     NOT b.full OR (w.k1, w.k2) < (b.k1, b.k2) AS exact
			FROM w
			CROSS JOIN b
			-- OFFSET 0 keeps this a per-customer probe of the queue index; flattened,
			-- the planner hashes the whole queue instead (it looks small).
			CROSS JOIN LATERAL (SELECT f.case_id FROM native.fraud_cases f
				WHERE f.customer_id = w.customer_id
				  AND f.status IN ('open', 'in_review') AND f.deleted_at IS NULL
				  AND (fraud_queue.status IS NULL OR f.status = fraud_queue.status)
				OFFSET 0) f
			WHERE (w.k1, w.k2, f.case_id) > (k_score, k_flag, k_id)) x;
	END IF;

	-- Otherwise: sort the queue from the cursor on, one risk_scores probe per case
	-- (OFFSET 0 again: a hash join would read all of risk_scores).
	IF ids IS NULL THEN
		SELECT coalesce(array_agg(q.case_id ORDER BY q.k1, q.k2, q.case_id), '{}')
		INTO ids
		FROM (SELECT f.case_id, coalesce(r.k1, 'Infinity') AS k1,
			     coalesce(r.k2, 'infinity') AS k2
			FROM native.fraud_cases f
			LEFT JOIN LATERAL (SELECT -r.risk_score AS k1, r.flagged_at AS k2
				FROM synced.risk_scores r
				WHERE r.customer_id = f.customer_id
				OFFSET 0) r ON true
			WHERE f.status IN ('open', 'in_review') AND f.deleted_at IS NULL
			  AND (fraud_queue.status IS NULL OR f.status = fraud_queue.status)
			  AND (coalesce(r.k1, 'Infinity'), coalesce(r.k2, 'infinity'), f.case_id)
			      > (k_score, k_flag, k_id)
			ORDER BY 2, 3, 1
			LIMIT lim + 1) q;
	END IF;

	SELECT coalesce(json_agg(json_build_object(
			'case_id', f.case_id,
			'customer_id', f.customer_id,
			'status', f.status,
			'assigned_to', f.assigned_to,
			'region', f.region,
			'priority', f.priority,
			'reason', f.reason,
			'created_at', ods.json_ts(f.created_at),
			'updated_at', ods.json_ts(f.updated_at),
			'version', f.version,
			'risk', CASE WHEN r.customer_id IS NOT NULL THEN json_build_object(
				'risk_score', r.risk_score,
				'risk_band', r.risk_band,
				'model_version', r.model_version,
				'scored_at', ods.json_ts(r.scored_at),
				'flagged_at', ods.json_ts(r.flagged_at),
				'top_reason', r.top_reason,
				'_meta', ods.json_meta(r._source_committed_at, r._synced_at)) END,
			'customer', CASE WHEN c.customer_id IS NOT NULL THEN json_build_object(
				'full_name', c.full_name,
				'email', c.email,
				'tier', c.tier,
				'segment', c.segment,
				'status', c.status,
				'region', c.region,
				'_meta', ods.json_meta(c._source_committed_at, c._synced_at)) END)
			ORDER BY p.n), '[]'),
	       max(CASE WHEN p.n = lim AND cardinality(ids) > lim
			THEN ods.cursor_encode('fraud_queue', jsonb_build_object(
				's', r.risk_score, 'f', r.flagged_at, 'id', f.case_id)) END)
	INTO items, fraud_queue.next_cursor
	FROM unnest(ids[1:lim]) WITH ORDINALITY AS p(case_id, n)
	JOIN native.fraud_cases f ON f.case_id = p.case_id
	LEFT JOIN synced.risk_scores r ON r.customer_id = f.customer_id
	LEFT JOIN synced.customer_current c ON c.customer_id = f.customer_id;

	fraud_queue.body := json_build_object('items', items, 'next_cursor', fraud_queue.next_cursor);
	RETURN NEXT;
END
$$;

INSERT INTO ods.routes (method, path, function, scope, reads, paged, summary) VALUES
	('GET', '/v1/fraud/queue', 'ods_api.fraud_queue', 'fraud:read',
	 '{risk_scores,customer_current}', true,
	 'Fraud queue: open and in-review fraud cases with the customer''s latest risk score, highest score first, earliest flag first')
ON CONFLICT (method, path) DO UPDATE SET function = EXCLUDED.function, scope = EXCLUDED.scope,
	reads = EXCLUDED.reads, paged = EXCLUDED.paged, summary = EXCLUDED.summary;

REVOKE ALL ON FUNCTION ods_api.fraud_queue(integer, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.fraud_queue(integer, text, text) TO fraud_analyst, ods_admin;
