/*
 * auth: verifying bearer tokens into identities.
 *
 * Model: auth_verify is a pipeline of checks, cheapest first, each of which
 * either passes or names a reason:
 *
 *   header value -> "Bearer[:] <jwt>" -> only base64url characters and two
 *   dots, at most AUTH_MAX_TOKEN_BYTES -> SHA-256 -> cache hit? done.
 *   -> JOSE header: alg allow-listed (exact case; "none" never), typ JWT,
 *   no crit -> key chosen by alg's family and kid (keys.c) -> payload a JSON
 *   object -> signature (libjwt) -> exp/nbf/iat, iss, aud -> sub, scopes,
 *   role -> identity, cached until exp + leeway.
 *
 * We read the header and payload ourselves, strictly (canonical base64url,
 * JSON objects, duplicate names rejected), before libjwt sees the token,
 * because libjwt 1.10 has no key callback and is lenient: it matches alg
 * case-insensitively, accepts base64 padding, array payloads and duplicate
 * claims (last one wins), and ignores crit. libjwt is then used for the
 * signature alone, with the key we chose; the claims we act on are the ones
 * we parsed from the same signed bytes.
 *
 * A key is never taken from the token: jku, x5u, jwk and x5c header members
 * are ignored, and kid only selects among the keys the operator configured.
 *
 * Reasons (why) are fixed phrases: token text can hold CR/LF and anything
 * else once JSON escapes are decoded, and it must never reach a header.
 */
#include "autoconfig.h"

#include "auth/auth.h"

#include "auth/keys.h"
#include "auth/token_cache.h"

#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct auth_identity {
	atomic_uint refs;
	char *role;
	char *sub; /* NULL when absent */
	char *claims_json;
	char **scopes;
	size_t nscopes;
	time_t exp;
};

struct auth {
	char **algs; /* the allow-list */
	size_t nalgs;
	struct keys *keys;
	char *audience, *issuer; /* NULL: not checked */
	long long leeway;
	char *role_claim;
	char **roles;
	size_t nroles;
	struct token_cache *cache;
	EVP_MD *sha256; /* fetched once: an implicit fetch per call takes a lock */
	time_t (*now)(void);
};

/* Bounds on NumericDate values: far beyond any real date, and small enough
 * that adding a leeway can never overflow. */
#define DATE_LIMIT 1000000000000000LL

static bool set(const char *s)
{
	return s && *s;
}

