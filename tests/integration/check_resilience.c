/*
 * resilience integration tests: odsd under saturation, slow clients, a
 * database outage and shutdown (issue 5, items 2 to 4), over loopback
 * against the harness's PostgreSQL.
 *
 * The fixture routes are generic: /t/echo/{id} answers at once, /t/sleep
 * holds its pooled connection for ?s= seconds, /t/fresh reads
 * synced.customer_current (so it carries freshness headers). Clients use
 * tu_http_try, which reports resets, timeouts and refusals instead of
 * failing the test from a worker thread; the main thread asserts on the
 * counts. Waits poll against a deadline.
 *
 * The outage test stops and restarts the harness's cluster (tu_pg_stop,
 * tu_pg_start): every test here gets its own database in that cluster, and
 * Check runs the tests one after another.
 */
#include "autoconfig.h"

#include "httptest.h"
#include "testutil.h"

#include "core/util.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SCOPES "t:read"

static const char fixtures_sql[] =
        "CREATE FUNCTION ods_api.t_echo(id bigint) RETURNS json LANGUAGE sql AS"
        " $$ SELECT json_build_object('id', id) $$;\n"
        "CREATE FUNCTION ods_api.t_sleep(s double precision) RETURNS json LANGUAGE sql AS"
        " $$ SELECT pg_sleep(s); SELECT json_build_object('slept', s) $$;\n"
        "CREATE FUNCTION ods_api.t_fresh() RETURNS json LANGUAGE sql AS"
        " $$ SELECT '{\"fresh\":true}'::json $$;\n"
        "GRANT EXECUTE ON FUNCTION ods_api.t_echo(bigint), ods_api.t_sleep(double precision),"
        " ods_api.t_fresh() TO support_agent;\n"
        "INSERT INTO ods.routes (method, path, function, scope, reads, paged) VALUES"
        " ('GET', '/t/echo/{id}', 'ods_api.t_echo', 't:read', '{}', false),"
        " ('GET', '/t/sleep', 'ods_api.t_sleep', 't:read', '{}', false),"
        " ('GET', '/t/fresh', 'ods_api.t_fresh', 't:read', '{synced.customer_current}', false);\n"
        "UPDATE ods.synced_tables SET as_of = now() WHERE table_name = 'customer_current';\n";

static char *db_uri;
static PGconn *admin;
static struct tu_odsd *od;

static void setup(void)
{
	db_uri = tu_migrated_db();
	admin = tu_connect(db_uri);
	tu_exec(admin, fixtures_sql);
	od = NULL;
}

static void teardown(void)
{
	if (od)
		tu_odsd_stop(od);
	od = NULL;
	PQfinish(admin);
	free(db_uri);
}

/* A GET as bytes for tu_http_try (Connection: close); caller frees. */
static char *get_bytes(const char *path, const char *auth)
{
	return xasprintf("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", path,
	                 auth ? auth : "");
}

/* One GET; the errno of a transport failure, else 0 with *r filled. */
static int try_get(const char *path, const char *auth, int timeout_ms, struct tu_http_response *r)
{
	char *req = get_bytes(path, auth);
	int rc = tu_http_try(od->port, req, strlen(req), timeout_ms, r);

	free(req);
	return rc;
}

static int status_of(const char *path, const char *auth)
{
	struct tu_http_response r;
	int st = try_get(path, auth, 30000, &r) == 0 ? r.status : 0;

	tu_http_free(&r);
	return st;
}

/* Whether a response is problem+json (the error contract, see check_http). */
static bool is_problem(const struct tu_http_response *r)
{
	char *ct = tu_http_header(r, "Content-Type");
	bool ok = ct && strcmp(ct, "application/problem+json") == 0 &&
	          strstr(r->body, "\"status\":") != NULL;

	free(ct);
	return ok;
}

static bool has_retry_after(const struct tu_http_response *r)
{
	char *ra = tu_http_header(r, "Retry-After");
	bool ok = ra && atoi(ra) >= 1;

	free(ra);
	return ok;
}

/* Polls until GET path answers want, or deadline (monotonic ms) passes. */
static bool wait_status(const char *path, const char *auth, int want, double deadline)
{
	while (status_of(path, auth) != want) {
		if (tu_mono_ms() >= deadline)
			return false;
		tu_tick();
	}
	return true;
}

/* A GET on its own thread. */
struct bg {
	pthread_t th;
	int port;
	char *req;
	struct tu_http_response r;
	int rc;
	double finished_ms;
};

