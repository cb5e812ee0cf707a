/*
 * mixload: see mixload.h. Each worker thread owns one keep-alive connection
 * (reopened when the server closes it) and a quota of requests; it draws
 * "scenarios" at random, each one to three requests whose later steps use
 * what the earlier ones returned (an ETag, a Location, a Link cursor).
 * Answers are parsed just enough to check them: status, Content-Length,
 * Connection, ETag, Location, Link, Content-Type and Request-Id.
 */
#include "autoconfig.h"

#include "mixload.h"

#include "admin/token.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NIDS 32

/* What the scenarios need from the database and the tokens they use. */
struct fixtures {
	long long customers[NIDS], orders[NIDS], work_orders[NIDS];
	char stores[NIDS][64], skus[NIDS][64];
	int ncustomers, norders, nwork_orders, nstock;
	/* "Authorization: Bearer ...\r\n" headers */
	char *agent, *agent_narrow, *analyst, *ops, *dispatcher, *sync;
	long long ingest_base; /* new customer ids for ingest start here */
	long long lsn_base;
};

struct response {
	int status;
	char *head, *body;
	size_t body_len;
};

struct worker {
	pthread_t th;
	int id, port, quota, sent;
	unsigned seed;
	int fd; /* keep-alive connection, -1 when none */
	const struct fixtures *fx;
	long status[MIXLOAD_MAX_STATUS];
	long aborted, unexpected;
	char first_unexpected[512];
	long long next_ingest, serial;
};

static double mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- fixtures ---- */

static bool query_ids(PGconn *c, const char *sql, long long *ids, int *n, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0) {
		errf(err, errlen, "%s: %s", sql,
		     PQresultStatus(r) == PGRES_TUPLES_OK ? "no rows (demo data loaded?)"
		                                          : PQerrorMessage(c));
		PQclear(r);
		return false;
	}
	*n = PQntuples(r) < NIDS ? PQntuples(r) : NIDS;
	for (int i = 0; i < *n; i++)
		ids[i] = atoll(PQgetvalue(r, i, 0));
	PQclear(r);
	return true;
}

static char *auth(const char *secret, const char *role, const char *scope, const char *sub,
                  const char *region, char *err, size_t errlen)
{
	char *claim = region ? xasprintf("region=%s", region) : NULL;
	const char *claims[1] = {claim};
	struct token_opts t = {.secret_file = secret,
	                       .role = role,
	                       .scope = scope,
	                       .sub = sub,
	                       .ttl = 7200,
	                       .claims = claims,
	                       .nclaims = claim ? 1 : 0};
	char *jwt = NULL, *h = NULL;

	if (token_mint(&t, &jwt, err, errlen))
		h = xasprintf("Authorization: Bearer %s\r\n", jwt);
	free(jwt);
	free(claim);
	return h;
}

