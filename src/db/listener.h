/*
 * listener: one thread with a dedicated connection that LISTENs on
 * ods_freshness and ods_routes and calls back on each notification (any
 * payload, empty included, refreshes the whole cache), on a periodic tick
 * (refresh_ms) and after every (re)connect (notifications may have been
 * missed while it was down). It reconnects by itself with backoff (250 ms
 * doubling to 2 s), so an outage heals without restarting odsd.
 */
#ifndef ODS_LISTENER_H
#define ODS_LISTENER_H

#include <libpq-fe.h>
#include <stdbool.h>

enum listener_event {
	LISTENER_CONNECTED, /* (re)connected: reload everything */
	LISTENER_FRESHNESS, /* NOTIFY ods_freshness */
	LISTENER_ROUTES,    /* NOTIFY ods_routes */
	LISTENER_TICK,      /* periodic refresh */
};

/* Called on the listener thread with its connection (use it for the reload queries). */
typedef void (*listener_fn)(enum listener_event ev, PGconn *conn, void *arg);

struct listener;

struct listener *listener_start(const char *uri, int refresh_ms, listener_fn fn, void *arg);
/* Whether the listener's connection is up right now (for /readyz). */
bool listener_connected(struct listener *l);
void listener_set_refresh_ms(struct listener *l, int refresh_ms);
/* Stops the thread (within about one poll interval) and frees everything. */
void listener_stop(struct listener *l);

#endif
