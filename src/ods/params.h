/*
 * params: binds a request to its route's function arguments by name: path
 * values to the template's {names}, query parameters to the remaining
 * arguments, a JSON body to p_body. Values are checked against the
 * argument's type here, so a client learns WHICH parameter is wrong; the
 * database still validates everything (parameters are always bound, never
 * spliced into SQL).
 */
#ifndef ODS_PARAMS_H
#define ODS_PARAMS_H

#include "http/request.h"
#include "ods/routes.h"

#define PARAMS_MAX_QUERY 32

struct bound_params {
	const char **values; /* one per route argument; NULL = SQL NULL */
	int n;
	/* the query as received (decoded), to build the Link of the next page */
	char *qkey[PARAMS_MAX_QUERY], *qval[PARAMS_MAX_QUERY];
	int nq;
	char *if_match; /* the If-Match entity tag, owned */
};

struct param_error {
	int status;       /* 400 or 415 */
	const char *code; /* problem code */
	char detail[256];
};

bool params_bind(const struct route *r, const struct route_match *m, struct request *req,
                 struct bound_params *out, struct param_error *e) ODS_MUST_CHECK;
void params_free(struct bound_params *bp);

/* `<path?query with cursor=next>; rel="next"`, caller frees. */
char *params_next_link(const struct request *req, const struct bound_params *bp,
                       const char *cursor);

/* True when s is valid UTF-8 (no overlongs, no surrogates). */
bool params_utf8_valid(const char *s, size_t n);

#endif
