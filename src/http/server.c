/*
 * server: see server.h for the model. The access handler is called several
 * times per request: first with no body (we allocate the request and check
 * Content-Length), then once per body chunk, then a last time with no data,
 * when we call the application's handler and queue its response.
 */
#include "autoconfig.h"

#include "http/server.h"

#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

/* Past max_body_bytes, a chunked body is discarded up to this much (or the limit). */
#define DISCARD_MIN ((size_t)1024 * 1024)
#define MAX(a, b)   ((a) > (b) ? (a) : (b))

struct http_server {
	struct MHD_Daemon *daemon;
	struct http_server_opts o;
	atomic_int inflight;
	atomic_bool draining; /* after quiesce: every response closes its connection */
	int port;
};

const char *request_header(const struct request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

double request_elapsed_ms(const struct request *req)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - req->start.tv_sec) * 1e3 +
	       (double)(now.tv_nsec - req->start.tv_nsec) / 1e6;
}

/* An incoming id is echoed only when it is short and plain. */
static bool id_acceptable(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-",
		            s[i]))
			return false;
	return true;
}

/* 64 random bits per call from a per-thread xorshift64* seeded by getrandom:
 * ids need to be unique across odsd copies, not secret. */
static uint64_t next_random(void)
{
	static _Thread_local uint64_t state;

	if (state == 0 && (getrandom(&state, sizeof(state), 0) != sizeof(state) || state == 0))
		state = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&state ^ 0x9E3779B97F4A7C15ULL;
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 0x2545F4914F6CDD1DULL;
}

static void set_request_id(struct request *req)
{
	static const char hex[] = "0123456789abcdef";
	const char *in = request_header(req, "Request-Id");
	uint64_t a = next_random(), b = next_random();

	if (!id_acceptable(in))
		in = request_header(req, "X-Request-Id");
	if (id_acceptable(in)) {
		snprintf(req->id, sizeof(req->id), "%s", in);
		return;
	}
	for (int i = 0; i < 16; i++)
		req->id[i] = hex[(a >> (60 - 4 * i)) & 15];
	for (int i = 0; i < 8; i++)
		req->id[16 + i] = hex[(b >> (60 - 4 * i)) & 15];
	req->id[24] = '\0';
}