static bool load_fixtures(const struct mixload_opts *o, struct fixtures *fx, char *err,
                          size_t errlen)
{
	PGconn *c = PQconnectdb(o->db_uri);
	PGresult *r;
	char region[64] = "north";
	bool ok = false;

	if (PQstatus(c) != CONNECTION_OK) {
		errf(err, errlen, "cannot connect to %s: %s", o->db_uri, PQerrorMessage(c));
		PQfinish(c);
		return false;
	}
	if (!query_ids(c, "SELECT customer_id FROM synced.customer_current ORDER BY 1 LIMIT 32",
	               fx->customers, &fx->ncustomers, err, errlen) ||
	    !query_ids(c, "SELECT order_id FROM synced.order_current ORDER BY 1 LIMIT 32",
	               fx->orders, &fx->norders, err, errlen) ||
	    !query_ids(c, "SELECT work_order_id FROM synced.work_order_current ORDER BY 1 LIMIT 32",
	               fx->work_orders, &fx->nwork_orders, err, errlen))
		goto out;
	r = PQexec(c, "SELECT store_id, sku FROM synced.inventory_position ORDER BY 1, 2 LIMIT 32");
	fx->nstock = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
	for (int i = 0; i < fx->nstock; i++) {
		snprintf(fx->stores[i], sizeof(fx->stores[i]), "%s", PQgetvalue(r, i, 0));
		snprintf(fx->skus[i], sizeof(fx->skus[i]), "%s", PQgetvalue(r, i, 1));
	}
	PQclear(r);
	if (fx->nstock == 0) {
		errf(err, errlen, "no rows in synced.inventory_position (demo data loaded?)");
		goto out;
	}
	r = PQexec(c, "SELECT region FROM native.fraud_cases GROUP BY 1 ORDER BY count(*) DESC"
	              " LIMIT 1");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		snprintf(region, sizeof(region), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	r = PQexec(c,
	           "SELECT coalesce(max(customer_id), 0) + 1000000 FROM synced.customer_current");
	fx->ingest_base = PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	fx->lsn_base = (long long)time(NULL) * 1000000LL;
	fx->agent = auth(o->secret_file, "support_agent",
	                 "customers:read cases:read cases:write orders:read fraud:read",
	                 "mix-agent", NULL, err, errlen);
	fx->agent_narrow = auth(o->secret_file, "support_agent", "customers:read", "mix-narrow",
	                        NULL, err, errlen);
	fx->analyst = auth(o->secret_file, "fraud_analyst", "customers:read fraud:read",
	                   "mix-analyst", region, err, errlen);
	fx->ops =
	        auth(o->secret_file, "ops_manager", "inventory:read", "mix-ops", NULL, err, errlen);
	fx->dispatcher = auth(o->secret_file, "field_dispatcher", "workorders:read", "mix-disp",
	                      NULL, err, errlen);
	fx->sync = auth(o->secret_file, "ods_sync", "ingest:write", "mix-sync", NULL, err, errlen);
	ok = fx->ingest_base > 0 && fx->agent && fx->agent_narrow && fx->analyst && fx->ops &&
	     fx->dispatcher && fx->sync;
out:
	PQfinish(c);
	return ok;
}

static void fixtures_free(struct fixtures *fx)
{
	free(fx->agent);
	free(fx->agent_narrow);
	free(fx->analyst);
	free(fx->ops);
	free(fx->dispatcher);
	free(fx->sync);
}

/* ---- one HTTP/1.1 exchange on the worker's connection ---- */

static int dial(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {30, 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void drop(struct worker *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

static bool send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

char *mixload_header(const char *head, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2;
		if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
			const char *v = line + n + 1, *e = strstr(v, "\r\n");
			while (*v == ' ')
				v++;
			return xstrndup(v, e ? (size_t)(e - v) : strlen(v));
		}
	}
	return NULL;
}

/* Reads one answer; false when the connection failed before a whole one came. */
static bool read_response(int fd, bool head_only, struct response *r)
{
	struct strbuf in;
	char buf[16384], *end = NULL, *cl, *conn;
	size_t need = 0, hlen;
	bool until_eof = false, ok = true;
	ssize_t n;

	strbuf_init(&in);
	while (!end) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			strbuf_free(&in);
			return false;
		}
		strbuf_add(&in, buf, (size_t)n);
		end = strstr(in.data, "\r\n\r\n");
	}
	hlen = (size_t)(end - in.data) + 4;
	r->head = xstrndup(in.data, hlen - 2);
	if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
		r->status = 0;
	cl = mixload_header(r->head, "Content-Length");
	if (head_only || r->status == 204 || r->status == 304 || r->status < 200)
		need = 0;
	else if (cl)
		need = (size_t)strtoull(cl, NULL, 10);
	else
		until_eof = true;
	free(cl);
	while (in.len - hlen < need || until_eof) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			ok = until_eof;
			break;
		}
		strbuf_add(&in, buf, (size_t)n);
	}
	r->body_len = in.len - hlen;
	if (!until_eof && r->body_len > need)
		r->body_len = need; /* a pipelined extra answer is not ours */
	r->body = xstrndup(in.data + hlen, r->body_len);
	conn = mixload_header(r->head, "Connection");
	if (until_eof || (conn && strcasecmp(conn, "close") == 0))
		r->status = -r->status; /* marks "the server closes"; undone by the caller */
	free(conn);
	strbuf_free(&in);
	return ok;
}

