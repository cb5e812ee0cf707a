/*
 * demo_source: schema from api/demo/source_schema.sql, then for each empty
 * table: the extract streamed by COPY into a temporary all-text table named
 * by the file's header, and one INSERT ... SELECT casting the columns the
 * source table has (so the freshness columns of the extract fall away), in
 * one transaction per table.
 */
#include "autoconfig.h"

#include "admin/demo_source.h"

#include "db/db.h"
#include "sync/csv.h"
#include "sync/source.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	const char *table, *extract;
} tables[] = {
        {"customers", "customer_current"},     {"orders", "order_current"},
        {"payments", "payment_current"},       {"shipments", "shipment_status_latest"},
        {"work_orders", "work_order_current"}, {"order_status_history", "order_status_history_30d"},
};

/* The extract's header as "c1 text, c2 text, ..." and the source table's
 * columns among them as "c::type, ..." / "c, ...". */
static bool columns(PGconn *conn, const char *table, const char *path, struct strbuf *stage,
                    struct strbuf *cols, struct strbuf *casts, char *err, size_t errlen)
{
	struct source *src = source_open(path, err, errlen);
	struct csv_reader *csv;
	struct record hdr;
	bool ok;

	if (!src)
		return false;
	csv = csv_open(src);
	ok = csv_next(csv, &hdr, err, errlen) == 1;
	for (int f = 0; ok && f < hdr.nfields; f++) {
		char *q = PQescapeIdentifier(conn, hdr.field[f], hdr.len[f]);
		const char *params[] = {table, hdr.field[f]};
		PGresult *res =
		        PQexecParams(conn,
		                     "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
		                     " WHERE attrelid = ('public.' || quote_ident($1))::regclass"
		                     "   AND attname = $2 AND attnum > 0 AND NOT attisdropped",
		                     2, NULL, params, NULL, NULL, 0);
		strbuf_addf(stage, "%s%s text", f ? ", " : "", q);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			ok = db_fail(conn, res, err, errlen);
		else if (PQntuples(res) == 1) {
			strbuf_addf(cols, "%s%s", cols->len ? ", " : "", q);
			strbuf_addf(casts, "%s%s::%s", casts->len ? ", " : "", q,
			            PQgetvalue(res, 0, 0));
		}
		PQclear(res);
		PQfreemem(q);
	}
	if (ok && cols->len == 0)
		ok = errf(err, errlen, "%s: no column of public.%s", path, table);
	csv_close(csv);
	source_close(src);
	return ok;
}

static bool stream_file(PGconn *conn, const char *path, char *err, size_t errlen)
{
	char buf[64 * 1024];
	struct source *src = source_open(path, err, errlen);
	ssize_t n = 0;
	PGresult *res;
	bool ok;

	if (!src)
		return false;
	while ((n = source_read(src, buf, sizeof(buf), err, errlen)) > 0)
		if (PQputCopyData(conn, buf, (int)n) != 1)
			break;
	source_close(src);
	PQputCopyEnd(conn, n < 0 ? "read error" : NULL);
	res = PQgetResult(conn);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok && n >= 0)
		db_fail(conn, res, err, errlen);
	PQclear(res);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	return ok;
}

static bool seed_table(PGconn *conn, const char *table, const char *path, long long *rows,
                       char *err, size_t errlen)
{
	struct strbuf stage, cols, casts, sql;
	PGresult *res;
	bool ok;

	strbuf_init(&stage);
	strbuf_init(&cols);
	strbuf_init(&casts);
	strbuf_init(&sql);
	ok = db_exec(conn, "BEGIN", err, errlen) &&
	     columns(conn, table, path, &stage, &cols, &casts, err, errlen);
	if (ok) {
		char *q = PQescapeIdentifier(conn, table, strlen(table));
		strbuf_addf(&sql, "SELECT EXISTS (SELECT 1 FROM public.%s)", q);
		res = PQexec(conn, sql.data);
		bool empty =
		        PQresultStatus(res) == PGRES_TUPLES_OK && PQgetvalue(res, 0, 0)[0] == 'f';
		PQclear(res);
		*rows = -1; /* not empty: left alone */
		strbuf_reset(&sql);
		strbuf_addf(&sql,
		            "CREATE TEMP TABLE _seed (%s) ON COMMIT DROP;"
		            " COPY _seed FROM STDIN (FORMAT csv, HEADER true)",
		            stage.data);
		if (empty) {
			res = PQexec(conn, sql.data);
			ok = PQresultStatus(res) == PGRES_COPY_IN ||
			     db_fail(conn, res, err, errlen);
			PQclear(res);
			ok = ok && stream_file(conn, path, err, errlen);
			strbuf_reset(&sql);
			strbuf_addf(&sql, "INSERT INTO public.%s (%s) SELECT %s FROM _seed", q,
			            cols.data, casts.data);
			res = ok ? PQexec(conn, sql.data) : NULL;
			if (ok && PQresultStatus(res) != PGRES_COMMAND_OK)
				ok = db_fail(conn, res, err, errlen);
			else if (ok)
				*rows = strtoll(PQcmdTuples(res), NULL, 10);
			PQclear(res);
		}
		PQfreemem(q);
	}
	ok = ok && db_exec(conn, "COMMIT", err, errlen);
	if (!ok)
		PQclear(PQexec(conn, "ROLLBACK"));
	strbuf_free(&stage);
	strbuf_free(&cols);
	strbuf_free(&casts);
	strbuf_free(&sql);
	return ok;
}

bool demo_source(PGconn *conn, const char *api_dir, const char *from_dir, FILE *out, char *err,
                 size_t errlen)
{
	char *path = xasprintf("%s/demo/source_schema.sql", api_dir);
	char *sql = util_read_file(path, NULL, err, errlen);
	bool ok = sql && db_exec(conn, sql, err, errlen);

	free(sql);
	free(path);
	for (size_t i = 0; ok && i < ODS_ARRAY_LEN(tables); i++) {
		long long rows;
		char e[ODS_ERRLEN];
		path = xasprintf("%s/%s.csv", from_dir, tables[i].extract);
		ok = seed_table(conn, tables[i].table, path, &rows, e, sizeof(e));
		if (!ok)
			errf(err, errlen, "public.%s from %s: %s", tables[i].table, path, e);
		else if (rows < 0)
			fprintf(out, "demo source: public.%s has rows already, left as it is\n",
			        tables[i].table);
		else
			fprintf(out, "demo source: public.%s: %lld rows from %s\n", tables[i].table,
			        rows, path);
		free(path);
	}
	return ok;
}
