/*
 * httptest: see httptest.h. The HTTP client is deliberately tiny: one
 * request per connection (Connection: close), read until the server closes
 * or Content-Length is satisfied, bounded by a 30 s socket timeout.
 */
#include "autoconfig.h"

#include "httptest.h"
#include "mixload.h"
#include "testutil.h"

#include "admin/token.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert(fd >= 0);
	ck_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	ck_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* A connected socket with send/receive timeouts, or -1 with errno set. */
static int connect_to(int port, int timeout_ms)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int fd = socket(AF_INET, SOCK_STREAM, 0), e;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void parse_response(struct strbuf *in, struct tu_http_response *out)
{
	char *end = in->data ? strstr(in->data, "\r\n\r\n") : NULL;

	memset(out, 0, sizeof(*out));
	if (!end) {
		out->head = xstrdup(in->data ? in->data : "");
		out->body = xstrdup("");
		return;
	}
	out->head = xstrndup(in->data, (size_t)(end - in->data) + 2);
	out->body_len = in->len - (size_t)(end + 4 - in->data);
	out->body = xstrndup(end + 4, out->body_len);
	sscanf(out->head, "HTTP/1.%*d %d", &out->status);
}

/*
 * Sends len bytes, then reads until EOF. 0, or the errno of the failure:
 * connect (e.g. ECONNREFUSED), or receive (ECONNRESET; EAGAIN when the
 * timeout passed). A send error is not one: the server may answer (413)
 * and close before reading everything.
 */
