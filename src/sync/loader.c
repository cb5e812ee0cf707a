/*
 * loader: one snapshot or incremental load, all-or-nothing.
 *
 * The model: parse the file on our side (CSV or NDJSON, gzip or not) into
 * records, re-encode them as COPY text rows and stream them to PostgreSQL.
 * Parsing here, not in the server, gives exact file lines and column names
 * in every error, drops the file's _synced_at (the ODS sets it) and lets
 * the same path serve both formats.
 *
 * Everything happens in ONE transaction that holds the table's row in
 * ods.synced_tables (FOR UPDATE: loads of one table take turns) and a SHARE
 * ROW EXCLUSIVE lock on the table (no concurrent writers, readers welcome):
 *   - into an empty table, rows are COPYed straight in (the first load runs
 *     at raw COPY speed); the primary key catches duplicates;
 *   - otherwise rows go to a temp staging table with the target's types,
 *     CHECKs and primary key, then one UPDATE rewrites only the keys whose
 *     business columns changed (only they get a new _synced_at), one INSERT
 *     adds new keys and, for a full snapshot, one DELETE drops absent keys.
 * Then ods.synced_tables gets as_of/last_sync_at/rows/status and NOTIFY
 * ods_freshness fires, both at COMMIT. Readers see the old or the new table,
 * never a mix. A failure rolls back and records status/last_error.
 */
#include "autoconfig.h"

#include "sync/loader.h"

#include "db/db.h"
#include "sync/csv.h"
#include "sync/ndjson.h"

#include <stdlib.h>
#include <string.h>

/* The columns the ODS owns; see DESIGN section 3. */
#define COL_COMMITTED "_source_committed_at"
#define COL_SYNCED    "_synced_at"
#define COL_POSITION  "_source_position"

#define COPY_FLUSH (256 * 1024)

struct column {
	char *name;
	char *qname; /* quoted identifier */
	bool pk;
	bool business; /* neither key nor one of the ODS's freshness columns */
};

struct load {
	PGconn *conn;
	const struct load_opts *o;
	const char *schema; /* "synced", or "native" for seed rows */
	bool seed;          /* insert new keys only; no freshness bookkeeping */
	char *qtable;       /* "synced"."name" */
	struct column *cols;
	int ncols;
	/* per file field: the index in cols, or -1 to drop it (_synced_at) */
	int *map;
	int nfields;
	bool append_as_of;    /* the file has no _source_committed_at: use --as-of */
	bool append_position; /* the file has no _source_position: use o->position */
	/* file line of each record sent, to translate COPY's line numbers */
	long long *lines;
	long long nlines, caplines;
	struct source *src;
	struct csv_reader *csv;
	struct ndjson_reader *nd;
};

static bool is_ndjson(const char *path)
{
	return util_ends_with(path, ".ndjson") || util_ends_with(path, ".ndjson.gz") ||
	       util_ends_with(path, ".jsonl") || util_ends_with(path, ".jsonl.gz");
}

static bool is_csv(const char *path)
{
	return util_ends_with(path, ".csv") || util_ends_with(path, ".csv.gz");
}

static int read_record(struct load *l, struct record *rec, char *err, size_t errlen)
{
	return l->csv ? csv_next(l->csv, rec, err, errlen) : ndjson_next(l->nd, rec, err, errlen);
}

static void load_free(struct load *l)
{
	for (int i = 0; i < l->ncols; i++) {
		free(l->cols[i].name);
		PQfreemem(l->cols[i].qname);
	}
	free(l->cols);
	free(l->map);
	free(l->lines);
	free(l->qtable);
	csv_close(l->csv);
	ndjson_close(l->nd);
	if (l->src != l->o->input)
		source_close(l->src);
}

