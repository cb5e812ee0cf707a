/*
 * hostile HTTP tests (issue 5, item 5): what a hostile or broken client can
 * send, and that odsd answers each with a clean 4xx (or a clean close) and
 * keeps serving. check_http.c already covers NUL bytes in the head, %00,
 * basic bad percent-encoding, one oversized header, CL+TE together and the
 * 413 of an announced or chunked body; this file adds the rest: invalid
 * UTF-8 in bodies, query values and the headers that reach the database,
 * deeply nested JSON, TLS on the plain port, heads that are too large in
 * other ways, bodies that are never sent, and request smuggling shapes.
 *
 * The contract: whenever odsd's handler answers (it always sets Request-Id;
 * libmicrohttpd's own 400/413/431 pages do not, and are HTML because 0.9.75
 * has no hook for them) the answer is application/problem+json. Each test
 * ends by checking that odsd still answers /healthz, and teardown stops it
 * with SIGTERM and asserts exit 0, which fails on any LeakSanitizer report
 * (the suite is built with ASan).
 *
 * Waiting: reads have a deadline (poll); nothing sleeps and hopes.
 */
#include "autoconfig.h"

#include "httptest.h"
#include "testutil.h"

#include "core/util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SCOPES "t:read t:write cases:read cases:write"

static const char fixtures_sql[] =
        "CREATE FUNCTION ods_api.t_echo(id bigint, q text) RETURNS json LANGUAGE sql AS"
        " $$ SELECT json_build_object('id', id, 'q', q) $$;\n"
        "CREATE FUNCTION ods_api.t_body(p_body jsonb) RETURNS json LANGUAGE sql AS"
        " $$ SELECT json_build_object('got', p_body) $$;\n"
        "GRANT EXECUTE ON FUNCTION ods_api.t_echo(bigint, text), ods_api.t_body(jsonb)"
        " TO support_agent;\n"
        "INSERT INTO ods.routes (method, path, function, scope, reads, paged) VALUES"
        " ('GET', '/t/echo/{id}', 'ods_api.t_echo', 't:read', '{}', false),"
        " ('POST', '/t/body', 'ods_api.t_body', 't:write', '{}', false),"
        " ('PATCH', '/t/body', 'ods_api.t_body', 't:write', '{}', false);\n";

static char *db_uri;
static struct tu_odsd *od;
static char *auth; /* Authorization header of the test identity */

static const char *const env_small[] = {"ODS_MAX_BODY_BYTES=4096", "ODS_CONNECTION_TIMEOUT_S=2",
                                        NULL};

static void setup(void)
{
	PGconn *c;

	db_uri = tu_migrated_db();
	c = tu_connect(db_uri);
	tu_exec(c, fixtures_sql);
	PQfinish(c);
	od = tu_odsd_start(db_uri, env_small);
	auth = tu_auth_header(od, "support_agent", SCOPES, "mallory");
}

static void teardown(void)
{
	free(auth);
	tu_odsd_stop(od);
	od = NULL;
	free(db_uri);
}

static int connect_odsd(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)od->port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert(fd >= 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "cannot connect");
	return fd;
}

/*
 * Sends bytes (all it can: the server may stop reading), optionally
 * half-closes, then reads until the server closes or the deadline passes.
 * *closed tells whether the server closed within the deadline.
 */
static void exchange(const void *bytes, size_t len, bool half_close, int deadline_ms,
                     struct tu_http_response *out, bool *closed)
{
	double end = tu_mono_ms() + deadline_ms;
	struct strbuf in;
	char buf[65536];
	size_t off = 0;
	int fd = connect_odsd();
	char *hdr_end;

