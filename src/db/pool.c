/*
 * pool: a fixed array of slots, one per connection, guarded by one mutex;
 * a condition variable wakes waiters when a slot is given back.
 *
 * A slot is free or in use. A free slot may hold an open connection or none
 * (never opened yet, or closed because it broke). pool_acquire takes a free
 * slot, preferring one with a connection, waiting at most timeout_ms for one
 * to be released; it then checks the connection outside the lock (reading
 * whatever the server sent while it sat idle: a terminated backend shows up
 * here) and opens a new one when needed. Opening also happens outside the
 * lock, so a slow connect never blocks the other threads.
 *
 * pool_release closes the connection when the caller says it broke or when
 * it is not clean (not idle in pipeline mode), so the next user reopens it.
 * Statement bookkeeping (setup_prepared, generation, roles, prepared[]) is
 * reset whenever a connection is (re)opened; db/call.c maintains it between.
 *
 * Thread-safety: every function may be called from any thread; a
 * pool_conn belongs to the thread that acquired it until it is released.
 */
#include "autoconfig.h"

#include "db/pool.h"

#include "core/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
	struct pool_conn pc; /* first: pool_release maps a pool_conn back to its slot */
	bool in_use;
	PGcancel *cancel; /* for pc.conn; under the pool mutex (pool_cancel_all) */
};

struct pool {
	char *uri;
	struct slot *slots;
	pthread_mutex_t mu;
	pthread_cond_t freed;
	struct pool_stats st; /* size, in_use, waiting and the counters */
};

/* libpq's default notice processor writes to stderr: route notices to the log. */
static void on_notice(void *arg, const char *message)
{
	size_t n = strlen(message);

	(void)arg;
	while (n > 0 && message[n - 1] == '\n')
		n--;
	log_debug("postgres: %.*s", (int)n, message);
}

/* Swaps a slot's cancel handle under the lock: pool_cancel_all may be using it. */
static void set_cancel(struct pool *p, struct slot *s, PGcancel *c)
{
	PGcancel *old;

	pthread_mutex_lock(&p->mu);
	old = s->cancel;
	s->cancel = c;
	pthread_mutex_unlock(&p->mu);
	if (old)
		PQfreeCancel(old);
}

static void close_conn(struct pool *p, struct pool_conn *pc)
{
	set_cancel(p, (struct slot *)pc, NULL);
	if (pc->conn)
		PQfinish(pc->conn);
	pc->conn = NULL;
	pc->setup_prepared = false;
	pc->generation = 0;
	for (int i = 0; i < POOL_ROLE_SLOTS; i++) {
		free(pc->roles[i]);
		pc->roles[i] = NULL;
	}
	if (pc->prepared)
		memset(pc->prepared, 0, (size_t)pc->nprepared * sizeof(pc->prepared[0]));
}

/*
 * Opens a connection in pipeline mode for pc (which has none). Settings
 * before "dbname" may be overridden by the URI; application_name after it
 * may not (operators and tests find the pool's backends by it).
 *
 * A request waits for its results without a client-side deadline, so a
 * peer that vanishes without a reset (host down, network partition) must be
 * noticed by TCP: keepalive probes after 5 s idle (3 × 2 s), and
 * tcp_user_timeout drops a connection whose sent data stays unacknowledged
 * for 10 s. A request stuck on a dead peer then fails (503) after about
 * 10-15 s instead of the kernel's ~15 minutes of retransmissions; opening
 * a connection to an unreachable host gives up after 5 s (connect_timeout).
 */
