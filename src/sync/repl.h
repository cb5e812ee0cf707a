/*
 * repl: the client side of a logical replication connection to a CDC source
 * (libpq with replication=database): slot creation with an exported
 * snapshot, START_REPLICATION into CopyBoth, reading CopyData frames without
 * blocking, and sending standby status updates. What the frames mean is
 * pgoutput's business (sync/pgoutput.h); what to do with them is cdc's.
 */
#ifndef ODS_REPL_H
#define ODS_REPL_H

#include "core/util.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/* Opens a replication connection (replication=database) to uri. */
PGconn *repl_connect(const char *uri, char *err, size_t errlen) ODS_MUST_CHECK;

/* CREATE_REPLICATION_SLOT slot LOGICAL pgoutput, exporting a snapshot: the
 * snapshot's name (valid until the next command on conn) and the slot's
 * consistent point, where streaming starts. */
bool repl_create_slot(PGconn *conn, const char *slot, char *snapshot, size_t snaplen,
                      uint64_t *consistent_lsn, char *err, size_t errlen) ODS_MUST_CHECK;

/* START_REPLICATION SLOT slot LOGICAL start (proto_version 1, publication). */
bool repl_start(PGconn *conn, const char *slot, const char *publication, uint64_t start, char *err,
                size_t errlen) ODS_MUST_CHECK;

/*
 * The next CopyData payload without blocking: 1 with *buf (PQfreemem it) and
 * *len, 0 when nothing is there yet (wait for the socket), -1 when the stream
 * ended or failed (err filled).
 */
int repl_read(PGconn *conn, uint8_t **buf, int *len, char *err, size_t errlen);

/* Sends a standby status update and flushes it. */
bool repl_send_status(PGconn *conn, uint64_t written, uint64_t flushed, bool reply_requested,
                      char *err, size_t errlen) ODS_MUST_CHECK;

/* Microseconds since PostgreSQL's epoch (2000-01-01 UTC), from the wall clock. */
int64_t repl_now(void);

#endif