	strbuf_init(&in);
	while (off < len) {
		ssize_t n = send(fd, (const char *)bytes + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (half_close)
		shutdown(fd, SHUT_WR);
	*closed = false;
	for (;;) {
		int left = (int)(end - tu_mono_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			*closed = true;
			break;
		}
		strbuf_add(&in, buf, (size_t)n);
	}
	close(fd);
	memset(out, 0, sizeof(*out));
	hdr_end = in.data ? strstr(in.data, "\r\n\r\n") : NULL;
	if (hdr_end) {
		out->head = xstrndup(in.data, (size_t)(hdr_end - in.data) + 2);
		out->body_len = in.len - (size_t)(hdr_end + 4 - in.data);
		out->body = xstrndup(hdr_end + 4, out->body_len);
		sscanf(out->head, "HTTP/1.%*d %d", &out->status);
	} else {
		out->head = xstrdup("");
		out->body = xstrdup("");
	}
	strbuf_free(&in);
}

/* A problem+json answer from odsd with this status (and code, when given). */
static void expect_problem(const struct tu_http_response *r, int status, const char *code)
{
	char *ct = tu_http_header(r, "Content-Type"), *rid = tu_http_header(r, "Request-Id");
	json_t *o;

	ck_assert_msg(r->status == status, "status %d, want %d: %s%s", r->status, status, r->head,
	              r->body);
	ck_assert_msg(ct && strcmp(ct, "application/problem+json") == 0,
	              "Content-Type %s, want application/problem+json", ct ? ct : "(none)");
	o = json_loadb(r->body, r->body_len, 0, NULL);
	ck_assert_msg(json_is_object(o), "problem body is not JSON: %s", r->body);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "status")), status);
	if (code)
		ck_assert_str_eq(json_string_value(json_object_get(o, "code")) ?: "", code);
	ck_assert_msg(
	        rid && strcmp(json_string_value(json_object_get(o, "request_id")) ?: "", rid) == 0,
	        "request_id does not match Request-Id");
	json_decref(o);
	free(ct);
	free(rid);
}

/*
 * A clean refusal: no answer at all (the server closed), or a 4xx; when
 * odsd's handler made it (Request-Id set), it is problem+json.
 */
static void expect_refused(const struct tu_http_response *r, const char *what)
{
	char *rid = tu_http_header(r, "Request-Id");

	ck_assert_msg(r->status == 0 || (r->status >= 400 && r->status < 500),
	              "%s: status %d: %s%s", what, r->status, r->head, r->body);
	if (r->status && rid)
		expect_problem(r, r->status, NULL);
	free(rid);
}

static void expect_no_request_id(const struct tu_http_response *r)
{
	char *rid = tu_http_header(r, "Request-Id");

	ck_assert_msg(rid == NULL, "odsd's handler answered %d, not problem+json", r->status);
}