static int exchange(int port, const void *bytes, size_t len, int timeout_ms, struct strbuf *in,
                    bool *connected)
{
	char buf[65536];
	ssize_t n;
	size_t off = 0;
	int fd = connect_to(port, timeout_ms), rc = 0;

	*connected = fd >= 0;
	if (fd < 0)
		return errno ? errno : ECONNREFUSED;
	while (off < len) {
		n = send(fd, (const char *)bytes + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		strbuf_add(in, buf, (size_t)n);
	if (n < 0)
		rc = errno == EWOULDBLOCK ? EAGAIN : errno;
	close(fd);
	return rc;
}

void tu_http_raw(int port, const void *bytes, size_t len, struct tu_http_response *out)
{
	struct strbuf in;
	bool connected;
	int rc;

	strbuf_init(&in);
	rc = exchange(port, bytes, len, 30000, &in, &connected);
	ck_assert_msg(connected, "cannot connect to port %d: %s", port, strerror(rc));
	parse_response(&in, out);
	strbuf_free(&in);
}

int tu_http_try(int port, const void *bytes, size_t len, int timeout_ms,
                struct tu_http_response *out)
{
	struct strbuf in;
	bool connected;
	int rc;

	strbuf_init(&in);
	rc = exchange(port, bytes, len, timeout_ms, &in, &connected);
	parse_response(&in, out);
	strbuf_free(&in);
	if (rc == 0 && out->status == 0)
		rc = EPROTO; /* closed without a complete status line and headers */
	return rc;
}

double tu_mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

void tu_http(int port, const char *method, const char *path, const char *headers, const char *body,
             struct tu_http_response *out)
{
	struct strbuf req;

	strbuf_init(&req);
	strbuf_addf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n", method,
	            path, port);
	if (headers)
		strbuf_adds(&req, headers);
	if (body)
		strbuf_addf(&req, "Content-Length: %zu\r\n", strlen(body));
	strbuf_adds(&req, "\r\n");
	if (body)
		strbuf_adds(&req, body);
	tu_http_raw(port, req.data, req.len, out);
	strbuf_free(&req);
}

void tu_tick(void)
{
	struct timespec t = {0, 10 * 1000 * 1000};

	nanosleep(&t, NULL);
}

bool tu_wait_backend(PGconn *c, const char *like, int timeout_ms)
{
	char *sql = xasprintf("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
	                      " AND pid <> pg_backend_pid() AND query LIKE '%s'",
	                      like);
	double deadline = tu_mono_ms() + timeout_ms;
	bool seen;

	while (!(seen = tu_long(c, sql) > 0) && tu_mono_ms() < deadline)
		tu_tick();
	free(sql);
	return seen;
}

char *tu_http_header(const struct tu_http_response *r, const char *name)
{
	return mixload_header(r->head, name);
}

void tu_http_free(struct tu_http_response *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

char *tu_token(const struct tu_odsd *o, const char *role, const char *scope, const char *sub)
{
	struct token_opts t = {.secret_file = o->secret_file,
	                       .role = role,
	                       .scope = scope,
	                       .sub = sub,
	                       .ttl = 3600};
	char err[ODS_ERRLEN];
	char *jwt = NULL;

	ck_assert_msg(token_mint(&t, &jwt, err, sizeof(err)), "%s", err);
	return jwt;
}

char *tu_auth_header(const struct tu_odsd *o, const char *role, const char *scope, const char *sub)
{
	char *t = tu_token(o, role, scope, sub);
	char *h = xasprintf("Authorization: Bearer %s\r\n", t);

	free(t);
	return h;
}

/* odsd connects as ods_authenticator: same host, port and database. */
static char *authenticator_uri(const char *uri)
{
	const char *at = strchr(uri, '@');

	ck_assert_msg(at && strncmp(uri, "postgresql://", 13) == 0, "unexpected URI %s", uri);
	return xasprintf("postgresql://ods_authenticator%s", at);
}

static bool ready(int port)
{
	const char req[] = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct tu_http_response r;
	bool ok = tu_http_try(port, req, sizeof(req) - 1, 30000, &r) == 0 && r.status == 200;

	tu_http_free(&r);
	return ok;
}

struct tu_odsd *tu_odsd_start(const char *db_uri, const char *const *extra_env)
{
	struct tu_odsd *o = xcalloc(1, sizeof(*o));
	const char *odsd = getenv("ODSD"), *top = getenv("ODS_TOP_SRCDIR");
	struct timespec tick = {0, 50 * 1000 * 1000};
	char *auth_uri = authenticator_uri(db_uri);
	int status;

	ck_assert_msg(odsd != NULL, "ODSD is not set");
	o->dir = tu_tmpdir();
	o->db_uri = xstrdup(db_uri);
	o->secret_file =
	        tu_write_file(o->dir, "jwt.secret", "odsd-test-secret-0123456789abcdef", 33);
	o->log_file = xasprintf("%s/odsd.log", o->dir);
	o->port = free_port();
	o->pid = fork();
	ck_assert(o->pid >= 0);
	if (o->pid == 0) {
		char port[16];
		snprintf(port, sizeof(port), "%d", o->port);
		setenv("ODS_LISTEN_PORT", port, 1);
		setenv("ODS_DB_URI", auth_uri, 1);
		setenv("ODS_JWT_SECRET_FILE", o->secret_file, 1);
		setenv("ODS_FRESHNESS_REFRESH_MS", "1000", 1);
		setenv("ODS_LOG_LEVEL", "info", 1);
		if (top) {
			char *spec = xasprintf("%s/openapi.yaml", top);
			setenv("ODS_OPENAPI_FILE", spec, 1);
		}
		for (const char *const *e = extra_env; e && *e; e++)
			putenv((char *)*e);
		if (!freopen(o->log_file, "w", stderr))
			_exit(126);
		execl(odsd, odsd, (char *)NULL);
		_exit(127);
	}
	free(auth_uri);
	/* Ready when /readyz says so: the database answered and the catalogs loaded. */
	for (int i = 0; i < 400; i++) {
		if (ready(o->port))
			return o;
		ck_assert_msg(waitpid(o->pid, &status, WNOHANG) == 0,
		              "odsd exited during start-up; see %s", o->log_file);
		nanosleep(&tick, NULL);
	}
	kill(o->pid, SIGKILL);
	ck_abort_msg("odsd did not become ready within 20 s; see %s", o->log_file);
	return NULL;
}

void tu_odsd_stop(struct tu_odsd *o)
{
	struct timespec tick = {0, 20 * 1000 * 1000};
	int status = 0;
	pid_t got = 0;

	if (!o)
		return;
	kill(o->pid, SIGTERM);
	for (int i = 0; i < 1500 && got == 0; i++) {
		got = waitpid(o->pid, &status, WNOHANG);
		if (got == 0)
			nanosleep(&tick, NULL);
	}
	if (got == 0) {
		kill(o->pid, SIGKILL);
		waitpid(o->pid, &status, 0);
		ck_abort_msg("odsd did not stop within 30 s of SIGTERM; see %s", o->log_file);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char err[ODS_ERRLEN];
		size_t len = 0;
		char *log = util_read_file(o->log_file, &len, err, sizeof(err));
		const char *tail = log && len > 3000 ? log + len - 3000 : log;

		ck_abort_msg("odsd %s %d; the end of its log:\n%s",
		             WIFEXITED(status) ? "exited with status" : "was killed by signal",
		             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
		             tail ? tail : err);
	}
	free(o->dir);
	free(o->db_uri);
	free(o->secret_file);
	free(o->log_file);
	free(o);
}

void tu_kill_orphans(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t self = getpid();

	while (d && (e = readdir(d))) {
		char path[64], buf[512];
		FILE *f;
		int pid = atoi(e->d_name), ppid = 0;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f)) {
			char *rp = strrchr(buf, ')');
			if (rp)
				sscanf(rp + 1, " %*c %d", &ppid);
		}
		fclose(f);
		if (ppid == self && kill(pid, SIGKILL) == 0)
			waitpid(pid, NULL, 0);
	}
	if (d)
		closedir(d);
}
