/*
 * token: `odsctl token`, a development JWT minter.
 *
 * Model: build the claims with jansson (iat, exp, role, sub, scope, aud,
 * iss, then the --claim extras), check the key against the algorithm the
 * same way odsd will (keys.c), and let libjwt sign. Checking first matters
 * because libjwt would happily sign ES256 with a P-384 key or HS256 with a
 * 3-byte secret, and odsd would then reject the token with a vaguer reason.
 */
#include "autoconfig.h"

#include "admin/token.h"

#include "auth/keys.h"

#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_DEFAULT_TTL 3600
#define TOKEN_MAX_TTL     (10L * 365 * 24 * 3600)

/* Never prompt on the terminal for a passphrase: refuse encrypted keys. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Reads the private key PEM for an RS or ES alg and checks it fits alg. */
static bool read_private_key(const char *path, const char *alg, char **pem, size_t *len, char *err,
                             size_t errlen)
{
	char e[ODS_ERRLEN];
	enum key_family fam;
	EVP_PKEY *pk = NULL;
	BIO *bio;
	bool ok = false;

	*pem = util_read_file(path, len, err, errlen);
	if (!*pem)
		return false;
	bio = BIO_new_mem_buf(*pem, (int)*len);
	if (bio)
		pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (!pk)
		errf(err, errlen, "%s: no unencrypted PEM private key found", path);
	else if (!keys_pkey_family(pk, &fam, e, sizeof(e)))
		errf(err, errlen, "%s: %s", path, e);
	else if (fam != keys_alg_family(alg))
		errf(err, errlen, "%s: this key cannot sign %s", path, alg);
	else
		ok = true;
	EVP_PKEY_free(pk);
	BIO_free(bio);
	if (!ok) {
		free(*pem);
		*pem = NULL;
	}
	return ok;
}

static bool add_claim(json_t *claims, const char *kv, char *err, size_t errlen)
{
	const char *eq = strchr(kv, '=');
	json_t *v;

	if (!eq || eq == kv)
		return errf(err, errlen, "--claim takes name=value, not \"%s\"", kv);
	v = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (!v)
		v = json_string(eq + 1);
	if (!v)
		return errf(err, errlen, "--claim value is not UTF-8: \"%s\"", kv);
	json_object_setn_new(claims, kv, (size_t)(eq - kv), v);
	return true;
}

/* Sets c[name] = v unless v is NULL; false for invalid UTF-8. */
static bool set_string(json_t *c, const char *name, const char *v)
{
	return !v || json_object_set_new(c, name, json_string(v)) == 0;
}

static json_t *build_claims(const struct token_opts *o, time_t now, char *err, size_t errlen)
{
	long ttl = o->ttl ? o->ttl : TOKEN_DEFAULT_TTL;
	json_t *c;

	if (!o->role || !*o->role) {
		errf(err, errlen, "--role is required");
		return NULL;
	}
	if (ttl < 1 || ttl > TOKEN_MAX_TTL) {
		errf(err, errlen, "--ttl must be 1 to %ld seconds", TOKEN_MAX_TTL);
		return NULL;
	}
	c = json_object();
	json_object_set_new(c, "iat", json_integer((json_int_t)now));
	json_object_set_new(c, "exp", json_integer((json_int_t)now + ttl));
	/* json_string is NULL for invalid UTF-8, and set_new then fails. */
	if (!set_string(c, "role", o->role) || !set_string(c, "sub", o->sub) ||
	    !set_string(c, "scope", o->scope && *o->scope ? o->scope : NULL) ||
	    !set_string(c, "aud", o->aud) || !set_string(c, "iss", o->iss)) {
		errf(err, errlen, "claim values must be UTF-8");
		json_decref(c);
		return NULL;
	}
	for (size_t i = 0; i < o->nclaims; i++) {
		if (!add_claim(c, o->claims[i], err, errlen)) {
			json_decref(c);
			return NULL;
		}
	}
	return c;
}

/* Loads the signing key for alg: the secret (HS*) or the private key PEM. */
static bool signing_key(const struct token_opts *o, const char *alg, unsigned char **key,
                        size_t *len, char *err, size_t errlen)
{
	char *pem;

	if (keys_alg_family(alg) == KEY_FAMILY_HMAC) {
		if (!o->secret_file)
			return errf(err, errlen, "%s needs --secret-file", alg);
		if (!keys_read_secret(o->secret_file, key, len, err, errlen))
			return false;
		if (*len < keys_hmac_min_len(alg)) {
			keys_free_secret(*key, *len);
			*key = NULL;
			return errf(err, errlen, "%s: %s needs a secret of %zu bytes or more",
			            o->secret_file, alg, keys_hmac_min_len(alg));
		}
		return true;
	}
	if (!o->key_file)
		return errf(err, errlen, "%s needs --key-file PRIVATE.pem", alg);
	if (!read_private_key(o->key_file, alg, &pem, len, err, errlen))
		return false;
	*key = (unsigned char *)pem;
	return true;
}

bool token_mint(const struct token_opts *o, char **jwt_out, char *err, size_t errlen)
{
	const char *alg = o->alg ? o->alg : "HS256";
	unsigned char *key = NULL;
	size_t keylen = 0;
	json_t *claims = NULL;
	char *text = NULL, *out = NULL;
	jwt_t *jwt = NULL;
	bool ok = false;

	*jwt_out = NULL;
	if (keys_alg_family(alg) == KEY_FAMILY_NONE)
		return errf(err, errlen, "unsupported --alg \"%s\"", alg);
	claims = build_claims(o, o->now ? o->now : time(NULL), err, errlen);
	if (!claims || !signing_key(o, alg, &key, &keylen, err, errlen))
		goto done;
	text = json_dumps(claims, JSON_COMPACT);
	if (!text || keylen > INT_MAX || jwt_new(&jwt) != 0 ||
	    jwt_add_grants_json(jwt, text) != 0 ||
	    (o->kid && jwt_add_header(jwt, "kid", o->kid) != 0) ||
	    jwt_set_alg(jwt, jwt_str_alg(alg), key, (int)keylen) != 0 ||
	    !(out = jwt_encode_str(jwt))) {
		errf(err, errlen, "libjwt could not sign the token");
		goto done;
	}
	*jwt_out = xstrdup(out);
	ok = true;
done:
	free(out);
	free(text);
	if (jwt)
		jwt_free(jwt);
	json_decref(claims);
	keys_free_secret(key, keylen); /* wipes the PEM text too: it is a private key */
	return ok;
}
