/*
 * repl: libpq's replication protocol, as pg_recvlogical drives it. The
 * connection is put in non-blocking mode once streaming, so a slow network
 * never stalls the worker's loop: reads use PQgetCopyData(async) after
 * PQconsumeInput, and a status update that cannot be sent at once stays in
 * libpq's buffer and is flushed on the next call.
 */
#include "autoconfig.h"

#include "sync/repl.h"

#include "db/db.h"
#include "sync/pgoutput.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

PGconn *repl_connect(const char *uri, char *err, size_t errlen)
{
	const char *keys[] = {"dbname", "replication", "application_name", NULL};
	const char *vals[] = {uri, "database", "odsctl sync run", NULL};
	PGconn *conn = PQconnectdbParams(keys, vals, 1);

	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		errf(err, errlen, "cannot open a replication connection to the source: %s",
		     conn ? PQerrorMessage(conn) : "out of memory");
		size_t n = strlen(err);
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

bool repl_create_slot(PGconn *conn, const char *slot, char *snapshot, size_t snaplen,
                      uint64_t *consistent_lsn, char *err, size_t errlen)
{
	char *qslot = PQescapeIdentifier(conn, slot, strlen(slot));
	char *sql = xasprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput EXPORT_SNAPSHOT", qslot);
	PGresult *res = PQexec(conn, sql);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	          PQnfields(res) >= 3;

	free(sql);
	PQfreemem(qslot);
	if (!ok)
		db_fail(conn, res, err, errlen);
	else if (!pgo_lsn_parse(PQgetvalue(res, 0, 1), consistent_lsn))
		ok = errf(err, errlen, "slot %s: bad consistent point %s", slot,
		          PQgetvalue(res, 0, 1));
	else
		snprintf(snapshot, snaplen, "%s", PQgetvalue(res, 0, 2));
	PQclear(res);
	return ok;
}

bool repl_start(PGconn *conn, const char *slot, const char *publication, uint64_t start, char *err,
                size_t errlen)
{
	char lsn[32];
	char *qslot = PQescapeIdentifier(conn, slot, strlen(slot));
	/* publication_names is a list of identifiers inside a string literal. */
	char *qpub = PQescapeIdentifier(conn, publication, strlen(publication));
	char *lit = qpub ? PQescapeLiteral(conn, qpub, strlen(qpub)) : NULL;
	char *sql;
	PGresult *res;
	bool ok;

	pgo_lsn_format(start, lsn, sizeof(lsn));
	sql = xasprintf("START_REPLICATION SLOT %s LOGICAL %s (proto_version '1', "
	                "publication_names %s)",
	                qslot, lsn, lit ? lit : "''");
	res = PQexec(conn, sql);
	ok = PQresultStatus(res) == PGRES_COPY_BOTH;
	if (!ok)
		db_fail(conn, res, err, errlen);
	PQclear(res);
	free(sql);
	PQfreemem(qslot);
	PQfreemem(qpub);
	PQfreemem(lit);
	if (ok && PQsetnonblocking(conn, 1) != 0)
		ok = errf(err, errlen, "cannot make the replication connection non-blocking");
	return ok;
}

int repl_read(PGconn *conn, uint8_t **buf, int *len, char *err, size_t errlen)
{
	char *data = NULL;
	int got = PQgetCopyData(conn, &data, 1);

	if (got == 0) {
		if (PQconsumeInput(conn) == 0) {
			errf(err, errlen, "source connection lost: %s", PQerrorMessage(conn));
			return -1;
		}
		got = PQgetCopyData(conn, &data, 1);
	}
	if (got > 0) {
		*buf = (uint8_t *)data;
		*len = got;
		return 1;
	}
	if (got == 0)
		return 0;
	if (got == -2) {
		errf(err, errlen, "source stream failed: %s", PQerrorMessage(conn));
	} else {
		PGresult *res = PQgetResult(conn);
		db_fail(conn, res, err, errlen);
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			errf(err, errlen, "the source ended the replication stream");
		PQclear(res);
	}
	return -1;
}

bool repl_send_status(PGconn *conn, uint64_t written, uint64_t flushed, bool reply_requested,
                      char *err, size_t errlen)
{
	uint8_t msg[PGO_STATUS_LEN];

	pgo_status_update(msg, written, flushed, flushed, repl_now(), reply_requested);
	if (PQputCopyData(conn, (const char *)msg, (int)sizeof(msg)) != 1 || PQflush(conn) < 0)
		return errf(err, errlen, "cannot send a status update to the source: %s",
		            PQerrorMessage(conn));
	return true;
}

int64_t repl_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return ((int64_t)tv.tv_sec - PGO_EPOCH_OFFSET) * 1000000 + tv.tv_usec;
}
