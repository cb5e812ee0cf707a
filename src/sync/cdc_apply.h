/*
 * cdc_apply: the ODS side of the CDC worker. One connection in libpq
 * pipeline mode carries many source transactions back to back without
 * waiting for each one's answer; each is still ONE ODS transaction (BEGIN,
 * its statements, ods.cdc_advance(prev, next), COMMIT), so the stored
 * position and the rows commit together, and a failure anywhere makes every
 * later transaction fail its chain step instead of applying over a gap.
 * Up to 64 committed transactions share one Sync (the point at which the ODS
 * flushes its answers): under a backlog that saves a send and a wake-up per
 * transaction; when caught up, every transaction is synced as it is sent.
 *
 * Each table's changes go as set-based statements over text[] arrays
 * (prepared once per table and column layout), so a transaction of 100,000
 * changes is a handful of statements, and one of 1 change is one.
 *
 * Commits are asynchronous (synchronous_commit = off, as PostgreSQL's own
 * subscriber does); a position counts as durable, and may be confirmed to
 * the source, only once the ODS's WAL flush has passed the commit, which a
 * probe of pg_current_wal_insert_lsn/flush_lsn tells.
 */
#ifndef ODS_CDC_APPLY_H
#define ODS_CDC_APPLY_H

#include "core/util.h"
#include "sync/cdc_batch.h"
#include "sync/cdc_map.h"

#include <stdbool.h>
#include <stdint.h>

struct cdc_apply;

/* What the source is known to be at, for the freshness write. */
struct cdc_progress {
	const char *state;   /* ods.cdc_sources.state */
	int64_t as_of;       /* PostgreSQL-epoch us; 0 = unknown */
	bool caught_up;      /* as_of is a caught-up time */
	uint64_t source_wal; /* 0 = unknown */
	long long lag_bytes; /* -1 = unknown */
	long long retained;  /* -1 = unknown */
};

/* Connects, enters pipeline mode; applied = the stored applied_lsn (the chain's start). */
struct cdc_apply *cdc_apply_open(const char *uri, const char *source, struct cdc_map *map,
                                 uint64_t applied, char *err, size_t errlen) ODS_MUST_CHECK;
void cdc_apply_close(struct cdc_apply *a);
int cdc_apply_socket(const struct cdc_apply *a);

/* Queues a batch's statements in the open transaction; takes the batch. */
bool cdc_apply_batch(struct cdc_apply *a, struct cdc_batch *b, uint64_t commit_lsn,
                     int64_t commit_time, char *err, size_t errlen) ODS_MUST_CHECK;
/* Queues the emptying of a table (TRUNCATE on the source). */
bool cdc_apply_truncate(struct cdc_apply *a, const struct cdc_table *t, char *err,
                        size_t errlen) ODS_MUST_CHECK;
/* Ends the open transaction: the chain step to end_lsn, then a Sync. */
bool cdc_apply_commit(struct cdc_apply *a, uint64_t end_lsn, int64_t commit_time, char *err,
                      size_t errlen) ODS_MUST_CHECK;
/* Queues a durability probe (own Sync); cheap, call every few hundred ms. */
bool cdc_apply_probe(struct cdc_apply *a, char *err, size_t errlen) ODS_MUST_CHECK;
/* Queues the freshness write: ods.cdc_sources and the tables' as_of/rows (own Sync). */
bool cdc_apply_freshness(struct cdc_apply *a, const struct cdc_progress *p, char *err,
                         size_t errlen) ODS_MUST_CHECK;

/*
 * Sends what is buffered and reads the answers that have arrived, without
 * blocking (wait = false) or until every queued statement is answered
 * (wait = true). False when a statement failed or the connection broke: err
 * then names it, with the table, key and LSN of the change when it can.
 */
bool cdc_apply_pump(struct cdc_apply *a, bool wait, char *err, size_t errlen) ODS_MUST_CHECK;
/* After a failed pump: whether retrying after a reconnect may help (connection
 * lost, deadlock, shutdown...) rather than needing an operator. */
bool cdc_apply_transient(const struct cdc_apply *a);

/* Source end LSN of the last transaction the ODS committed / of the last durable one. */
uint64_t cdc_apply_committed(const struct cdc_apply *a);
uint64_t cdc_apply_durable(const struct cdc_apply *a);
/* Source commit time of the last committed transaction (PostgreSQL-epoch us, 0: none). */
int64_t cdc_apply_committed_time(const struct cdc_apply *a);
/* Whether a source transaction's ODS transaction is open (BEGIN sent, no COMMIT yet). */
bool cdc_apply_in_txn(const struct cdc_apply *a);
/* Transactions queued but not yet answered. */
int cdc_apply_in_flight(const struct cdc_apply *a);

/* "YYYY-MM-DD HH:MM:SS.uuuuuu+00" for a PostgreSQL-epoch time. */
void cdc_time_text(int64_t t, char *out, size_t outlen);

#endif
