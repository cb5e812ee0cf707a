/*
 * sqlstate: the ONE mapping from a PostgreSQL error to an HTTP status and
 * a problem code. Project route functions raise their own codes (class OD):
 *   OD400 bad request, OD404 not found, OD409 conflict, OD412 precondition
 *   failed, OD422 unprocessable; their MESSAGE becomes the problem detail.
 */
#ifndef ODS_SQLSTATE_H
#define ODS_SQLSTATE_H

struct sqlstate_map {
	int status;         /* HTTP status */
	const char *code;   /* problem code, e.g. "forbidden" */
	const char *title;  /* problem title */
	int expose_detail;  /* nonzero: the server message is safe to show the client */
	const char *detail; /* the fixed detail shown when expose_detail is 0, else NULL */
};

/* Never NULL: unknown states (and NULL or "") map to 500 "internal" without detail. */
const struct sqlstate_map *sqlstate_to_http(const char *sqlstate);

#endif
