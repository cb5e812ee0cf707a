/*
 * cdc_copy: see cdc_copy.h. The copy reads each source table with
 * COPY (SELECT <the synced table's columns>) TO STDOUT (FORMAT csv, HEADER)
 * inside a REPEATABLE READ transaction that imported the slot's snapshot,
 * and hands the stream to loader_run as if it were an extract file, with
 * as_of = the source's clock just before the slot was created (every commit
 * before it is in the snapshot) and _source_position = the consistent point.
 */
#include "autoconfig.h"

#include "sync/cdc_copy.h"

#include "db/db.h"
#include "sync/loader.h"
#include "sync/pgoutput.h"
#include "sync/repl.h"

#include <stdlib.h>
#include <string.h>

bool cdc_state_read(PGconn *ods, const char *name, const struct cdc_map *m,
                    struct cdc_source_state *st, char *err, size_t errlen)
{
	char *sig = cdc_map_signature(m);
	const char *params[] = {name, sig};
	PGresult *res = PQexecParams(ods,
	                             "SELECT slot_name, publication, state,"
	                             "       tables = $2::text[] AND state <> 'copying',"
	                             "       coalesce(applied_lsn, '0/0')"
	                             "  FROM ods.cdc_sources WHERE name = $1",
	                             2, NULL, params, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

	free(sig);
	if (!ok)
		db_fail(ods, res, err, errlen);
	else {
		snprintf(st->slot, sizeof(st->slot), "%s", PQgetvalue(res, 0, 0));
		snprintf(st->publication, sizeof(st->publication), "%s", PQgetvalue(res, 0, 1));
		snprintf(st->state, sizeof(st->state), "%s", PQgetvalue(res, 0, 2));
		st->copied = PQgetvalue(res, 0, 3)[0] == 't';
		ok = pgo_lsn_parse(PQgetvalue(res, 0, 4), &st->applied) ||
		     errf(err, errlen, "bad applied_lsn %s", PQgetvalue(res, 0, 4));
	}
	PQclear(res);
	return ok;
}

void cdc_state_write(PGconn *ods, const char *name, const char *state, const char *why)
{
	const char *params[] = {name, state, why};

	PQclear(PQexecParams(ods,
	                     "UPDATE ods.cdc_sources SET state = $2, updated_at = now(),"
	                     "  last_error = coalesce($3, CASE WHEN $2 IN ('streaming', 'stopped')"
	                     "               THEN NULL ELSE last_error END)"
	                     " WHERE name = $1",
	                     3, NULL, params, NULL, NULL, 0));
}

/* The publication holds exactly the mapped tables. */
static bool publish(PGconn *src, const struct cdc_map *m, const char *pub, char *err, size_t errlen)
{
	const char *params[] = {pub};
	PGresult *res = PQexecParams(src, "SELECT 1 FROM pg_publication WHERE pubname = $1", 1,
	                             NULL, params, NULL, NULL, 0);
	bool exists = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
	char *qpub = PQescapeIdentifier(src, pub, strlen(pub));
	struct strbuf sql;
	bool ok;

	PQclear(res);
	strbuf_init(&sql);
	strbuf_addf(&sql,
	            exists ? "ALTER PUBLICATION %s SET TABLE " : "CREATE PUBLICATION %s FOR TABLE ",
	            qpub);
	for (int i = 0; i < m->n; i++) {
		char *s = PQescapeIdentifier(src, m->t[i].src_schema, strlen(m->t[i].src_schema));
		char *t = PQescapeIdentifier(src, m->t[i].src_table, strlen(m->t[i].src_table));
		strbuf_addf(&sql, "%s%s.%s", i ? ", " : "", s, t);
		PQfreemem(s);
		PQfreemem(t);
	}
	ok = db_exec(src, sql.data, err, errlen);
	strbuf_free(&sql);
	PQfreemem(qpub);
	return ok;
}

static bool drop_slot(PGconn *src, const char *slot, char *err, size_t errlen)
{
	const char *params[] = {slot};

	return db_exec_params(src,
	                      "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
	                      " WHERE slot_name = $1",
	                      1, params, err, errlen);
}

static bool copy_table(PGconn *ods, PGconn *src, const struct cdc_table *t, const char *as_of,
                       const char *position, char *err, size_t errlen)
{
	struct strbuf sql;
	char *label = xasprintf("source %s.%s", t->src_schema, t->src_table);
	char *s = PQescapeIdentifier(src, t->src_schema, strlen(t->src_schema));
	char *r = PQescapeIdentifier(src, t->src_table, strlen(t->src_table));
	struct load_opts o = {.table = t->target,
	                      .file = label,
	                      .as_of = as_of,
	                      .position = position,
	                      .allow_empty = true};
	struct load_result lr;
	PGresult *res;
	bool ok;

	strbuf_init(&sql);
	strbuf_adds(&sql, "COPY (SELECT ");
	for (int c = 0; c < t->ncols; c++)
		strbuf_addf(&sql, "%s%s", c ? ", " : "", t->cols[c].qname);
	strbuf_addf(&sql, " FROM ONLY %s.%s) TO STDOUT (FORMAT csv, HEADER)", s, r);
	res = PQexec(src, sql.data);
	ok = PQresultStatus(res) == PGRES_COPY_OUT;
	if (!ok)
		db_fail(src, res, err, errlen);
	PQclear(res);
	if (ok) {
		o.input = source_open_copy(src, label);
		ok = loader_run(ods, &o, &lr, err, errlen);
		source_close(o.input);
	}
	if (ok)
		printf("sync run: copied %s into synced.%s: %lld rows (%lld new, %lld changed, "
		       "%lld deleted)\n",
		       label, t->target, lr.records, lr.inserted, lr.updated, lr.deleted);
	fflush(stdout);
	strbuf_free(&sql);
	PQfreemem(s);
	PQfreemem(r);
	free(label);
	return ok;
}

bool cdc_copy(PGconn *ods, PGconn *src, const char *source_uri, const char *name,
              const struct cdc_map *m, struct cdc_source_state *st, PGconn **repl, char *err,
              size_t errlen)
{
	char snapshot[128], as_of[64], position[24], lsn[24];
	PGresult *res;
	char *sig;
	bool ok;

	*repl = NULL;
	cdc_state_write(ods, name, "copying", NULL);
	if (!publish(src, m, st->publication, err, errlen) ||
	    !drop_slot(src, st->slot, err, errlen))
		return false;
	res = PQexec(src, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC',"
	                  " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (ok)
		snprintf(as_of, sizeof(as_of), "%s", PQgetvalue(res, 0, 0));
	else
		db_fail(src, res, err, errlen);
	PQclear(res);
	if (!ok || !(*repl = repl_connect(source_uri, err, errlen)) ||
	    !repl_create_slot(*repl, st->slot, snapshot, sizeof(snapshot), &st->applied, err,
	                      errlen))
		return false;
	snprintf(position, sizeof(position), "%llu", (unsigned long long)st->applied);
	/* A utility command takes no parameters: the server's snapshot name, escaped. */
	char *lit = PQescapeLiteral(src, snapshot, strlen(snapshot));
	char *set = xasprintf("SET TRANSACTION SNAPSHOT %s", lit ? lit : "''");
	ok = db_exec(src, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen) &&
	     db_exec(src, set, err, errlen);
	free(set);
	PQfreemem(lit);
	for (int i = 0; ok && i < m->n; i++)
		ok = copy_table(ods, src, &m->t[i], as_of, position, err, errlen);
	if (ok)
		ok = db_exec(src, "COMMIT", err, errlen);
	if (!ok)
		return false;
	sig = cdc_map_signature(m);
	pgo_lsn_format(st->applied, lsn, sizeof(lsn));
	const char *params[] = {name, lsn, as_of, sig};
	ok = db_exec_params(ods,
	                    "UPDATE ods.cdc_sources SET state = 'streaming', applied_lsn = $2,"
	                    "  applied_at = $3, tables = $4::text[], copied_at = now(),"
	                    "  last_error = NULL, updated_at = now() WHERE name = $1",
	                    4, params, err, errlen);
	free(sig);
	st->copied = ok;
	return ok;
}
