/*
 * cdc_stmt: the SQL of the set-based apply. A batch's column values travel
 * as one text[] parameter per column, unnested and cast to the synced
 * column's type in the statement, so one prepared statement per table serves
 * a transaction of one change or of fifty thousand.
 */
#include "autoconfig.h"

#include "sync/cdc_stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_columns(struct strbuf *sql, const struct cdc_table *t, const char *prefix,
                        bool pk_only, bool with_type)
{
	bool first = true;

	for (int c = 0; c < t->ncols; c++) {
		if (pk_only && !t->cols[c].pk)
			continue;
		strbuf_addf(sql, "%s%s%s%s%s", first ? "" : ", ", prefix, t->cols[c].qname,
		            with_type ? "::" : "", with_type ? t->cols[c].type : "");
		first = false;
	}
}

static void add_unnest(struct strbuf *sql, const struct cdc_table *t, bool pk_only)
{
	int k = 0;

	strbuf_adds(sql, " FROM unnest(");
	for (int c = 0; c < t->ncols; c++)
		if (!pk_only || t->cols[c].pk) {
			strbuf_addf(sql, "%s$%d::text[]", k ? ", " : "", k + 1);
			k++;
		}
	strbuf_adds(sql, ") AS u(");
	add_columns(sql, t, "", pk_only, false);
	strbuf_adds(sql, ")");
}

/* $1::type1, $2::type2, ...: one scalar parameter per (key) column. */
static void add_params(struct strbuf *sql, const struct cdc_table *t, bool pk_only)
{
	int k = 0;

	for (int c = 0; c < t->ncols; c++)
		if (!pk_only || t->cols[c].pk) {
			strbuf_addf(sql, "%s$%d::%s", k ? ", " : "", k + 1, t->cols[c].type);
			k++;
		}
}

/* "k1 = $first::type1 AND k2 = ...": the key columns, in column order. */
static void add_key_match(struct strbuf *sql, const struct cdc_table *t, int first)
{
	for (int c = 0, k = 0; c < t->ncols; c++)
		if (t->cols[c].pk) {
			strbuf_addf(sql, "%s%s = $%d::%s", k ? " AND " : "", t->cols[c].qname,
			            first + k, t->cols[c].type);
			k++;
		}
}

/* INSERT ... ON CONFLICT over arrays, answering how many keys were new; or
 * (one) of one row's scalars, answering a row "xmax = 0" when it was new. */
char *cdc_stmt_upsert_sql(const struct cdc_table *t, bool one)
{
	struct strbuf sql;
	bool business = false;

	strbuf_init(&sql);
	strbuf_addf(&sql, "%sINSERT INTO %s AS t (", one ? "" : "WITH w AS (", t->qtarget);
	add_columns(&sql, t, "", false, false);
	strbuf_adds(&sql, ", _source_committed_at, _source_position, _synced_at) SELECT ");
	if (one)
		add_params(&sql, t, false);
	else
		add_columns(&sql, t, "u.", false, true);
	strbuf_addf(&sql, ", $%d::timestamptz, $%d::bigint, now()", t->ncols + 1, t->ncols + 2);
	if (!one)
		add_unnest(&sql, t, false);
	strbuf_adds(&sql, " ON CONFLICT (");
	add_columns(&sql, t, "", true, false);
	strbuf_adds(&sql, ") DO UPDATE SET ");
	for (int c = 0; c < t->ncols; c++)
		if (!t->cols[c].pk) {
			strbuf_addf(&sql, "%s = EXCLUDED.%s, ", t->cols[c].qname, t->cols[c].qname);
			business = true;
		}
	strbuf_adds(&sql, "_source_committed_at = EXCLUDED._source_committed_at,"
	                  " _source_position = EXCLUDED._source_position,"
	                  " _synced_at = EXCLUDED._synced_at");
	if (business) {
		/* An update that changes nothing is no new version of the row. */
		strbuf_adds(&sql, " WHERE ROW(");
		for (int c = 0, k = 0; c < t->ncols; c++)
			if (!t->cols[c].pk)
				strbuf_addf(&sql, "%st.%s", k++ ? ", " : "", t->cols[c].qname);
		strbuf_adds(&sql, ") IS DISTINCT FROM ROW(");
		for (int c = 0, k = 0; c < t->ncols; c++)
			if (!t->cols[c].pk)
				strbuf_addf(&sql, "%sEXCLUDED.%s", k++ ? ", " : "",
				            t->cols[c].qname);
		strbuf_adds(&sql, ")");
	}
	strbuf_adds(&sql,
	            one ? " RETURNING xmax = 0"
	                : " RETURNING xmax = 0 AS ins) SELECT count(*) FILTER (WHERE ins) FROM w");
	return strbuf_detach(&sql);
}