static bool open_conn(struct pool *p, struct pool_conn *pc, char *err, size_t errlen)
{
	const char *keys[] = {
	        "connect_timeout",  "keepalives_idle", "keepalives_interval", "keepalives_count",
	        "tcp_user_timeout", "dbname",          "application_name",    NULL};
	const char *vals[] = {"5", "5", "2", "3", "10000", p->uri, "odsd", NULL};
	PGconn *conn = PQconnectdbParams(keys, vals, 1);

	if (!conn)
		return errf(err, errlen, "cannot allocate a database connection");
	if (PQstatus(conn) != CONNECTION_OK) {
		errf(err, errlen, "cannot connect to the database: %s", PQerrorMessage(conn));
		if (err)
			err[strcspn(err, "\n")] = '\0';
		PQfinish(conn);
		return false;
	}
	PQsetNoticeProcessor(conn, on_notice, NULL);
	if (!PQenterPipelineMode(conn)) {
		errf(err, errlen, "cannot enter pipeline mode: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return false;
	}
	pc->conn = conn;
	return true;
}

/* Idle in pipeline mode with nothing pending: safe to hand to a request. */
static bool conn_clean(PGconn *conn)
{
	return conn && PQstatus(conn) == CONNECTION_OK &&
	       PQpipelineStatus(conn) == PQ_PIPELINE_ON &&
	       PQtransactionStatus(conn) == PQTRANS_IDLE && !PQisBusy(conn);
}

/* At checkout: reads what arrived while idle (e.g. a FATAL from a terminated
 * backend, or EOF), so a dead connection is replaced before it is used. */
static bool conn_usable(PGconn *conn)
{
	return conn_clean(conn) && PQconsumeInput(conn) && conn_clean(conn);
}

struct pool *pool_new(const char *uri, int size)
{
	struct pool *p = xcalloc(1, sizeof(*p));
	pthread_condattr_t ca;

	if (size < 1)
		size = 1;
	p->uri = xstrdup(uri);
	p->slots = xcalloc((size_t)size, sizeof(p->slots[0]));
	p->st.size = size;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->freed, &ca);
	pthread_condattr_destroy(&ca);
	return p;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	if (p->st.in_use > 0)
		log_warn("pool: freed with %d connection(s) still in use", p->st.in_use);
	for (int i = 0; i < p->st.size; i++) {
		close_conn(p, &p->slots[i].pc);
		free(p->slots[i].pc.prepared);
	}
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->mu);
	free(p->slots);
	free(p->uri);
	free(p);
}

/* A free slot, preferring one that holds a connection; NULL when none. */
static struct slot *take_free(struct pool *p)
{
	struct slot *empty = NULL;

	for (int i = 0; i < p->st.size; i++) {
		struct slot *s = &p->slots[i];
		if (s->in_use)
			continue;
		if (s->pc.conn) {
			empty = s;
			break;
		}
		if (!empty)
			empty = s;
	}
	if (empty) {
		empty->in_use = true;
		p->st.in_use++;
	}
	return empty;
}

static struct timespec deadline_after(int ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static void give_back(struct pool *p, struct slot *s)
{
	pthread_mutex_lock(&p->mu);
	s->in_use = false;
	p->st.in_use--;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->mu);
}

struct pool_conn *pool_acquire(struct pool *p, int timeout_ms, bool *timed_out, char *err,
                               size_t errlen)
{
	struct timespec deadline = deadline_after(timeout_ms > 0 ? timeout_ms : 0);
	struct slot *s;
	int rc = 0;

	*timed_out = false;
	pthread_mutex_lock(&p->mu);
	p->st.waiting++;
	while (!(s = take_free(p)) && rc == 0) /* ETIMEDOUT ends it */
		rc = pthread_cond_timedwait(&p->freed, &p->mu, &deadline);
	p->st.waiting--;
	if (!s)
		p->st.timeouts++;
	pthread_mutex_unlock(&p->mu);
	if (!s) {
		*timed_out = true;
		errf(err, errlen, "no database connection became free within %d ms", timeout_ms);
		return NULL;
	}

	if (conn_usable(s->pc.conn))
		return &s->pc;
	if (s->pc.conn)
		log_info("pool: replacing a database connection that is no longer usable");
	close_conn(p, &s->pc);
	bool ok = open_conn(p, &s->pc, err, errlen);
	if (ok)
		set_cancel(p, s, PQgetCancel(s->pc.conn));
	pthread_mutex_lock(&p->mu);
	if (ok)
		p->st.connects++;
	else
		p->st.connect_fail++;
	pthread_mutex_unlock(&p->mu);
	if (ok)
		return &s->pc;
	give_back(p, s);
	return NULL;
}

void pool_release(struct pool *p, struct pool_conn *pc, bool broken)
{
	struct slot *s = (struct slot *)pc;

	if (!pc)
		return;
	if (broken || !conn_clean(pc->conn))
		close_conn(p, pc);
	give_back(p, s);
}

void pool_stats(struct pool *p, struct pool_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->st;
	pthread_mutex_unlock(&p->mu);
}

int pool_cancel_all(struct pool *p)
{
	char err[256];
	int n = 0;

	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->st.size; i++) {
		struct slot *s = &p->slots[i];
		if (!s->in_use || !s->cancel)
			continue;
		if (PQcancel(s->cancel, err, sizeof(err)))
			n++;
		else
			log_warn("pool: cannot cancel a running statement: %s", err);
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}