static void response_free(struct response *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/*
 * Sends one request on the keep-alive connection and reads its answer. A
 * reused connection the server closed meanwhile is retried once on a fresh
 * one; r->status 0 when no answer came at all.
 */
static void exchange(struct worker *w, const char *method, const char *path, const char *headers,
                     const char *body, struct response *r)
{
	struct strbuf req;
	bool head_only = strcmp(method, "HEAD") == 0;

	memset(r, 0, sizeof(*r));
	strbuf_init(&req);
	strbuf_addf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", method, path,
	            headers ? headers : "");
	if (body)
		strbuf_addf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
		            strlen(body));
	strbuf_adds(&req, "\r\n");
	if (body)
		strbuf_adds(&req, body);
	for (int attempt = 0; attempt < 2; attempt++) {
		bool fresh = w->fd < 0;
		if (fresh)
			w->fd = dial(w->port);
		if (w->fd >= 0 && send_all(w->fd, req.data, req.len) &&
		    read_response(w->fd, head_only, r))
			break;
		response_free(r);
		drop(w);
		if (fresh)
			break;
	}
	if (r->status < 0) {
		r->status = -r->status;
		drop(w);
	}
	if (!r->head) {
		r->head = xstrdup("");
		r->body = xstrdup("");
	}
	strbuf_free(&req);
}

/* ---- checking answers ---- */

static void count(struct worker *w, int status)
{
	w->sent++;
	w->status[status >= 0 && status < MIXLOAD_MAX_STATUS ? status : 0]++;
}

/*
 * Counts the answer and checks it: its status is one of the allowed (a
 * 0-terminated list), and an error odsd's handler made (Request-Id set) is
 * problem+json. Returns whether it was as expected.
 */
static bool expect(struct worker *w, const char *what, const struct response *r, ...)
{
	va_list ap;
	int s;
	bool ok = false;
	char *ct = NULL, *rid = NULL;

	count(w, r->status);
	va_start(ap, r);
	while ((s = va_arg(ap, int)) != 0)
		ok = ok || s == r->status;
	va_end(ap);
	if (ok && r->status >= 400) {
		rid = mixload_header(r->head, "Request-Id");
		ct = mixload_header(r->head, "Content-Type");
		ok = !rid || (ct && strcmp(ct, "application/problem+json") == 0);
	}
	if (!ok) {
		if (w->unexpected++ == 0)
			snprintf(w->first_unexpected, sizeof(w->first_unexpected),
			         "%s: status %d, Content-Type %s: %.300s", what, r->status,
			         ct ? ct : "-", r->body);
	}
	free(ct);
	free(rid);
	return ok;
}

static int pick(struct worker *w, int n)
{
	return (int)(rand_r(&w->seed) % (unsigned)n);
}

/* The path part of a Link: <path>; rel="next" header, or NULL. */
static char *next_link(const struct response *r)
{
	char *link = mixload_header(r->head, "Link"), *path = NULL;

	if (link && link[0] == '<' && strchr(link, '>'))
		path = xstrndup(link + 1, (size_t)(strchr(link, '>') - link - 1));
	free(link);
	return path;
}

/* ---- scenarios: each sends 1 to 3 requests ---- */

static void s_reads(struct worker *w)
{
	const struct fixtures *fx = w->fx;
	struct response r;
	char path[256];
	int k = pick(w, fx->nstock);

	switch (pick(w, 7)) {
	case 0:
		snprintf(path, sizeof(path), "/v1/customers/%lld",
		         fx->customers[pick(w, fx->ncustomers)]);
		exchange(w, "GET", path, fx->agent, NULL, &r);
		expect(w, path, &r, 200, 0);
		break;
	case 1:
		snprintf(path, sizeof(path), "/v1/customers/%lld", fx->ingest_base * 10);
		exchange(w, "GET", path, fx->agent, NULL, &r);
		expect(w, "missing customer", &r, 404, 0);
		break;
	case 2:
		snprintf(path, sizeof(path), "/v1/orders/%lld", fx->orders[pick(w, fx->norders)]);
		exchange(w, "GET", path, fx->agent, NULL, &r);
		expect(w, path, &r, 200, 0);
		break;
	case 3:
		snprintf(path, sizeof(path), "/v1/inventory/%s/%s", fx->stores[k], fx->skus[k]);
		exchange(w, "GET", path, fx->ops, NULL, &r);
		expect(w, path, &r, 200, 0);
		break;
	case 4:
		snprintf(path, sizeof(path), "/v1/work-orders/%lld",
		         fx->work_orders[pick(w, fx->nwork_orders)]);
		exchange(w, "GET", path, fx->dispatcher, NULL, &r);
		expect(w, path, &r, 200, 0);
		break;
	case 5:
		exchange(w, "GET", "/v1/freshness", fx->analyst, NULL, &r);
		expect(w, "freshness", &r, 200, 0);
		break;
	default:
		snprintf(path, sizeof(path), "/v1/customers/%lld",
		         fx->customers[pick(w, fx->ncustomers)]);
		exchange(w, "GET", path, fx->analyst, NULL, &r);
		expect(w, "customer as analyst", &r, 200, 0);
		break;
	}
	response_free(&r);
}