static void *bg_run(void *arg)
{
	struct bg *b = arg;

	b->rc = tu_http_try(b->port, b->req, strlen(b->req), 60000, &b->r);
	b->finished_ms = tu_mono_ms();
	return NULL;
}

static void bg_start(struct bg *b, const char *path, const char *auth)
{
	memset(b, 0, sizeof(*b));
	b->port = od->port;
	b->req = get_bytes(path, auth);
	ck_assert(pthread_create(&b->th, NULL, bg_run, b) == 0);
}

static void bg_join(struct bg *b)
{
	pthread_join(b->th, NULL);
	free(b->req);
}

/* ---- saturation: a small pool, many clients ---- */

#define LOAD_CLIENTS     64
#define LOAD_PER_CLIENT  12
#define HEALTHZ_LIMIT_MS 1000.0

struct load {
	int port;
	const char *auth;
	atomic_int started;
	atomic_int n200, n503, n504, other, transport, no_retry_after, not_problem;
	atomic_bool done;
	pthread_mutex_t mu;
	char first_bad[256];
};

static void load_note(struct load *l, const char *what, int value)
{
	pthread_mutex_lock(&l->mu);
	if (!l->first_bad[0])
		snprintf(l->first_bad, sizeof(l->first_bad), "%s %d", what, value);
	pthread_mutex_unlock(&l->mu);
}

static void load_count(struct load *l, int rc, const struct tu_http_response *r)
{
	if (rc != 0) {
		atomic_fetch_add(&l->transport, 1);
		load_note(l, strerror(rc), rc);
		return;
	}
	if (r->status == 200) {
		atomic_fetch_add(&l->n200, 1);
		return;
	}
	if (r->status == 503 || r->status == 504) {
		atomic_fetch_add(r->status == 503 ? &l->n503 : &l->n504, 1);
		if (r->status == 503 && !has_retry_after(r))
			atomic_fetch_add(&l->no_retry_after, 1);
		if (!is_problem(r))
			atomic_fetch_add(&l->not_problem, 1);
		return;
	}
	atomic_fetch_add(&l->other, 1);
	load_note(l, "status", r->status);
}

/* One client: mostly short holds of a pooled connection, some instant
 * requests, and (for a few clients) one statement past the timeout. */
static void *load_client(void *arg)
{
	struct load *l = arg;
	int id = atomic_fetch_add(&l->started, 1);

	for (int i = 0; i < LOAD_PER_CLIENT; i++) {
		char path[64], *req;
		struct tu_http_response r;
		int rc;

		if (i == 0 && id % 16 == 0)
			snprintf(path, sizeof(path), "/t/sleep?s=3"); /* > statement_timeout */
		else if ((id + i) % 2 == 0)
			snprintf(path, sizeof(path), "/t/sleep?s=0.05");
		else
			snprintf(path, sizeof(path), "/t/echo/%d", id * 100 + i);
		req = xasprintf("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", path,
		                l->auth);
		rc = tu_http_try(l->port, req, strlen(req), 20000, &r);
		load_count(l, rc, &r);
		tu_http_free(&r);
		free(req);
	}
	return NULL;
}

static const char *const env_small_pool[] = {"ODS_DB_POOL_SIZE=4", "ODS_DB_POOL_TIMEOUT_MS=200",
                                             "ODS_STATEMENT_TIMEOUT_MS=1000",
                                             "ODS_MAX_CONNECTIONS=256", NULL};

