/*
 * libFuzzer target: the whole server, fed raw HTTP request bytes.
 *
 * LLVMFuzzerInitialize migrates the database at ODS_TEST_DB_URI (run under
 * `ODS_HARNESS_PG=1 tests/harness.sh`), writes the fixed HS256 secret
 * FUZZ_HTTP_SECRET to a temp file, and starts what odsd's main() starts:
 * app_new (pool, listener, route catalog from ods.routes) and
 * http_server_start with api_handle, on 127.0.0.1 and a free port, with
 * odsd's defaults (a thread per connection). Every module but the two main()
 * files is linked, instrumented.
 *
 * Per input: one connection; send the bytes (a request, several pipelined,
 * or garbage), shutdown(SHUT_WR), read until the server closes. Findings
 * (abort with a message): a handler answered 500; no close within
 * REPLY_TIMEOUT_S (a hang); /healthz does not answer 200 afterwards.
 * ASan, UBSan and LeakSanitizer catch the rest.
 *
 * The request log line (api_completed at log level info) is off unless
 * ODS_LOG_LEVEL=info is set; the default here is warn.
 */
#include "autoconfig.h"

#include "admin/migrate.h"
#include "core/config.h"
#include "core/log.h"
#include "http/server.h"
#include "ods/api.h"
#include "ods/app.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The seed corpus's tokens are signed with this secret (40 bytes). */
#define FUZZ_HTTP_SECRET "fuzz-http-secret-0123456789abcdefghijklm"
#define REPLY_TIMEOUT_S  15

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct app *app;
static struct http_server *srv;
static int port;
static char tmpdir[256];
static char secret_path[300];
static atomic_int n500;

static void die(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_http: %s: %s\n", what, why);
	exit(1);
}

/*
 * What the database does is invisible to libFuzzer's coverage, so each
 * answer also sets one of these extra counters (libFuzzer reads them as
 * coverage): an input whose route and status are a new pair is kept.
 */
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t outcomes[4096];

static void record_outcome(const char *label, int status)
{
	uint32_t h = 2166136261u;

	for (const char *p = label ? label : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ (uint32_t)status) * 16777619u;
	outcomes[h % sizeof(outcomes)] = 1;
}

/* api_handle, recording a 500 (the finding) with what was asked. */
static struct MHD_Response *handle(void *cls, struct request *req, int *status)
{
	struct MHD_Response *r = api_handle(cls, req, status);

	record_outcome(req->label, *status);

	if (*status == 500) {
		fprintf(stderr, "fuzz_http: %s %s answered 500\n", req->method, req->path);
		atomic_fetch_add(&n500, 1);
	}
	return r;
}

static void stop(void)
{
	if (srv)
		http_server_stop(srv);
	app_free(app);
	unlink(secret_path);
	rmdir(tmpdir);
}

/* odsd connects as ods_authenticator: the harness URI with that user. */
static char *authenticator_uri(const char *uri)
{
	const char *at = strchr(uri, '@');

	if (!at || strncmp(uri, "postgresql://", 13) != 0)
		die("unexpected ODS_TEST_DB_URI", uri);
	return xasprintf("postgresql://ods_authenticator%s", at);
}

static void migrate(const char *uri)
{
	const char *api = getenv("ODS_API_DIR") ? getenv("ODS_API_DIR") : ODS_API_DIR;
	char err[ODS_ERRLEN];
	PGconn *c = PQconnectdb(uri);
	int applied;

	if (PQstatus(c) != CONNECTION_OK)
		die("connect", PQerrorMessage(c));
	log_set_level(LOG_WARN); /* quiet: no line per applied file */
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	if (!migrate_run(c, api, &applied, err, sizeof(err)))
		die("migrate", err);
	PQfinish(c);
}

static void write_secret(void)
{
	const char *base = getenv("ODS_TEST_TMP") ? getenv("ODS_TEST_TMP") : "/tmp";
	FILE *f;

	snprintf(tmpdir, sizeof(tmpdir), "%s/fuzz_http.XXXXXX", base);
	if (!mkdtemp(tmpdir))
		die("mkdtemp", strerror(errno));
	snprintf(secret_path, sizeof(secret_path), "%s/jwt.secret", tmpdir);
	f = fopen(secret_path, "w");
	if (!f || fputs(FUZZ_HTTP_SECRET, f) < 0 || fclose(f) != 0)
		die(secret_path, strerror(errno));
}