/* A list and its next page through the Link cursor. */
static void s_paging(struct worker *w)
{
	const struct fixtures *fx = w->fx;
	struct response r;
	char path[256], *next;
	const char *who = fx->agent;

	switch (pick(w, 3)) {
	case 0:
		snprintf(path, sizeof(path), "/v1/customers/%lld/cases?limit=1",
		         fx->customers[pick(w, fx->ncustomers)]);
		break;
	case 1:
		snprintf(path, sizeof(path), "/v1/cases?limit=2&status=open");
		break;
	default:
		snprintf(path, sizeof(path), "/v1/fraud/queue?limit=2");
		who = fx->analyst;
		break;
	}
	exchange(w, "GET", path, who, NULL, &r);
	expect(w, path, &r, 200, 0);
	next = next_link(&r);
	response_free(&r);
	if (next && w->sent < w->quota) {
		exchange(w, "GET", next, who, NULL, &r);
		expect(w, "next page", &r, 200, 0);
		response_free(&r);
	}
	free(next);
}

/* A read, then the same read with its ETag: 304. */
static void s_not_modified(struct worker *w)
{
	const struct fixtures *fx = w->fx;
	struct response r;
	char path[128], *etag, *inm;

	snprintf(path, sizeof(path), "/v1/orders/%lld", fx->orders[pick(w, fx->norders)]);
	exchange(w, "GET", path, fx->agent, NULL, &r);
	expect(w, path, &r, 200, 0);
	etag = mixload_header(r.head, "ETag");
	response_free(&r);
	if (!etag)
		return;
	inm = xasprintf("%sIf-None-Match: %s\r\n", fx->agent, etag);
	exchange(w, "GET", path, inm, NULL, &r);
	expect(w, "If-None-Match", &r, 304, 0);
	response_free(&r);
	free(inm);
	free(etag);
}

/* POST /v1/cases; returns the case path (from Location) and *etag, or NULL. */
static char *create_case(struct worker *w, const char *key, const char *subject, char **etag)
{
	const struct fixtures *fx = w->fx;
	struct response r;
	char *h = key ? xasprintf("%sIdempotency-Key: %s\r\n", fx->agent, key) : xstrdup(fx->agent);
	char *body = xasprintf("{\"customer_id\":%lld,\"subject\":\"%s\",\"priority\":3}",
	                       fx->customers[pick(w, fx->ncustomers)], subject);
	char *loc = NULL;

	exchange(w, "POST", "/v1/cases", h, body, &r);
	if (expect(w, "create case", &r, 201, 0)) {
		loc = mixload_header(r.head, "Location");
		*etag = mixload_header(r.head, "ETag");
	}
	response_free(&r);
	free(body);
	free(h);
	return loc;
}

/* Create (with or without a key), patch with If-Match, patch again stale: 412. */
static void s_case_patch(struct worker *w)
{
	struct response r;
	char key[64], *etag = NULL, *loc, *h;

	snprintf(key, sizeof(key), "mix-%d-%lld", w->id, ++w->serial);
	loc = create_case(w, pick(w, 2) ? key : NULL, "patched", &etag);
	if (!loc || !etag || w->sent + 2 > w->quota)
		goto out;
	h = xasprintf("%sIf-Match: %s\r\n", w->fx->agent, etag);
	exchange(w, "PATCH", loc, h, "{\"status\":\"pending\",\"assigned_to\":\"mix\"}", &r);
	expect(w, "patch", &r, 200, 0);
	response_free(&r);
	exchange(w, "PATCH", loc, h, "{\"status\":\"closed\"}", &r);
	expect(w, "stale patch", &r, 412, 0);
	response_free(&r);
	free(h);
out:
	free(loc);
	free(etag);
}