START_TEST(test_saturation)
{
	static const char healthz[] =
	        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct load l = {0};
	pthread_t th[LOAD_CLIENTS];
	double worst = 0, t0;
	int probes = 0, probe_fail = 0;
	struct tu_http_response r;
	char *auth, *metrics;

	od = tu_odsd_start(db_uri, env_small_pool);
	auth = tu_auth_header(od, "support_agent", SCOPES, "alice");
	l.port = od->port;
	l.auth = auth;
	pthread_mutex_init(&l.mu, NULL);
	for (int i = 0; i < LOAD_CLIENTS; i++)
		ck_assert(pthread_create(&th[i], NULL, load_client, &l) == 0);

	/* /healthz touches neither the pool nor the database: it stays fast. */
	while (atomic_load(&l.started) < LOAD_CLIENTS)
		tu_tick();
	for (int i = 0; i < 40; i++, probes++) {
		t0 = tu_mono_ms();
		if (tu_http_try(od->port, healthz, sizeof(healthz) - 1, 10000, &r) != 0 ||
		    r.status != 200)
			probe_fail++;
		if (tu_mono_ms() - t0 > worst)
			worst = tu_mono_ms() - t0;
		tu_http_free(&r);
		tu_tick();
	}
	for (int i = 0; i < LOAD_CLIENTS; i++)
		pthread_join(th[i], NULL);

	printf("saturation: %d clients x %d: 200=%d 503=%d 504=%d; /healthz worst %.1f ms over "
	       "%d probes\n",
	       LOAD_CLIENTS, LOAD_PER_CLIENT, atomic_load(&l.n200), atomic_load(&l.n503),
	       atomic_load(&l.n504), worst, probes);
	ck_assert_msg(atomic_load(&l.transport) == 0 && atomic_load(&l.other) == 0,
	              "%d transport failures, %d other statuses; first: %s",
	              atomic_load(&l.transport), atomic_load(&l.other), l.first_bad);
	ck_assert_msg(atomic_load(&l.no_retry_after) == 0, "%d 503s without Retry-After",
	              atomic_load(&l.no_retry_after));
	ck_assert_msg(atomic_load(&l.not_problem) == 0, "%d errors not problem+json",
	              atomic_load(&l.not_problem));
	/* The load did what it is for: the pool overflowed and the timeout struck. */
	ck_assert_msg(atomic_load(&l.n200) > 0 && atomic_load(&l.n503) > 0 &&
	                      atomic_load(&l.n504) > 0,
	              "200=%d 503=%d 504=%d", atomic_load(&l.n200), atomic_load(&l.n503),
	              atomic_load(&l.n504));
	ck_assert_msg(probe_fail == 0 && worst < HEALTHZ_LIMIT_MS,
	              "/healthz under load: %d failed, worst %.1f ms", probe_fail, worst);

	/* Afterwards every connection is back in the pool and serving. */
	ck_assert_int_eq(status_of("/t/echo/1", auth), 200);
	ck_assert(try_get("/metrics", NULL, 10000, &r) == 0 && r.status == 200);
	metrics = r.body;
	ck_assert_msg(strstr(metrics, "ods_db_pool_in_use 0\n") &&
	                      !strstr(metrics, "ods_db_pool_timeouts_total 0\n"),
	              "metrics:\n%s", metrics);
	tu_http_free(&r);
	pthread_mutex_destroy(&l.mu);
	free(auth);
}
END_TEST

/* ---- slow clients ---- */

#define SLOW_CLIENTS 50

/* A connection that sends part of a request and then nothing. */
static int half_open(int port, const char *bytes)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert(fd >= 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
	              strerror(errno));
	ck_assert(send(fd, bytes, strlen(bytes), MSG_NOSIGNAL) == (ssize_t)strlen(bytes));
	return fd;
}

