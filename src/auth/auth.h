/*
 * auth: bearer-token verification (DESIGN §4, RFC 7519 + RFC 8725).
 *
 * A struct auth holds what odsd trusts: the algorithm allow-list, the keys
 * (see keys.h), the aud/iss/leeway rules, the role claim and the allowed app
 * roles, and a cache of tokens that verified (see token_cache.h). It is
 * built once from struct auth_settings and never changes afterwards; to
 * apply new settings (SIGHUP), build a new one and free the old one when no
 * request uses it any more.
 *
 * Threads: auth_verify may be called from any number of threads on one
 * struct auth at once. Everything but the token cache is read-only after
 * auth_new; the cache has its own mutex, held only for a slot lookup or
 * store. Identities are reference-counted (atomically) and immutable, so one
 * cached identity may serve many concurrent requests.
 */
#ifndef ODS_AUTH_H
#define ODS_AUTH_H

#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Longest bearer token we look at; anything longer is rejected unread. */
#define AUTH_MAX_TOKEN_BYTES 16384
#define AUTH_DEFAULT_CACHE   10000

struct auth_settings {
	const char *algorithms;      /* "HS256,RS256": HS256/384/512, RS256/384/512, ES256/384 */
	const char *secret_file;     /* HMAC secret, required when an HS* alg is allowed */
	const char *public_key_file; /* PEM PUBLIC KEY or CERTIFICATE */
	const char *jwks_file;       /* {"keys": [...]} */
	const char *audience;        /* NULL or "": aud not checked */
	const char *issuer;          /* NULL or "": iss not checked */
	long leeway_s;               /* clock skew allowed on exp/nbf/iat, 0..86400 */
	const char *role_claim;      /* NULL or "": "role"; else a claim name (tried first, as
	                              * namespaced claims hold dots) or a dotted path */
	const char *app_roles;       /* "support_agent,ods_admin": roles a token may carry */
	size_t cache_entries;        /* 0: AUTH_DEFAULT_CACHE */
	time_t (*now)(void);         /* NULL: time(); tests pin the clock */
};

enum auth_status {
	AUTH_OK = 0,
	AUTH_MISSING,   /* 401, no Authorization header: `WWW-Authenticate: Bearer` */
	AUTH_INVALID,   /* 401, bad token: `WWW-Authenticate: Bearer error="invalid_token"` */
	AUTH_FORBIDDEN, /* 403, valid token whose role claim is missing or not an app role */
};

/* 200, 401 or 403. */
int auth_status_http(enum auth_status s);

struct auth;
struct auth_identity;

/*
 * Checks the settings and loads the keys. Fails (err says why) for an alg
 * outside the list above ("none" included), an HS* alg without a secret
 * file or with a secret shorter than the hash (RFC 7518 §3.2), an RS or ES
 * alg with neither a public key nor a JWKS file, any unreadable or invalid
 * key file, a bad leeway, role claim path or empty app role list.
 */
struct auth *auth_new(const struct auth_settings *s, char *err, size_t errlen) ODS_MUST_CHECK;
/* The caller makes sure no thread is still inside auth_verify on a. */
void auth_free(struct auth *a);

/*
 * Verifies an Authorization header value (NULL when the header is absent):
 * `Bearer <jwt>` (scheme case-insensitive), or `Bearer: <jwt>` as Debezium
 * Server's HTTP sink sends it. On AUTH_OK *out is an identity the caller
 * releases; otherwise *out is NULL and why holds a short reason that is
 * safe to show the client: a fixed phrase, never text taken from the token
 * and never key material.
 */
enum auth_status auth_verify(struct auth *a, const char *authorization, struct auth_identity **out,
                             char *why, size_t whylen) ODS_MUST_CHECK;

/* The role claim's value (one of the app roles). */
const char *auth_identity_role(const struct auth_identity *id);
/* The sub claim, or NULL when the token has none. */
const char *auth_identity_sub(const struct auth_identity *id);
/* Every claim as compact JSON, for set_config('request.jwt.claims', ...). */
const char *auth_identity_claims_json(const struct auth_identity *id);
time_t auth_identity_exp(const struct auth_identity *id);
/* Whether the token carries exactly this scope (from "scope" or "scp");
 * literal: "admin" implies nothing else. */
bool auth_identity_has_scope(const struct auth_identity *id, const char *scope);
void auth_identity_retain(struct auth_identity *id);
/* Drops one reference; NULL is ignored. */
void auth_identity_release(struct auth_identity *id);

#endif