char *cdc_stmt_delete_sql(const struct cdc_table *t, bool one)
{
	struct strbuf sql;
	bool first = true;

	strbuf_init(&sql);
	if (one) {
		strbuf_addf(&sql, "DELETE FROM %s WHERE ", t->qtarget);
		add_key_match(&sql, t, 1);
		return strbuf_detach(&sql);
	}
	strbuf_addf(&sql, "DELETE FROM %s AS t USING (SELECT ", t->qtarget);
	add_columns(&sql, t, "u.", true, true);
	add_unnest(&sql, t, true);
	strbuf_adds(&sql, ") AS d WHERE ");
	for (int c = 0; c < t->ncols; c++)
		if (t->cols[c].pk) {
			strbuf_addf(&sql, "%st.%s = d.%s", first ? "" : " AND ", t->cols[c].qname,
			            t->cols[c].qname);
			first = false;
		}
	return strbuf_detach(&sql);
}

void cdc_stmt_name(char *out, size_t n, char kind, int table, int generation)
{
	snprintf(out, n, "cdc_%c_%d_%d", kind, table, generation);
}

/* Sends the prepared statement kind ('u' or 'd') for the rows of op, or only one. */
bool cdc_stmt_send_arrays(PGconn *conn, const char *name, const struct cdc_batch *b, enum cdc_op op,
                          int only, const char *ts, const char *pos, bool pipelined)
{
	const struct cdc_table *t = cdc_batch_table(b);
	bool pk_only = op == CDC_DELETE;
	int n = 0;
	struct strbuf *arr = xcalloc((size_t)t->ncols + 2, sizeof(*arr));
	const char **params = xcalloc((size_t)t->ncols + 3, sizeof(char *));
	int sent;

	for (int c = 0; c < t->ncols; c++) {
		if (pk_only && !t->cols[c].pk)
			continue;
		strbuf_init(&arr[n]);
		cdc_batch_array(b, op, c, only, &arr[n]);
		params[n] = arr[n].data;
		n++;
	}
	if (!pk_only) {
		params[n] = ts;
		params[n + 1] = pos;
	}
	if (pipelined)
		sent = PQsendQueryPrepared(conn, name, pk_only ? n : n + 2, params, NULL, NULL, 0);
	else {
		PGresult *res =
		        PQexecPrepared(conn, name, pk_only ? n : n + 2, params, NULL, NULL, 0);
		sent = PQresultStatus(res) == PGRES_TUPLES_OK ||
		       PQresultStatus(res) == PGRES_COMMAND_OK;
		PQclear(res);
	}
	for (int i = 0; i < n; i++)
		strbuf_free(&arr[i]);
	free(arr);
	free(params);
	return sent == 1;
}

/* Sends the prepared one-row statement name for the i-th row of op. */
bool cdc_stmt_send_row(PGconn *conn, const char *name, const struct cdc_batch *b, enum cdc_op op,
                       int i, const char *ts, const char *pos)
{
	const struct cdc_table *t = cdc_batch_table(b);
	char **vals = xcalloc((size_t)t->ncols + 3, sizeof(char *));
	int n = 0, sent;

	for (int c = 0; c < t->ncols; c++) {
		const char *v = NULL;
		size_t len = 0;
		if (op == CDC_DELETE && !t->cols[c].pk)
			continue;
		if (cdc_batch_value(b, op, i, c, &v, &len) && v)
			vals[n] = xstrndup(v, len);
		n++;
	}
	if (op != CDC_DELETE) {
		vals[n++] = xstrdup(ts);
		vals[n++] = xstrdup(pos);
	}
	sent = PQsendQueryPrepared(conn, name, n, (const char *const *)vals, NULL, NULL, 0);
	for (int k = 0; k < n; k++)
		free(vals[k]);
	free(vals);
	return sent == 1;
}

/* UPDATE of the columns a partial row carries (unchanged TOAST kept). */
bool cdc_stmt_send_partial(PGconn *conn, const struct cdc_batch *b, int i, const char *ts,
                           const char *pos)
{
	const struct cdc_table *t = cdc_batch_table(b);
	struct strbuf sql;
	char **vals = xcalloc((size_t)t->ncols + 3, sizeof(char *));
	int n = 0, sent;

	strbuf_init(&sql);
	strbuf_addf(&sql, "UPDATE %s SET ", t->qtarget);
	for (int c = 0; c < t->ncols; c++) {
		const char *v;
		size_t len;
		if (t->cols[c].pk || !cdc_batch_value(b, CDC_PARTIAL, i, c, &v, &len))
			continue;
		vals[n] = v ? xstrndup(v, len) : NULL;
		strbuf_addf(&sql, "%s = $%d::%s, ", t->cols[c].qname, ++n, t->cols[c].type);
	}
	strbuf_addf(&sql,
	            "_source_committed_at = $%d, _source_position = $%d, _synced_at = now()"
	            " WHERE ",
	            n + 1, n + 2);
	vals[n] = xstrdup(ts);
	vals[n + 1] = xstrdup(pos);
	n += 2;
	add_key_match(&sql, t, n + 1);
	for (int c = 0; c < t->ncols; c++) {
		const char *v;
		size_t len;
		if (!t->cols[c].pk)
			continue;
		vals[n++] = cdc_batch_value(b, CDC_PARTIAL, i, c, &v, &len) && v ? xstrndup(v, len)
		                                                                 : NULL;
	}
	sent = PQsendQueryParams(conn, sql.data, n, NULL, (const char *const *)vals, NULL, NULL, 0);
	for (int k = 0; k < n; k++)
		free(vals[k]);
	free(vals);
	strbuf_free(&sql);
	return sent == 1;
}