/* Splits "a, b,,c" into trimmed, non-empty items. */
static char **split_list(const char *s, size_t *n, char sep)
{
	char **v = NULL;

	*n = 0;
	while (s && *s) {
		const char *end = strchr(s, sep);
		size_t len = end ? (size_t)(end - s) : strlen(s);
		const char *b = s, *e = s + len;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > b) {
			v = xrealloc(v, (*n + 1) * sizeof(*v));
			v[(*n)++] = xstrndup(b, (size_t)(e - b));
		}
		s = end ? end + 1 : s + len;
	}
	return v;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool in_list(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* Checks the allow-list; reports the longest HMAC secret it needs (0: no HS*
 * alg) and whether some alg needs public keys. */
static bool check_algs(const struct auth *a, size_t *secret_min, bool *need_public, char *err,
                       size_t errlen)
{
	*secret_min = 0;
	*need_public = false;
	if (a->nalgs == 0)
		return errf(err, errlen, "no JWT algorithm is allowed");
	for (size_t i = 0; i < a->nalgs; i++) {
		enum key_family fam = keys_alg_family(a->algs[i]);
		if (fam == KEY_FAMILY_NONE)
			return errf(err, errlen,
			            "JWT algorithm \"%s\" is not supported (HS256, HS384, HS512, "
			            "RS256, RS384, RS512, ES256, ES384)",
			            a->algs[i]);
		if (fam != KEY_FAMILY_HMAC)
			*need_public = true;
		else if (keys_hmac_min_len(a->algs[i]) > *secret_min)
			*secret_min = keys_hmac_min_len(a->algs[i]);
	}
	return true;
}

struct auth *auth_new(const struct auth_settings *s, char *err, size_t errlen)
{
	struct auth *a = xcalloc(1, sizeof(*a));
	const char *rc = set(s->role_claim) ? s->role_claim : "role";
	size_t secret_min;
	bool need_public;

	a->algs = split_list(s->algorithms, &a->nalgs, ',');
	if (!check_algs(a, &secret_min, &need_public, err, errlen))
		goto fail;
	if (secret_min && !set(s->secret_file)) {
		errf(err, errlen, "an HS algorithm is allowed but no secret file is configured");
		goto fail;
	}
	if (need_public && !set(s->public_key_file) && !set(s->jwks_file)) {
		errf(err, errlen,
		     "an RS or ES algorithm is allowed but neither a public key "
		     "file nor a JWKS file is configured");
		goto fail;
	}
	if (s->leeway_s < 0 || s->leeway_s > 86400) {
		errf(err, errlen, "JWT leeway must be 0 to 86400 seconds");
		goto fail;
	}
	if (rc[0] == '.' || rc[strlen(rc) - 1] == '.' || strstr(rc, "..")) {
		errf(err, errlen, "role claim \"%s\" is not a name or dotted path", rc);
		goto fail;
	}
	a->roles = split_list(s->app_roles, &a->nroles, ',');
	if (a->nroles == 0) {
		errf(err, errlen, "no app role is allowed");
		goto fail;
	}
	if (s->cache_entries > (1u << 24)) {
		errf(err, errlen, "token cache size must be at most %u", 1u << 24);
		goto fail;
	}
	a->keys = keys_load(s->secret_file, s->public_key_file, s->jwks_file, err, errlen);
	if (!a->keys)
		goto fail;
	if (keys_secret_len(a->keys) < secret_min) {
		errf(err, errlen,
		     "the HMAC secret is %zu bytes; the allowed HS algorithms need %zu "
		     "or more (RFC 7518 section 3.2)",
		     keys_secret_len(a->keys), secret_min);
		goto fail;
	}
	a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!a->sha256) {
		errf(err, errlen, "OpenSSL has no SHA256");
		goto fail;
	}
	a->audience = set(s->audience) ? xstrdup(s->audience) : NULL;
	a->issuer = set(s->issuer) ? xstrdup(s->issuer) : NULL;
	a->leeway = s->leeway_s;
	a->role_claim = xstrdup(rc);
	a->cache = token_cache_new(s->cache_entries ? s->cache_entries : AUTH_DEFAULT_CACHE);
	a->now = s->now;
	return a;
fail:
	auth_free(a);
	return NULL;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	free_list(a->algs, a->nalgs);
	free_list(a->roles, a->nroles);
	keys_free(a->keys);
	free(a->audience);
	free(a->issuer);
	free(a->role_claim);
	token_cache_free(a->cache);
	EVP_MD_free(a->sha256);
	free(a);
}

int auth_status_http(enum auth_status s)
{
	switch (s) {
	case AUTH_OK:
		return 200;
	case AUTH_FORBIDDEN:
		return 403;
	default:
		return 401;
	}
}

/* Finds the token in "Bearer <jwt>" or "Bearer: <jwt>" (Debezium's form). */
static bool bearer_token(const char *h, const char **tok, size_t *len, char *why, size_t whylen)
{
	size_t n;

	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "Bearer", 6) != 0)
		return errf(why, whylen, "authorization scheme must be Bearer");
	h += 6;
	if (*h == ':')
		h++;
	else if (*h != ' ' && *h != '\t' && *h != '\0')
		return errf(why, whylen, "authorization scheme must be Bearer");
	while (*h == ' ' || *h == '\t')
		h++;
	/* Bounded: a megabyte of header is refused without reading it all. */
	n = strnlen(h, AUTH_MAX_TOKEN_BYTES + 1);
	if (n > AUTH_MAX_TOKEN_BYTES)
		return errf(why, whylen, "token is too long");
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n == 0)
		return errf(why, whylen, "empty bearer token");
	*tok = h;
	*len = n;
	return true;
}