static void expect_alive(void)
{
	struct tu_http_response r;
	int st = 0;

	ck_assert_msg(waitpid(od->pid, &st, WNOHANG) == 0, "odsd died; see %s", od->log_file);
	tu_http(od->port, "GET", "/healthz", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	tu_http_free(&r);
}

static void post_json(const char *method, const char *path, const char *extra, const char *body,
                      size_t len, struct tu_http_response *r)
{
	char *head = xasprintf("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s"
	                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	                       method, path, auth, extra ? extra : "", len);
	struct strbuf req;

	strbuf_init(&req);
	strbuf_adds(&req, head);
	strbuf_add(&req, body, len);
	tu_http_raw(od->port, req.data, req.len, r);
	strbuf_free(&req);
	free(head);
}

/* ---- invalid UTF-8 ---- */

START_TEST(test_body_invalid_utf8)
{
	/* Inside a string value, as a key, and bare outside any string. */
	static const char *const bodies[] = {
	        "{\"a\":\"\xc0\xaf\"}",             /* overlong '/' (2 bytes) */
	        "{\"a\":\"\xe0\x80\xaf\"}",         /* overlong '/' (3 bytes) */
	        "{\"a\":\"\xf0\x80\x80\xaf\"}",     /* overlong '/' (4 bytes) */
	        "{\"a\":\"\xed\xa0\x80\"}",         /* UTF-16 surrogate U+D800 */
	        "{\"a\":\"\xed\xbf\xbf\"}",         /* UTF-16 surrogate U+DFFF */
	        "{\"a\":\"\xf4\x90\x80\x80\"}",     /* above U+10FFFF */
	        "{\"a\":\"\xf8\x88\x80\x80\x80\"}", /* 5-byte form */
	        "{\"a\":\"x\xe2\x82\"}",            /* truncated 3-byte sequence */
	        "{\"a\":\"\xff\"}",                 /* never valid */
	        "{\"a\":\"\x80\"}",                 /* lone continuation byte */
	        "{\"\xfe\":1}",                     /* in a key */
	        "[1,2]\xe2\x82",                    /* truncated at the very end */
	};
	struct tu_http_response r;

	for (size_t i = 0; i < ODS_ARRAY_LEN(bodies); i++) {
		post_json("POST", "/t/body", NULL, bodies[i], strlen(bodies[i]), &r);
		expect_problem(&r, 400, "malformed_json");
		tu_http_free(&r);
	}
	/* Valid multi-byte UTF-8 at the edges still passes. */
	{
		static const char edges[] = "{\"a\":\"\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\"}";
		post_json("POST", "/t/body", NULL, edges, sizeof(edges) - 1, &r);
	}
	ck_assert_msg(r.status == 200, "valid UTF-8: %d %s", r.status, r.body);
	tu_http_free(&r);
	/* JSON escapes of lone surrogates and of NUL: refused before PostgreSQL. */
	post_json("POST", "/t/body", NULL, "{\"a\":\"\\ud800\"}", 14, &r);
	expect_problem(&r, 400, "malformed_json");
	tu_http_free(&r);
	post_json("POST", "/t/body", NULL, "{\"a\":\"\\u0000\"}", 14, &r);
	expect_problem(&r, 400, "malformed_json");
	tu_http_free(&r);
	expect_alive();
}
END_TEST

START_TEST(test_query_and_path_invalid_utf8)
{
	static const char *const paths[] = {
	        "/t/echo/1?q=%C0%AF",   "/t/echo/1?q=%ED%A0%80", "/t/echo/1?q=%E2%82",
	        "/t/echo/1?q=%FF",      "/t/echo/1?%FF=1",       "/t/echo/1?q=\xc0\xaf",
	        "/t/echo/1?q=a\xff",    "/t/echo/%C0%AF",        "/t/echo/\xff",
	        "/v1/cases?status=%FF", "/v1/cases/%ED%A0%80",
	};
	struct tu_http_response r;

	for (size_t i = 0; i < ODS_ARRAY_LEN(paths); i++) {
		tu_http(od->port, "GET", paths[i], auth, NULL, &r);
		ck_assert_msg(r.status == 400 || r.status == 404, "GET %s: %d %s", paths[i],
		              r.status, r.body);
		expect_problem(&r, r.status, NULL);
		tu_http_free(&r);
	}
	/* Percent-encoding shapes that decode to nothing harmful: a literal "%" stays. */
	tu_http(od->port, "GET", "/t/echo/1?q=%25%30%30", auth, NULL, &r);
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"q\" : \"%00\""), "%d %s", r.status,
	              r.body);
	tu_http_free(&r);
	static const char *const bad_escapes[] = {"/t/echo/1%", "/t/echo/1%G0", "/t/echo/%%31",
	                                          "/t/echo/1?q=%", "/t/echo/1?q%=1"};
	for (size_t i = 0; i < ODS_ARRAY_LEN(bad_escapes); i++) {
		tu_http(od->port, "GET", bad_escapes[i], auth, NULL, &r);
		ck_assert_msg(r.status == 200 || (r.status >= 400 && r.status < 500),
		              "GET %s: %d %s", bad_escapes[i], r.status, r.body);
		if (r.status >= 400)
			expect_problem(&r, r.status, NULL);
		tu_http_free(&r);
	}
	expect_alive();
}
END_TEST