/* Reads the table's columns and primary key from the catalog. */
static bool load_columns(struct load *l, char *err, size_t errlen)
{
	static const char sql[] =
	        "SELECT a.attname, coalesce(a.attnum = ANY (i.indkey), false)"
	        "  FROM pg_attribute a"
	        "  JOIN pg_class c ON c.oid = a.attrelid"
	        "  JOIN pg_namespace n ON n.oid = c.relnamespace"
	        "  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary"
	        " WHERE n.nspname = $2 AND c.relname = $1 AND c.relkind IN ('r', 'p')"
	        "   AND a.attnum > 0 AND NOT a.attisdropped"
	        " ORDER BY a.attnum";
	const char *params[] = {l->o->table, l->schema};
	PGresult *res = PQexecParams(l->conn, sql, 2, NULL, params, NULL, NULL, 0);
	bool has_pk = false;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_fail(l->conn, res, err, errlen);
		PQclear(res);
		return false;
	}
	l->ncols = PQntuples(res);
	l->cols = xcalloc((size_t)l->ncols + 1, sizeof(*l->cols));
	for (int i = 0; i < l->ncols; i++) {
		struct column *c = &l->cols[i];
		c->name = xstrdup(PQgetvalue(res, i, 0));
		c->qname = PQescapeIdentifier(l->conn, c->name, strlen(c->name));
		c->pk = PQgetvalue(res, i, 1)[0] == 't';
		c->business = !c->pk && strcmp(c->name, COL_COMMITTED) != 0 &&
		              strcmp(c->name, COL_SYNCED) != 0 &&
		              strcmp(c->name, COL_POSITION) != 0;
		has_pk |= c->pk;
	}
	PQclear(res);
	if (l->ncols == 0)
		return errf(err, errlen, "unknown table %s.%s", l->schema, l->o->table);
	if (!has_pk)
		return errf(err, errlen, "%s.%s has no primary key", l->schema, l->o->table);
	return true;
}

static int column_index(const struct load *l, const char *name)
{
	for (int i = 0; i < l->ncols; i++)
		if (strcmp(l->cols[i].name, name) == 0)
			return i;
	return -1;
}

/* Checks the header (or the first NDJSON object's keys) against the table. */
static bool map_header(struct load *l, const char *const *names, int n, char *err, size_t errlen)
{
	const char *file = l->o->file;
	bool *seen = xcalloc((size_t)l->ncols + 1, sizeof(bool));
	bool ok = false;

	l->nfields = n;
	l->map = xcalloc((size_t)n + 1, sizeof(int));
	for (int f = 0; f < n; f++) {
		int c = column_index(l, names[f]);
		if (c < 0) {
			errf(err, errlen, "%s: line 1, column %s: not a column of %s.%s", file,
			     names[f], l->schema, l->o->table);
			goto out;
		}
		if (seen[c]) {
			errf(err, errlen, "%s: line 1, column %s: appears twice", file, names[f]);
			goto out;
		}
		seen[c] = true;
		l->map[f] = !l->seed && strcmp(names[f], COL_SYNCED) == 0 ? -1 : c;
	}
	/* Seed rows may leave columns to their defaults; extracts must be complete. */
	for (int c = 0; c < l->ncols && !l->seed; c++) {
		const char *name = l->cols[c].name;
		if (!seen[c] && strcmp(name, COL_POSITION) == 0 && l->o->position)
			l->append_position = true;
		if (seen[c] || strcmp(name, COL_SYNCED) == 0 || strcmp(name, COL_POSITION) == 0)
			continue;
		if (strcmp(name, COL_COMMITTED) == 0 && l->o->as_of) {
			l->append_as_of = true;
			continue;
		}
		errf(err, errlen, "%s: line 1: missing column %s%s", file, name,
		     strcmp(name, COL_COMMITTED) == 0 ? " (or pass --as-of)" : "");
		goto out;
	}
	ok = true;
out:
	free(seen);
	return ok;
}

/* The COPY column list: the mapped file fields, then _source_committed_at if appended. */
static void add_copy_columns(struct strbuf *sb, const struct load *l, const char *prefix)
{
	bool first = true;

	for (int f = 0; f < l->nfields; f++) {
		if (l->map[f] < 0)
			continue;
		strbuf_addf(sb, "%s%s%s", first ? "" : ", ", prefix, l->cols[l->map[f]].qname);
		first = false;
	}
	if (l->append_as_of) {
		strbuf_addf(sb, "%s%s%s", first ? "" : ", ", prefix, COL_COMMITTED);
		first = false;
	}
	if (l->append_position)
		strbuf_addf(sb, "%s%s%s", first ? "" : ", ", prefix, COL_POSITION);
}

