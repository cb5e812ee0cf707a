/*
 * params: see params.h. Type checks cover the argument types route
 * functions use for identifiers and paging (integers, uuid, boolean,
 * numbers); other types go to PostgreSQL as text, and its 22xxx errors map
 * to 400 as well.
 */
#include "autoconfig.h"

#include "ods/params.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>

bool params_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		unsigned c = *p;
		size_t len;
		unsigned cp;
		if (c < 0x80) {
			p++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			len = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) < len)
			return false;
		for (size_t i = 1; i < len; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3F);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		p += len;
	}
	return true;
}

static bool check_integer(const char *v, long long min, long long max)
{
	char *end;
	long long n;

	if (!*v || isspace((unsigned char)*v))
		return false;
	errno = 0;
	n = strtoll(v, &end, 10);
	return *end == '\0' && errno == 0 && n >= min && n <= max;
}

static bool check_uuid(const char *v)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (strlen(v) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == '-' ? v[i] != '-' : !isxdigit((unsigned char)v[i]))
			return false;
	return true;
}

static bool check_number(const char *v)
{
	char *end;

	if (!*v || isspace((unsigned char)*v))
		return false;
	errno = 0;
	strtod(v, &end);
	return *end == '\0' && errno == 0;
}

/* NULL when v suits type, else what was expected. */
static const char *type_problem(const char *type, const char *v)
{
	if (strcmp(type, "bigint") == 0)
		return check_integer(v, LLONG_MIN, LLONG_MAX) ? NULL : "an integer";
	if (strcmp(type, "integer") == 0)
		return check_integer(v, INT_MIN, INT_MAX) ? NULL : "an integer";
	if (strcmp(type, "smallint") == 0)
		return check_integer(v, -32768, 32767) ? NULL : "an integer from -32768 to 32767";
	if (strcmp(type, "uuid") == 0)
		return check_uuid(v) ? NULL : "a UUID";
	if (strcmp(type, "boolean") == 0)
		return strcmp(v, "true") == 0 || strcmp(v, "false") == 0 ? NULL : "true or false";
	if (strcmp(type, "numeric") == 0 || strcmp(type, "double precision") == 0 ||
	    strcmp(type, "real") == 0)
		return check_number(v) ? NULL : "a number";
	return NULL;
}

static bool bad(struct param_error *e, int status, const char *code, const char *fmt, const char *a,
                const char *b)
{
	e->status = status;
	e->code = code;
	snprintf(e->detail, sizeof(e->detail), fmt, a, b);
	return false;
}

struct query_walk {
	struct bound_params *bp;
	bool overflow, has_null;
};

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
	struct query_walk *w = cls;

	(void)kind;
	if (w->bp->nq == PARAMS_MAX_QUERY) {
		w->overflow = true;
		return MHD_NO;
	}
	w->bp->qkey[w->bp->nq] = xstrdup(key);
	w->bp->qval[w->bp->nq] = value ? xstrdup(value) : NULL;
	w->bp->nq++;
	return MHD_YES;
}

static int arg_index(const struct route *r, const char *name, enum arg_source src)
{
	for (int a = 0; a < r->nargs; a++)
		if (r->args[a].source == src && strcmp(r->args[a].name, name) == 0)
			return a;
	return -1;
}

static bool bind_path(const struct route *r, const struct route_match *m, struct bound_params *bp,
                      struct param_error *e)
{
	int k = 0;

	for (int s = 0; s < r->nseg; s++) {
		if (r->seg[s][0] != '{')
			continue;
		char name[64];
		snprintf(name, sizeof(name), "%.*s", (int)strlen(r->seg[s]) - 2, r->seg[s] + 1);
		int a = arg_index(r, name, ARG_PATH);
		const char *v = k < m->nvalues ? m->values[k] : "";
		k++;
		if (a < 0)
			continue;
		if (!params_utf8_valid(v, strlen(v)))
			return bad(e, 400, "bad_request", "path parameter %s: invalid UTF-8%s",
			           name, "");
		const char *want = type_problem(r->args[a].type, v);
		if (want)
			return bad(e, 400, "bad_request", "path parameter %s: expected %s", name,
			           want);
		bp->values[a] = v;
	}
	return true;
}

static bool bind_query(const struct route *r, struct request *req, struct bound_params *bp,
                       struct param_error *e)
{
	struct query_walk w = {.bp = bp};

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_query, &w);
	if (w.overflow)
		return bad(e, 400, "bad_request", "more than %s query parameters%s", "32", "");
	for (int q = 0; q < bp->nq; q++) {
		const char *k = bp->qkey[q], *v = bp->qval[q] ? bp->qval[q] : "";
		int a = arg_index(r, k, ARG_QUERY);
		if (!params_utf8_valid(k, strlen(k)) || !params_utf8_valid(v, strlen(v)))
			return bad(e, 400, "bad_request", "query parameter %s: invalid UTF-8%s",
			           params_utf8_valid(k, strlen(k)) ? k : "(name)", "");
		if (a < 0)
			return bad(e, 400, "bad_request", "unknown query parameter %s%s", k, "");
		if (bp->values[a])
			return bad(e, 400, "bad_request", "query parameter %s given twice%s", k,
			           "");
		const char *want = type_problem(r->args[a].type, v);
		if (want)
			return bad(e, 400, "bad_request", "query parameter %s: expected %s", k,
			           want);
		bp->values[a] = v;
	}
	return true;
}

