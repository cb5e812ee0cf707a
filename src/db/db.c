/*
 * db: connection and command helpers. Every failure path ends in db_fail so
 * that errors read the same everywhere: "message (detail) hint".
 */
#include "autoconfig.h"

#include "db/db.h"

#include "core/log.h"

#include <string.h>

/* Server NOTICEs (e.g. "schema already exists, skipping" from migrations) are
 * chatter for operators: debug level, not stderr noise. */
static void on_notice(void *arg, const char *message)
{
	size_t n = strlen(message);

	(void)arg;
	while (n > 0 && message[n - 1] == '\n')
		n--;
	log_debug("postgres: %.*s", (int)n, message);
}

PGconn *db_connect(const char *uri, const char *app_name, char *err, size_t errlen)
{
	const char *keys[] = {"dbname", "application_name", NULL};
	const char *vals[] = {uri, app_name, NULL};
	PGconn *conn = PQconnectdbParams(keys, vals, 1);

	if (!conn) {
		errf(err, errlen, "cannot allocate a database connection");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		errf(err, errlen, "cannot connect to the database: %s", PQerrorMessage(conn));
		size_t n = strlen(err);
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, on_notice, NULL);
	return conn;
}

bool db_fail(PGconn *conn, const PGresult *res, char *err, size_t errlen)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;

	if (!msg)
		msg = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
		                                        : PQerrorMessage(conn);
	errf(err, errlen, "%s%s%s%s%s%s", msg, detail ? " (" : "", detail ? detail : "",
	     detail ? ")" : "", hint ? "; hint: " : "", hint ? hint : "");
	if (err) {
		size_t n = strlen(err);
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
	}
	return false;
}

const char *db_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

bool db_exec_params(PGconn *conn, const char *sql, int nparams, const char *const *params,
                    char *err, size_t errlen)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		db_fail(conn, res, err, errlen);
	PQclear(res);
	return ok;
}

bool db_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;

	if (!ok)
		db_fail(conn, res, err, errlen);
	PQclear(res);
	return ok;
}