/* The same key and body twice (a replay), then the key with another body: 422. */
static void s_idempotency(struct worker *w)
{
	const struct fixtures *fx = w->fx;
	struct response r;
	char *h, *body, *other;
	long long cust = fx->customers[pick(w, fx->ncustomers)];

	h = xasprintf("%sIdempotency-Key: replay-%d-%lld\r\n", fx->agent, w->id, ++w->serial);
	body = xasprintf("{\"customer_id\":%lld,\"subject\":\"replayed\"}", cust);
	other = xasprintf("{\"customer_id\":%lld,\"subject\":\"another body\"}", cust);
	exchange(w, "POST", "/v1/cases", h, body, &r);
	expect(w, "idempotent create", &r, 201, 0);
	response_free(&r);
	exchange(w, "POST", "/v1/cases", h, body, &r);
	if (expect(w, "replay", &r, 201, 0)) {
		char *rep = mixload_header(r.head, "Idempotent-Replayed");
		if (!rep || strcmp(rep, "true") != 0) {
			if (w->unexpected++ == 0)
				snprintf(w->first_unexpected, sizeof(w->first_unexpected),
				         "replay without Idempotent-Replayed: true");
		}
		free(rep);
	}
	response_free(&r);
	exchange(w, "POST", "/v1/cases", h, other, &r);
	expect(w, "key reused with another body", &r, 422, 0);
	response_free(&r);
	free(h);
	free(body);
	free(other);
}

/* Create, add a note, delete. */
static void s_notes(struct worker *w)
{
	struct response r;
	char *etag = NULL, *loc = create_case(w, NULL, "with a note", &etag), *notes;

	if (!loc || w->sent + 2 > w->quota)
		goto out;
	notes = xasprintf("%s/notes", loc);
	exchange(w, "POST", notes, w->fx->agent, "{\"body\":\"called back\"}", &r);
	expect(w, "note", &r, 201, 0);
	response_free(&r);
	free(notes);
	exchange(w, "DELETE", loc, w->fx->agent, NULL, &r);
	expect(w, "delete case", &r, 204, 0);
	response_free(&r);
out:
	free(loc);
	free(etag);
}

/* A Debezium change event of customer_current for a new key. */
static char *cc_event(struct worker *w, char op)
{
	long long id = w->next_ingest++, lsn = w->fx->lsn_base + id;
	long long ts = (long long)time(NULL) * 1000;
	char *after = xasprintf("{\"customer_id\":%lld,\"email\":\"m%lld@example.com\","
	                        "\"full_name\":\"Mix %lld\",\"tier\":\"gold\",\"segment\":"
	                        "\"retail\",\"status\":\"active\",\"lifetime_value\":1.5}",
	                        id, id, id);
	char *ev = xasprintf("{\"before\":null,\"after\":%s,\"source\":{\"connector\":"
	                     "\"postgresql\",\"ts_ms\":%lld,\"schema\":\"public\",\"table\":"
	                     "\"customer_current\",\"lsn\":%lld},\"op\":\"%c\",\"ts_ms\":%lld}",
	                     after, ts, lsn, op, ts);

	free(after);
	return ev;
}

static void s_ingest(struct worker *w)
{
	struct response r;
	char *e1 = cc_event(w, 'c'), *e2 = cc_event(w, 'c'), *e3 = cc_event(w, 'r');
	char *batch = xasprintf("[%s,%s]", e2, e3);

	exchange(w, "POST", "/v1/ingest/debezium", w->fx->sync, pick(w, 2) ? e1 : batch, &r);
	expect(w, "ingest", &r, 200, 0);
	response_free(&r);
	free(e1);
	free(e2);
	free(e3);
	free(batch);
}

