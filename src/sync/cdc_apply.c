/*
 * cdc_apply: see cdc_apply.h for the model. Every statement sent is a
 * `struct pending` in a FIFO; answers arrive in the same order, so the head
 * of the FIFO is always what the next result belongs to. A pending statement
 * keeps the batch it was built from until its answer arrives: when it fails,
 * the batch is replayed one key at a time (outside the pipeline, rolled back)
 * to name the key that breaks.
 */
#include "autoconfig.h"

#include "sync/cdc_apply.h"

#include "sync/cdc_stmt.h"

#include "db/db.h"
#include "sync/pgoutput.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Transactions in flight before sending waits for answers. */
#define MAX_IN_FLIGHT 512
/* Committed transactions per Sync at most: a Sync is what makes the ODS
 * flush its answers, one send() and one wake-up of this process each. */
#define SYNC_EVERY 64
/* Keys in a batch from which its answer is asked for at once (see below). */
#define FLUSH_KEYS 1000

enum pending_kind {
	P_PREPARE,
	P_UPSERT,
	P_DELETE,
	P_PARTIAL,
	P_TRUNCATE,
	P_OTHER,
	P_COMMIT,
	P_SYNC,
	P_PROBE
};

struct pending {
	enum pending_kind kind;
	struct cdc_batch *batch; /* for naming a failing key; freed with the entry if owns */
	bool owns;
	int table;           /* index in the map, -1 for none */
	int partial;         /* P_PARTIAL: which partial row */
	uint64_t lsn;        /* statements: the commit LSN; P_COMMIT: end LSN */
	int64_t commit_time; /* P_COMMIT */
	uint64_t last_end;   /* P_PROBE: the end LSN sent before it */
};

/* A durability probe answer: once the ODS has flushed past insert, end is durable. */
struct mark {
	uint64_t insert, end;
};

struct cdc_apply {
	PGconn *conn;
	const char *source;
	struct cdc_map *map;
	int *prepared; /* per table: the generation its statements were prepared for, 0 none */
	long long *delta;
	struct pending *q;
	size_t head, len, cap;
	int txns;      /* P_COMMITs queued */
	bool in_block; /* BEGIN sent, COMMIT not yet */
	int unsynced;  /* COMMITs sent since the last Sync */
	uint64_t sent_end, committed_end, durable_end;
	int64_t committed_time;
	struct mark marks[64];
	int nmarks;
	bool failed, transient;
	char sqlstate[6];
};

