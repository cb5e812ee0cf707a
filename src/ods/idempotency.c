/*
 * idempotency: key validation, the request fingerprint, and replaying a
 * stored response. See idempotency.h for the model.
 */
#include "autoconfig.h"

#include "ods/idempotency.h"

#include "http/response.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The key as an sf-string ("...") or a bare token: 1-255 printable ASCII. */
static bool parse_key(const char *v, char *out, size_t outlen)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	if (n == 0 || n >= outlen || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e || v[i] == '"' ||
		    v[i] == '\\')
			return false;
	memcpy(out, v, n);
	out[n] = '\0';
	return true;
}

/* The same key may only be reused for the same request: method, path, query, body. */
static void fingerprint(const struct request *req, const struct bound_params *bp, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx) {
		fprintf(stderr, "out of memory (EVP_MD_CTX_new)\n");
		abort();
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, req->method, strlen(req->method) + 1);
	EVP_DigestUpdate(ctx, req->path, strlen(req->path) + 1);
	for (int q = 0; q < bp->nq; q++) {
		EVP_DigestUpdate(ctx, bp->qkey[q], strlen(bp->qkey[q]) + 1);
		if (bp->qval[q])
			EVP_DigestUpdate(ctx, bp->qval[q], strlen(bp->qval[q]) + 1);
	}
	EVP_DigestUpdate(ctx, "\n", 1);
	EVP_DigestUpdate(ctx, req->body.data ? req->body.data : "", req->body.len);
	EVP_DigestFinal_ex(ctx, md, &n);
	EVP_MD_CTX_free(ctx);
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

bool idem_prepare(struct request *req, const struct route *r, const struct bound_params *bp,
                  struct idem *out, struct param_error *e)
{
	const char *v = request_header(req, "Idempotency-Key");

	memset(out, 0, sizeof(*out));
	if (!v || strcmp(req->method, "POST") != 0)
		return true;
	e->status = 400;
	e->code = "bad_request";
	if (!parse_key(v, out->key, sizeof(out->key))) {
		snprintf(e->detail, sizeof(e->detail),
		         "Idempotency-Key must be 1 to 255 printable ASCII characters");
		return false;
	}
	if (!r->sql_idem) {
		snprintf(e->detail, sizeof(e->detail),
		         "this endpoint does not support Idempotency-Key");
		return false;
	}
	fingerprint(req, bp, out->hash);
	out->values = xcalloc((size_t)bp->n + 2, sizeof(char *));
	memcpy(out->values, bp->values, (size_t)bp->n * sizeof(char *));
	out->values[bp->n] = out->key;
	out->values[bp->n + 1] = out->hash;
	out->active = true;
	return true;
}

void idem_free(struct idem *i)
{
	free(i->values);
	i->values = NULL;
}

struct MHD_Response *idem_replay(const struct request *req, PGresult *res, int *status)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	struct MHD_Response *r = NULL;
	json_t *doc;

	if (!state || strcmp(state, "OD200") != 0 || !detail)
		return NULL;
	doc = json_loads(detail, 0, NULL);
	if (json_is_object(doc)) {
		const char *body = json_string_value(json_object_get(doc, "body"));
		const char *loc = json_string_value(json_object_get(doc, "location"));
		const char *etag = json_string_value(json_object_get(doc, "etag"));
		json_int_t st = json_integer_value(json_object_get(doc, "status"));
		*status = st >= 200 && st <= 299 ? (int)st : 200;
		r = body ? response_text(body, strlen(body), "application/json") : response_empty();
		if (loc)
			MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, loc);
		if (etag) {
			char *q = xasprintf("\"%s\"", etag);
			MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, q);
			free(q);
		}
		MHD_add_response_header(r, "Idempotent-Replayed", "true");
	} else {
		r = response_problem(req, 500, "internal", "Internal Server Error",
		                     "the stored response of this Idempotency-Key is unreadable");
		*status = 500;
	}
	json_decref(doc);
	PQclear(res);
	return r;
}
