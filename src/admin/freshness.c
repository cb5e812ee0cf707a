/*
 * freshness: prints one aligned line per synced table. Lag and staleness are
 * computed in SQL with the database clock, the same clock odsd uses.
 */
#include "autoconfig.h"

#include "admin/freshness.h"
#include "db/db.h"

static const char freshness_sql[] =
        "SELECT table_name, tier, mode, extract(epoch FROM freshness_sla)::bigint,"
        "       coalesce(to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'),"
        "       coalesce(floor(extract(epoch FROM now() - as_of))::bigint::text, '-'),"
        "       CASE WHEN as_of IS NULL OR now() - as_of > freshness_sla THEN 'stale' ELSE 'fresh' "
        "END,"
        "       status, rows, coalesce(last_error, '')"
        "  FROM ods.synced_tables ORDER BY table_name";

bool freshness_report(PGconn *conn, FILE *out, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, freshness_sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_fail(conn, res, err, errlen);
		PQclear(res);
		return false;
	}
	fprintf(out, "%-26s %-15s %-10s %7s %-20s %8s %-5s %-12s %9s %s\n", "table", "tier", "mode",
	        "sla_s", "as_of", "lag_s", "state", "status", "rows", "last_error");
	for (int i = 0; i < PQntuples(res); i++)
		fprintf(out, "%-26s %-15s %-10s %7s %-20s %8s %-5s %-12s %9s %s\n",
		        PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
		        PQgetvalue(res, i, 3), PQgetvalue(res, i, 4), PQgetvalue(res, i, 5),
		        PQgetvalue(res, i, 6), PQgetvalue(res, i, 7), PQgetvalue(res, i, 8),
		        PQgetvalue(res, i, 9));
	PQclear(res);
	return true;
}