void cdc_time_text(int64_t t, char *out, size_t outlen)
{
	time_t secs = (time_t)(t / 1000000 + PGO_EPOCH_OFFSET);
	long us = (long)(t % 1000000);
	struct tm tm;

	if (us < 0) {
		us += 1000000;
		secs--;
	}
	gmtime_r(&secs, &tm);
	snprintf(out, outlen, "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
}

/* A protocol-level prepared statement: SQL PREPARE takes no BEGIN or COMMIT. */
static bool prepare(PGconn *conn, const char *name, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQprepare(conn, name, sql, 0, NULL);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		db_fail(conn, res, err, errlen);
	PQclear(res);
	return ok;
}

struct cdc_apply *cdc_apply_open(const char *uri, const char *source, struct cdc_map *map,
                                 uint64_t applied, char *err, size_t errlen)
{
	struct cdc_apply *a;
	PGconn *conn = db_connect(uri, "odsctl sync run", err, errlen);

	if (!conn)
		return NULL;
	*err = '\0'; /* filled below only by the step that fails */
	/*
	 * Generic plans: a custom plan cannot know the length of an array
	 * parameter either, so it only costs a planning per transaction (more
	 * than the execution of a one-row upsert), and the plan cache keeps
	 * choosing it because the generic plan's estimate assumes 100 rows.
	 */
	if (!db_exec(conn,
	             "SET synchronous_commit = off; SET TimeZone = 'UTC';"
	             " SET statement_timeout = 0; SET lock_timeout = '30s';"
	             " SET plan_cache_mode = force_generic_plan",
	             err, errlen) ||
	    !db_exec(conn,
	             "PREPARE cdc_advance(text, pg_lsn, pg_lsn, timestamptz) AS"
	             " SELECT ods.cdc_advance($1, $2, $3, $4)",
	             err, errlen) ||
	    !prepare(conn, "cdc_begin", "BEGIN", err, errlen) ||
	    !prepare(conn, "cdc_commit", "COMMIT", err, errlen) || PQenterPipelineMode(conn) != 1 ||
	    PQsetnonblocking(conn, 1) != 0) {
		if (!*err)
			errf(err, errlen, "cannot enter pipeline mode: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	a = xcalloc(1, sizeof(*a));
	a->conn = conn;
	a->source = source;
	a->map = map;
	a->prepared = xcalloc((size_t)map->n + 1, sizeof(int));
	a->delta = xcalloc((size_t)map->n + 1, sizeof(long long));
	a->sent_end = a->committed_end = a->durable_end = applied;
	return a;
}

static struct pending *head(struct cdc_apply *a)
{
	return a->len ? &a->q[a->head] : NULL;
}

static void pop(struct cdc_apply *a)
{
	struct pending *p = head(a);

	if (p->owns)
		cdc_batch_free(p->batch);
	if (p->kind == P_COMMIT)
		a->txns--;
	a->head = (a->head + 1) % a->cap;
	a->len--;
}

void cdc_apply_close(struct cdc_apply *a)
{
	if (!a)
		return;
	while (a->len)
		pop(a);
	free(a->q);
	free(a->prepared);
	free(a->delta);
	PQfinish(a->conn);
	free(a);
}

int cdc_apply_socket(const struct cdc_apply *a)
{
	return PQsocket(a->conn);
}

static struct pending *push(struct cdc_apply *a, enum pending_kind kind)
{
	if (a->len == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		struct pending *q = xcalloc(cap, sizeof(*q));
		for (size_t i = 0; i < a->len; i++)
			q[i] = a->q[(a->head + i) % a->cap];
		free(a->q);
		a->q = q;
		a->cap = cap;
		a->head = 0;
	}
	struct pending *p = &a->q[(a->head + a->len++) % a->cap];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->table = -1;
	if (kind == P_COMMIT)
		a->txns++;
	return p;
}

static bool send_failed(struct cdc_apply *a, char *err, size_t errlen)
{
	a->failed = a->transient = true;
	return errf(err, errlen, "ODS connection: %s", PQerrorMessage(a->conn));
}

/* Prepares the table's statements for its current column layout, once. */
static bool prepare_table(struct cdc_apply *a, int ti, char *err, size_t errlen)
{
	const struct cdc_table *t = &a->map->t[ti];
	static const char kinds[] = "udUD";

	if (a->prepared[ti] == t->generation)
		return true;
	for (int k = 0; kinds[k]; k++) {
		char name[64];
		bool one = kinds[k] == 'U' || kinds[k] == 'D';
		char *sql = kinds[k] == 'u' || kinds[k] == 'U' ? cdc_stmt_upsert_sql(t, one)
		                                               : cdc_stmt_delete_sql(t, one);
		bool ok;
		cdc_stmt_name(name, sizeof(name), kinds[k], ti, t->generation);
		ok = PQsendPrepare(a->conn, name, sql, 0, NULL) == 1;
		free(sql);
		if (!ok)
			return send_failed(a, err, errlen);
		push(a, P_PREPARE)->table = ti;
	}
	a->prepared[ti] = t->generation;
	return true;
}

/* The upsert ('u') or delete ('d') of table ti as prepared on this connection. */
static bool send_arrays(struct cdc_apply *a, const struct cdc_batch *b, int ti, enum cdc_op op,
                        int only, const char *ts, const char *pos, bool pipelined)
{
	char name[64];

	cdc_stmt_name(name, sizeof(name), op == CDC_DELETE ? 'd' : 'u', ti, a->prepared[ti]);
	return cdc_stmt_send_arrays(a->conn, name, b, op, only, ts, pos, pipelined);
}

/* Whether the rows of op in b go as the one-row form of the statement. */
static bool one_row(const struct cdc_batch *b, enum cdc_op op)
{
	return cdc_batch_count(b, op) == 1;
}

/* The statement of op for the batch's rows of op: the one-row form for one. */
static bool send_rows(struct cdc_apply *a, const struct cdc_batch *b, int ti, enum cdc_op op,
                      const char *ts, const char *pos)
{
	char name[64];

	if (!one_row(b, op))
		return send_arrays(a, b, ti, op, -1, ts, pos, true);
	cdc_stmt_name(name, sizeof(name), op == CDC_DELETE ? 'D' : 'U', ti, a->prepared[ti]);
	return cdc_stmt_send_row(a->conn, name, b, op, 0, ts, pos);
}

/* Opens the source transaction's ODS transaction block, once. */
static bool begin_block(struct cdc_apply *a, char *err, size_t errlen)
{
	if (a->in_block)
		return true;
	if (PQsendQueryPrepared(a->conn, "cdc_begin", 0, NULL, NULL, NULL, 0) != 1)
		return send_failed(a, err, errlen);
	push(a, P_OTHER);
	a->in_block = true;
	return true;
}

/* Ends a pipeline segment: the ODS runs it and sends its answers. */
static bool send_sync(struct cdc_apply *a, char *err, size_t errlen)
{
	if (PQpipelineSync(a->conn) != 1)
		return send_failed(a, err, errlen);
	push(a, P_SYNC);
	a->unsynced = 0;
	return true;
}

/* Ends the segment of the transactions committed since the last Sync, if any. */
static bool sync_committed(struct cdc_apply *a, char *err, size_t errlen)
{
	return a->unsynced == 0 || a->in_block || send_sync(a, err, errlen);
}

static int table_index(const struct cdc_apply *a, const struct cdc_table *t)
{
	return (int)(t - a->map->t);
}

bool cdc_apply_batch(struct cdc_apply *a, struct cdc_batch *b, uint64_t commit_lsn,
                     int64_t commit_time, char *err, size_t errlen)
{
	int ti = table_index(a, cdc_batch_table(b));
	int nparts = cdc_batch_count(b, CDC_PARTIAL);
	bool large = cdc_batch_size(b) >= FLUSH_KEYS;
	char ts[40], pos[24];
	struct pending *p = NULL;
	bool ok = prepare_table(a, ti, err, errlen) && begin_block(a, err, errlen);

	cdc_time_text(commit_time, ts, sizeof(ts));
	snprintf(pos, sizeof(pos), "%llu", (unsigned long long)commit_lsn);
	if (ok && cdc_batch_count(b, CDC_DELETE) > 0) {
		ok = send_rows(a, b, ti, CDC_DELETE, ts, pos);
		if (ok) {
			p = push(a, P_DELETE);
			p->table = ti, p->lsn = commit_lsn, p->batch = b;
		}
	}
	if (ok && cdc_batch_count(b, CDC_UPSERT) > 0) {
		ok = send_rows(a, b, ti, CDC_UPSERT, ts, pos);
		if (ok) {
			p = push(a, P_UPSERT);
			p->table = ti, p->lsn = commit_lsn, p->batch = b;
		}
	}
	for (int i = 0; ok && i < nparts; i++) {
		ok = cdc_stmt_send_partial(a->conn, b, i, ts, pos);
		if (ok) {
			p = push(a, P_PARTIAL);
			p->table = ti, p->lsn = commit_lsn, p->partial = i, p->batch = b;
		}
	}
	/* The last statement of the batch owns it; earlier ones borrow it. */
	if (p)
		p->owns = true;
	else
		cdc_batch_free(b);
	if (!ok)
		return a->failed ? false : send_failed(a, err, errlen);
	/* A large batch may be one chunk of many in a transaction: ask for its
	 * answer now, so the memory held for it is freed before the commit. */
	if (large && PQsendFlushRequest(a->conn) != 1)
		return send_failed(a, err, errlen);
	return true;
}

bool cdc_apply_truncate(struct cdc_apply *a, const struct cdc_table *t, char *err, size_t errlen)
{
	char *sql;
	bool ok;

	if (!begin_block(a, err, errlen))
		return false;
	sql = xasprintf("DELETE FROM %s", t->qtarget);
	ok = PQsendQueryParams(a->conn, sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
	free(sql);
	if (!ok)
		return send_failed(a, err, errlen);
	push(a, P_TRUNCATE)->table = table_index(a, t);
	return true;
}

bool cdc_apply_commit(struct cdc_apply *a, uint64_t end_lsn, int64_t commit_time, char *err,
                      size_t errlen)
{
	char prev[24], next[24], ts[40];
	const char *params[] = {a->source, a->sent_end ? prev : NULL, next, ts};
	struct pending *p;

	pgo_lsn_format(a->sent_end, prev, sizeof(prev));
	pgo_lsn_format(end_lsn, next, sizeof(next));
	cdc_time_text(commit_time, ts, sizeof(ts));
	if (!begin_block(a, err, errlen))
		return false;
	if (PQsendQueryPrepared(a->conn, "cdc_advance", 4, params, NULL, NULL, 0) != 1)
		return send_failed(a, err, errlen);
	push(a, P_OTHER);
	if (PQsendQueryPrepared(a->conn, "cdc_commit", 0, NULL, NULL, NULL, 0) != 1)
		return send_failed(a, err, errlen);
	p = push(a, P_COMMIT);
	p->lsn = end_lsn;
	p->commit_time = commit_time;
	a->sent_end = end_lsn;
	a->in_block = false;
	if (++a->unsynced >= SYNC_EVERY && !send_sync(a, err, errlen))
		return false;
	/* Bounded: past MAX_IN_FLIGHT, wait until half are answered. */
	if (a->txns < MAX_IN_FLIGHT)
		return true;
	while (a->txns > MAX_IN_FLIGHT / 2) {
		struct pollfd pfd = {.fd = PQsocket(a->conn), .events = POLLIN};
		if (!cdc_apply_pump(a, false, err, errlen))
			return false;
		if (a->txns > MAX_IN_FLIGHT / 2)
			poll(&pfd, 1, 100);
	}
	return true;
}

bool cdc_apply_probe(struct cdc_apply *a, char *err, size_t errlen)
{
	if (a->in_block)
		return errf(err, errlen, "cdc_apply: a probe inside a transaction");
	if (PQsendQueryParams(a->conn,
	                      "SELECT pg_current_wal_insert_lsn(), pg_current_wal_flush_lsn()", 0,
	                      NULL, NULL, NULL, NULL, 0) != 1)
		return send_failed(a, err, errlen);
	push(a, P_PROBE)->last_end = a->sent_end;
	return send_sync(a, err, errlen);
}

bool cdc_apply_freshness(struct cdc_apply *a, const struct cdc_progress *p, char *err,
                         size_t errlen)
{
	char asof[40] = "", wal[24] = "", lag[24] = "", ret[24] = "";
	struct strbuf names, deltas;
	bool ok;

	if (a->in_block)
		return errf(err, errlen, "cdc_apply: a freshness write inside a transaction");

	strbuf_init(&names);
	strbuf_init(&deltas);
	strbuf_addc(&names, '{');
	strbuf_addc(&deltas, '{');
	for (int i = 0; i < a->map->n; i++) {
		strbuf_addf(&names, "%s\"%s\"", i ? "," : "", a->map->t[i].target);
		strbuf_addf(&deltas, "%s%lld", i ? "," : "", a->delta[i]);
		a->delta[i] = 0;
	}
	strbuf_addc(&names, '}');
	strbuf_addc(&deltas, '}');
	if (p->as_of)
		cdc_time_text(p->as_of, asof, sizeof(asof));
	if (p->source_wal)
		pgo_lsn_format(p->source_wal, wal, sizeof(wal));
	if (p->lag_bytes >= 0)
		snprintf(lag, sizeof(lag), "%lld", p->lag_bytes);
	if (p->retained >= 0)
		snprintf(ret, sizeof(ret), "%lld", p->retained);
	const char *params[] = {a->source,  p->state, asof, p->caught_up ? "t" : "f",
	                        wal,        lag,      ret,  names.data,
	                        deltas.data};
	ok = PQsendQueryParams(
	             a->conn,
	             "WITH s AS (UPDATE ods.cdc_sources SET state = $2, updated_at = now(),"
	             "   caught_up_at = CASE WHEN $4 THEN greatest(caught_up_at, nullif($3, "
	             "'')::timestamptz)"
	             "                  ELSE caught_up_at END,"
	             "   source_wal_lsn = coalesce(nullif($5, '')::pg_lsn, source_wal_lsn),"
	             "   lag_bytes = coalesce(nullif($6, '')::bigint, lag_bytes),"
	             "   retained_wal_bytes = coalesce(nullif($7, '')::bigint, retained_wal_bytes),"
	             "   last_error = CASE WHEN $2 = 'streaming' THEN NULL ELSE last_error END"
	             "  WHERE name = $1 RETURNING 1)"
	             " UPDATE ods.synced_tables t SET last_sync_at = now(), status = 'ok',"
	             "   last_error = NULL, rows = greatest(t.rows + d.delta, 0),"
	             "   as_of = CASE WHEN t.as_of IS NULL OR t.as_of < nullif($3, '')::timestamptz"
	             "           THEN nullif($3, '')::timestamptz ELSE t.as_of END"
	             "  FROM unnest($8::text[], $9::bigint[]) AS d(name, delta), s"
	             " WHERE t.table_name = d.name AND t.cdc_source = $1",
	             9, NULL, params, NULL, NULL, 0) == 1;
	strbuf_free(&names);
	strbuf_free(&deltas);
	if (!ok)
		return send_failed(a, err, errlen);
	push(a, P_OTHER);
	return send_sync(a, err, errlen);
}

/* ---- answers ---- */

static bool transient_state(const char *s)
{
	return strncmp(s, "08", 2) == 0 || strncmp(s, "40", 2) == 0 || strncmp(s, "53", 2) == 0 ||
	       strncmp(s, "57", 2) == 0 || strcmp(s, "55P03") == 0 || !*s;
}

/* Replays the failing batch key by key, rolled back, to name the key that breaks. */
static void name_key(struct cdc_apply *a, const struct pending *p, struct strbuf *out)
{
	const struct cdc_batch *b = p->batch;
	enum cdc_op op = p->kind == P_DELETE    ? CDC_DELETE
	                 : p->kind == P_PARTIAL ? CDC_PARTIAL
	                                        : CDC_UPSERT;
	PGresult *res;
	char pos[24];

	if (!b || PQexitPipelineMode(a->conn) != 1)
		return;
	snprintf(pos, sizeof(pos), "%llu", (unsigned long long)p->lsn);
	if (PQtransactionStatus(a->conn) != PQTRANS_IDLE) /* the failed block */
		PQclear(PQexec(a->conn, "ROLLBACK"));
	PQclear(PQexec(a->conn, "BEGIN"));
	if (op == CDC_PARTIAL) {
		cdc_batch_key_text(b, op, p->partial, out);
	} else {
		for (int i = 0; i < cdc_batch_count(b, op); i++) {
			if (!send_arrays(a, b, p->table, op, i, "now", pos, false)) {
				cdc_batch_key_text(b, op, i, out);
				break;
			}
		}
	}
	res = PQexec(a->conn, "ROLLBACK");
	PQclear(res);
}

static bool fail(struct cdc_apply *a, struct pending *p, PGresult *res, char *err, size_t errlen)
{
	char msg[ODS_ERRLEN], lsn[24];
	struct strbuf key;

	a->failed = true;
	snprintf(a->sqlstate, sizeof(a->sqlstate), "%s", db_sqlstate(res));
	a->transient = transient_state(a->sqlstate);
	db_fail(a->conn, res, msg, sizeof(msg));
	if (p->table < 0)
		return errf(err, errlen, "ODS: %s", msg);
	/* Keep the batch past the drain (take it from its owner), read to the end
	 * of the pipeline, then replay to find the key. */
	strbuf_init(&key);
	struct pending failed = *p;
	failed.owns = failed.batch != NULL;
	for (size_t i = 0; i < a->len; i++) {
		struct pending *q = &a->q[(a->head + i) % a->cap];
		if (q->batch == failed.batch)
			q->owns = false;
	}
	PGresult *r;
	bool drain = PQsetnonblocking(a->conn, 0) == 0 && PQflush(a->conn) == 0;
	while (drain && a->len) {
		struct pending *h = head(a);
		r = PQgetResult(a->conn);
		if (!r && h->kind != P_SYNC) {
			pop(a);
			continue;
		}
		if (!r)
			break;
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC)
			pop(a);
		PQclear(r);
	}
	if (!a->transient)
		name_key(a, &failed, &key);
	pgo_lsn_format(failed.lsn, lsn, sizeof(lsn));
	errf(err, errlen, "synced.%s%s%s at LSN %s (source %s.%s): %s",
	     a->map->t[failed.table].target, key.len ? " key " : "", key.len ? key.data : "", lsn,
	     a->map->t[failed.table].src_schema, a->map->t[failed.table].src_table, msg);
	if (failed.owns)
		cdc_batch_free(failed.batch);
	strbuf_free(&key);
	return false;
}

/* What one answer means for the head of the FIFO. */
static bool take(struct cdc_apply *a, PGresult *res, char *err, size_t errlen)
{
	struct pending *p = head(a);
	ExecStatusType st = PQresultStatus(res);

	if (!p) {
		PQclear(res);
		return true;
	}
	if (st == PGRES_PIPELINE_SYNC) {
		pop(a);
		PQclear(res);
		return true;
	}
	if (p->kind == P_COMMIT && st == PGRES_COMMAND_OK) {
		/* COMMIT of a block that failed answers ROLLBACK, without an error. */
		bool committed = strcmp(PQcmdStatus(res), "COMMIT") == 0;
		if (committed) {
			a->committed_end = p->lsn;
			a->committed_time = p->commit_time;
		}
		PQclear(res);
		if (!committed) {
			char lsn[24];
			a->failed = true;
			a->transient = true;
			pgo_lsn_format(p->lsn, lsn, sizeof(lsn));
			return errf(err, errlen, "ODS: the transaction of LSN %s was rolled back",
			            lsn);
		}
		return true;
	}
	if (st == PGRES_FATAL_ERROR) {
		bool ok = fail(a, p, res, err, errlen);
		PQclear(res);
		return ok;
	}
	/* The batch is still held: its last statement owns it and has not been answered. */
	if (st == PGRES_TUPLES_OK && p->kind == P_UPSERT && one_row(p->batch, CDC_UPSERT))
		a->delta[p->table] += PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	else if (st == PGRES_TUPLES_OK && p->kind == P_UPSERT && PQntuples(res) == 1)
		a->delta[p->table] += strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else if (st == PGRES_COMMAND_OK && (p->kind == P_DELETE || p->kind == P_TRUNCATE))
		a->delta[p->table] -= strtoll(PQcmdTuples(res), NULL, 10);
	else if (st == PGRES_COMMAND_OK && p->kind == P_PARTIAL &&
	         strcmp(PQcmdTuples(res), "1") != 0) {
		PQclear(res);
		a->failed = true;
		a->transient = false;
		struct strbuf key;
		char lsn[24];
		strbuf_init(&key);
		cdc_batch_key_text(p->batch, CDC_PARTIAL, p->partial, &key);
		pgo_lsn_format(p->lsn, lsn, sizeof(lsn));
		errf(err, errlen,
		     "synced.%s key %s at LSN %s: an update that keeps an unchanged TOASTed value "
		     "found no row to keep it from",
		     a->map->t[p->table].target, key.data, lsn);
		strbuf_free(&key);
		return false;
	} else if (st == PGRES_TUPLES_OK && p->kind == P_PROBE && PQntuples(res) == 1) {
		uint64_t ins, fl;
		if (pgo_lsn_parse(PQgetvalue(res, 0, 0), &ins) &&
		    pgo_lsn_parse(PQgetvalue(res, 0, 1), &fl)) {
			int keep = 0;
			for (int i = 0; i < a->nmarks; i++)
				if (a->marks[i].insert <= fl)
					a->durable_end = a->marks[i].end > a->durable_end
					                         ? a->marks[i].end
					                         : a->durable_end;
				else
					a->marks[keep++] = a->marks[i];
			a->nmarks = keep;
			if (p->last_end > a->durable_end &&
			    a->nmarks < (int)ODS_ARRAY_LEN(a->marks))
				a->marks[a->nmarks++] = (struct mark){ins, p->last_end};
		}
	}
	PQclear(res);
	return true;
}

bool cdc_apply_pump(struct cdc_apply *a, bool wait, char *err, size_t errlen)
{
	if (a->failed)
		return errf(err, errlen, "ODS apply already failed");
	if (!sync_committed(a, err, errlen))
		return false;
	if (wait && a->in_block && PQsendFlushRequest(a->conn) != 1)
		return send_failed(a, err, errlen);
	for (;;) {
		int flushed = PQflush(a->conn);
		if (flushed < 0 || PQconsumeInput(a->conn) == 0)
			return send_failed(a, err, errlen);
		while (a->len && !PQisBusy(a->conn)) {
			PGresult *res = PQgetResult(a->conn);
			if (!res) { /* the end of a statement's answer; a Sync's comes as a result */
				if (head(a)->kind == P_SYNC)
					break;
				pop(a);
				continue;
			}
			if (!take(a, res, err, errlen))
				return false;
		}
		if (!wait && flushed == 0)
			return true;
		if (a->len == 0 && flushed == 0)
			return true;
		struct pollfd pfd = {.fd = PQsocket(a->conn),
		                     .events = (short)(POLLIN | (flushed ? POLLOUT : 0))};
		if (poll(&pfd, 1, 1000) < 0)
			return send_failed(a, err, errlen);
	}
}

bool cdc_apply_transient(const struct cdc_apply *a)
{
	return a->transient;
}

bool cdc_apply_in_txn(const struct cdc_apply *a)
{
	return a->in_block;
}

uint64_t cdc_apply_committed(const struct cdc_apply *a)
{
	return a->committed_end;
}

uint64_t cdc_apply_durable(const struct cdc_apply *a)
{
	return a->durable_end;
}

int64_t cdc_apply_committed_time(const struct cdc_apply *a)
{
	return a->committed_time;
}

int cdc_apply_in_flight(const struct cdc_apply *a)
{
	return a->txns;
}