/* Headers whose values go to PostgreSQL as parameters: never a 500. */
START_TEST(test_db_headers_invalid_utf8)
{
	static const char *const keys[] = {
	        "Idempotency-Key: \xff\xfe\r\n",     "Idempotency-Key: k\xc0\xaf\r\n",
	        "Idempotency-Key: \xed\xa0\x80\r\n", "Idempotency-Key: \"\xe2\x82\"\r\n",
	        "Idempotency-Key: a\x01z\r\n",
	};
	static const char *const tags[] = {
	        "If-Match: \"\xff\"\r\n",
	        "If-Match: \xc0\xaf\r\n",
	        "If-Match: \"\xed\xa0\x80\"\r\n",
	        "If-Match: W/\"\xff\"\r\n",
	};
	const char *body = "{\"customer_id\":1,\"subject\":\"hostile\"}";
	struct tu_http_response r;

	for (size_t i = 0; i < ODS_ARRAY_LEN(keys); i++) {
		post_json("POST", "/v1/cases", keys[i], body, strlen(body), &r);
		expect_problem(&r, 400, "bad_request");
		tu_http_free(&r);
	}
	for (size_t i = 0; i < ODS_ARRAY_LEN(tags); i++) {
		post_json("PATCH", "/v1/cases/00000000-0000-4000-8000-000000000000", tags[i],
		          "{\"status\":\"open\"}", 17, &r);
		ck_assert_msg(r.status == 400 || r.status == 412, "%s: %d %s", tags[i], r.status,
		              r.body);
		expect_problem(&r, r.status, NULL);
		tu_http_free(&r);
	}
	/* A key that is plain but odd reaches the database as a parameter: no 500. */
	post_json("POST", "/v1/cases", "Idempotency-Key: '); DROP TABLE x; --\r\n", body,
	          strlen(body), &r);
	ck_assert_msg(r.status >= 200 && r.status < 500, "%d %s", r.status, r.body);
	if (r.status >= 400)
		expect_problem(&r, r.status, NULL);
	tu_http_free(&r);
	/* Invalid UTF-8 in the Authorization header and in Request-Id. */
	tu_http(od->port, "GET", "/t/echo/1", "Authorization: Bearer \xff\xfe.\xc0\xaf.x\r\n", NULL,
	        &r);
	expect_problem(&r, 401, "unauthorized");
	tu_http_free(&r);
	{
		char *h = xasprintf("%sRequest-Id: \xff\xc0\xaf\r\n", auth);
		tu_http(od->port, "GET", "/t/echo/1", h, NULL, &r);
		ck_assert_int_eq(r.status, 200);
		char *rid = tu_http_header(&r, "Request-Id");
		ck_assert_msg(rid && strlen(rid) == 24, "Request-Id %s", rid ? rid : "(none)");
		free(rid);
		tu_http_free(&r);
		free(h);
	}
	expect_alive();
}
END_TEST

/* ---- deeply nested JSON ---- */

static char *repeat(const char *unit, size_t times, const char *tail_unit)
{
	struct strbuf sb;

	strbuf_init(&sb);
	for (size_t i = 0; i < times; i++)
		strbuf_adds(&sb, unit);
	for (size_t i = 0; tail_unit && i < times; i++)
		strbuf_adds(&sb, tail_unit);
	return strbuf_detach(&sb);
}

static const char *const env_big_body[] = {"ODS_MAX_BODY_BYTES=1048576", NULL};

START_TEST(test_deep_nesting)
{
	struct tu_http_response r;
	char *b;

	/* This test needs the default 1 MiB limit: restart odsd with it. */
	free(auth);
	tu_odsd_stop(od);
	od = tu_odsd_start(db_uri, env_big_body);
	auth = tu_auth_header(od, "support_agent", SCOPES, "mallory");

	struct {
		const char *unit, *tail;
		size_t times;
	} shapes[] = {
	        {"[", NULL, 100000},       /* unterminated */
	        {"[", "]", 100000},        /* balanced */
	        {"{\"a\":", "}", 100000},  /* objects */
	        {"{\"a\":[", "]}", 50000}, /* a mix */
	        {"[", "]", 5000},          /* deeper than the parser's limit, but small */
	};
	for (size_t i = 0; i < ODS_ARRAY_LEN(shapes); i++) {
		b = repeat(shapes[i].unit, shapes[i].times, shapes[i].tail);
		ck_assert_uint_le(strlen(b), 1048576);
		post_json("POST", "/t/body", NULL, b, strlen(b), &r);
		expect_problem(&r, 400, "malformed_json");
		tu_http_free(&r);
		free(b);
		expect_alive();
	}
	/* Nesting within the limit is accepted and reaches PostgreSQL intact. */
	b = repeat("[", 500, "]");
	post_json("POST", "/t/body", NULL, b, strlen(b), &r);
	ck_assert_msg(r.status == 200, "500 levels: %d %.200s", r.status, r.body);
	tu_http_free(&r);
	free(b);
	expect_alive();
}
END_TEST

/* ---- not HTTP at all ---- */