static bool well_formed(const char *t, size_t len, char *why, size_t whylen)
{
	int dots = 0;

	for (size_t i = 0; i < len; i++) {
		char c = t[i];
		if (c == '.')
			dots++;
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		           (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return errf(why, whylen, "token is not base64url text");
	}
	if (dots != 2)
		return errf(why, whylen, "token must have three segments");
	return true;
}

/* A segment that must hold a JSON object. */
static json_t *segment_object(const char *seg, size_t len)
{
	unsigned char *raw;
	size_t rawlen;
	json_t *v;

	if (!keys_b64url_decode(seg, len, &raw, &rawlen))
		return NULL;
	v = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

static bool check_header(const struct auth *a, json_t *h, const char **alg, const char **kid,
                         char *why, size_t whylen)
{
	json_t *v = json_object_get(h, "alg");

	if (!json_is_string(v))
		return errf(why, whylen, "token header has no alg");
	*alg = json_string_value(v);
	if (strcasecmp(*alg, "none") == 0)
		return errf(why, whylen, "unsigned tokens (alg none) are not accepted");
	if (!in_list(a->algs, a->nalgs, *alg))
		return errf(why, whylen, "token alg is not allowed");
	/* libjwt refuses any other typ; say so plainly rather than "bad signature". */
	v = json_object_get(h, "typ");
	if (v && (!json_is_string(v) || strcasecmp(json_string_value(v), "JWT") != 0))
		return errf(why, whylen, "token typ must be JWT");
	/* RFC 7515 §4.1.11: extensions we do not understand must be rejected. */
	if (json_object_get(h, "crit"))
		return errf(why, whylen, "token crit header is not supported");
	v = json_object_get(h, "kid");
	if (v && !json_is_string(v))
		return errf(why, whylen, "token kid must be a string");
	*kid = json_string_value(v);
	return true;
}

/* A NumericDate claim; *present false when absent, false when malformed. */
static bool numeric_date(json_t *claims, const char *name, bool *present, long long *out)
{
	json_t *v = json_object_get(claims, name);
	double d;

	*present = v != NULL;
	if (!v)
		return true;
	if (json_is_integer(v))
		d = (double)json_integer_value(v);
	else if (json_is_real(v))
		d = json_real_value(v);
	else
		return false;
	if (!(d > (double)-DATE_LIMIT && d < (double)DATE_LIMIT))
		return false;
	*out = (long long)d;
	return true;
}

static bool check_times(const struct auth *a, json_t *claims, long long now, long long *not_before,
                        long long *valid_until, char *why, size_t whylen)
{
	long long exp = 0, nbf = 0, iat = 0;
	bool has_exp, has_nbf, has_iat;

	if (!numeric_date(claims, "exp", &has_exp, &exp) ||
	    !numeric_date(claims, "nbf", &has_nbf, &nbf) ||
	    !numeric_date(claims, "iat", &has_iat, &iat))
		return errf(why, whylen, "exp, nbf and iat must be NumericDates");
	if (!has_exp)
		return errf(why, whylen, "token has no exp");
	if (now >= exp + a->leeway)
		return errf(why, whylen, "token expired");
	if (has_nbf && now + a->leeway < nbf)
		return errf(why, whylen, "token is not valid yet (nbf)");
	if (has_iat && iat > now + a->leeway)
		return errf(why, whylen, "token is issued in the future (iat)");
	*valid_until = exp + a->leeway;
	*not_before = LLONG_MIN;
	if (has_nbf)
		*not_before = nbf - a->leeway;
	if (has_iat && iat - a->leeway > *not_before)
		*not_before = iat - a->leeway;
	return true;
}

static bool check_iss_aud(const struct auth *a, json_t *claims, char *why, size_t whylen)
{
	json_t *v = json_object_get(claims, "iss"), *item;
	size_t i;

	if (a->issuer && !(json_is_string(v) && strcmp(json_string_value(v), a->issuer) == 0))
		return errf(why, whylen, "token issuer is not accepted");
	if (!a->audience)
		return true;
	v = json_object_get(claims, "aud");
	if (json_is_string(v) && strcmp(json_string_value(v), a->audience) == 0)
		return true;
	json_array_foreach(v, i,
	                   item) if (json_is_string(item) &&
	                             strcmp(json_string_value(item), a->audience) == 0) return true;
	return errf(why, whylen, "token audience is not accepted");
}

/* The role claim: first as a literal name (namespaced claims such as
 * "https://example.com/role" contain dots), then as a dotted path. */
static json_t *role_value(const struct auth *a, json_t *claims)
{
	const char *p = a->role_claim;
	json_t *v = json_object_get(claims, p);

	if (v || !strchr(p, '.'))
		return v;
	for (v = claims; v && *p;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		v = json_is_object(v) ? json_object_getn(v, p, n) : NULL;
		p += n + (dot ? 1 : 0);
	}
	return v;
}

static void add_scopes(struct auth_identity *id, const char *s)
{
	size_t n;
	char **v = split_list(s, &n, ' ');

	if (n == 0)
		return;
	id->scopes = xrealloc(id->scopes, (id->nscopes + n) * sizeof(*id->scopes));
	memcpy(id->scopes + id->nscopes, v, n * sizeof(*v));
	id->nscopes += n;
	free(v);
}

/* Scopes from "scope" (space-separated) and "scp" (array, or a string as
 * Azure AD sends it); a token may carry both. */
static bool read_scopes(struct auth_identity *id, json_t *claims, char *why, size_t whylen)
{
	json_t *scope = json_object_get(claims, "scope"), *scp = json_object_get(claims, "scp"), *v;
	size_t i;

	if (scope && !json_is_string(scope))
		return errf(why, whylen, "scope must be a string");
	if (scope)
		add_scopes(id, json_string_value(scope));
	if (json_is_string(scp)) {
		add_scopes(id, json_string_value(scp));
	} else if (scp) {
		if (!json_is_array(scp))
			return errf(why, whylen, "scp must be an array of strings");
		json_array_foreach(scp, i, v)
		{
			if (!json_is_string(v))
				return errf(why, whylen, "scp must be an array of strings");
			add_scopes(id, json_string_value(v));
		}
	}
	return true;
}

static enum auth_status make_identity(const struct auth *a, json_t *claims, long long exp,
                                      struct auth_identity **out, char *why, size_t whylen)
{
	struct auth_identity *id = xcalloc(1, sizeof(*id));
	json_t *sub = json_object_get(claims, "sub"), *role;

	atomic_init(&id->refs, 1);
	id->exp = (time_t)exp;
	/* Malformed claims make the token invalid (401) before the role (403). */
	if (sub && !json_is_string(sub)) {
		errf(why, whylen, "sub must be a string");
		goto invalid;
	}
	if (!read_scopes(id, claims, why, whylen))
		goto invalid;
	role = role_value(a, claims);
	if (!role) {
		errf(why, whylen, "token has no role claim");
		auth_identity_release(id);
		return AUTH_FORBIDDEN;
	}
	if (!json_is_string(role) || !in_list(a->roles, a->nroles, json_string_value(role))) {
		errf(why, whylen, "token role is not an allowed app role");
		auth_identity_release(id);
		return AUTH_FORBIDDEN;
	}
	id->role = xstrdup(json_string_value(role));
	id->sub = sub ? xstrdup(json_string_value(sub)) : NULL;
	id->claims_json = json_dumps(claims, JSON_COMPACT);
	if (!id->claims_json)
		abort(); /* only fails for lack of memory */
	*out = id;
	return AUTH_OK;
invalid:
	auth_identity_release(id);
	return AUTH_INVALID;
}

/* Everything after a cache miss; tok[0..len) is well formed. */
static enum auth_status verify_full(struct auth *a, const char *tok, size_t len,
                                    const unsigned char *digest, long long now,
                                    struct auth_identity **out, char *why, size_t whylen)
{
	char *token = xstrndup(tok, len); /* libjwt wants a C string */
	const char *dot1 = strchr(token, '.'), *dot2 = strchr(dot1 + 1, '.');
	const char *alg = NULL, *kid = NULL;
	const unsigned char *key = NULL;
	unsigned char *sig;
	size_t keylen = 0, siglen;
	long long not_before = 0, valid_until = 0;
	enum auth_status st = AUTH_INVALID;
	json_t *header = segment_object(token, (size_t)(dot1 - token)), *claims = NULL;
	jwt_t *jwt = NULL;

	if (!header) {
		errf(why, whylen, "token header is not a JSON object");
		goto done;
	}
	if (!check_header(a, header, &alg, &kid, why, whylen))
		goto done;
	if (dot2[1] == '\0') {
		errf(why, whylen, "token has no signature");
		goto done;
	}
	/* libjwt's decoder is lenient; insist on the one canonical spelling. */
	if (!keys_b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig, &siglen)) {
		errf(why, whylen, "token signature is not base64url");
		goto done;
	}
	free(sig);
	if (!keys_select(a->keys, alg, kid, &key, &keylen, why, whylen))
		goto done;
	claims = segment_object(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (!claims) {
		errf(why, whylen, "token payload is not a JSON object");
		goto done;
	}
	if (keylen > INT_MAX || jwt_decode(&jwt, token, key, (int)keylen) != 0 ||
	    jwt_get_alg(jwt) != jwt_str_alg(alg)) {
		errf(why, whylen, "token signature is not valid");
		goto done;
	}
	if (!check_times(a, claims, now, &not_before, &valid_until, why, whylen) ||
	    !check_iss_aud(a, claims, why, whylen))
		goto done;
	st = make_identity(a, claims, valid_until - a->leeway, out, why, whylen);
	if (st == AUTH_OK)
		token_cache_put(a->cache, digest, *out, not_before, valid_until);
done:
	if (jwt)
		jwt_free(jwt);
	json_decref(header);
	json_decref(claims);
	free(token);
	return st;
}

enum auth_status auth_verify(struct auth *a, const char *authorization, struct auth_identity **out,
                             char *why, size_t whylen)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	const char *tok = NULL;
	size_t len = 0;
	long long now;

	*out = NULL;
	if (!authorization) {
		errf(why, whylen, "no Authorization header");
		return AUTH_MISSING;
	}
	if (!bearer_token(authorization, &tok, &len, why, whylen) ||
	    !well_formed(tok, len, why, whylen))
		return AUTH_INVALID;
	if (EVP_Digest(tok, len, digest, NULL, a->sha256, NULL) != 1) {
		errf(why, whylen, "cannot hash the token");
		return AUTH_INVALID;
	}
	now = (long long)(a->now ? a->now() : time(NULL));
	*out = token_cache_get(a->cache, digest, now);
	if (*out)
		return AUTH_OK;
	return verify_full(a, tok, len, digest, now, out, why, whylen);
}

const char *auth_identity_role(const struct auth_identity *id)
{
	return id->role;
}

const char *auth_identity_sub(const struct auth_identity *id)
{
	return id->sub;
}

const char *auth_identity_claims_json(const struct auth_identity *id)
{
	return id->claims_json;
}

time_t auth_identity_exp(const struct auth_identity *id)
{
	return id->exp;
}

bool auth_identity_has_scope(const struct auth_identity *id, const char *scope)
{
	return in_list(id->scopes, id->nscopes, scope);
}

void auth_identity_retain(struct auth_identity *id)
{
	atomic_fetch_add_explicit(&id->refs, 1, memory_order_relaxed);
}

void auth_identity_release(struct auth_identity *id)
{
	if (!id || atomic_fetch_sub_explicit(&id->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(id->role);
	free(id->sub);
	free(id->claims_json);
	free_list(id->scopes, id->nscopes);
	free(id);
}
