/*
 * libFuzzer target: ods/params.c without libmicrohttpd.
 *
 * 1. params_utf8_valid on the whole input, checked against an independent
 *    reference decoder (Unicode 15, Table 3-7 well-formed sequences).
 * 2. params_bind + params_next_link + params_free on a fixed route
 *    (GET /v1/c/{customer_id}/{ref} with bigint/uuid path args, integer,
 *    boolean, numeric and text query args, p_body jsonb, an If-Match arg).
 *    The two MHD-facing calls params.c makes, request_header and
 *    MHD_get_connection_values, are stubbed here to serve values taken from
 *    the input, so libmicrohttpd is neither linked nor needed.
 *
 * Input layout for part 2:
 *   byte 0  flags: 1 If-Match sent, 2 Content-Type sent, 4 route has the
 *           If-Match arg, 8 route has p_body
 *   byte 1  number of query pairs (mod 40, so > PARAMS_MAX_QUERY is reachable)
 *   then NUL-separated: path value 1, path value 2, If-Match, Content-Type,
 *   cursor, then key, value for each query pair (a value "\x01" = no value);
 *   whatever follows is the body, NUL bytes included. Missing fields are "".
 */
#include "autoconfig.h"

#include "ods/params.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- stubs for the two MHD-facing functions params.c uses ---- */

struct fake_conn {
	const char *if_match, *content_type;
	int nq;
	const char *qk[64], *qv[64];
};

const char *request_header(const struct request *req, const char *name)
{
	const struct fake_conn *c = (const struct fake_conn *)req->conn;

	if (strcasecmp(name, MHD_HTTP_HEADER_IF_MATCH) == 0)
		return c->if_match;
	if (strcasecmp(name, MHD_HTTP_HEADER_CONTENT_TYPE) == 0)
		return c->content_type;
	return NULL;
}

int MHD_get_connection_values(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                              MHD_KeyValueIterator iterator, void *iterator_cls)
{
	const struct fake_conn *c = (const struct fake_conn *)connection;
	int n = 0;

	if (kind != MHD_GET_ARGUMENT_KIND)
		return 0;
	for (int i = 0; i < c->nq; i++) {
		n++;
		if (iterator && iterator(iterator_cls, kind, c->qk[i], c->qv[i]) != MHD_YES)
			break;
	}
	return n;
}

/* ---- reference UTF-8 check (Table 3-7) ---- */

static bool ref_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char b = s[i];
		unsigned char lo = 0x80, hi = 0xBF;
		size_t len;
		if (b <= 0x7F) {
			i++;
			continue;
		} else if (b >= 0xC2 && b <= 0xDF) {
			len = 2;
		} else if (b == 0xE0) {
			len = 3, lo = 0xA0;
		} else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
			len = 3;
		} else if (b == 0xED) {
			len = 3, hi = 0x9F;
		} else if (b == 0xF0) {
			len = 4, lo = 0x90;
		} else if (b >= 0xF1 && b <= 0xF3) {
			len = 4;
		} else if (b == 0xF4) {
			len = 4, hi = 0x8F;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k < len; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return false;
		i += len;
	}
	return true;
}

/* ---- the route ---- */

static char seg0[] = "v1", seg1[] = "c", seg2[] = "{customer_id}", seg3[] = "{ref}";
static char *segs[] = {seg0, seg1, seg2, seg3};

static struct route_arg all_args[] = {
        {(char *)"customer_id", (char *)"bigint", ARG_PATH},
        {(char *)"ref", (char *)"uuid", ARG_PATH},
        {(char *)"limit", (char *)"integer", ARG_QUERY},
        {(char *)"small", (char *)"smallint", ARG_QUERY},
        {(char *)"active", (char *)"boolean", ARG_QUERY},
        {(char *)"amount", (char *)"numeric", ARG_QUERY},
        {(char *)"q", (char *)"text", ARG_QUERY},
        {(char *)"cursor", (char *)"text", ARG_QUERY},
        {(char *)"p_if_match", (char *)"text", ARG_IF_MATCH},
        {(char *)"p_body", (char *)"jsonb", ARG_BODY},
};

/* Next NUL-terminated field of [*p, end), as a malloc'd copy; "" when none left. */
static char *next_field(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *s = *p;
	const uint8_t *z = s < end ? memchr(s, '\0', (size_t)(end - s)) : NULL;
	size_t n = z ? (size_t)(z - s) : (size_t)(end - s);
	char *out = malloc(n + 1);

	if (!out)
		abort();
	memcpy(out, s, n);
	out[n] = '\0';
	*p = z ? z + 1 : end;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (params_utf8_valid((const char *)data, size) != ref_utf8_valid(data, size))
		abort(); /* the validator disagrees with Table 3-7 */
	if (size < 2)
		return 0;

	uint8_t flags = data[0];
	int nq = data[1] % 40;
	const uint8_t *p = data + 2, *end = data + size;
	char *owned[8 + 2 * 40];
	int nowned = 0;
	struct fake_conn conn = {0};
	struct route_match m;
	struct request req;
	struct route r;
	struct route_arg args[ODS_ARRAY_LEN(all_args)];
	int nargs = 0;

	for (size_t i = 0; i < ODS_ARRAY_LEN(all_args); i++) {
		if (all_args[i].source == ARG_IF_MATCH && !(flags & 4))
			continue;
		if (all_args[i].source == ARG_BODY && !(flags & 8))
			continue;
		args[nargs++] = all_args[i];
	}

	memset(&m, 0, sizeof(m));
	char *v1 = owned[nowned++] = next_field(&p, end);
	char *v2 = owned[nowned++] = next_field(&p, end);
	char *im = owned[nowned++] = next_field(&p, end);
	char *ct = owned[nowned++] = next_field(&p, end);
	char *cursor = owned[nowned++] = next_field(&p, end);
	m.values[0] = v1;
	m.values[1] = v2;
	m.nvalues = 2;
	conn.if_match = (flags & 1) ? im : NULL;
	conn.content_type = (flags & 2) ? ct : NULL;
	for (int i = 0; i < nq; i++) {
		char *k = owned[nowned++] = next_field(&p, end);
		char *v = owned[nowned++] = next_field(&p, end);
		conn.qk[i] = k;
		conn.qv[i] = strcmp(v, "\x01") == 0 ? NULL : v;
	}
	conn.nq = nq;

	memset(&req, 0, sizeof(req));
	req.conn = (struct MHD_Connection *)&conn;
	snprintf(req.method, sizeof(req.method), "GET");
	req.path = owned[nowned++] = strdup("/v1/c/1/x");
	strbuf_init(&req.body);
	if (p < end)
		strbuf_add(&req.body, p, (size_t)(end - p));

	memset(&r, 0, sizeof(r));
	r.seg = segs;
	r.nseg = 4;
	r.args = args;
	r.nargs = nargs;
	r.paged = true;
	m.route = &r;

	struct bound_params bp;
	struct param_error e = {0};
	if (params_bind(&r, &m, &req, &bp, &e)) {
		char *link = params_next_link(&req, &bp, cursor);
		if (!link || link[0] != '<')
			abort();
		free(link);
		/* Bound values: path and query ones must be valid UTF-8. */
		for (int i = 0; i < bp.n; i++)
			if (bp.values[i] && args[i].source != ARG_BODY &&
			    !params_utf8_valid(bp.values[i], strlen(bp.values[i])))
				abort();
	} else if (e.status != 400 && e.status != 412 && e.status != 415) {
		abort();
	}
	params_free(&bp);
	strbuf_free(&req.body);
	for (int i = 0; i < nowned; i++)
		free(owned[i]);
	return 0;
}