/* Appends one field in COPY text format. */
static void add_copy_field(struct strbuf *out, const char *p, size_t n)
{
	size_t run = 0;

	strbuf_grow(out, n);
	for (size_t i = 0; i < n; i++) {
		const char *esc = NULL;
		switch (p[i]) {
		case '\\':
			esc = "\\\\";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		default:
			continue;
		}
		strbuf_add(out, p + run, i - run);
		strbuf_add(out, esc, 2);
		run = i + 1;
	}
	strbuf_add(out, p + run, n - run);
}

static bool encode_record(struct load *l, const struct record *rec, struct strbuf *out, char *err,
                          size_t errlen)
{
	bool first = true;

	if (rec->nfields != l->nfields)
		return errf(err, errlen, "%s: line %lld: %d fields, but the header has %d",
		            l->o->file, rec->line, rec->nfields, l->nfields);
	for (int f = 0; f < rec->nfields; f++) {
		if (l->map[f] < 0)
			continue;
		if (!first)
			strbuf_addc(out, '\t');
		first = false;
		if (rec->null[f]) {
			strbuf_add(out, "\\N", 2);
			continue;
		}
		if (memchr(rec->field[f], '\0', rec->len[f]))
			return errf(err, errlen, "%s: line %lld, column %s: NUL byte in value",
			            l->o->file, rec->line, l->cols[l->map[f]].name);
		add_copy_field(out, rec->field[f], rec->len[f]);
	}
	if (l->append_as_of) {
		if (!first)
			strbuf_addc(out, '\t');
		add_copy_field(out, l->o->as_of, strlen(l->o->as_of));
		first = false;
	}
	if (l->append_position) {
		if (!first)
			strbuf_addc(out, '\t');
		add_copy_field(out, l->o->position, strlen(l->o->position));
	}
	strbuf_addc(out, '\n');
	if (l->nlines == l->caplines) {
		l->caplines = l->caplines ? l->caplines * 2 : 4096;
		l->lines = xrealloc(l->lines, (size_t)l->caplines * sizeof(*l->lines));
	}
	l->lines[l->nlines++] = rec->line;
	return true;
}

/*
 * The "COPY t, line K..." line of an error's CONTEXT. Inner contexts come
 * first: a bad jsonb value reads "JSON data, line 1: ...\nCOPY t, line K, ...".
 */
static const char *copy_context(const char *ctx)
{
	for (const char *p = ctx; p; p = strchr(p, '\n')) {
		p += *p == '\n';
		if (strncmp(p, "COPY ", 5) == 0)
			return p;
	}
	return NULL;
}

/*
 * Turns a server error during COPY into "file: line N, column C: message".
 * COPY's CONTEXT reads "COPY t, line K[, column c: ...]": K counts records
 * we sent, so l->lines[K-1] is the file line.
 */
static bool copy_error(struct load *l, const PGresult *res, char *err, size_t errlen)
{
	char msg[ODS_ERRLEN];
	const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
	const char *col = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
	const char *copy = ctx ? copy_context(ctx) : NULL;
	const char *p = copy ? strstr(copy, ", line ") : NULL;
	long long k = p ? strtoll(p + 7, NULL, 10) : 0;
	char colbuf[128] = "";

	db_fail(l->conn, res, msg, sizeof(msg));
	if (strcmp(db_sqlstate(res), "23505") == 0)
		col = "(primary key)";
	if (!col && p && (p = strstr(p, ", column ")) != NULL) {
		size_t n = strcspn(p + 9, ":");
		snprintf(colbuf, sizeof(colbuf), "%.*s", (int)n, p + 9);
		col = colbuf;
	}
	if (k >= 1 && k <= l->nlines)
		return errf(err, errlen, "%s: line %lld%s%s: %s", l->o->file, l->lines[k - 1],
		            col ? ", column " : "", col ? col : "", msg);
	return errf(err, errlen, "%s: %s", l->o->file, msg);
}

