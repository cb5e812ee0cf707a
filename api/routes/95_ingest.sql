-- 95_ingest.sql: Debezium change events into the synced tables (DESIGN section 7).
-- Conventions: see 10_customers.sql; the tables it uses: api/schema/013_ingest.sql.
--
--   POST /v1/ingest/debezium  ods_api.ingest_debezium  ingest:write, role ods_sync only
--
-- The body: one change event or a JSON array of them (Debezium Server's HTTP sink
-- posts one event per request; batching clients post arrays). Each event is either the
-- bare envelope {"before", "after", "source", "op", "ts_ms", ...} or, with
-- schemas.enable=true, {"schema": ..., "payload": <envelope>}. odsd runs the call as one
-- transaction: the answer is 200 only once every event is applied, skipped or
-- dead-lettered and committed; any other answer means nothing was applied.
--
-- Per event:
--   * 400 (OD400, naming the event index, nothing applied) when the request is not a
--     stream of change events: a body that is not an object or array, an element that
--     is not an object, no "op" / unknown op, no "source" object or no source.table,
--     op c/r/u without an "after" object. Debezium never sends these; a bug does.
--   * ignored (counted): tombstones (null elements, {"schema":...,"payload":null}),
--     heartbeats ({"ts_ms": N} only), transaction metadata (status BEGIN/END with id),
--     logical decoding messages (op "m").
--   * mapped to a synced table by source.schema + source.table: the ods.synced_tables
--     row whose source_name is "<schema>.<table>", else "<table>". Unmapped: dead
--     letter (a new source table must not stop the stream).
--   * position = source.<position_field> (default lsn), a non-negative integer (JSON
--     number or digit string). There is NO fallback to ts_ms when it is missing: mixing
--     two scales in one _source_position would break the order of later events. A
--     table whose source has no usable position sets position_field (e.g. ts_us).
--     Missing: dead letter. (PostgreSQL's lsn is per change: it increases per row, also
--     within a transaction. One known gap: a transaction that began before the
--     connector's initial snapshot point and commits after it has changes with LSNs
--     below the snapshot rows' LSN, and those changes would be skipped.)
--   * ops c, r, u upsert the row from "after"; d deletes the key found in "before"
--     (REPLICA IDENTITY DEFAULT is enough: only the key is read); t (truncate) empties
--     the table when ods.synced_tables.allow_truncate, else dead letter.
--   * key = the table's primary key columns, typed by the table. A key column that is
--     missing or null: dead letter.
--   * columns: "after" keys the table lacks are ignored (the source may have more
--     columns than the ODS keeps); table columns absent from "after" keep their stored
--     value (NULL on insert), as do values Debezium marks "__debezium_unavailable_value"
--     (unchanged TOASTed columns). Freshness columns in the event are ignored:
--     _source_committed_at = source.ts_ms (else the envelope ts_ms), _synced_at = now(),
--     _source_position = the position.
--   * Debezium value encodings are decoded by the target column's type: date from
--     days since the epoch; timestamp(tz) from epoch numbers (ms, us or ns by
--     magnitude); numeric from decimal.handling.mode precise (base64 bytes, the
--     column's scale; VariableScaleDecimal {scale, value}) as well as string and double.
--   * the guard: an event changes a key only when its position is above the key's
--     stored position = max(row _source_position, tombstone, table truncate_position).
--     Duplicates and older events are skipped. A delete stores a tombstone at its
--     position (so a late update cannot resurrect the row); a later upsert removes it.
--   * a type or constraint error (SQLSTATE class 22, 23, or 42804): dead letter with the
--     reason; the rest of the request is applied.
--
-- Counts: an event is "applied" when it is newer than its key's stored state and not a
-- repeat of an event of the same key and position in the request: the count one would
-- get applying the request one event at a time in position order. Its effect may be
-- superseded in the same request by a newer event of the key.
--
-- How (throughput): events are grouped per table; each table's events, sorted by
-- position, go to ONE set-based statement (data-modifying CTEs, ods.ingest_statement)
-- that keeps per key the newest event, compares it with the stored state (one index
-- probe per event) and upserts / deletes / writes tombstones for all keys at once. The
-- statement runs as ods.ingest_apply_<table>, a function generated per synced table by
-- migrations (ods.ingest_generate_all), so each session plans it once; when the table's
-- shape no longer matches the one it was generated for, the statement is built and
-- planned per request instead (same SQL, same results). It runs in a subtransaction;
-- on a data error the range is split in two and each half retried in position order
-- (bisection), down to the single poison event, which is dead-lettered: a clean batch
-- costs one statement per table, a batch with one bad event about 2 log2(n). Events
-- superseded in the same request are never written, so a CHECK or type error that only
-- such an event has goes unnoticed (its newer event wins either way).
-- bench/ingest.sh: 12k-18k events/s in batches of 200 on 2 cores, fsync on.
--
-- Concurrency: before a table's events are compared with its rows, the table's
-- ods.synced_tables row is locked (FOR NO KEY UPDATE; tables in name order, so two
-- requests cannot deadlock), so ingests of one table, and the snapshot loader, take
-- turns: the guard compares with committed state, and a delete cannot race an older
-- upsert past its tombstone.
--
-- Then, per table touched: as_of = greatest(as_of, newest source commit time of the
-- applied events), last_sync_at = now(), rows += inserted - deleted, status 'ok' and
-- last_error NULL; when events of the table were dead-lettered, last_error says how
-- many and one reason (status 'error' only when none of the table's events was applied
-- or skipped).
-- The catalog trigger NOTIFYs ods_freshness at commit.
--
-- Response: 200 {"received", "applied", "skipped", "dead_lettered", "ignored",
-- "tables": {"<table>": {"applied", "skipped", "dead_lettered"}}}; count_ingest_dead_letters column =
-- dead_lettered.

SELECT ods.drop_route_functions('ingest_debezium');

-- A JSON number or digit string as a bigint (0 .. 8999999999999999999), else NULL.
-- One expression referencing v twice, so the planner inlines it cheaply.
CREATE OR REPLACE FUNCTION ods.ingest_bigint(v jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN (v #>> '{}') ~ '^([0-9]{1,18}|[1-8][0-9]{18})$' THEN (v #>> '{}')::bigint END;

-- Debezium's precise decimal: the unscaled value as big-endian two's complement bytes,
-- base64. NULL in, NULL out; bad base64 raises 22023 (the event is dead-lettered).
CREATE OR REPLACE FUNCTION ods.debezium_decimal(b64 text, scale integer) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
	b bytea := decode(b64, 'base64');
	n numeric := 0;
BEGIN
	FOR i IN 0 .. length(b) - 1 LOOP
		n := n * 256 + get_byte(b, i);
	END LOOP;
	IF length(b) > 0 AND get_byte(b, 0) >= 128 THEN
		n := n - 256::numeric ^ length(b);
	END IF;
	RETURN round(n * 10::numeric ^ (-scale), scale);
END
$$;

-- An epoch number as a timestamptz: milliseconds (io.debezium.time.Timestamp),
-- microseconds (MicroTimestamp) or nanoseconds (NanoTimestamp), told apart by
-- magnitude (|n| < 1e14: ms, up to year 5138; < 1e17: us; else ns).
CREATE OR REPLACE FUNCTION ods.debezium_epoch(n bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN timestamptz 'epoch' + CASE
	WHEN abs(n) < 100000000000000 THEN n * interval '1 millisecond'
	WHEN abs(n) < 100000000000000000 THEN n * interval '1 microsecond'
	ELSE (n / 1000) * interval '1 microsecond' END;

-- The set-based apply statement for synced.<p_table>, or NULL when the table does not
-- exist, has no primary key or lacks the freshness columns. Parameters:
--   $1 ods.ingest_item[]  the table's events (kind apply, op c/r/u/d), in position order
--   $2 bigint             the table's truncate_position (NULL: never truncated)
--   $3 text               the table name (tombstones)
-- Returns one row: applied, skipped, max_ts (ms, of the applied events), inserted,
-- deleted (rows), nokey (indexes of events without a full key: to dead-letter).
-- Identifiers go through %I, literals through %L; event values only ever reach the
-- statement as $1.
--
-- Shape: ev (materialized: the planner would otherwise re-evaluate the row image
-- extraction at every reference) -> k (typed key from the key columns only) -> g (the
-- stored row and tombstone of each key: LATERAL .. LIMIT 1, so one index probe per
-- event in any plan; a plan cached while the table was small could otherwise scan all
-- of it once and filter it per event) -> r (per event: newer than stored and not a
-- repeat = applies; per key: the newest = last) -> w (winners: last and applies) ->
-- one INSERT .. ON CONFLICT for the upserts, one DELETE for the deletes, and the
-- tombstones. Only winners are decoded (Debezium encodings, placeholders) and
-- type-checked in full. The caller holds the table's ods.synced_tables row (FOR NO KEY
-- UPDATE), so the rows and tombstones g found cannot change before the DML: the deletes
-- go by the ctid g found (a TID scan, whatever the plan's join order; driven from the
-- tombstone index a cached plan could scan every tombstone of the table per event) and
-- the upsert repeats the position guard anyway.
CREATE OR REPLACE FUNCTION ods.ingest_statement(p_table text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	rel regclass := to_regclass(format('%I.%I', 'synced', p_table));
	fresh constant text[] := '{_source_committed_at,_synced_at,_source_position}';
	pk text[];
	cols text[] := '{}';      -- every writable column but the freshness ones
	conv text[] := '{}';      -- 'col', expression pairs for jsonb_build_object (on w.d0)
	keyobj text[] := '{}';    -- 'col', expression pairs: the key columns (on ev.d0)
	strip text[] := '{}';     -- CASE expressions naming placeholder-valued columns
	c record;
	e text;                   -- a conversion, with SRC for the row image
	d text;
	scale integer;
	nfresh integer;
BEGIN
	IF rel IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum))
	INTO pk
	FROM pg_index i
	JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
	WHERE i.indrelid = rel AND i.indisprimary;
	SELECT count(*) INTO nfresh FROM pg_attribute a
	WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
	  AND a.attname::text = ANY (fresh);
	IF pk IS NULL OR nfresh <> 3 THEN
		RETURN NULL;
	END IF;

	FOR c IN SELECT a.attname::text AS name, a.atttypmod AS typmod, t.typname::text AS typ,
			t.typcategory AS cat
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
		  AND a.attgenerated = '' AND NOT a.attname::text = ANY (fresh)
		ORDER BY a.attnum
	LOOP
		cols := cols || c.name;
		e := NULL;
		IF c.typ = 'date' THEN
			e := format('CASE WHEN jsonb_typeof(SRC -> %1$L) = ''number'' '
				'THEN to_jsonb(date ''1970-01-01'' + (SRC ->> %1$L)::integer) END', c.name);
		ELSIF c.typ IN ('timestamptz', 'timestamp') THEN
			e := format('CASE WHEN jsonb_typeof(SRC -> %1$L) = ''number'' '
				'THEN to_jsonb(ods.debezium_epoch((SRC ->> %1$L)::bigint)%2$s) END',
				c.name, CASE WHEN c.typ = 'timestamp' THEN ' AT TIME ZONE ''UTC''' ELSE '' END);
		ELSIF c.typ = 'numeric' THEN
			-- numeric(p,s): typmod = (p << 16 | s & 2047) + 4, s signed (11 bits)
			scale := CASE WHEN c.typmod >= 4 THEN ((c.typmod - 4) & 2047) END;
			scale := CASE WHEN scale > 1023 THEN scale - 2048 ELSE coalesce(scale, 0) END;
			e := format('CASE jsonb_typeof(SRC -> %1$L) '
				'WHEN ''string'' THEN CASE WHEN (SRC ->> %1$L) !~* %3$L '
				'THEN to_jsonb(ods.debezium_decimal(SRC ->> %1$L, %2$s)) END '
				'WHEN ''object'' THEN to_jsonb(ods.debezium_decimal(SRC -> %1$L ->> ''value'', '
				'(SRC -> %1$L ->> ''scale'')::integer)) END',
				c.name, scale,
				'^\s*([-+]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[-+]?[0-9]+)?|[-+]?infinity|nan)\s*$');
		ELSIF (c.cat IN ('S', 'A') OR c.typ IN ('json', 'jsonb', 'bytea', 'xml'))
			AND NOT c.name = ANY (pk) THEN
			strip := strip || format(
				'CASE WHEN w.d0 ->> %1$L = ''__debezium_unavailable_value'' THEN %1$L END', c.name);
		END IF;
		IF e IS NOT NULL THEN
			conv := conv || quote_literal(c.name) || replace(e, 'SRC', 'w.d0');
		END IF;
		IF c.name = ANY (pk) THEN
			keyobj := keyobj || quote_literal(c.name) || CASE WHEN e IS NULL
				THEN format('ev.d0 -> %L', c.name)
				ELSE format('coalesce(%s, ev.d0 -> %L)', replace(e, 'SRC', 'ev.d0'), c.name) END;
		END IF;
	END LOOP;

	-- The row image of a winner: freshness columns dropped (the ODS sets them),
	-- placeholders dropped (the stored value stays), Debezium encodings decoded.
	d := format('(w.d0 - %L::text[])', fresh);
	IF cardinality(strip) > 0 THEN
		d := format('(%s - array_remove(ARRAY[%s], NULL))', d, array_to_string(strip, ', '));
	END IF;
	IF cardinality(conv) > 0 THEN
		-- jsonb_build_object takes at most 100 arguments: 40 columns per call
		d := format('(%s || jsonb_strip_nulls(%s))', d, (
			SELECT string_agg(format('jsonb_build_object(%s)',
				array_to_string(conv[g * 80 + 1 : g * 80 + 80], ', ')), ' || ')
			FROM generate_series(0, (cardinality(conv) - 1) / 80) g));
	END IF;

	RETURN format($sql$
WITH ev AS MATERIALIZED (
	SELECT e.idx, e.op, e.pos, e.ts_ms,
		CASE WHEN e.op = 'd' THEN e.event -> 'before' ELSE e.event -> 'after' END AS d0
	FROM unnest($1::ods.ingest_item[]) e
	WHERE e.op IN ('c', 'r', 'u', 'd')
), k AS MATERIALIZED (
	SELECT ev.*, p AS rec, %3$s AS key, (%4$s) AS nokey
	FROM ev CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$s, jsonb_build_object(%12$s)) p
), g AS (
	SELECT k.*, t.old, t.row_ctid, tb.tomb_ctid,
		greatest(t.row_pos, tb.position, $2::bigint) AS stored
	FROM k
	LEFT JOIN LATERAL (SELECT t AS old, t.ctid AS row_ctid, t._source_position AS row_pos
		FROM %1$s t WHERE %5$s LIMIT 1) t ON true
	LEFT JOIN LATERAL (SELECT tb.ctid AS tomb_ctid, tb.position FROM ods.synced_tombstones tb
		WHERE tb.table_name = $3::text AND tb.key = k.key LIMIT 1) tb ON true
	WHERE NOT k.nokey
), r AS MATERIALIZED (
	SELECT g.*,
		g.pos > coalesce(g.stored, -1)
			AND row_number() OVER (PARTITION BY %6$s, g.pos ORDER BY g.idx) = 1 AS applies,
		row_number() OVER (PARTITION BY %6$s ORDER BY g.pos DESC, g.idx) = 1 AS last
	FROM g
), w AS MATERIALIZED (
	SELECT * FROM r WHERE r.last AND r.applies
), up AS (
	INSERT INTO %1$s AS t (%7$s, _source_committed_at, _synced_at, _source_position)
	SELECT %8$s, timestamptz 'epoch' + w.ts_ms * interval '1 millisecond', now(), w.pos
	FROM w
	CROSS JOIN LATERAL (SELECT %2$s AS d OFFSET 0) n
	CROSS JOIN LATERAL jsonb_populate_record(w.old, n.d) m
	WHERE w.op <> 'd'
	ON CONFLICT (%9$s) DO UPDATE SET %10$s
		_source_committed_at = EXCLUDED._source_committed_at,
		_synced_at = EXCLUDED._synced_at,
		_source_position = EXCLUDED._source_position
	WHERE t._source_position < EXCLUDED._source_position
	RETURNING t.xmax = 0 AS inserted
), del AS (
	DELETE FROM %1$s t
	WHERE t.ctid = ANY (ARRAY(SELECT w.row_ctid FROM w WHERE w.op = 'd' AND w.row_ctid IS NOT NULL))
	RETURNING 1
), tomb_add AS (
	INSERT INTO ods.synced_tombstones AS tb (table_name, key, position, deleted_at)
	SELECT $3::text, w.key, w.pos, timestamptz 'epoch' + w.ts_ms * interval '1 millisecond'
	FROM w WHERE w.op = 'd'
	ON CONFLICT (table_name, key) DO UPDATE
		SET position = EXCLUDED.position, deleted_at = EXCLUDED.deleted_at
	WHERE tb.position < EXCLUDED.position
	RETURNING 1
), tomb_del AS (
	DELETE FROM ods.synced_tombstones tb
	WHERE tb.ctid = ANY (ARRAY(SELECT w.tomb_ctid FROM w WHERE w.op <> 'd' AND w.tomb_ctid IS NOT NULL))
	RETURNING 1
)
SELECT s.applied, s.skipped, s.max_ts,
	(SELECT count(*) FROM up WHERE up.inserted)::integer AS inserted,
	(SELECT count(*) FROM del)::integer AS deleted,
	(SELECT coalesce(array_agg(k.idx), '{}') FROM k WHERE k.nokey) AS nokey
FROM (SELECT count(*) FILTER (WHERE r.applies)::integer AS applied,
		count(*) FILTER (WHERE NOT r.applies)::integer AS skipped,
		max(r.ts_ms) FILTER (WHERE r.applies) AS max_ts
	FROM r) s
$sql$,
		format('%I.%I', 'synced', p_table),                                                    -- 1
		d,                                                                                      -- 2
		format('jsonb_build_object(%s)', (SELECT string_agg(format('%L, p.%I', x, x), ', ') FROM unnest(pk) x)), -- 3
		(SELECT string_agg(format('p.%I IS NULL', x), ' OR ') FROM unnest(pk) x),              -- 4
		(SELECT string_agg(format('t.%1$I = (k.rec).%1$I', x), ' AND ') FROM unnest(pk) x),    -- 5
		(SELECT string_agg(format('(g.rec).%I', x), ', ') FROM unnest(pk) x),                   -- 6
		(SELECT string_agg(format('%I', x), ', ') FROM unnest(cols) x),                         -- 7
		(SELECT string_agg(format('m.%I', x), ', ') FROM unnest(cols) x),                       -- 8
		(SELECT string_agg(format('%I', x), ', ') FROM unnest(pk) x),                           -- 9
		(SELECT coalesce(string_agg(format('%1$I = EXCLUDED.%1$I,', x), ' '), '')
			FROM unnest(cols) x WHERE NOT x = ANY (pk)),                                        -- 10
		NULL,                                                                                   -- 11 (unused)
		array_to_string(keyobj, ', '));                                                         -- 12
END
$$;

-- The shape of a table as the apply statement sees it (columns, types, key); NULL when
-- the table does not exist.
CREATE OR REPLACE FUNCTION ods.ingest_signature(rel regclass) RETURNS text
LANGUAGE sql STABLE
RETURN (SELECT md5(string_agg(format('%s %s %s %s %s', a.attname, a.atttypid, a.atttypmod,
		a.attgenerated, a.attnum = ANY (i.indkey::int2[])), ',' ORDER BY a.attnum))
	FROM pg_attribute a
	LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
	WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped);

-- Generates ods.ingest_apply_<table>(events, truncate position, table): the table's apply
-- statement as static SQL in a plpgsql function, so each session plans it once (a
-- dynamic statement is planned on every request, about 2 ms here). Records it in
-- ods.ingest_appliers with the table's signature; the ingest uses it only while the
-- signature still matches. Run by migrations (this file, below) and by operators after a
-- migration that changes a synced table: SELECT ods.ingest_generate_all(). Not granted.
CREATE OR REPLACE FUNCTION ods.ingest_generate(p_table text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	stmt text := ods.ingest_statement(p_table);
	fn text := format('ods.%I', 'ingest_apply_' || CASE WHEN length(p_table) <= 48 THEN p_table
		ELSE left(md5(p_table), 16) END);
BEGIN
	IF stmt IS NULL THEN
		DELETE FROM ods.ingest_appliers WHERE table_name = p_table;
		RETURN NULL;
	END IF;
	stmt := replace(replace(replace(stmt, '$1::ods.ingest_item[]', 'p_events'),
		'$2::bigint', 'p_trunc'), '$3::text', 'p_table');
	-- The plan is made once per session and kept while the table grows from empty to
	-- millions of rows, so its shape must not depend on the statistics of the moment:
	-- a request touches few keys of a large table, i.e. index lookups per event in
	-- nested loops, never a scan of the table or a hash of it.
	EXECUTE format('CREATE OR REPLACE FUNCTION %s(p_events ods.ingest_item[], p_trunc bigint, '
		'p_table text) RETURNS SETOF ods.ingest_result LANGUAGE plpgsql '
		'SET plan_cache_mode = force_generic_plan SET enable_seqscan = off '
		'SET enable_hashjoin = off SET enable_mergejoin = off AS %L', fn,
		E'#variable_conflict use_column\nBEGIN\n\tRETURN QUERY' || stmt || E';\nEND\n');
	EXECUTE format('COMMENT ON FUNCTION %s(ods.ingest_item[], bigint, text) IS %L', fn,
		format('generated by ods.ingest_generate(%L): applies Debezium events to synced.%I', p_table, p_table));
	EXECUTE format('REVOKE ALL ON FUNCTION %s(ods.ingest_item[], bigint, text) FROM PUBLIC', fn);
	EXECUTE format('GRANT EXECUTE ON FUNCTION %s(ods.ingest_item[], bigint, text) TO ods_sync', fn);
	INSERT INTO ods.ingest_appliers (table_name, signature, function)
	VALUES (p_table, ods.ingest_signature(to_regclass(format('%I.%I', 'synced', p_table))), fn)
	ON CONFLICT (table_name) DO UPDATE SET signature = EXCLUDED.signature, function = EXCLUDED.function;
	RETURN fn;
END
$$;

-- Drops every generated apply function, then generates one per registered synced table.
-- Returns how many were generated.
CREATE OR REPLACE FUNCTION ods.ingest_generate_all() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	f regprocedure;
	n integer := 0;
	t text;
BEGIN
	FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
		WHERE p.pronamespace = 'ods'::regnamespace AND p.proname LIKE 'ingest\_apply\_%'
	LOOP
		EXECUTE format('DROP FUNCTION %s', f);
	END LOOP;
	DELETE FROM ods.ingest_appliers;
	FOR t IN SELECT table_name FROM ods.synced_tables ORDER BY table_name LOOP
		IF ods.ingest_generate(t) IS NOT NULL THEN
			n := n + 1;
		END IF;
	END LOOP;
	RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION ods_api.ingest_debezium(p_body jsonb)
RETURNS TABLE (body json, status integer, count_ingest_dead_letters integer)
LANGUAGE plpgsql AS $$
DECLARE
	events jsonb;
	items ods.ingest_item[];  -- the events to apply or dead-letter (kind apply / dead)
	n_invalid integer;
	first_invalid text;
	n_ignored integer;
	n_dead_parse integer;     -- dead at parse time (unmapped, no position, ...)
	n_dead integer;           -- all dead letters; starts with the unmapped ones
	n_applied integer := 0;
	n_skipped integer := 0;
	tables jsonb := '{}';
	tbl record;
	stmt text;
	lo_stack integer[];
	hi_stack integer[];
	lo integer;
	hi integer;
	mid integer;
	res record;
	tr record;
	n bigint;
	-- per table
	trunc_pos bigint;
	t_applied integer;
	t_skipped integer;
	t_dead integer;
	t_ins bigint;
	t_del bigint;
	t_max_ts bigint;
	t_reason text;
BEGIN
	IF p_body IS NULL OR jsonb_typeof(p_body) NOT IN ('object', 'array') THEN
		RAISE EXCEPTION USING ERRCODE = 'OD400',
			MESSAGE = 'the body must be a Debezium change event or a JSON array of change events';
	END IF;
	events := CASE WHEN jsonb_typeof(p_body) = 'array' THEN p_body ELSE jsonb_build_array(p_body) END;

	-- Parse, validate and map every event, in one statement. MATERIALIZED and OFFSET 0
	-- keep each per-event value computed once (inlined, every reference recomputes it).
	WITH raw AS MATERIALIZED (
		SELECT (e.i - 1)::integer AS idx,
			CASE WHEN jsonb_typeof(e.v) = 'object' AND e.v ? 'payload' AND e.v ? 'schema'
				AND NOT e.v ? 'op' THEN e.v -> 'payload' ELSE e.v END AS p
		FROM jsonb_array_elements(events) WITH ORDINALITY AS e (v, i)
	), c AS MATERIALIZED (
		SELECT raw.idx, raw.p, raw.p ->> 'op' AS op, raw.p -> 'source' AS src,
			CASE
			WHEN jsonb_typeof(raw.p) = 'null' THEN 'ignore'             -- tombstone
			WHEN jsonb_typeof(raw.p) <> 'object' THEN 'not a JSON object'
			WHEN NOT raw.p ? 'op' THEN CASE
				WHEN raw.p ? 'ts_ms' AND raw.p - 'ts_ms' = '{}' THEN 'ignore'   -- heartbeat
				WHEN raw.p ->> 'status' IN ('BEGIN', 'END') AND raw.p ? 'id'
					THEN 'ignore'                                       -- transaction metadata
				ELSE 'no "op": not a Debezium change event' END
			WHEN jsonb_typeof(raw.p -> 'op') <> 'string'
				OR raw.p ->> 'op' NOT IN ('c', 'r', 'u', 'd', 't', 'm')
				THEN format('unknown op %s (expected c, r, u, d, t or m)', left((raw.p -> 'op')::text, 40))
			WHEN raw.p ->> 'op' = 'm' THEN 'ignore'                     -- logical message
			WHEN jsonb_typeof(raw.p -> 'source') IS DISTINCT FROM 'object'
				THEN 'no "source" object'
			WHEN jsonb_typeof(raw.p -> 'source' -> 'table') IS DISTINCT FROM 'string'
				THEN '"source" has no "table"'
			WHEN raw.p ->> 'op' IN ('c', 'r', 'u')
				AND jsonb_typeof(raw.p -> 'after') IS DISTINCT FROM 'object'
				THEN format('op "%s" without an "after" object', raw.p ->> 'op')
			WHEN raw.p ->> 'op' = 'd' AND raw.p ? 'before'
				AND jsonb_typeof(raw.p -> 'before') NOT IN ('object', 'null')
				THEN '"before" is not an object'
			ELSE 'apply' END AS verdict
		FROM raw
	), map AS (
		SELECT DISTINCT ON (refs.sch, refs.tab) refs.sch, refs.tab, s.table_name,
			s.position_field, s.allow_truncate
		FROM (SELECT DISTINCT c.src ->> 'schema' AS sch, c.src ->> 'table' AS tab
			FROM c WHERE c.verdict = 'apply') refs
		LEFT JOIN ods.synced_tables s ON s.source_name IN (refs.sch || '.' || refs.tab, refs.tab)
		ORDER BY refs.sch, refs.tab, s.source_name = refs.tab
	), z AS (
		SELECT c.idx, c.op, c.p, c.verdict, m.table_name, x.pos, x.ts_ms,
			CASE WHEN c.verdict = 'apply'
				THEN concat_ws('.', c.src ->> 'schema', c.src ->> 'table') END AS table_ref,
			CASE
			WHEN c.verdict <> 'apply' THEN NULL
			WHEN m.table_name IS NULL
				THEN format('unmapped table %s (no ods.synced_tables.source_name matches)',
					concat_ws('.', c.src ->> 'schema', c.src ->> 'table'))
			WHEN x.pos IS NULL
				THEN format('source.%s is missing or not a non-negative integer (the position of table %s)',
					m.position_field, m.table_name)
			WHEN x.ts_ms IS NULL THEN 'neither source.ts_ms nor ts_ms is a non-negative integer'
			WHEN c.op = 't' AND NOT m.allow_truncate
				THEN format('truncate events are not enabled for table %s (ods.synced_tables.allow_truncate)',
					m.table_name)
			WHEN c.op = 'd' AND jsonb_typeof(c.p -> 'before') IS DISTINCT FROM 'object'
				THEN 'delete without "before": the source table needs REPLICA IDENTITY DEFAULT (or FULL) so the key is sent'
			END AS reason
		FROM c
		LEFT JOIN map m ON c.verdict = 'apply' AND m.sch IS NOT DISTINCT FROM c.src ->> 'schema'
			AND m.tab = c.src ->> 'table'
		CROSS JOIN LATERAL (SELECT ods.ingest_bigint(c.src -> m.position_field) AS pos,
			coalesce(ods.ingest_bigint(c.src -> 'ts_ms'), ods.ingest_bigint(c.p -> 'ts_ms')) AS ts_ms
			OFFSET 0) x
	)
	SELECT array_agg(ROW(z.idx, CASE WHEN z.reason IS NULL THEN 'apply' ELSE 'dead' END,
			z.table_name, z.table_ref, z.op, z.pos, z.ts_ms, z.reason, z.p)::ods.ingest_item)
			FILTER (WHERE z.verdict = 'apply'),
		count(*) FILTER (WHERE z.verdict NOT IN ('apply', 'ignore')),
		(array_agg(format('events[%s]: %s', z.idx, z.verdict) ORDER BY z.idx)
			FILTER (WHERE z.verdict NOT IN ('apply', 'ignore')))[1],
		count(*) FILTER (WHERE z.verdict = 'ignore'),
		count(*) FILTER (WHERE z.reason IS NOT NULL),
		count(*) FILTER (WHERE z.reason IS NOT NULL AND z.table_name IS NULL)
	INTO items, n_invalid, first_invalid, n_ignored, n_dead_parse, n_dead
	FROM z;

	IF n_invalid > 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'OD400', MESSAGE = format('%s%s; nothing was applied',
			first_invalid,
			CASE WHEN n_invalid > 1 THEN format(' (and %s more invalid events)', n_invalid - 1) ELSE '' END);
	END IF;

	IF n_dead_parse > 0 THEN
		INSERT INTO ods.ingest_dead_letters (table_ref, table_name, op, position, reason, event)
		SELECT i.table_ref, i.table_name, i.op, i.pos, i.reason, i.event
		FROM unnest(items) i WHERE i.kind = 'dead' ORDER BY i.idx;
	END IF;

	-- Per table, in name order (the lock order: no deadlocks between concurrent calls).
	FOR tbl IN SELECT i.table_name,
			array_agg(i ORDER BY i.pos, i.idx) FILTER (WHERE i.kind = 'apply' AND i.op <> 't') AS evs,
			count(*) FILTER (WHERE i.kind = 'apply' AND i.op = 't') AS truncates,
			count(*) FILTER (WHERE i.kind = 'dead')::integer AS dead,
			min(i.reason) FILTER (WHERE i.kind = 'dead') AS reason
		FROM unnest(items) i
		WHERE i.table_name IS NOT NULL
		GROUP BY i.table_name
		ORDER BY i.table_name
	LOOP
		-- Take turns with the other writers of this table (other ingests, the loader);
		-- read its truncate position once we hold the row.
		SELECT s.truncate_position INTO trunc_pos
		FROM ods.synced_tables s WHERE s.table_name = tbl.table_name
		FOR NO KEY UPDATE;
		t_applied := 0; t_skipped := 0; t_dead := tbl.dead; t_ins := 0; t_del := 0;
		t_max_ts := NULL; t_reason := tbl.reason;
		-- The table's generated apply function while it matches the table's shape, else
		-- the same statement built and planned now.
		stmt := NULL;
		IF tbl.evs IS NOT NULL OR tbl.truncates > 0 THEN
			SELECT format('SELECT * FROM %s($1, $2, $3)', a.function) INTO stmt
			FROM ods.ingest_appliers a
			WHERE a.table_name = tbl.table_name AND a.signature =
				ods.ingest_signature(to_regclass(format('%I.%I', 'synced', tbl.table_name)));
			stmt := coalesce(stmt, ods.ingest_statement(tbl.table_name));
		END IF;

		IF stmt IS NULL AND (tbl.evs IS NOT NULL OR tbl.truncates > 0) THEN
			t_reason := coalesce(t_reason, format(
				'synced.%s is missing, has no primary key or lacks the freshness columns',
				tbl.table_name));
			INSERT INTO ods.ingest_dead_letters (table_ref, table_name, op, position, reason, event)
			SELECT i.table_ref, i.table_name, i.op, i.pos, t_reason, i.event
			FROM unnest(items) i WHERE i.kind = 'apply' AND i.table_name = tbl.table_name
			ORDER BY i.idx;
			GET DIAGNOSTICS n = ROW_COUNT;
			t_dead := t_dead + n;
		ELSIF stmt IS NOT NULL THEN
			-- Truncates first: rows below the newest one go; the events at or below it
			-- are then skipped by the guard ($2), as applying in position order would.
			IF tbl.truncates > 0 THEN
				SELECT max(i.pos) AS pos,
					count(DISTINCT i.pos) FILTER (WHERE i.pos > coalesce(trunc_pos, -1)) AS applied,
					count(*) AS total,
					max(i.ts_ms) FILTER (WHERE i.pos > coalesce(trunc_pos, -1)) AS ts_ms
				INTO tr
				FROM unnest(items) i
				WHERE i.kind = 'apply' AND i.table_name = tbl.table_name AND i.op = 't';
				t_applied := tr.applied;
				t_skipped := tr.total - tr.applied;
				IF tr.pos > coalesce(trunc_pos, -1) THEN
					EXECUTE format('DELETE FROM %I.%I WHERE _source_position < $1', 'synced',
						tbl.table_name) USING tr.pos;
					GET DIAGNOSTICS n = ROW_COUNT;
					t_del := n;
					DELETE FROM ods.synced_tombstones tb
					WHERE tb.table_name = tbl.table_name AND tb.position < tr.pos;
					trunc_pos := tr.pos;
					t_max_ts := tr.ts_ms;
				END IF;
			END IF;

			-- The events in position order; a range that hits a data error is split in
			-- two and both halves retried, lower positions first, down to the event.
			lo_stack := CASE WHEN tbl.evs IS NULL THEN '{}' ELSE ARRAY[1] END;
			hi_stack := CASE WHEN tbl.evs IS NULL THEN '{}' ELSE ARRAY[cardinality(tbl.evs)] END;
			WHILE cardinality(lo_stack) > 0 LOOP
				lo := lo_stack[cardinality(lo_stack)];
				hi := hi_stack[cardinality(hi_stack)];
				lo_stack := lo_stack[1 : cardinality(lo_stack) - 1];
				hi_stack := hi_stack[1 : cardinality(hi_stack) - 1];
				BEGIN
					EXECUTE stmt INTO res USING tbl.evs[lo : hi], trunc_pos, tbl.table_name;
					t_applied := t_applied + res.applied;
					t_skipped := t_skipped + res.skipped;
					t_ins := t_ins + res.inserted;
					t_del := t_del + res.deleted;
					t_max_ts := greatest(t_max_ts, res.max_ts);
					IF cardinality(res.nokey) > 0 THEN
						t_reason := coalesce(t_reason, format(
							'no value for a key column of synced.%s in "after" ("before" for deletes)',
							tbl.table_name));
						INSERT INTO ods.ingest_dead_letters (table_ref, table_name, op, position, reason, event)
						SELECT i.table_ref, i.table_name, i.op, i.pos, format(
								'no value for a key column of synced.%s (%s) in "%s"', tbl.table_name,
								(SELECT string_agg(a.attname, ', ' ORDER BY a.attnum)
									FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid
										AND a.attnum = ANY (x.indkey::int2[])
									WHERE x.indrelid = format('%I.%I', 'synced', tbl.table_name)::regclass
									  AND x.indisprimary),
								CASE WHEN i.op = 'd' THEN 'before' ELSE 'after' END), i.event
						FROM unnest(tbl.evs[lo : hi]) i WHERE i.idx = ANY (res.nokey) ORDER BY i.idx;
						t_dead := t_dead + cardinality(res.nokey);
					END IF;
				EXCEPTION WHEN data_exception OR integrity_constraint_violation OR datatype_mismatch THEN
					IF lo = hi THEN
						INSERT INTO ods.ingest_dead_letters
							(table_ref, table_name, op, position, sqlstate, reason, event)
						VALUES (tbl.evs[lo].table_ref, tbl.evs[lo].table_name, tbl.evs[lo].op,
							tbl.evs[lo].pos, SQLSTATE, SQLERRM, tbl.evs[lo].event);
						t_dead := t_dead + 1;
						t_reason := coalesce(t_reason, SQLERRM);
					ELSE
						mid := (lo + hi) / 2;
						lo_stack := lo_stack || (mid + 1) || lo;
						hi_stack := hi_stack || hi || mid;
					END IF;
				END;
			END LOOP;
		END IF;

		UPDATE ods.synced_tables s SET
			as_of = CASE WHEN t_max_ts IS NULL THEN s.as_of
				ELSE greatest(coalesce(s.as_of, '-infinity'),
					timestamptz 'epoch' + t_max_ts * interval '1 millisecond') END,
			last_sync_at = now(),
			rows = greatest(s.rows + t_ins - t_del, 0),
			truncate_position = trunc_pos,
			status = CASE WHEN t_dead > 0 AND t_applied + t_skipped = 0 THEN 'error' ELSE 'ok' END,
			last_error = CASE WHEN t_dead > 0 THEN format(
				'%s of %s events dead-lettered (ods.ingest_dead_letters), e.g. %s',
				t_dead, t_dead + t_applied + t_skipped, t_reason) END
		WHERE s.table_name = tbl.table_name;

		n_applied := n_applied + t_applied;
		n_skipped := n_skipped + t_skipped;
		n_dead := n_dead + t_dead;
		tables := tables || jsonb_build_object(tbl.table_name, jsonb_build_object(
			'applied', t_applied, 'skipped', t_skipped, 'dead_lettered', t_dead));
	END LOOP;

	body := json_build_object(
		'received', jsonb_array_length(events),
		'applied', n_applied,
		'skipped', n_skipped,
		'dead_lettered', n_dead,
		'ignored', n_ignored,
		'tables', tables);
	status := 200;
	count_ingest_dead_letters := n_dead;
	RETURN NEXT;
END
$$;

INSERT INTO ods.routes (method, path, function, scope, reads, paged, summary) VALUES
	('POST', '/v1/ingest/debezium', 'ods_api.ingest_debezium', 'ingest:write', '{}', false,
	 'Apply Debezium change events (one or an array) to the synced tables, idempotently')
ON CONFLICT (method, path) DO UPDATE SET function = EXCLUDED.function, scope = EXCLUDED.scope,
	reads = EXCLUDED.reads, paged = EXCLUDED.paged, summary = EXCLUDED.summary;

REVOKE ALL ON FUNCTION ods_api.ingest_debezium(jsonb), ods.ingest_bigint(jsonb),
	ods.debezium_decimal(text, integer), ods.debezium_epoch(bigint), ods.ingest_statement(text),
	ods.ingest_signature(regclass), ods.ingest_generate(text), ods.ingest_generate_all()
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ods_api.ingest_debezium(jsonb), ods.ingest_bigint(jsonb),
	ods.debezium_decimal(text, integer), ods.debezium_epoch(bigint), ods.ingest_statement(text),
	ods.ingest_signature(regclass)
	TO ods_sync;

-- Regenerate the per-table apply functions from this file's statement and today's tables.
SELECT ods.ingest_generate_all();