static int connect_server(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {REPLY_TIMEOUT_S, 0};
	int fd = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* libFuzzer's timers send signals: a connect cut by one (EINTR) is
	 * retried on a fresh socket, not taken for a dead server. */
	for (int tries = 0; fd < 0 && tries < 100; tries++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
			int e = errno;
			close(fd);
			fd = -1;
			errno = e;
			if (e != EINTR)
				break;
		}
	}
	if (fd < 0) {
		fprintf(stderr, "fuzz_http: cannot connect to port %d: %s\n", port,
		        strerror(errno));
		abort();
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/*
 * Sends the bytes, half-closes, reads until the server closes. Keeps the
 * first cap bytes of the answer in out (NUL-terminated) when out is given.
 */
static void exchange(const void *bytes, size_t len, char *out, size_t cap)
{
	char buf[16384];
	size_t off = 0, got = 0;
	ssize_t n;
	int fd = connect_server();

	while (off < len) {
		n = send(fd, (const char *)bytes + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the server may answer and close before reading it all */
		off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	while ((n = recv(fd, buf, sizeof(buf), 0)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			fprintf(stderr, "fuzz_http: the server did not close within %d s\n",
			        REPLY_TIMEOUT_S);
			abort();
		}
		if (n < 0)
			break; /* reset: a close with unread input */
		if (out && got + 1 < cap) {
			size_t k = (size_t)n < cap - 1 - got ? (size_t)n : cap - 1 - got;
			memcpy(out + got, buf, k);
			got += k;
		}
	}
	if (out)
		out[got] = '\0';
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *uri = getenv("ODS_TEST_DB_URI");
	struct timespec tick = {0, 50 * 1000 * 1000};
	struct ods_config cfg;
	char err[ODS_ERRLEN];
	const char *why = "";
	char *auth_uri;

	if (!uri)
		die("ODS_TEST_DB_URI is not set",
		    "run me under ODS_HARNESS_PG=1 tests/harness.sh (make fuzz-smoke does)");
	signal(SIGPIPE, SIG_IGN);
	migrate(uri);
	write_secret();
	auth_uri = authenticator_uri(uri);
	setenv("ODS_DB_URI", auth_uri, 1);
	setenv("ODS_JWT_SECRET_FILE", secret_path, 1);
	setenv("ODS_LOG_LEVEL", "warn", 0);
	free(auth_uri);
	if (!config_load(&cfg, NULL, err, sizeof(err)))
		die("config", err);
	app = app_new(&cfg, err, sizeof(err));
	if (!app)
		die("app_new", err);
	atexit(stop);
	for (int i = 0; !app_ready(app, &why); i++) {
		if (i == 400)
			die("not ready after 20 s", why);
		nanosleep(&tick, NULL);
	}
	struct app_settings *s = app_settings_get(app);
	struct http_server_opts ho = {
	        .addr = "127.0.0.1",
	        .port = 0,
	        .threads = (int)s->cfg.http_threads,
	        .max_connections = (int)s->cfg.max_connections,
	        .connection_timeout_s = (int)s->cfg.connection_timeout_s,
	        .max_header_bytes = (size_t)s->cfg.max_header_bytes,
	        .max_body_bytes = (size_t)s->cfg.max_body_bytes,
	        .handler = handle,
	        .completed = api_completed,
	        .cls = app,
	};
	srv = http_server_start(&ho, err, sizeof(err));
	app_settings_put(app, s);
	if (!srv)
		die("http_server_start", err);
	port = http_server_port(srv);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char healthz[] = "GET /healthz HTTP/1.1\r\nHost: fuzz\r\n\r\n";
	char head[64];

	exchange(data, size, NULL, 0);
	if (atomic_exchange(&n500, 0) > 0)
		abort(); /* the handler said which request */
	exchange(healthz, sizeof(healthz) - 1, head, sizeof(head));
	if (strncmp(head, "HTTP/1.1 200 ", 13) != 0) {
		fprintf(stderr, "fuzz_http: /healthz after this input answered \"%.20s\"\n", head);
		abort();
	}
	return 0;
}
