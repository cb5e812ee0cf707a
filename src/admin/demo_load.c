/*
 * demo_load: loads a directory written by `odsctl demo generate`. Synced
 * extracts go through loader_run exactly as an operator's loads would
 * (full snapshots, so a second run finds every row unchanged); native seed
 * rows go through loader_seed in dependency order (cases before their
 * notes). Files that are absent are skipped; a table with no file is not an
 * error, so a partial demo directory still loads.
 */
#include "autoconfig.h"

#include "admin/demo_load.h"

#include "db/db.h"
#include "sync/loader.h"

#include <stdlib.h>
#include <unistd.h>

/* Parents before children: the order foreign keys need. */
static const char *const native_order[] = {
        "support_cases",        "case_notes",         "fraud_cases",
        "fraud_dispositions",   "analyst_notes",      "store_actions",
        "dispatch_assignments", "work_order_updates", "approvals",
};

static bool load_synced(PGconn *conn, const char *dir, FILE *progress, char *err, size_t errlen)
{
	PGresult *res =
	        PQexec(conn, "SELECT table_name FROM ods.synced_tables ORDER BY table_name");
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok) {
		db_fail(conn, res, err, errlen);
		PQclear(res);
		return false;
	}
	for (int i = 0; ok && i < PQntuples(res); i++) {
		struct load_opts o = {.table = PQgetvalue(res, i, 0)};
		struct load_result r;
		char *path = xasprintf("%s/%s.csv", dir, o.table);
		o.file = path;
		if (access(path, F_OK) == 0) {
			ok = loader_run(conn, &o, &r, err, errlen);
			if (ok && progress)
				loader_print_result(progress, &o, &r);
		}
		free(path);
	}
	PQclear(res);
	return ok;
}

bool demo_load(PGconn *conn, const char *dir, FILE *progress, char *err, size_t errlen)
{
	if (access(dir, R_OK) != 0)
		return errf(err, errlen, "%s: no such directory (run odsctl demo generate first)",
		            dir);
	if (!load_synced(conn, dir, progress, err, errlen))
		return false;
	for (size_t i = 0; i < ODS_ARRAY_LEN(native_order); i++) {
		struct load_result r;
		char *path = xasprintf("%s/native/%s.csv", dir, native_order[i]);
		bool ok = true;
		if (access(path, F_OK) == 0) {
			ok = loader_seed(conn, native_order[i], path, &r, err, errlen);
			if (ok && progress)
				fprintf(progress,
				        "demo load: native.%s from %s: %lld seed rows, %lld new, "
				        "%lld already there\n",
				        native_order[i], path, r.records, r.inserted, r.unchanged);
		}
		free(path);
		if (!ok)
			return false;
	}
	return true;
}
