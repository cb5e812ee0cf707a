/*
 * listener: one thread, one connection, one loop (contract in db/listener.h).
 *
 *   connect (non-blocking, so a stop request interrupts it) -> LISTEN both
 *   channels -> LISTENER_CONNECTED -> poll the socket and a self-pipe
 *   until the next tick:
 *     socket readable: PQconsumeInput, drain every pending notification,
 *                      then call back once per channel that had any;
 *     tick due:        a bounded "SELECT 1" (a silently dead peer never
 *                      makes the socket readable), then LISTENER_TICK;
 *     pipe readable:   stop requested, or refresh_ms changed.
 *   Any failure (consume, health check, or a callback's query leaving the
 *   connection bad) closes the connection; it is reopened after a backoff
 *   of 250 ms doubling to 2 s, reset by a successful connect.
 *   refresh_ms <= 0 turns the tick (and so the health check) off.
 *
 * Notifications that arrive while a callback runs its own queries are
 * queued by libpq and drained before the next wait, so none is lost.
 *
 * Thread-safety: the callback runs on the listener thread only. From other
 * threads: listener_connected (an atomic), listener_set_refresh_ms (an atomic
 * plus a wake-up), listener_stop (wakes the thread, then joins it).
 */
#include "autoconfig.h"

#include "db/listener.h"

#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MIN_MS   250
#define BACKOFF_MAX_MS   2000
#define CONNECT_LIMIT_MS 10000 /* give up one connection attempt after this */
#define PING_LIMIT_MS    5000  /* a health check slower than this means a dead peer */

struct listener {
	char *uri;
	listener_fn fn;
	void *arg;
	atomic_int refresh_ms;
	atomic_bool connected;
	atomic_bool stopping;
	int wake[2]; /* self-pipe: [0] read by the thread, [1] written to wake it */
	pthread_t thread;
};

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void drain_wake(struct listener *l)
{
	char buf[64];

	while (read(l->wake[0], buf, sizeof(buf)) > 0)
		;
}

enum wait_result { WAIT_READY, WAIT_TIMEOUT, WAIT_WOKEN, WAIT_ERROR };

/*
 * Waits until fd (if >= 0) is readable (or writable), the self-pipe is
 * written, or the monotonic deadline (ms; < 0: none) passes. poll(), not
 * select(): the descriptor may be past FD_SETSIZE in a busy server.
 */
static enum wait_result wait_fd(struct listener *l, int fd, bool for_write, long long deadline)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = l->wake[0], .events = POLLIN},
		                      {.fd = fd, .events = for_write ? POLLOUT : POLLIN}};
		int timeout = -1;

		if (deadline >= 0) {
			long long left = deadline - now_ms();
			timeout = left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
		}
		int n = poll(p, fd >= 0 ? 2 : 1, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return WAIT_ERROR;
		if (p[0].revents) {
			drain_wake(l);
			return WAIT_WOKEN;
		}
		if (n > 0)
			return WAIT_READY; /* readable, writable, or hung up: libpq will tell */
		if (deadline >= 0 && now_ms() >= deadline)
			return WAIT_TIMEOUT;
	}
}

static void on_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("listener: postgres: %.*s", (int)strcspn(message, "\n"), message);
}

/* A connection, or NULL (failed, or a stop was requested meanwhile). Only
 * the first failure of a streak is a warning; retries log at debug level. */
