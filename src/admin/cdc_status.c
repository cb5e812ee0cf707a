/*
 * cdc_status: what the workers last recorded; lag in seconds is computed
 * with the database clock: now - the newest source time known applied
 * (a commit, or a caught-up report).
 */
#include "autoconfig.h"

#include "admin/cdc_status.h"

#include "db/db.h"

static const char status_sql[] =
        "SELECT name, slot_name, state, coalesce(applied_lsn::text, '-'),"
        "       coalesce(lag_bytes::text, '-'),"
        "       coalesce(round(extract(epoch FROM now() - greatest(applied_at, caught_up_at)),"
        "                3)::text, '-'),"
        "       coalesce(pg_size_pretty(retained_wal_bytes), '-'),"
        "       coalesce(retained_wal_bytes > max_retained_wal_bytes, false),"
        "       pg_size_pretty(max_retained_wal_bytes), coalesce(last_error, ''),"
        "       (SELECT string_agg(table_name, ',' ORDER BY table_name) FROM ods.synced_tables"
        "         WHERE cdc_source = name)"
        "  FROM ods.cdc_sources ORDER BY name";

bool cdc_status_report(PGconn *conn, FILE *out, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, status_sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_fail(conn, res, err, errlen);
		PQclear(res);
		return false;
	}
	fprintf(out, "%-16s %-20s %-12s %-14s %12s %10s %10s %s\n", "source", "slot", "state",
	        "applied_lsn", "lag_bytes", "lag_s", "retained", "tables");
	for (int i = 0; i < PQntuples(res); i++) {
		fprintf(out, "%-16s %-20s %-12s %-14s %12s %10s %10s %s\n", PQgetvalue(res, i, 0),
		        PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		        PQgetvalue(res, i, 4), PQgetvalue(res, i, 5), PQgetvalue(res, i, 6),
		        PQgetvalue(res, i, 10));
		if (PQgetvalue(res, i, 7)[0] == 't')
			fprintf(out,
			        "  WARNING: slot %s retains %s of WAL, more than %s "
			        "(ods.cdc_sources.max_retained_wal_bytes): is the worker "
			        "running?\n",
			        PQgetvalue(res, i, 1), PQgetvalue(res, i, 6),
			        PQgetvalue(res, i, 8));
		if (*PQgetvalue(res, i, 9))
			fprintf(out, "  last error: %s\n", PQgetvalue(res, i, 9));
	}
	if (PQntuples(res) == 0)
		fprintf(out, "(no CDC sources: start one with odsctl sync run)\n");
	PQclear(res);
	return true;
}