/* Whether the server closed fd (EOF or reset) before the deadline. */
static bool closed_by_server(int fd, double deadline)
{
	char buf[512];

	for (;;) {
		int left = (int)(deadline - tu_mono_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return false;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return true;
	}
}

static void slowloris(const char *const *env, const char *mode)
{
	static const char *const partial[] = {
	        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1", /* headers never end */
	        "GET /t/echo/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789",
	};
	int fds[SLOW_CLIENTS], closed = 0;
	double worst = 0, t0, deadline;
	struct tu_http_response r;
	char *auth;

	od = tu_odsd_start(db_uri, env);
	auth = tu_auth_header(od, "support_agent", SCOPES, "alice");
	for (int i = 0; i < SLOW_CLIENTS; i++)
		fds[i] = half_open(od->port, partial[i % 2]);
	for (int i = 0; i < 20; i++) {
		t0 = tu_mono_ms();
		ck_assert_int_eq(status_of("/healthz", NULL), 200);
		if (tu_mono_ms() - t0 > worst)
			worst = tu_mono_ms() - t0;
	}
	ck_assert_int_eq(status_of("/t/echo/1", auth), 200);
	printf("slowloris (%s): %d half-open sockets, /healthz worst %.1f ms\n", mode, SLOW_CLIENTS,
	       worst);
	ck_assert_msg(worst < HEALTHZ_LIMIT_MS, "/healthz took %.1f ms with %d half-open sockets",
	              worst, SLOW_CLIENTS);
	/* connection_timeout_s (2 s here) frees what they hold. */
	deadline = tu_mono_ms() + 8000;
	for (int i = 0; i < SLOW_CLIENTS; i++) {
		closed += closed_by_server(fds[i], deadline);
		close(fds[i]);
	}
	ck_assert_msg(closed == SLOW_CLIENTS, "only %d of %d idle sockets were closed", closed,
	              SLOW_CLIENTS);
	/* The half-sent body's requests are counted, not crashed on (they once were). */
	ck_assert(try_get("/metrics", NULL, 10000, &r) == 0 && r.status == 200);
	ck_assert_msg(strstr(r.body, "ods_http_requests_total{route=\"unanswered\",status=\"0\"}"),
	              "metrics:\n%s", r.body);
	tu_http_free(&r);
	free(auth);
}

static const char *const env_slow_threads[] = {"ODS_CONNECTION_TIMEOUT_S=2", NULL};
static const char *const env_slow_loops[] = {"ODS_CONNECTION_TIMEOUT_S=2", "ODS_HTTP_THREADS=2",
                                             NULL};

START_TEST(test_slowloris_thread_per_connection)
{
	slowloris(env_slow_threads, "thread per connection");
}
END_TEST

START_TEST(test_slowloris_event_loops)
{
	slowloris(env_slow_loops, "2 event loops");
}
END_TEST

/* ---- database outage ---- */

#define OUTAGE_ANSWER_MS 3000.0 /* "503 within a few seconds" */
#define RECOVERY_MS      5000.0
#define NOTIFY_MS        1000.0

/* Only a NOTIFY can refresh the freshness cache here: the periodic refresh is an hour. */
static const char *const env_outage[] = {"ODS_DB_POOL_SIZE=4", "ODS_FRESHNESS_REFRESH_MS=3600000",
                                         NULL};

static bool wait_stale(const char *auth, const char *want, double deadline)
{
	for (;;) {
		struct tu_http_response r;
		char *v = NULL;
		bool ok = try_get("/t/fresh", auth, 10000, &r) == 0 && r.status == 200 &&
		          (v = tu_http_header(&r, "ODS-Stale")) && strcmp(v, want) == 0;
		free(v);
		tu_http_free(&r);
		if (ok || tu_mono_ms() >= deadline)
			return ok;
		tu_tick();
	}
}

START_TEST(test_database_outage)
{
	struct tu_http_response r;
	struct bg slow;
	double t0, stopped, ready_ms, api_ms;
	char *auth;

	od = tu_odsd_start(db_uri, env_outage);
	auth = tu_auth_header(od, "support_agent", SCOPES, "alice");
	for (int i = 0; i < 4; i++) /* warm every pooled connection */
		ck_assert_int_eq(status_of("/t/echo/1", auth), 200);
	ck_assert(wait_stale(auth, "?0", tu_mono_ms() + 5000));

	/* Down, with a request in flight. */
	bg_start(&slow, "/t/sleep?s=30", auth);
	ck_assert_msg(tu_wait_backend(admin, "%t_sleep%", 5000), "the slow request never started");
	PQfinish(admin);
	admin = NULL;
	tu_pg_stop();
	stopped = tu_mono_ms();

	bg_join(&slow);
	ck_assert_msg(slow.rc == 0 && slow.r.status == 503 && is_problem(&slow.r),
	              "in-flight request during the outage: rc %d status %d %s", slow.rc,
	              slow.r.status, slow.r.body ? slow.r.body : "");
	ck_assert_msg(slow.finished_ms - stopped < OUTAGE_ANSWER_MS,
	              "the in-flight request took %.0f ms to fail", slow.finished_ms - stopped);
	tu_http_free(&slow.r);

	ck_assert_msg(wait_status("/readyz", NULL, 503, stopped + OUTAGE_ANSWER_MS),
	              "/readyz still ready %.0f ms into the outage", OUTAGE_ANSWER_MS);
	for (int i = 0; i < 6; i++) { /* every pool slot, opened or not */
		t0 = tu_mono_ms();
		ck_assert(try_get("/t/echo/1", auth, 30000, &r) == 0);
		ck_assert_msg(r.status == 503 && is_problem(&r) && has_retry_after(&r),
		              "API during the outage: %d %s", r.status, r.body);
		ck_assert_msg(tu_mono_ms() - t0 < OUTAGE_ANSWER_MS, "a 503 took %.0f ms",
		              tu_mono_ms() - t0);
		tu_http_free(&r);
	}
	t0 = tu_mono_ms();
	ck_assert_int_eq(status_of("/healthz", NULL), 200);
	ck_assert_msg(tu_mono_ms() - t0 < 500, "/healthz took %.0f ms", tu_mono_ms() - t0);
	ck_assert(try_get("/metrics", NULL, 10000, &r) == 0 && r.status == 200);
	ck_assert_msg(strstr(r.body, "ods_db_up 0\n"), "metrics:\n%s", r.body);
	tu_http_free(&r);

	/* Back: odsd recovers on its own. */
	tu_pg_start();
	t0 = tu_mono_ms();
	ck_assert_msg(wait_status("/readyz", NULL, 200, t0 + RECOVERY_MS),
	              "/readyz not ready %.0f ms after PostgreSQL came back", RECOVERY_MS);
	ready_ms = tu_mono_ms() - t0;
	ck_assert_msg(wait_status("/t/echo/1", auth, 200, t0 + RECOVERY_MS),
	              "the API still fails %.0f ms after PostgreSQL came back", RECOVERY_MS);
	api_ms = tu_mono_ms() - t0;
	printf("outage: /readyz ready %.0f ms and the API answering %.0f ms after restart\n",
	       ready_ms, api_ms);
	for (int i = 0; i < 8; i++) /* no broken connection is left in the pool */
		ck_assert_int_eq(status_of("/t/echo/2", auth), 200);

	/* The LISTEN connection is back: a catalog change reaches odsd at once. */
	admin = tu_connect(db_uri);
	tu_exec(admin, "UPDATE ods.synced_tables SET as_of = now() - interval '1 hour'"
	               " WHERE table_name = 'customer_current'");
	t0 = tu_mono_ms();
	ck_assert_msg(wait_stale(auth, "?1", t0 + NOTIFY_MS),
	              "freshness not updated %.0f ms after the NOTIFY", NOTIFY_MS);
	free(auth);
}
END_TEST

/* ---- shutdown ---- */

static const char *const env_short_drain[] = {"ODS_SHUTDOWN_TIMEOUT_MS=500",
                                              "ODS_STATEMENT_TIMEOUT_MS=60000", NULL};

/* The drain is bounded: a request still running after shutdown_timeout_ms
 * has its statement cancelled and gets an error answer; odsd exits 0. */
START_TEST(test_shutdown_bounded)
{
	struct bg slow;
	double t0, took;
	char *auth, *log_file, *text, err[ODS_ERRLEN];
	size_t len;

	od = tu_odsd_start(db_uri, env_short_drain);
	auth = tu_auth_header(od, "support_agent", SCOPES, "alice");
	bg_start(&slow, "/t/sleep?s=30", auth);
	ck_assert_msg(tu_wait_backend(admin, "%t_sleep%", 5000), "the slow request never started");
	log_file = xstrdup(od->log_file);
	t0 = tu_mono_ms();
	tu_odsd_stop(od); /* SIGTERM; asserts exit status 0 */
	od = NULL;
	took = tu_mono_ms() - t0;
	bg_join(&slow);
	printf("shutdown: exited %.0f ms after SIGTERM with a 30 s request in flight\n", took);
	ck_assert_msg(took < 500 + 3000, "odsd took %.0f ms to stop", took);
	ck_assert_msg(slow.rc == 0 && (slow.r.status == 503 || slow.r.status == 504) &&
	                      is_problem(&slow.r),
	              "the cut request: rc %d, status %d", slow.rc, slow.r.status);
	tu_http_free(&slow.r);
	text = util_read_file(log_file, &len, err, sizeof(err));
	ck_assert_msg(text && strstr(text, "cancelled 1 statement(s)"), "log:\n%s",
	              text ? text : err);
	free(text);
	free(log_file);
	free(auth);
}
END_TEST

/* A keep-alive connection that sends another request during the drain gets
 * its answer with Connection: close, and the connection ends there. */
START_TEST(test_shutdown_closes_keep_alive)
{
	/* HEAD: an answer without a body, so one recv holds all of it. */
	const char *one = "HEAD /t/echo/1 HTTP/1.1\r\nHost: x\r\n";
	struct bg slow;
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct timeval tv = {10, 0};
	char *auth, *req, buf[8192];
	size_t got = 0;
	ssize_t n;
	int fd;

	od = tu_odsd_start(db_uri, NULL);
	auth = tu_auth_header(od, "support_agent", SCOPES, "alice");
	req = xasprintf("%s%s\r\n", one, auth);
	a.sin_port = htons((uint16_t)od->port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	ck_assert_msg(n > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0, "first answer");

	bg_start(&slow, "/t/sleep?s=1.5", auth); /* keeps the drain going */
	ck_assert_msg(tu_wait_backend(admin, "%t_sleep%", 5000), "the slow request never started");
	ck_assert(kill(od->pid, SIGTERM) == 0);
	ck_assert(wait_status("/healthz", NULL, 0, tu_mono_ms() + 1500)); /* refused: draining */
	ck_assert(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
	while (got < sizeof(buf) - 1 && (n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
		got += (size_t)n; /* until the server closes */
	buf[got] = '\0';
	ck_assert_msg(n == 0, "the connection stayed open during the drain");
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "Connection: close"),
	              "answer during the drain:\n%s", buf);
	close(fd);
	bg_join(&slow);
	ck_assert_int_eq(slow.r.status, 200);
	tu_http_free(&slow.r);
	free(req);
	free(auth);
}
END_TEST

/* Clients that loop until odsd refuses them, while it drains. */
struct churn {
	int port;
	char *req;
	atomic_int ok, bad, refused;
	pthread_mutex_t mu;
	char first_bad[256];
};

static void *churn_client(void *arg)
{
	struct churn *c = arg;

	for (;;) {
		struct tu_http_response r;
		int rc = tu_http_try(c->port, c->req, strlen(c->req), 20000, &r);
		bool done = rc == ECONNREFUSED || (rc == ECONNRESET && r.head[0] == '\0');

		/* Refused, or reset before a byte came back (a connection still in
		 * the listen queue when the socket closed): both are "not accepted". */
		if (done)
			atomic_fetch_add(&c->refused, 1);
		else if (rc == 0 && r.status == 200 && strcmp(r.body, "{\"slept\" : 0.02}") == 0)
			atomic_fetch_add(&c->ok, 1);
		else {
			atomic_fetch_add(&c->bad, 1);
			pthread_mutex_lock(&c->mu);
			if (!c->first_bad[0])
				snprintf(c->first_bad, sizeof(c->first_bad),
				         "rc %d status %d body %s", rc, r.status, r.body);
			pthread_mutex_unlock(&c->mu);
		}
		tu_http_free(&r);
		if (done)
			return NULL;
	}
}

#define CHURN_CLIENTS 16

/* SIGTERM under load: every accepted request is answered in full, the rest
 * are refused, odsd exits 0. */
START_TEST(test_shutdown_under_load)
{
	struct churn c = {0};
	pthread_t th[CHURN_CLIENTS];
	char *auth;

	od = tu_odsd_start(db_uri, NULL);
	auth = tu_auth_header(od, "support_agent", SCOPES, "alice");
	c.port = od->port;
	c.req = get_bytes("/t/sleep?s=0.02", auth);
	pthread_mutex_init(&c.mu, NULL);
	for (int i = 0; i < CHURN_CLIENTS; i++)
		ck_assert(pthread_create(&th[i], NULL, churn_client, &c) == 0);
	while (atomic_load(&c.ok) < 100 && atomic_load(&c.bad) == 0)
		tu_tick();
	tu_odsd_stop(od); /* SIGTERM mid-load; asserts exit status 0 */
	od = NULL;
	for (int i = 0; i < CHURN_CLIENTS; i++)
		pthread_join(th[i], NULL);
	printf("shutdown under load: %d answered, %d refused\n", atomic_load(&c.ok),
	       atomic_load(&c.refused));
	ck_assert_msg(atomic_load(&c.bad) == 0, "%d requests cut or failed; first: %s",
	              atomic_load(&c.bad), c.first_bad);
	ck_assert_int_eq(atomic_load(&c.refused), CHURN_CLIENTS);
	pthread_mutex_destroy(&c.mu);
	free(c.req);
	free(auth);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("resilience");
	TCase *tc;

#ifdef PR_SET_CHILD_SUBREAPER
	prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_saturation);
	tcase_add_test(tc, test_slowloris_thread_per_connection);
	tcase_add_test(tc, test_slowloris_event_loops);
	suite_add_tcase(s, tc);

	tc = tcase_create("shutdown");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_shutdown_bounded);
	tcase_add_test(tc, test_shutdown_closes_keep_alive);
	tcase_add_test(tc, test_shutdown_under_load);
	suite_add_tcase(s, tc);

	/* Last: a failure halfway leaves the cluster down for whatever follows. */
	tc = tcase_create("outage");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_database_outage);
	suite_add_tcase(s, tc);
	return tu_run_suite(s);
}