static PGconn *open_conn(struct listener *l, bool first)
{
	enum log_level level = first ? LOG_WARN : LOG_DEBUG;
	const char *keys[] = {"keepalives_idle", "keepalives_interval", "keepalives_count",
	                      "dbname",          "application_name",    NULL};
	const char *vals[] = {"30", "10", "3", l->uri, "odsd-listener", NULL};
	long long deadline = now_ms() + CONNECT_LIMIT_MS;
	PGconn *conn = PQconnectStartParams(keys, vals, 1);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	bool timed_out = false;

	while (conn && PQstatus(conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	       st != PGRES_POLLING_FAILED) {
		enum wait_result w =
		        wait_fd(l, PQsocket(conn), st == PGRES_POLLING_WRITING, deadline);
		if (w == WAIT_WOKEN && atomic_load(&l->stopping))
			break;
		if (w == WAIT_TIMEOUT || w == WAIT_ERROR) {
			timed_out = true;
			break;
		}
		if (w == WAIT_READY)
			st = PQconnectPoll(conn);
	}
	if (conn && st == PGRES_POLLING_OK && PQstatus(conn) == CONNECTION_OK) {
		PQsetNoticeProcessor(conn, on_notice, NULL);
		return conn;
	}
	if (!atomic_load(&l->stopping)) {
		const char *why = timed_out ? "timed out"
		                  : conn    ? PQerrorMessage(conn)
		                            : "out of memory";
		log_msg(level, "listener: cannot connect: %.*s", (int)strcspn(why, "\n"), why);
	}
	PQfinish(conn);
	return NULL;
}

static bool exec_ok(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		log_warn("listener: %s: %.*s", sql, (int)strcspn(PQerrorMessage(conn), "\n"),
		         PQerrorMessage(conn));
	PQclear(r);
	return ok;
}

/* "SELECT 1" with a deadline: false when the peer does not answer in time. */
static bool ping(struct listener *l, PGconn *conn)
{
	long long deadline = now_ms() + PING_LIMIT_MS;
	bool ok = true;
	PGresult *r;

	if (!PQsendQuery(conn, "SELECT 1"))
		return false;
	while (PQisBusy(conn)) {
		enum wait_result w = wait_fd(l, PQsocket(conn), false, deadline);
		if (w == WAIT_TIMEOUT || w == WAIT_ERROR)
			return false; /* the connection is closed by the caller */
		if (w == WAIT_WOKEN && atomic_load(&l->stopping))
			return false;
		if (!PQconsumeInput(conn))
			return false;
	}
	while ((r = PQgetResult(conn))) {
		ok = ok && PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
	}
	return ok && PQstatus(conn) == CONNECTION_OK;
}

/* Calls back once per channel that had notifications pending in libpq. */
static void dispatch_notifies(struct listener *l, PGconn *conn)
{
	bool freshness = false, routes = false;
	PGnotify *n;

	while ((n = PQnotifies(conn))) {
		if (strcmp(n->relname, "ods_freshness") == 0)
			freshness = true;
		else if (strcmp(n->relname, "ods_routes") == 0)
			routes = true;
		PQfreemem(n);
	}
	if (routes)
		l->fn(LISTENER_ROUTES, conn, l->arg);
	if (freshness)
		l->fn(LISTENER_FRESHNESS, conn, l->arg);
}

/* Serves one connection until it fails or a stop is requested. */
static void serve(struct listener *l, PGconn *conn)
{
	int refresh = atomic_load(&l->refresh_ms);
	long long next_tick = now_ms() + refresh;

	while (!atomic_load(&l->stopping) && PQstatus(conn) == CONNECTION_OK) {
		dispatch_notifies(l, conn);
		if (PQstatus(conn) != CONNECTION_OK)
			break;
		enum wait_result w =
		        wait_fd(l, PQsocket(conn), false, refresh > 0 ? next_tick : -1);
		if (w == WAIT_ERROR)
			break;
		if (w == WAIT_WOKEN) {
			int changed = atomic_load(&l->refresh_ms);
			if (changed != refresh) {
				next_tick += changed - refresh;
				refresh = changed;
			}
			continue;
		}
		if (w == WAIT_READY) {
			if (!PQconsumeInput(conn))
				break;
			continue;
		}
		/* A tick is due. */
		if (!ping(l, conn))
			break;
		dispatch_notifies(l, conn);
		l->fn(LISTENER_TICK, conn, l->arg);
		next_tick = now_ms() + refresh;
	}
}

static void *run(void *arg)
{
	struct listener *l = arg;
	int backoff = BACKOFF_MIN_MS;

	while (!atomic_load(&l->stopping)) {
		PGconn *conn = open_conn(l, backoff == BACKOFF_MIN_MS);

		if (conn && exec_ok(conn, "LISTEN ods_freshness") &&
		    exec_ok(conn, "LISTEN ods_routes")) {
			backoff = BACKOFF_MIN_MS;
			atomic_store(&l->connected, true);
			log_info("listener: listening on ods_freshness and ods_routes");
			l->fn(LISTENER_CONNECTED, conn, l->arg);
			serve(l, conn);
			atomic_store(&l->connected, false);
			if (!atomic_load(&l->stopping))
				log_warn("listener: connection lost; reconnecting");
		}
		PQfinish(conn);
		if (atomic_load(&l->stopping))
			break;
		long long deadline = now_ms() + backoff;
		while (!atomic_load(&l->stopping) && wait_fd(l, -1, false, deadline) == WAIT_WOKEN)
			;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

struct listener *listener_start(const char *uri, int refresh_ms, listener_fn fn, void *arg)
{
	struct listener *l = xcalloc(1, sizeof(*l));

	l->uri = xstrdup(uri);
	l->fn = fn;
	l->arg = arg;
	atomic_init(&l->refresh_ms, refresh_ms);
	atomic_init(&l->connected, false);
	atomic_init(&l->stopping, false);
	if (pipe(l->wake) != 0)
		goto fail;
	for (int i = 0; i < 2; i++) {
		int fl = fcntl(l->wake[i], F_GETFL);
		fcntl(l->wake[i], F_SETFL, fl | O_NONBLOCK);
		fcntl(l->wake[i], F_SETFD, FD_CLOEXEC);
	}
	int rc = pthread_create(&l->thread, NULL, run, l);
	if (rc != 0) {
		close(l->wake[0]);
		close(l->wake[1]);
		errno = rc;
		goto fail;
	}
	return l;
fail:
	log_error("listener: cannot start: %s", strerror(errno));
	free(l->uri);
	free(l);
	return NULL;
}

bool listener_connected(struct listener *l)
{
	return l && atomic_load(&l->connected);
}

static void wake(struct listener *l)
{
	ssize_t n = write(l->wake[1], "w", 1);

	(void)n; /* a full pipe already holds a wake-up */
}

void listener_set_refresh_ms(struct listener *l, int refresh_ms)
{
	atomic_store(&l->refresh_ms, refresh_ms);
	wake(l);
}

void listener_stop(struct listener *l)
{
	if (!l)
		return;
	atomic_store(&l->stopping, true);
	wake(l);
	pthread_join(l->thread, NULL);
	close(l->wake[0]);
	close(l->wake[1]);
	free(l->uri);
	free(l);
}
