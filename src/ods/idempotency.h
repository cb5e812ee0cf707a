/*
 * idempotency: the engine side of Idempotency-Key on POST (IETF
 * draft-ietf-httpapi-idempotency-key-header), the same for every route.
 *
 * A POST carrying the header runs, in its one pipelined transaction:
 *   ods.idempotency_check(key, hash)  takes a transaction-scoped advisory lock
 *       on (sub, key) and looks the key up (api/schema/014_idempotency.sql):
 *       another request with that key in flight -> OD409; the key used with
 *       another request -> OD422; already done -> OD200 carrying the stored
 *       response in DETAIL, which aborts the transaction (nothing written)
 *       and is replayed here with Idempotent-Replayed: true;
 *   the route statement, in its sql_idem form, which stores the response
 *       under the key in the SAME transaction as the write: a crash can never
 *       leave a write without its key, or a key without its write.
 * Keys are scoped to the token's sub and kept 24 hours. Only successful
 * responses are stored; a failed request may be retried with the same key.
 */
#ifndef ODS_IDEMPOTENCY_H
#define ODS_IDEMPOTENCY_H

#include "http/request.h"
#include "ods/params.h"
#include "ods/routes.h"

#include <libpq-fe.h>
#include <microhttpd.h>
#include <stdbool.h>

struct idem {
	bool active;
	char key[256];
	char hash[65];       /* SHA-256 of method, path, query and body, hex */
	const char **values; /* the route's values + key + hash, owned */
};

/* Reads Idempotency-Key; false (with e) when it is malformed or the route
 * cannot store responses. out->active tells whether the request uses one. */
bool idem_prepare(struct request *req, const struct route *r, const struct bound_params *bp,
                  struct idem *out, struct param_error *e) ODS_MUST_CHECK;
void idem_free(struct idem *i);

#define IDEM_CHECK_SQL "SELECT ods.idempotency_check($1, $2)"

/* For an OD200 error: the stored response, replayed (takes res). NULL for
 * any other result, which the caller handles as usual. */
struct MHD_Response *idem_replay(const struct request *req, PGresult *res, int *status);

#endif
