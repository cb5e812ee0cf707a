/*
 * routes: the route catalog (ods.routes joined with each function's
 * arguments from pg_proc), as an immutable, refcounted table.
 *
 * routes_load builds a new table from one query; the caller publishes it
 * (routes_swap) and requests keep a reference to the table they matched
 * against, so a reload never changes a route under a running request. Each
 * load gets a new generation number: pooled connections re-prepare their
 * route statements when it changes (see db/call.h).
 *
 * Matching tells a 404 (no template matches the path) from a 405 (a template
 * matches with other methods: their list goes into Allow).
 */
#ifndef ODS_ROUTES_H
#define ODS_ROUTES_H

#include "core/util.h"

#include <libpq-fe.h>
#include <stdbool.h>

/* Where an argument's value comes from: p_body is the JSON body, p_if_match
 * the If-Match header's entity tag (unquoted), anything else a path
 * parameter of the same name or else a query parameter. */
enum arg_source { ARG_PATH, ARG_QUERY, ARG_BODY, ARG_IF_MATCH };

struct route_arg {
	char *name;
	char *type; /* format_type(), e.g. "bigint", "uuid", "text", "jsonb" */
	enum arg_source source;
};

struct route {
	int index; /* position in the table; also the prepared statement's number */
	char *method, *path, *function, *scope; /* scope NULL: any valid token */
	char **reads;                           /* "synced.x" names */
	int nreads;
	bool paged;
	char **seg; /* template segments; a "{name}" segment captures */
	int nseg;
	struct route_arg *args;
	int nargs;
	char *sql; /* SELECT * FROM ods_api.fn(a => $1::type, ...) */
	/* For POST routes whose function returns body, status, location and etag:
	 * the same call that also stores the response under an Idempotency-Key
	 * ($n+1 key, $n+2 request hash) in the same transaction; else NULL. */
	char *sql_idem;
	char *label; /* "GET /v1/customers/{customer_id}" for logs and metrics */
};

struct route_table {
	int refs;
	unsigned generation;
	int n;
	struct route *r;
};

/* Loads the catalog; routes whose function is missing are skipped with a warning. */
struct route_table *routes_load(PGconn *conn, char *err, size_t errlen) ODS_MUST_CHECK;

struct routes; /* the published table */
struct routes *routes_new(void);
void routes_free(struct routes *rs);
/* Publishes t (taking the caller's reference) and drops the old table. */
void routes_swap(struct routes *rs, struct route_table *t);
/* The current table with a reference, or NULL before the first load. */
struct route_table *routes_get(struct routes *rs);
void routes_put(struct routes *rs, struct route_table *t);

enum route_match_result { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_METHOD_NOT_ALLOWED };

#define ROUTE_MAX_SEGMENTS 16

struct route_match {
	const struct route *route;
	/* the captured path values, in template order; they point into path_copy */
	const char *values[ROUTE_MAX_SEGMENTS];
	int nvalues;
	char path_copy[2048];
	char allow[128]; /* for 405: "GET, PATCH, DELETE" */
};

/* HEAD matches GET routes. */
enum route_match_result routes_match(const struct route_table *t, const char *method,
                                     const char *path, struct route_match *m);

#endif