/* Errors of every kind. */
static void s_errors(struct worker *w)
{
	const struct fixtures *fx = w->fx;
	struct response r;
	char path[128];

	snprintf(path, sizeof(path), "/v1/customers/%lld", fx->customers[0]);
	switch (pick(w, 12)) {
	case 0:
		exchange(w, "GET", path, NULL, NULL, &r);
		expect(w, "no token", &r, 401, 0);
		break;
	case 1:
		exchange(w, "GET", path, "Authorization: Bearer not.a.jwt\r\n", NULL, &r);
		expect(w, "bad token", &r, 401, 0);
		break;
	case 2:
		snprintf(path, sizeof(path), "/v1/orders/%lld", fx->orders[0]);
		exchange(w, "GET", path, fx->agent_narrow, NULL, &r);
		expect(w, "scope", &r, 403, 0);
		break;
	case 3:
		exchange(w, "GET", "/v1/fraud/queue", fx->agent, NULL, &r);
		expect(w, "grant", &r, 403, 0);
		break;
	case 4:
		exchange(w, "GET", "/v1/no/such/thing", fx->agent, NULL, &r);
		expect(w, "no route", &r, 404, 0);
		break;
	case 5:
		exchange(w, "DELETE", "/v1/freshness", fx->agent, NULL, &r);
		expect(w, "method", &r, 405, 0);
		break;
	case 6:
		exchange(w, "GET", "/v1/cases/not-a-uuid", fx->agent, NULL, &r);
		expect(w, "bad uuid", &r, 400, 0);
		break;
	case 7:
		exchange(w, "POST", "/v1/cases", fx->agent, "{\"customer_id\":", &r);
		expect(w, "malformed JSON", &r, 400, 0);
		break;
	case 8: {
		/* Announces far more than max_body_bytes and sends none of it. */
		char *h = xasprintf("%sContent-Type: application/json\r\n"
		                    "Content-Length: 1000000000000\r\n",
		                    fx->agent);
		exchange(w, "POST", "/v1/cases", h, NULL, &r);
		expect(w, "too large", &r, 413, 0);
		free(h);
		break;
	}
	case 9:
		exchange(w, "GET", "/v1/cases/00000000-0000-4000-8000-000000000000", fx->agent,
		         NULL, &r);
		expect(w, "missing case", &r, 404, 0);
		break;
	case 10:
		exchange(w, "POST", "/v1/cases", fx->agent, "{\"customer_id\":1}", &r);
		expect(w, "invalid case", &r, 422, 0);
		break;
	default:
		exchange(w, "GET", "/v1/customers/abc", fx->agent, NULL, &r);
		expect(w, "bad id", &r, 400, 0);
		break;
	}
	response_free(&r);
}

static void s_ops(struct worker *w)
{
	static const char *const paths[] = {"/healthz", "/readyz", "/metrics", "/openapi.yaml"};
	struct response r;
	const char *p = paths[pick(w, 4)];
	bool head = pick(w, 5) == 0;

	exchange(w, head ? "HEAD" : "GET", p, NULL, NULL, &r);
	expect(w, p, &r, 200, 0);
	response_free(&r);
}