static enum MHD_Result respond(struct http_server *s, struct request *req)
{
	int status = 500;
	struct MHD_Response *r = s->o.handler(s->o.cls, req, &status);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO; /* out of memory in MHD: drop the connection */
	req->status = status;
	/* Draining: a keep-alive client must not send its next request here. */
	if (atomic_load(&s->draining) && !MHD_get_response_header(r, MHD_HTTP_HEADER_CONNECTION))
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(req->conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

struct framing {
	int n_cl, n_te;
	bool te_chunked, bad_name;
};

/* key starts with name but goes on: "Transfer-Encodingchunked" (see below). */
static bool near_miss(const char *key, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(key, name, n) == 0 && key[n] != '\0';
}

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
	struct framing *f = cls;

	(void)kind;
	if (strpbrk(key, " \t") || near_miss(key, MHD_HTTP_HEADER_CONTENT_LENGTH) ||
	    near_miss(key, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		f->bad_name = true;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		f->n_cl++;
	if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		f->n_te++;
		f->te_chunked = value && strcasecmp(value, "chunked") == 0;
	}
	return MHD_YES;
}

/*
 * RFC 9112 sections 6.1 and 6.3: a request whose body length two parties
 * could read differently is refused (400, then close) rather than guessed:
 * Content-Length and Transfer-Encoding together, Content-Length twice (even
 * with equal values: libmicrohttpd reads only the first), Transfer-Encoding
 * twice or anything but exactly "chunked" (libmicrohttpd would read a
 * "gzip" or "chunked, identity" body as the next request), and a field
 * name with whitespace ("Transfer-Encoding : chunked", which libmicrohttpd
 * keeps under another name while a proxy may read it as the framing).
 * libmicrohttpd 0.9.75 also glues an obs-fold continuation line onto the
 * field NAME ("Transfer-Encoding: identity\r\n chunked" arrives as the field
 * "Transfer-Encodingchunked" = "identity"), so a name that merely starts
 * with Content-Length or Transfer-Encoding is refused as well.
 */
static bool framing_ok(struct MHD_Connection *conn)
{
	struct framing f = {0};

	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
	if (f.bad_name || f.n_cl > 1 || f.n_te > 1 || (f.n_cl && f.n_te))
		return false;
	return f.n_te == 0 || f.te_chunked;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct request *req = *con_cls;

	(void)version;
	if (!req) {
		const char *cl;
		req = xcalloc(1, sizeof(*req));
		*con_cls = req;
		atomic_fetch_add(&s->inflight, 1);
		clock_gettime(CLOCK_MONOTONIC, &req->start);
		req->conn = conn;
		req->path = xstrdup(url);
		snprintf(req->method, sizeof(req->method), "%s", method);
		strbuf_init(&req->body);
		set_request_id(req);
		cl = request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
		/* Ambiguous framing: answered, then the connection closes (no smuggling). */
		if (!framing_ok(conn)) {
			req->bad_framing = true;
			return respond(s, req);
		}
		/* Refuse an announced oversized body before reading any of it. */
		if (cl && strtoull(cl, NULL, 10) > s->o.max_body_bytes) {
			req->body_too_large = true;
			return respond(s, req);
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		/*
		 * Chunked bodies have no length up front. libmicrohttpd 0.9.75 cannot
		 * queue a response in the middle of a body, so past the limit the rest
		 * is discarded, not buffered, and the 413 follows its end; a body that
		 * goes on for another max(max_body_bytes, 1 MiB) gets the connection
		 * dropped, unanswered.
		 */
		if (!req->body_too_large && req->body.len + n > s->o.max_body_bytes) {
			req->body_too_large = true;
			strbuf_free(&req->body);
		}
		if (req->body_too_large) {
			req->discarded += n;
			return req->discarded > MAX(s->o.max_body_bytes, DISCARD_MIN) ? MHD_NO
			                                                              : MHD_YES;
		}
		strbuf_add(&req->body, upload_data, n);
		return MHD_YES;
	}
	if (req->status)
		return MHD_YES; /* answered early (413) */
	return respond(s, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct request *req = *con_cls;

	(void)conn;
	if (!req)
		return;
	if (s->o.completed)
		s->o.completed(s->o.cls, req, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
	if (req->app_cleanup)
		req->app_cleanup(req->app_data);
	strbuf_free(&req->body);
	free(req->path);
	free(req);
	*con_cls = NULL;
	atomic_fetch_sub(&s->inflight, 1);
}

/*
 * Percent-decoding of the path and the query, as libmicrohttpd's default but
 * for %00: a decoded NUL would cut the C string short, so "/a/1%00x" would be
 * served as "/a/1" and "q=a%00b" would bind "a". It becomes 0xFF instead, a
 * byte that is never valid UTF-8: no route template matches it (404) and the
 * parameter binder rejects it (400).
 */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	size_t n = MHD_http_unescape(s);

	(void)cls;
	(void)c;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0')
			s[i] = (char)0xFF;
	return n;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct strbuf sb;

	(void)cls;
	strbuf_init(&sb);
	strbuf_vaddf(&sb, fmt, ap);
	while (sb.len && sb.data[sb.len - 1] == '\n')
		sb.data[--sb.len] = '\0';
	log_debug("http: %s", sb.data ? sb.data : "");
	strbuf_free(&sb);
}

struct http_server *http_server_start(const struct http_server_opts *o, char *err, size_t errlen)
{
	struct sockaddr_in6 a6 = {0};
	struct sockaddr_in a4 = {0};
	struct sockaddr *sa;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	struct http_server *s = xcalloc(1, sizeof(*s));
	const union MHD_DaemonInfo *info;

	s->o = *o;
	if (inet_pton(AF_INET, o->addr, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons((uint16_t)o->port);
		sa = (struct sockaddr *)&a4;
	} else if (inet_pton(AF_INET6, o->addr, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons((uint16_t)o->port);
		sa = (struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		free(s);
		errf(err, errlen, "listen_addr %s is not a numeric IPv4 or IPv6 address", o->addr);
		return NULL;
	}
	flags |= o->threads > 0 ? MHD_USE_EPOLL : MHD_USE_THREAD_PER_CONNECTION;
	s->daemon = MHD_start_daemon(
	        flags, (uint16_t)o->port, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, sa,
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
	        (unsigned)o->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned)o->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	        o->max_header_bytes, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1024 * 1024),
	        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_THREAD_POOL_SIZE,
	        (unsigned)(o->threads > 0 ? o->threads : 0), MHD_OPTION_END);
	if (!s->daemon) {
		errf(err, errlen, "cannot listen on %s port %d: %s", o->addr, o->port,
		     errno ? strerror(errno) : "libmicrohttpd refused the options");
		free(s);
		return NULL;
	}
	info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : o->port;
	return s;
}

int http_server_port(const struct http_server *s)
{
	return s->port;
}

void http_server_quiesce(struct http_server *s)
{
	MHD_socket fd;

	atomic_store(&s->draining, true);
	fd = MHD_quiesce_daemon(s->daemon);

	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

int http_server_inflight(const struct http_server *s)
{
	return atomic_load(&((struct http_server *)s)->inflight);
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->daemon);
	free(s);
}
