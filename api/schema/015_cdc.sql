-- 015_cdc.sql: the state of `odsctl sync run`, the PostgreSQL CDC worker (DESIGN §11).
--
-- One row per source in ods.cdc_sources. The worker stores applied_lsn (the end of the
-- last source commit it applied) in the SAME transaction as the rows of that source
-- transaction, through ods.cdc_advance, which also refuses to move from any position
-- but the one the worker believes is stored. That makes the chain of applied
-- transactions exact even when several are in flight on one pipelined connection: if
-- one fails, every later one fails too instead of applying over a gap.
--
-- A table belongs to a source through ods.synced_tables.cdc_source; its source table is
-- ods.synced_tables.source_name read as "schema.table" (a bare name means public.name).

CREATE TABLE IF NOT EXISTS ods.cdc_sources (
	name          text PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,40}$'),
	slot_name     text NOT NULL UNIQUE,
	publication   text NOT NULL,
	-- copying: the initial copy has not finished (a restart redoes it from a new slot);
	-- streaming: applying changes; reconnecting: a connection was lost, retrying;
	-- stopped: the worker exited cleanly; error: a change could not be applied (see
	-- last_error), the slot is kept.
	state         text NOT NULL DEFAULT 'copying'
	              CHECK (state IN ('copying', 'streaming', 'reconnecting', 'stopped', 'error')),
	-- The tables the initial copy covered, as "schema.table=target"; another mapping
	-- means another copy.
	tables        text[] NOT NULL DEFAULT '{}',
	applied_lsn   pg_lsn,          -- end of the last applied source commit: resume here
	applied_at    timestamptz,     -- source commit time of that transaction
	caught_up_at  timestamptz,     -- last source time at which nothing was left to apply
	copied_at     timestamptz,     -- when the initial copy finished
	updated_at    timestamptz NOT NULL DEFAULT now(),
	last_error    text,
	-- odsctl sync status warns when the slot retains more WAL than this.
	max_retained_wal_bytes bigint NOT NULL DEFAULT 1073741824
	              CHECK (max_retained_wal_bytes > 0),
	-- What the worker last learnt of the source (for odsctl sync status): its WAL end,
	-- and the WAL its slot retains.
	source_wal_lsn     pg_lsn,
	lag_bytes          bigint,    -- source WAL not yet applied or passed (0: caught up)
	retained_wal_bytes bigint
);

ALTER TABLE ods.synced_tables
	ADD COLUMN IF NOT EXISTS cdc_source text
		REFERENCES ods.cdc_sources (name) ON UPDATE CASCADE ON DELETE SET NULL;

-- Moves a source from prev to next in one step of the chain; raises when the stored
-- position is not prev (a transaction before this one did not commit, or another
-- worker runs for the same source), so the caller's transaction rolls back.
CREATE OR REPLACE FUNCTION ods.cdc_advance(p_name text, p_prev pg_lsn, p_next pg_lsn,
		p_committed_at timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE ods.cdc_sources
	   SET applied_lsn = p_next, applied_at = p_committed_at, updated_at = now()
	 WHERE name = p_name AND applied_lsn IS NOT DISTINCT FROM p_prev;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'cdc source % is not at %', p_name, coalesce(p_prev::text, 'its start')
			USING ERRCODE = 'OD409';
	END IF;
END
$$;

GRANT SELECT, INSERT, UPDATE ON ods.cdc_sources TO ods_sync;
GRANT EXECUTE ON FUNCTION ods.cdc_advance(text, pg_lsn, pg_lsn, timestamptz) TO ods_sync;