/* A client that goes away: mid-head, mid-body, or before reading its answer. */
static void s_abort(struct worker *w)
{
	int fd = dial(w->port);
	char *req = NULL;

	switch (pick(w, 3)) {
	case 0:
		req = xasprintf("GET /v1/freshness HTTP/1.1\r\nHost: x\r\n%.20s", w->fx->agent);
		break;
	case 1:
		req = xasprintf("POST /v1/cases HTTP/1.1\r\nHost: x\r\n%sContent-Type: "
		                "application/json\r\nContent-Length: 200\r\n\r\n{\"customer_id\":",
		                w->fx->agent);
		break;
	default:
		req = xasprintf("GET /v1/customers/%lld HTTP/1.1\r\nHost: x\r\n%s\r\n",
		                w->fx->customers[0], w->fx->agent);
		break;
	}
	if (fd >= 0) {
		if (pick(w, 2)) {
			struct linger lg = {1, 0}; /* RST instead of FIN */
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		send_all(fd, req, strlen(req));
		close(fd);
	}
	free(req);
	w->sent++;
	w->aborted++;
}

/* 415 needs a body with another Content-Type, which exchange() cannot send. */
static void s_media_type(struct worker *w)
{
	struct response r;
	char *h = xasprintf("%sContent-Type: text/plain\r\nContent-Length: 2\r\n", w->fx->agent);
	struct strbuf req;

	memset(&r, 0, sizeof(r));
	strbuf_init(&req);
	strbuf_addf(&req, "POST /v1/cases HTTP/1.1\r\nHost: x\r\n%s\r\n{}", h);
	if (w->fd < 0)
		w->fd = dial(w->port);
	if (w->fd < 0 || !send_all(w->fd, req.data, req.len) || !read_response(w->fd, false, &r)) {
		response_free(&r);
		drop(w);
	}
	if (r.status < 0) {
		r.status = -r.status;
		drop(w);
	}
	if (!r.head) {
		r.head = xstrdup("");
		r.body = xstrdup("");
	}
	expect(w, "media type", &r, 415, 0);
	response_free(&r);
	strbuf_free(&req);
	free(h);
}

struct scenario {
	void (*run)(struct worker *w);
	int weight, max_requests;
};

static const struct scenario scenarios[] = {
        {s_reads, 30, 1},      {s_paging, 10, 2}, {s_not_modified, 8, 2}, {s_case_patch, 8, 3},
        {s_idempotency, 5, 3}, {s_notes, 5, 3},   {s_ingest, 8, 1},       {s_errors, 14, 1},
        {s_media_type, 2, 1},  {s_ops, 6, 1},     {s_abort, 4, 1},
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	int total = 0;

	for (size_t i = 0; i < ODS_ARRAY_LEN(scenarios); i++)
		total += scenarios[i].weight;
	while (w->sent < w->quota) {
		int x = pick(w, total);
		size_t i = 0;
		while (x >= scenarios[i].weight)
			x -= scenarios[i++].weight;
		if (w->sent + scenarios[i].max_requests > w->quota)
			i = 0; /* near the end: single-request scenarios only */
		scenarios[i].run(w);
	}
	drop(w);
	return NULL;
}

bool mixload_run(const struct mixload_opts *o, struct mixload_report *rep, char *err, size_t errlen)
{
	struct fixtures fx = {0};
	int threads = o->threads > 0 ? o->threads : 4;
	int requests = o->requests > 0 ? o->requests : 10000;
	unsigned seed = o->seed ? o->seed : (unsigned)time(NULL);
	struct worker *ws;
	double t0;

	memset(rep, 0, sizeof(*rep));
	if (!load_fixtures(o, &fx, err, errlen)) {
		fixtures_free(&fx);
		return false;
	}
	ws = xcalloc((size_t)threads, sizeof(*ws));
	t0 = mono_s();
	for (int i = 0; i < threads; i++) {
		ws[i].id = i;
		ws[i].port = o->port;
		ws[i].fd = -1;
		ws[i].fx = &fx;
		ws[i].seed = seed + (unsigned)i * 7919u;
		ws[i].quota = requests / threads + (i < requests % threads ? 1 : 0);
		ws[i].next_ingest = fx.ingest_base + (long long)i * 1000000LL;
		if (pthread_create(&ws[i].th, NULL, worker_run, &ws[i]) != 0) {
			fprintf(stderr, "mixload: cannot start a thread\n");
			abort();
		}
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(ws[i].th, NULL);
		rep->requests += ws[i].sent;
		rep->aborted += ws[i].aborted;
		for (int s = 0; s < MIXLOAD_MAX_STATUS; s++)
			rep->status[s] += ws[i].status[s];
		if (ws[i].unexpected && !rep->unexpected)
			snprintf(rep->first_unexpected, sizeof(rep->first_unexpected), "%s",
			         ws[i].first_unexpected);
		rep->unexpected += ws[i].unexpected;
	}
	rep->seconds = mono_s() - t0;
	free(ws);
	fixtures_free(&fx);
	return true;
}

void mixload_print(const struct mixload_report *rep, FILE *f)
{
	fprintf(f,
	        "mixload: %ld requests in %.1f s (%.0f/s), %ld aborted on purpose, %ld unexpected",
	        rep->requests, rep->seconds, rep->seconds > 0 ? rep->requests / rep->seconds : 0,
	        rep->aborted, rep->unexpected);
	if (rep->unexpected)
		fprintf(f, " (first: %s)", rep->first_unexpected);
	fprintf(f, "\nmixload: statuses:");
	for (int s = 0; s < MIXLOAD_MAX_STATUS; s++)
		if (rep->status[s])
			fprintf(f, " %d:%ld", s, rep->status[s]);
	fprintf(f, "\n");
}
