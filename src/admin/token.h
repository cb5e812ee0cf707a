/*
 * token: minting development JWTs (`odsctl token`, DESIGN §9) that odsd
 * accepts when configured with the same secret or the matching public key.
 */
#ifndef ODS_TOKEN_H
#define ODS_TOKEN_H

#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct token_opts {
	const char *alg;         /* NULL: "HS256"; HS256/384/512, RS256/384/512, ES256/384 */
	const char *secret_file; /* HS*: the shared secret (same rules as odsd's) */
	const char *key_file;    /* RS and ES: an unencrypted private key PEM */
	const char *role;        /* required: the role claim */
	const char *scope;       /* NULL or "": no scope claim; else "s1 s2 ..." */
	const char *sub;         /* NULL: no sub claim */
	const char *kid;         /* NULL: no kid header */
	const char *aud, *iss;   /* NULL: claim left out */
	long ttl;                /* seconds until exp; 0: 3600 */
	/* Extra "name=value" claims, applied last (so they may override the
	 * ones above). A value that parses as JSON (42, true, ["a"], {"k":1},
	 * "quoted") is used as that JSON; anything else is a string. */
	const char *const *claims;
	size_t nclaims;
	time_t now; /* 0: the current time (tests pin it) */
};

/* Signs a token; *jwt_out is the compact JWT, which the caller frees. */
bool token_mint(const struct token_opts *o, char **jwt_out, char *err,
                size_t errlen) ODS_MUST_CHECK;

#endif