static bool is_json_type(const char *ct)
{
	size_t n;

	if (!ct)
		return false;
	n = strcspn(ct, ";");
	while (n > 0 && ct[n - 1] == ' ')
		n--;
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	       (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0 &&
	        strncasecmp(ct, "application/", 12) == 0);
}

static bool bind_body(const struct route *r, struct request *req, struct bound_params *bp,
                      struct param_error *e)
{
	int a = arg_index(r, "p_body", ARG_BODY);
	json_error_t jerr;
	json_t *doc;

	if (a < 0 || req->body.len == 0)
		return true;
	if (!is_json_type(request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE)))
		return bad(e, 415, "unsupported_media_type",
		           "the body must be application/json%s%s", "", "");
	if (!params_utf8_valid(req->body.data, req->body.len))
		return bad(e, 400, "malformed_json", "the body is not valid UTF-8%s%s", "", "");
	/* Parsed only to reject bad JSON with a precise message; PostgreSQL gets the text. */
	doc = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	                 &jerr);
	if (!doc && strstr(jerr.text, "JSON_ALLOW_NUL"))
		return bad(e, 400, "malformed_json",
		           "the body contains \\u0000, which PostgreSQL's jsonb cannot store%s%s",
		           "", "");
	if (!doc) {
		char where[64];
		snprintf(where, sizeof(where), " (line %d, column %d)", jerr.line, jerr.column);
		return bad(e, 400, "malformed_json", "malformed JSON body: %s%s", jerr.text, where);
	}
	json_decref(doc);
	if (memchr(req->body.data, '\0', req->body.len))
		return bad(e, 400, "malformed_json", "the body contains a NUL byte%s%s", "", "");
	bp->values[a] = req->body.data;
	return true;
}

/* If-Match: one entity tag, passed without W/ and quotes ("*" as is). */
static bool bind_if_match(const struct route *r, struct request *req, struct bound_params *bp,
                          struct param_error *e)
{
	const char *v = request_header(req, MHD_HTTP_HEADER_IF_MATCH);
	size_t n;
	int a = -1;

	for (int i = 0; i < r->nargs; i++)
		if (r->args[i].source == ARG_IF_MATCH)
			a = i;
	if (a < 0 || !v)
		return true;
	while (*v == ' ')
		v++;
	/* RFC 9110 13.1.1: If-Match compares strongly, so a weak tag never matches. */
	if (strncmp(v, "W/", 2) == 0) {
		e->status = 412;
		e->code = "precondition_failed";
		snprintf(e->detail, sizeof(e->detail), "a weak entity tag never matches If-Match");
		return false;
	}
	n = strlen(v);
	while (n > 0 && v[n - 1] == ' ')
		n--;
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	if (n == 0 || n > 128 || memchr(v, '"', n) || memchr(v, ',', n))
		return bad(e, 400, "bad_request", "If-Match must hold one entity tag%s%s", "", "");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
			return bad(e, 400, "bad_request", "If-Match must hold one entity tag%s%s",
			           "", "");
	bp->if_match = xstrndup(v, n);
	bp->values[a] = bp->if_match;
	return true;
}

bool params_bind(const struct route *r, const struct route_match *m, struct request *req,
                 struct bound_params *out, struct param_error *e)
{
	memset(out, 0, sizeof(*out));
	out->n = r->nargs;
	out->values = xcalloc((size_t)r->nargs + 1, sizeof(char *));
	return bind_path(r, m, out, e) && bind_query(r, req, out, e) && bind_body(r, req, out, e) &&
	       bind_if_match(r, req, out, e);
}

void params_free(struct bound_params *bp)
{
	for (int q = 0; q < bp->nq; q++) {
		free(bp->qkey[q]);
		free(bp->qval[q]);
	}
	free(bp->values);
	free(bp->if_match);
	memset(bp, 0, sizeof(*bp));
}

static void add_encoded(struct strbuf *sb, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || strchr("-._~", *p))
			strbuf_addc(sb, (char)*p);
		else
			strbuf_addf(sb, "%%%02X", *p);
	}
}

char *params_next_link(const struct request *req, const struct bound_params *bp, const char *cursor)
{
	struct strbuf sb;
	char sep = '?';

	strbuf_init(&sb);
	strbuf_addc(&sb, '<');
	strbuf_adds(&sb, req->path);
	for (int q = 0; q < bp->nq; q++) {
		if (strcmp(bp->qkey[q], "cursor") == 0)
			continue;
		strbuf_addc(&sb, sep);
		sep = '&';
		add_encoded(&sb, bp->qkey[q]);
		if (bp->qval[q]) {
			strbuf_addc(&sb, '=');
			add_encoded(&sb, bp->qval[q]);
		}
	}
	strbuf_addc(&sb, sep);
	strbuf_adds(&sb, "cursor=");
	add_encoded(&sb, cursor);
	strbuf_adds(&sb, ">; rel=\"next\"");
	return strbuf_detach(&sb);
}