/* The start of a TLS 1.2 ClientHello (record header, handshake header, random, suites). */
static const unsigned char client_hello[] = {
        0x16, 0x03, 0x01, 0x00, 0x31, 0x01, 0x00, 0x00, 0x2d, 0x03, 0x03, 0x5a, 0x1b, 0xc3,
        0x8e, 0x0f, 0x44, 0x21, 0x99, 0x73, 0x02, 0xaa, 0x4d, 0x10, 0xe0, 0x9c, 0x7b, 0x66,
        0x18, 0x31, 0xfe, 0x00, 0x0d, 0x0a, 0x77, 0x2c, 0x51, 0x83, 0x6e, 0x90, 0x12, 0xbb,
        0x4f, 0x00, 0x00, 0x04, 0xc0, 0x2f, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x00};

START_TEST(test_tls_on_plain_port)
{
	struct tu_http_response r;
	bool closed;
	double t0;

	/* The client waits for a ServerHello: odsd closes (timeout) or refuses. */
	t0 = tu_mono_ms();
	exchange(client_hello, sizeof(client_hello), false, 10000, &r, &closed);
	ck_assert_msg(closed, "odsd kept the TLS connection open for %.0f ms", tu_mono_ms() - t0);
	expect_refused(&r, "ClientHello");
	tu_http_free(&r);
	/* The client gives up its side: a clean close or a 4xx, at once. */
	exchange(client_hello, sizeof(client_hello), true, 5000, &r, &closed);
	ck_assert_msg(closed, "no close after a half-closed ClientHello");
	expect_refused(&r, "half-closed ClientHello");
	tu_http_free(&r);
	/* Binary garbage ending in CRLFs, and an HTTP/2 preface. */
	{
		static const char garbage[] = "\x16\x03\x01\xff\xfe\r\n\x00\x01\x02\r\n\r\n";
		static const char h2[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
		exchange(garbage, sizeof(garbage) - 1, true, 5000, &r, &closed);
		ck_assert(closed);
		expect_refused(&r, "garbage");
		tu_http_free(&r);
		/* libmicrohttpd's own 505 page (no Request-Id: not odsd's handler). */
		exchange(h2, sizeof(h2) - 1, true, 5000, &r, &closed);
		ck_assert(closed);
		ck_assert_msg(r.status == 505 || r.status == 0 ||
		                      (r.status >= 400 && r.status < 500),
		              "HTTP/2 preface: %d", r.status);
		if (r.status == 505)
			expect_no_request_id(&r);
		else
			expect_refused(&r, "HTTP/2 preface");
		tu_http_free(&r);
	}
	expect_alive();
}
END_TEST

/* ---- heads that are too large ---- */

START_TEST(test_oversized_heads)
{
	struct tu_http_response r;
	struct strbuf b;
	bool closed;

	/* Many small headers, 64 KiB in all (max_header_bytes is 32 KiB). */
	strbuf_init(&b);
	strbuf_adds(&b, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 4000; i++)
		strbuf_addf(&b, "X-%d: abcdefgh\r\n", i);
	strbuf_adds(&b, "Connection: close\r\n\r\n");
	exchange(b.data, b.len, true, 10000, &r, &closed);
	ck_assert_msg(closed && (r.status == 431 || r.status == 0), "many headers: %d", r.status);
	tu_http_free(&r);
	strbuf_free(&b);
	/* A 64 KiB request target. */
	strbuf_init(&b);
	strbuf_adds(&b, "GET /t/echo/1?q=");
	for (int i = 0; i < 65536; i++)
		strbuf_addc(&b, 'a');
	strbuf_adds(&b, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	exchange(b.data, b.len, true, 10000, &r, &closed);
	ck_assert_msg(closed && (r.status == 414 || r.status == 431 || r.status == 0),
	              "long target: %d", r.status);
	tu_http_free(&r);
	strbuf_free(&b);
	/* A head that never ends: closed by the connection timeout (2 s here). */
	strbuf_init(&b);
	strbuf_adds(&b, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
	exchange(b.data, b.len, false, 10000, &r, &closed);
	ck_assert_msg(closed, "a never-ending head kept the connection open");
	ck_assert_msg(r.status == 0 || r.status == 408 || r.status == 400, "slow head: %d",
	              r.status);
	tu_http_free(&r);
	strbuf_free(&b);
	expect_alive();
}
END_TEST

/* ---- bodies over max_body_bytes (4 KiB here) ---- */

/* Announces a huge body and sends none of it: the 413 must come anyway. */
static void announced_but_unsent(const char *method, const char *path)
{
	struct tu_http_response r;
	bool closed;
	char *req = xasprintf("%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
	                      "Content-Length: 1000000000\r\n\r\n{\"a\":",
	                      method, path, auth);

	exchange(req, strlen(req), false, 5000, &r, &closed);
	expect_problem(&r, 413, "payload_too_large");
	ck_assert_msg(closed, "%s %s: the connection stayed open after the 413", method, path);
	tu_http_free(&r);
	free(req);
}

START_TEST(test_body_over_limit_not_read)
{
	struct tu_http_response r;
	struct strbuf b;
	bool closed;

	announced_but_unsent("POST", "/t/body");
	announced_but_unsent("PATCH", "/t/body");
	announced_but_unsent("POST", "/v1/cases");
	announced_but_unsent("POST", "/no/such/route");

	/*
	 * Chunked: no length up front, and libmicrohttpd 0.9.75 cannot answer in
	 * the middle of a body. 8 KiB that end: discarded, then 413. A body that
	 * goes on for another 1 MiB: the connection is dropped, unanswered.
	 */
	strbuf_init(&b);
	strbuf_addf(&b,
	            "POST /t/body HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
	            "Transfer-Encoding: chunked\r\n\r\n",
	            auth);
	for (int i = 0; i < 8; i++) {
		strbuf_adds(&b, "400\r\n");
		for (int k = 0; k < 0x400; k++)
			strbuf_addc(&b, 'x');
		strbuf_adds(&b, "\r\n");
	}
	{
		size_t unfinished = b.len;
		strbuf_adds(&b, "0\r\n\r\n");
		exchange(b.data, b.len, false, 5000, &r, &closed);
		expect_problem(&r, 413, "payload_too_large");
		ck_assert_msg(closed, "the connection stayed open after a chunked 413");
		tu_http_free(&r);
		b.len = unfinished;
	}
	for (int i = 0; i < 1100; i++) {
		strbuf_adds(&b, "400\r\n");
		for (int k = 0; k < 0x400; k++)
			strbuf_addc(&b, 'x');
		strbuf_adds(&b, "\r\n");
	}
	exchange(b.data, b.len, false, 5000, &r, &closed);
	ck_assert_msg(closed, "an endless chunked body kept the connection open");
	ck_assert_msg(r.status == 0, "endless chunked body: %d", r.status);
	tu_http_free(&r);
	strbuf_free(&b);

	/* A Content-Length that does not parse or overflows. */
	static const char *const lengths[] = {"99999999999999999999999", "-1", "0x10", "1e9",
	                                      "12, 12"};
	for (size_t i = 0; i < ODS_ARRAY_LEN(lengths); i++) {
		char *req = xasprintf("POST /t/body HTTP/1.1\r\nHost: x\r\n%sContent-Type: "
		                      "application/json\r\nContent-Length: %s\r\n\r\n{}",
		                      auth, lengths[i]);
		exchange(req, strlen(req), true, 5000, &r, &closed);
		ck_assert_msg(closed, "Content-Length %s: no close", lengths[i]);
		ck_assert_msg(r.status == 0 || r.status == 400 || r.status == 413,
		              "Content-Length %s: %d %s", lengths[i], r.status, r.body);
		expect_refused(&r, lengths[i]);
		tu_http_free(&r);
		free(req);
	}
	expect_alive();
}
END_TEST

/* ---- clients that go away ---- */

/* Sends bytes and closes at once, without reading. */
static void send_and_vanish(const char *bytes, bool reset)
{
	int fd = connect_odsd();
	struct linger lg = {1, 0};

	ck_assert(send(fd, bytes, strlen(bytes), MSG_NOSIGNAL) == (ssize_t)strlen(bytes));
	if (reset) /* RST instead of FIN */
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/*
 * A request that ends before odsd's handler runs (the client left in the
 * middle of the head or the body) still goes through the completion
 * callback: it must be counted and freed, not crash on its missing route.
 */
START_TEST(test_client_aborts)
{
	char *mid_body = xasprintf("POST /t/body HTTP/1.1\r\nHost: x\r\n%sContent-Type: "
	                           "application/json\r\nContent-Length: 100\r\n\r\n{\"a\":",
	                           auth);
	char *mid_chunk = xasprintf("POST /t/body HTTP/1.1\r\nHost: x\r\n%sContent-Type: "
	                            "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
	                            "10\r\n{\"a\":",
	                            auth);
	char *last = NULL;
	struct tu_http_response r;
	double deadline;
	bool counted = false;

	for (int i = 0; i < 10; i++) {
		send_and_vanish("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ", i % 2);
		send_and_vanish(mid_body, i % 2);
		send_and_vanish(mid_chunk, i % 2);
	}
	/* Each aborted body is counted under the "unanswered" route once it is freed. */
	deadline = tu_mono_ms() + 5000;
	while (!counted && tu_mono_ms() < deadline) {
		tu_http(od->port, "GET", "/metrics", NULL, NULL, &r);
		ck_assert_int_eq(r.status, 200);
		counted =
		        strstr(r.body, "ods_http_requests_total{route=\"unanswered\",status=\"0\"}"
		                       " 20\n") != NULL;
		if (!counted)
			free(last), last = xstrdup(r.body);
		tu_http_free(&r);
	}
	ck_assert_msg(counted, "20 aborted requests not counted in /metrics:\n%s", last);
	free(last);
	free(mid_body);
	free(mid_chunk);
	expect_alive();
}
END_TEST

/* ---- request smuggling ---- */

/*
 * Each shape frames a body ambiguously and hides "GET /t/echo/4242" after it.
 * Whatever odsd makes of the framing, the hidden request must never run, and
 * a refusal must be clean.
 */
START_TEST(test_smuggling_shapes)
{
	static const char *const shapes[] = {
	        /* two different lengths */
	        "Content-Length: 4\r\nContent-Length: 40\r\n\r\n{}  ",
	        /* a list in one length */
	        "Content-Length: 4, 40\r\n\r\n{}  ",
	        /* chunked not last, an unknown coding, an obfuscated name and value */
	        "Transfer-Encoding: chunked, identity\r\nContent-Length: 4\r\n\r\n{}  ",
	        "Transfer-Encoding: gzip\r\n\r\n{}  ",
	        "Transfer-Encoding: xchunked\r\n\r\n{}  ",
	        "Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n{}  ",
	        "Transfer-Encoding:\tchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
	        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
	        /* obs-fold continuation line */
	        "Transfer-Encoding: identity\r\n chunked\r\nContent-Length: 4\r\n\r\n{}  ",
	        /* a chunk size that overflows, and one with garbage */
	        "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff1\r\n{}\r\n0\r\n\r\n",
	        "Transfer-Encoding: chunked\r\n\r\n2;\r\nx\r\n{}\r\n0\r\n\r\n",
	        "Transfer-Encoding: chunked\r\n\r\n2\r\n{}0\r\n\r\n",
	};
	struct tu_http_response r;
	bool closed;

	for (size_t i = 0; i < ODS_ARRAY_LEN(shapes); i++) {
		char *req = xasprintf(
		        "POST /t/body HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n%s"
		        "GET /t/echo/4242 HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n",
		        auth, shapes[i], auth);
		exchange(req, strlen(req), true, 5000, &r, &closed);
		ck_assert_msg(closed, "shape %zu: the connection did not close", i);
		ck_assert_msg(!strstr(r.body, "\"id\" : 4242"),
		              "shape %zu: the hidden request ran:\n%s%s", i, r.head, r.body);
		ck_assert_msg(r.status == 0 || r.status == 200 ||
		                      (r.status >= 400 && r.status < 500),
		              "shape %zu: status %d", i, r.status);
		if (r.status >= 400)
			expect_refused(&r, shapes[i]);
		tu_http_free(&r);
		free(req);
	}
	expect_alive();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("hostile");
	int rc;

#ifdef PR_SET_CHILD_SUBREAPER
	prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_body_invalid_utf8);
	tcase_add_test(tc, test_query_and_path_invalid_utf8);
	tcase_add_test(tc, test_db_headers_invalid_utf8);
	tcase_add_test(tc, test_deep_nesting);
	tcase_add_test(tc, test_tls_on_plain_port);
	tcase_add_test(tc, test_oversized_heads);
	tcase_add_test(tc, test_body_over_limit_not_read);
	tcase_add_test(tc, test_smuggling_shapes);
	tcase_add_test(tc, test_client_aborts);
	suite_add_tcase(s, tc);
	rc = tu_run_suite(s);
	tu_kill_orphans();
	return rc;
}
