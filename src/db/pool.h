/*
 * pool: db_pool_size connections to PostgreSQL as ods_authenticator, shared
 * by the request threads.
 *
 * A request takes one connection with pool_acquire and gives it back with
 * pool_release. Waiting is bounded: past db_pool_timeout_ms pool_acquire
 * returns NULL and the caller answers 503 + Retry-After. Connections are
 * opened lazily and replaced automatically: a connection released as broken
 * (or found bad at checkout) is closed and reopened at its next use, so an
 * outage heals by itself once PostgreSQL is back.
 *
 * Each connection is kept in libpq pipeline mode and remembers which route
 * statements it has prepared, for which role and for the catalog generation
 * it prepared them against (see db/call.h).
 */
#ifndef ODS_POOL_H
#define ODS_POOL_H

#include "core/util.h"

#include <libpq-fe.h>
#include <stdbool.h>

struct pool;

/*
 * Route statements are prepared per app role, "r<index>_<slot>" (db/call.c):
 * PostgreSQL checks EXECUTE on an inlined SQL function only when it plans,
 * so a cached generic plan built under one role must never run under another.
 */
#define POOL_ROLE_SLOTS 16

struct pool_conn {
	PGconn *conn;
	bool setup_prepared;          /* "ods_setup" exists on this connection */
	unsigned generation;          /* route catalog generation of the statements prepared */
	char *roles[POOL_ROLE_SLOTS]; /* the app role of each slot; NULL: unused */
	bool *prepared;               /* prepared[index * POOL_ROLE_SLOTS + slot] exists */
	int nprepared;                /* entries in prepared */
};

struct pool_stats {
	int size;
	int in_use;
	int waiting;
	unsigned long long timeouts;     /* pool_acquire gave up */
	unsigned long long connects;     /* connections opened, first ones included */
	unsigned long long connect_fail; /* failed attempts to open one */
};

struct pool *pool_new(const char *uri, int size);
void pool_free(struct pool *p);

/*
 * A ready connection (opened and in pipeline mode), or NULL: the pool stayed
 * full for timeout_ms (*timed_out = true), or PostgreSQL could not be reached
 * (*timed_out = false, err says why).
 */
struct pool_conn *pool_acquire(struct pool *p, int timeout_ms, bool *timed_out, char *err,
                               size_t errlen);
/* broken: the connection failed (lost, protocol state unknown): replace it. */
void pool_release(struct pool *p, struct pool_conn *pc, bool broken);
void pool_stats(struct pool *p, struct pool_stats *out);

/*
 * Asks PostgreSQL to cancel the statement running on every connection in
 * use (shutdown, once the grace period is over): the requests then end with
 * an error instead of holding odsd up. Returns how many requests were sent.
 */
int pool_cancel_all(struct pool *p);

#endif