/* Streams every record after the header into an open COPY; counts them. */
static bool stream_rows(struct load *l, long long *records, char *err, size_t errlen)
{
	struct strbuf out;
	struct record rec;
	char rerr[ODS_ERRLEN] = "";
	PGresult *res;
	bool ok = true;
	int got;

	strbuf_init(&out);
	*records = 0;
	while ((got = read_record(l, &rec, rerr, sizeof(rerr))) == 1) {
		if (!encode_record(l, &rec, &out, rerr, sizeof(rerr))) {
			got = -1;
			break;
		}
		(*records)++;
		if (out.len >= COPY_FLUSH) {
			if (PQputCopyData(l->conn, out.data, (int)out.len) != 1)
				break; /* the server refused: its error follows below */
			strbuf_reset(&out);
		}
	}
	if (got == 0 && out.len > 0 && PQputCopyData(l->conn, out.data, (int)out.len) != 1)
		got = 1; /* not all sent: the server's error explains why */
	if (got == 0 && *records == 0 && !l->o->allow_empty) {
		errf(rerr, sizeof(rerr), "%s: no data rows", l->o->file);
		got = -1;
	}
	strbuf_free(&out);
	/* A client-side error aborts the COPY; the server then reports that message. */
	PQputCopyEnd(l->conn, got == 0 ? NULL : (got < 0 ? rerr : "load aborted"));
	while ((res = PQgetResult(l->conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && ok) {
			ok = false;
			if (got < 0)
				errf(err, errlen, "%s", rerr);
			else
				copy_error(l, res, err, errlen);
		}
		PQclear(res);
	}
	return ok;
}

/* Runs sql with the table name as $1 and returns the affected-row count. */
static bool exec_count(struct load *l, const char *sql, long long *count, char *err, size_t errlen)
{
	PGresult *res = PQexec(l->conn, sql);
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		db_fail(l->conn, res, err, errlen);
	else if (count)
		*count = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return ok;
}

static void add_pk_join(struct strbuf *sb, const struct load *l, const char *a, const char *b)
{
	bool first = true;

	for (int c = 0; c < l->ncols; c++) {
		if (!l->cols[c].pk)
			continue;
		strbuf_addf(sb, "%s%s.%s = %s.%s", first ? "" : " AND ", a, l->cols[c].qname, b,
		            l->cols[c].qname);
		first = false;
	}
}

/* Seed rows: insert the keys that are not there yet. */
static bool merge_seed(struct load *l, struct load_result *r, char *err, size_t errlen)
{
	struct strbuf sql;
	bool ok;

	strbuf_init(&sql);
	strbuf_addf(&sql, "INSERT INTO %s (", l->qtable);
	add_copy_columns(&sql, l, "");
	strbuf_adds(&sql, ") SELECT ");
	add_copy_columns(&sql, l, "s.");
	strbuf_adds(&sql, " FROM pg_temp._ods_stage AS s ON CONFLICT DO NOTHING");
	ok = exec_count(l, sql.data, &r->inserted, err, errlen);
	r->unchanged = r->records - r->inserted;
	strbuf_free(&sql);
	return ok;
}

/* Merges the staging table into the target; see the model at the top. */
static bool merge_stage(struct load *l, struct load_result *r, char *err, size_t errlen)
{
	struct strbuf sql;
	bool ok = false, first = true;

	if (l->seed)
		return merge_seed(l, r, err, errlen);
	strbuf_init(&sql);
	/* UPDATE keys whose business columns differ; everything we loaded is written. */
	strbuf_addf(&sql, "UPDATE %s AS t SET ", l->qtable);
	for (int f = 0; f < l->nfields; f++) {
		const struct column *c = l->map[f] >= 0 ? &l->cols[l->map[f]] : NULL;
		if (!c || c->pk)
			continue;
		strbuf_addf(&sql, "%s = s.%s, ", c->qname, c->qname);
	}
	if (l->append_as_of)
		strbuf_addf(&sql, "%s = s.%s, ", COL_COMMITTED, COL_COMMITTED);
	if (l->append_position)
		strbuf_addf(&sql, "%s = s.%s, ", COL_POSITION, COL_POSITION);
	strbuf_addf(&sql, "%s = now() FROM pg_temp._ods_stage AS s WHERE ", COL_SYNCED);
	add_pk_join(&sql, l, "t", "s");
	strbuf_adds(&sql, " AND ROW(");
	for (int c = 0; c < l->ncols; c++)
		if (l->cols[c].business) {
			strbuf_addf(&sql, "%st.%s", first ? "" : ", ", l->cols[c].qname);
			first = false;
		}
	strbuf_adds(&sql, ") IS DISTINCT FROM ROW(");
	first = true;
	for (int c = 0; c < l->ncols; c++)
		if (l->cols[c].business) {
			strbuf_addf(&sql, "%ss.%s", first ? "" : ", ", l->cols[c].qname);
			first = false;
		}
	strbuf_adds(&sql, ")");
	if (first) /* no business columns: nothing can change */
		r->updated = 0;
	else if (!exec_count(l, sql.data, &r->updated, err, errlen))
		goto out;

	strbuf_reset(&sql);
	strbuf_addf(&sql, "INSERT INTO %s (", l->qtable);
	add_copy_columns(&sql, l, "");
	strbuf_adds(&sql, ") SELECT ");
	add_copy_columns(&sql, l, "s.");
	strbuf_addf(&sql,
	            " FROM pg_temp._ods_stage AS s WHERE NOT EXISTS (SELECT 1 FROM %s AS t WHERE ",
	            l->qtable);
	add_pk_join(&sql, l, "t", "s");
	strbuf_adds(&sql, ")");
	if (!exec_count(l, sql.data, &r->inserted, err, errlen))
		goto out;

	if (!l->o->incremental) {
		strbuf_reset(&sql);
		strbuf_addf(&sql,
		            "DELETE FROM %s AS t WHERE NOT EXISTS (SELECT 1 FROM "
		            "pg_temp._ods_stage AS s "
		            "WHERE ",
		            l->qtable);
		add_pk_join(&sql, l, "t", "s");
		strbuf_adds(&sql, ")");
		if (!exec_count(l, sql.data, &r->deleted, err, errlen))
			goto out;
	}
	r->unchanged = r->records - r->inserted - r->updated;
	ok = true;
out:
	strbuf_free(&sql);
	return ok;
}

/* Creates the staging table: the target's types, defaults, CHECKs and key. */
static bool create_stage(struct load *l, char *err, size_t errlen)
{
	struct strbuf sql;
	bool first = true, ok;

	strbuf_init(&sql);
	strbuf_addf(&sql,
	            "CREATE TEMP TABLE _ods_stage (LIKE %s INCLUDING DEFAULTS INCLUDING "
	            "CONSTRAINTS) ON COMMIT DROP; ALTER TABLE pg_temp._ods_stage ADD PRIMARY KEY (",
	            l->qtable);
	for (int c = 0; c < l->ncols; c++)
		if (l->cols[c].pk) {
			strbuf_addf(&sql, "%s%s", first ? "" : ", ", l->cols[c].qname);
			first = false;
		}
	strbuf_adds(&sql, ")");
	ok = db_exec(l->conn, sql.data, err, errlen);
	strbuf_free(&sql);
	return ok;
}

static bool start_copy(struct load *l, const char *relation, char *err, size_t errlen)
{
	struct strbuf sql;
	PGresult *res;
	bool ok;

	strbuf_init(&sql);
	strbuf_addf(&sql, "COPY %s (", relation);
	add_copy_columns(&sql, l, "");
	strbuf_adds(&sql, ") FROM STDIN");
	res = PQexec(l->conn, sql.data);
	ok = PQresultStatus(res) == PGRES_COPY_IN;
	if (!ok)
		db_fail(l->conn, res, err, errlen);
	PQclear(res);
	strbuf_free(&sql);
	return ok;
}

/* Locks the table's catalog row and the table; tells a direct COPY from staging. */
static bool lock_table(struct load *l, bool *empty, char *err, size_t errlen)
{
	const char *params[] = {l->o->table};
	PGresult *res = PQexecParams(
	        l->conn, "SELECT 1 FROM ods.synced_tables WHERE table_name = $1 FOR UPDATE", 1,
	        NULL, params, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	char *sql;

	if (!ok)
		db_fail(l->conn, res, err, errlen);
	else if (PQntuples(res) == 0)
		ok = errf(err, errlen, "synced.%s is not registered in ods.synced_tables",
		          l->o->table);
	PQclear(res);
	if (!ok)
		return false;
	sql = xasprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", l->qtable);
	ok = db_exec(l->conn, sql, err, errlen);
	free(sql);
	if (!ok)
		return false;
	sql = xasprintf("SELECT NOT EXISTS (SELECT 1 FROM %s)", l->qtable);
	res = PQexec(l->conn, sql);
	free(sql);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		db_fail(l->conn, res, err, errlen);
	else
		*empty = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return ok;
}

/* Records the successful load in ods.synced_tables and queues the NOTIFY. */
static bool record_success(struct load *l, bool direct, struct load_result *r, char *err,
                           size_t errlen)
{
	char rows[32];
	char *sql = xasprintf("WITH u AS (UPDATE ods.synced_tables SET"
	                      "   as_of = coalesce($2::timestamptz, (SELECT max(%s) FROM %s)),"
	                      "   last_sync_at = now(), status = 'ok', last_error = NULL,"
	                      "   rows = coalesce($3::bigint, (SELECT count(*) FROM %s))"
	                      "  WHERE table_name = $1"
	                      "  RETURNING to_char(as_of AT TIME ZONE 'UTC', "
	                      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), rows)"
	                      " SELECT u.*, pg_notify('ods_freshness', $1) FROM u",
	                      COL_COMMITTED, direct ? l->qtable : "pg_temp._ods_stage", l->qtable);
	const char *params[3] = {l->o->table, l->o->as_of, NULL};
	PGresult *res;
	bool ok;

	if (!l->o->incremental) {
		snprintf(rows, sizeof(rows), "%lld", r->records);
		params[2] = rows;
	}
	res = PQexecParams(l->conn, sql, 3, NULL, params, NULL, NULL, 0);
	free(sql);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
	if (!ok)
		db_fail(l->conn, res, err, errlen);
	else {
		snprintf(r->as_of, sizeof(r->as_of), "%s", PQgetvalue(res, 0, 0));
		r->rows = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
	PQclear(res);
	return ok;
}

static void record_failure(PGconn *conn, const char *table, const char *msg)
{
	const char *params[] = {table, msg};
	PGresult *res = PQexecParams(
	        conn,
	        "WITH u AS (UPDATE ods.synced_tables SET status = 'error', last_error = $2"
	        "  WHERE table_name = $1 RETURNING 1) SELECT pg_notify('ods_freshness', $1) FROM u",
	        2, NULL, params, NULL, NULL, 0);

	PQclear(res); /* best effort: the load's own error is what the caller reports */
}

/* Opens the file, reads its header and maps it onto the table. */
static bool open_file(struct load *l, char *err, size_t errlen)
{
	struct record hdr;
	const char *const *names;
	int n, got;

	if (l->o->input) {
		l->src = l->o->input;
		l->csv = csv_open(l->src);
		got = csv_next(l->csv, &hdr, err, errlen);
		if (got <= 0)
			return got == 0 ? errf(err, errlen, "%s: no header row", l->o->file)
			                : false;
		return map_header(l, hdr.field, hdr.nfields, err, errlen);
	}
	if (!is_csv(l->o->file) && !is_ndjson(l->o->file))
		return errf(err, errlen,
		            "%s: unknown file type (expected .csv or .ndjson, "
		            "optionally .gz)",
		            l->o->file);
	l->src = source_open(l->o->file, err, errlen);
	if (!l->src)
		return false;
	if (is_csv(l->o->file)) {
		l->csv = csv_open(l->src);
		got = csv_next(l->csv, &hdr, err, errlen);
		if (got == 0)
			return errf(err, errlen, "%s: empty file (no header row)", l->o->file);
		if (got < 0)
			return false;
		for (int f = 0; f < hdr.nfields; f++)
			if (hdr.null[f])
				return errf(err, errlen, "%s: line 1, column %d: empty column name",
				            l->o->file, f + 1);
		return map_header(l, hdr.field, hdr.nfields, err, errlen);
	}
	/* NDJSON: the first object names the columns; it is read again as data. */
	l->nd = ndjson_open(l->src);
	got = ndjson_next(l->nd, &hdr, err, errlen);
	if (got == 0)
		return errf(err, errlen, "%s: empty file (no records)", l->o->file);
	if (got < 0)
		return false;
	names = ndjson_columns(l->nd, &n);
	if (!map_header(l, names, n, err, errlen))
		return false;
	/* Restart so the first object is streamed like the others. */
	ndjson_close(l->nd);
	source_close(l->src);
	l->src = source_open(l->o->file, err, errlen);
	if (!l->src)
		return false;
	l->nd = ndjson_open(l->src);
	return true;
}

/*
 * Fresh planner statistics are part of a load: a table filled from empty or
 * largely replaced would otherwise be planned blind until autovacuum gets to
 * it (measured: reads at a quarter of their speed for the first minute). The
 * rule is autovacuum's own default (50 rows + 10 % of the table changed), so
 * a load does at once what autovacuum would do soon, and small incremental
 * loads pay nothing. ANALYZE runs inside the load's transaction: readers see
 * the new rows and the new statistics together.
 */
static bool analyze_if_changed(struct load *l, const struct load_result *r, char *err,
                               size_t errlen)
{
	long long changed = r->inserted + r->updated + r->deleted;
	char *sql;
	bool ok;

	if (changed < 50 + r->rows / 10 && changed < 50 + (r->rows + r->deleted) / 10)
		return true;
	sql = xasprintf("ANALYZE %s", l->qtable);
	ok = db_exec(l->conn, sql, err, errlen);
	free(sql);
	return ok;
}

static bool load_in_tx(struct load *l, struct load_result *r, char *err, size_t errlen)
{
	bool empty;

	if (!db_exec(l->conn, "BEGIN", err, errlen))
		return false;
	if (l->o->as_of) {
		const char *params[] = {l->o->as_of};
		char e[ODS_ERRLEN];
		if (!db_exec_params(l->conn, "SELECT $1::timestamptz", 1, params, e, sizeof(e)))
			return errf(err, errlen, "--as-of %s: %s", l->o->as_of, e);
	}
	if (!load_columns(l, err, errlen))
		return false;
	empty = false;
	if (!l->seed && !lock_table(l, &empty, err, errlen))
		return false;
	if (!open_file(l, err, errlen))
		return false;
	if (empty) {
		if (!start_copy(l, l->qtable, err, errlen) ||
		    !stream_rows(l, &r->records, err, errlen))
			return false;
		r->inserted = r->records;
	} else {
		if (!create_stage(l, err, errlen) ||
		    !start_copy(l, "pg_temp._ods_stage", err, errlen) ||
		    !stream_rows(l, &r->records, err, errlen) ||
		    !db_exec(l->conn, "ANALYZE pg_temp._ods_stage", err, errlen) ||
		    !merge_stage(l, r, err, errlen))
			return false;
	}
	return (l->seed || record_success(l, empty, r, err, errlen)) &&
	       analyze_if_changed(l, r, err, errlen) && db_exec(l->conn, "COMMIT", err, errlen);
}

static bool run(struct load *l, struct load_result *r, char *err, size_t errlen)
{
	PGconn *conn = l->conn;
	char e[ODS_ERRLEN];
	char *q;
	bool ok;

	memset(r, 0, sizeof(*r));
	if (PQsetClientEncoding(conn, "UTF8") != 0 ||
	    !db_exec(conn, "SET TimeZone = 'UTC'", err, errlen))
		return errf(err, errlen, "cannot prepare the session: %s", PQerrorMessage(conn));
	q = PQescapeIdentifier(conn, l->o->table, strlen(l->o->table));
	if (!q)
		return errf(err, errlen, "bad table name: %s", PQerrorMessage(conn));
	l->qtable = xasprintf("%s.%s", l->schema, q);
	PQfreemem(q);
	ok = load_in_tx(l, r, e, sizeof(e));
	if (!ok) {
		PGresult *res;
		/* Drain whatever is pending, roll back, then record the failure. */
		while ((res = PQgetResult(conn)) != NULL)
			PQclear(res);
		PQclear(PQexec(conn, "ROLLBACK"));
		if (!l->seed)
			record_failure(conn, l->o->table, e);
		errf(err, errlen, "%s", e);
	}
	load_free(l);
	return ok;
}

bool loader_run(PGconn *conn, const struct load_opts *o, struct load_result *r, char *err,
                size_t errlen)
{
	struct load l = {.conn = conn, .o = o, .schema = "synced"};

	return run(&l, r, err, errlen);
}

bool loader_seed(PGconn *conn, const char *table, const char *file, struct load_result *r,
                 char *err, size_t errlen)
{
	struct load_opts o = {.table = table, .file = file};
	struct load l = {.conn = conn, .o = &o, .schema = "native", .seed = true};

	return run(&l, r, err, errlen);
}

void loader_print_result(FILE *out, const struct load_opts *o, const struct load_result *r)
{
	fprintf(out,
	        "sync load: synced.%s from %s (%s): %lld records, %lld inserted, %lld updated, "
	        "%lld unchanged, %lld deleted; %lld rows; as_of %s\n",
	        o->table, o->file, o->incremental ? "incremental" : "full snapshot", r->records,
	        r->inserted, r->updated, r->unchanged, r->deleted, r->rows, r->as_of);
}
