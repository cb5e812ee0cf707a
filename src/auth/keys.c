/*
 * keys: loading and selecting verification keys.
 *
 * Model: every public key, whether it came from the PEM file or from a JWK,
 * ends up as one struct key: its family (RSA, EC P-256, EC P-384), an
 * optional kid and the JWK's own restrictions ("alg", "use", "key_ops"), and
 * its canonical SPKI PEM text. JWKs are turned into OpenSSL keys with
 * EVP_PKEY_fromdata, which also checks that an EC point lies on its curve,
 * then passed through EVP_PKEY_public_check and written out as PEM, because
 * libjwt 1.10 only takes keys as PEM text. The HMAC secret is kept apart
 * and only ever handed out for HS* algorithms.
 *
 * Nothing here changes after keys_load, so selection needs no lock.
 */
#include "autoconfig.h"

#include "auth/keys.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct key {
	enum key_family family;
	char *kid;      /* NULL for the PEM file's key */
	char *alg;      /* JWK "alg", NULL when absent */
	char *use;      /* JWK "use", NULL when absent */
	bool no_verify; /* JWK "key_ops" present without "verify" */
	char *pem;
	size_t pem_len;
};

struct keys {
	unsigned char *secret;
	size_t secret_len;
	struct key *v;
	size_t n;
	bool have_jwks;
};

enum key_family keys_alg_family(const char *alg)
{
	static const struct {
		const char *name;
		enum key_family family;
	} algs[] = {
	        {"HS256", KEY_FAMILY_HMAC},    {"HS384", KEY_FAMILY_HMAC},
	        {"HS512", KEY_FAMILY_HMAC},    {"RS256", KEY_FAMILY_RSA},
	        {"RS384", KEY_FAMILY_RSA},     {"RS512", KEY_FAMILY_RSA},
	        {"ES256", KEY_FAMILY_EC_P256}, {"ES384", KEY_FAMILY_EC_P384},
	};

	for (size_t i = 0; alg && i < ODS_ARRAY_LEN(algs); i++)
		if (strcmp(alg, algs[i].name) == 0)
			return algs[i].family;
	return KEY_FAMILY_NONE;
}

size_t keys_hmac_min_len(const char *alg)
{
	if (strcmp(alg, "HS384") == 0)
		return 48;
	if (strcmp(alg, "HS512") == 0)
		return 64;
	return 32;
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

bool keys_b64url_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
	unsigned char *buf;
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;

	if (len % 4 == 1) /* no 8-bit value ends after a single 6-bit digit */
		return false;
	buf = xmalloc(len / 4 * 3 + 3);
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)s[i]);
		if (v < 0)
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Non-zero leftover bits would let two strings decode alike. */
	if (acc != 0)
		goto bad;
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return true;
bad:
	free(buf);
	return false;
}

bool keys_pkey_family(EVP_PKEY *pk, enum key_family *fam, char *err, size_t errlen)
{
	char group[64];

	if (EVP_PKEY_is_a(pk, "RSA")) {
		if (EVP_PKEY_get_bits(pk) < 2048)
			return errf(err, errlen, "RSA key has %d bits; at least 2048 are required",
			            EVP_PKEY_get_bits(pk));
		*fam = KEY_FAMILY_RSA;
		return true;
	}
	if (!EVP_PKEY_is_a(pk, "EC"))
		return errf(err, errlen, "unsupported key type (want RSA or EC P-256/P-384)");
	if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	                                   NULL) != 1)
		return errf(err, errlen, "EC key without a named curve");
	if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
		*fam = KEY_FAMILY_EC_P256;
	else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
		*fam = KEY_FAMILY_EC_P384;
	else
		return errf(err, errlen, "unsupported EC curve %s (want P-256 or P-384)", group);
	return true;
}

bool keys_read_secret(const char *path, unsigned char **secret, size_t *len, char *err,
                      size_t errlen)
{
	size_t n;
	char *text = util_read_file(path, &n, err, errlen);

	if (!text)
		return false;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		n--;
	if (n == 0) {
		keys_free_secret((unsigned char *)text, n);
		return errf(err, errlen, "%s: the secret is empty", path);
	}
	if (strstr(text, "-----BEGIN ")) {
		keys_free_secret((unsigned char *)text, n);
		return errf(err, errlen, "%s: holds a PEM key, not an HMAC secret", path);
	}
	*secret = (unsigned char *)text;
	*len = n;
	return true;
}

void keys_free_secret(unsigned char *secret, size_t len)
{
	if (secret)
		OPENSSL_cleanse(secret, len);
	free(secret);
}

/* Checks pk and appends it to k as a key of the given origin (kid may be NULL). */
static bool add_pkey(struct keys *k, EVP_PKEY *pk, const char *kid, char *err, size_t errlen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	enum key_family fam;
	BIO *mem = NULL;
	char *data;
	long n;
	bool ok = false;

	if (!keys_pkey_family(pk, &fam, err, errlen))
		goto done;
	if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
		errf(err, errlen, "public key fails OpenSSL's key check");
		goto done;
	}
	mem = BIO_new(BIO_s_mem());
	if (!mem || PEM_write_bio_PUBKEY(mem, pk) != 1 || (n = BIO_get_mem_data(mem, &data)) <= 0) {
		errf(err, errlen, "cannot write the public key as PEM");
		goto done;
	}
	k->v = xrealloc(k->v, (k->n + 1) * sizeof(*k->v));
	k->v[k->n] = (struct key){.family = fam, .kid = kid ? xstrdup(kid) : NULL};
	k->v[k->n].pem = xstrndup(data, (size_t)n);
	k->v[k->n].pem_len = (size_t)n;
	k->n++;
	ok = true;
done:
	BIO_free(mem);
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static bool load_pem_file(struct keys *k, const char *path, char *err, size_t errlen)
{
	char e[ODS_ERRLEN];
	EVP_PKEY *pk = NULL;
	X509 *cert = NULL;
	BIO *bio;
	size_t len;
	char *text = util_read_file(path, &len, err, errlen);
	bool ok = false;

	if (!text)
		return false;
	/* Private keys belong on the token issuer, never on the API server. */
	if (strstr(text, "PRIVATE KEY-----")) {
		free(text);
		return errf(err, errlen, "%s: holds a private key; give the public key", path);
	}
	bio = BIO_new_mem_buf(text, (int)len);
	if (bio)
		pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (bio && !pk) {
		BIO_free(bio);
		bio = BIO_new_mem_buf(text, (int)len);
		cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		pk = cert ? X509_get_pubkey(cert) : NULL;
	}
	if (!pk)
		errf(err, errlen, "%s: no PEM PUBLIC KEY or CERTIFICATE found", path);
	else if (!(ok = add_pkey(k, pk, NULL, e, sizeof(e))))
		errf(err, errlen, "%s: %s", path, e);
	EVP_PKEY_free(pk);
	X509_free(cert);
	BIO_free(bio);
	free(text);
	return ok;
}

/* A JWK member holding base64url bytes; when want > 0 it must be that long. */
static bool jwk_bytes(json_t *jwk, const char *name, size_t want, unsigned char **out, size_t *len,
                      char *err, size_t errlen)
{
	json_t *v = json_object_get(jwk, name);

	if (!json_is_string(v) || json_string_length(v) == 0)
		return errf(err, errlen, "\"%s\" is missing or not a string", name);
	if (!keys_b64url_decode(json_string_value(v), json_string_length(v), out, len))
		return errf(err, errlen, "\"%s\" is not base64url", name);
	if (want && *len != want) {
		free(*out);
		*out = NULL;
		return errf(err, errlen, "\"%s\" must be %zu bytes", name, want);
	}
	return true;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pk = NULL;

	if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pk;
}

static EVP_PKEY *jwk_rsa(json_t *jwk, char *err, size_t errlen)
{
	unsigned char *n = NULL, *e = NULL;
	size_t nlen, elen;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pk = NULL;

	if (!jwk_bytes(jwk, "n", 0, &n, &nlen, err, errlen) ||
	    !jwk_bytes(jwk, "e", 0, &e, &elen, err, errlen))
		goto done;
	bn_n = BN_bin2bn(n, (int)nlen, NULL);
	bn_e = BN_bin2bn(e, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
		pk = pkey_fromdata("RSA", bld);
	if (!pk)
		errf(err, errlen, "not a valid RSA public key");
done:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	free(n);
	free(e);
	return pk;
}

/* An EC JWK; *skip is set for curves we do not support (P-521, secp256k1...). */
static EVP_PKEY *jwk_ec(json_t *jwk, bool *skip, char *err, size_t errlen)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	unsigned char *x = NULL, *y = NULL, pub[1 + 2 * 48];
	size_t size, xlen, ylen;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pk = NULL;

	if (!crv) {
		errf(err, errlen, "\"crv\" is missing or not a string");
		return NULL;
	}
	if (strcmp(crv, "P-256") == 0)
		size = 32;
	else if (strcmp(crv, "P-384") == 0)
		size = 48;
	else {
		*skip = true;
		return NULL;
	}
	if (!jwk_bytes(jwk, "x", size, &x, &xlen, err, errlen) ||
	    !jwk_bytes(jwk, "y", size, &y, &ylen, err, errlen))
		goto done;
	pub[0] = 0x04; /* uncompressed point: 04 || x || y */
	memcpy(pub + 1, x, size);
	memcpy(pub + 1 + size, y, size);
	bld = OSSL_PARAM_BLD_new();
	if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, crv, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * size))
		pk = pkey_fromdata("EC", bld);
	if (!pk)
		errf(err, errlen, "not a valid %s point", crv);
done:
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return pk;
}

/* Optional string member; false when present with another type. */
static bool opt_string(json_t *jwk, const char *name, const char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(jwk, name);

	*out = NULL;
	if (!v)
		return true;
	if (!json_is_string(v))
		return errf(err, errlen, "\"%s\" must be a string", name);
	*out = json_string_value(v);
	return true;
}

/* Adds one JWK to k; unsupported key types and curves are skipped, not errors. */
static bool add_jwk(struct keys *k, json_t *jwk, char *err, size_t errlen)
{
	static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
	const char *kty, *kid, *alg, *use;
	json_t *ops = json_object_get(jwk, "key_ops");
	EVP_PKEY *pk = NULL;
	bool skip = false, ok;

	if (!json_is_object(jwk))
		return errf(err, errlen, "not a JSON object");
	if (!opt_string(jwk, "kty", &kty, err, errlen) ||
	    !opt_string(jwk, "kid", &kid, err, errlen) ||
	    !opt_string(jwk, "alg", &alg, err, errlen) ||
	    !opt_string(jwk, "use", &use, err, errlen))
		return false;
	if (!kty)
		return errf(err, errlen, "\"kty\" is missing");
	if (strcmp(kty, "RSA") != 0 && strcmp(kty, "EC") != 0)
		return true; /* "oct", "OKP", ...: not ours to verify with */
	/* Private keys belong on the token issuer, never on the API server. */
	for (size_t i = 0; i < ODS_ARRAY_LEN(private_members); i++)
		if (json_object_get(jwk, private_members[i]))
			return errf(err, errlen, "holds private key material (\"%s\")",
			            private_members[i]);
	if (ops && !json_is_array(ops))
		return errf(err, errlen, "\"key_ops\" must be an array");
	for (size_t i = 0; kid && i < k->n; i++)
		if (k->v[i].kid && strcmp(k->v[i].kid, kid) == 0)
			return errf(err, errlen, "duplicate kid");
	if (strcmp(kty, "RSA") == 0)
		pk = jwk_rsa(jwk, err, errlen);
	else
		pk = jwk_ec(jwk, &skip, err, errlen);
	if (skip)
		return true;
	if (!pk)
		return false;
	ok = add_pkey(k, pk, kid, err, errlen);
	EVP_PKEY_free(pk);
	if (!ok)
		return false;
	struct key *key = &k->v[k->n - 1];
	key->alg = alg ? xstrdup(alg) : NULL;
	key->use = use ? xstrdup(use) : NULL;
	if (ops) {
		size_t i;
		json_t *op;
		key->no_verify = true;
		json_array_foreach(ops, i, op) if (json_is_string(op) &&
		                                   strcmp(json_string_value(op), "verify") == 0)
		        key->no_verify = false;
	}
	return true;
}

static bool load_jwks(struct keys *k, const char *path, char *err, size_t errlen)
{
	char e[ODS_ERRLEN];
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), *keys, *jwk;
	size_t i, before = k->n;
	bool ok = true;

	if (!root)
		return errf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys)) {
		json_decref(root);
		return errf(err, errlen, "%s: no \"keys\" array", path);
	}
	json_array_foreach(keys, i, jwk)
	{
		if (!add_jwk(k, jwk, e, sizeof(e))) {
			ok = errf(err, errlen, "%s: key #%zu: %s", path, i, e);
			break;
		}
	}
	json_decref(root);
	if (ok && k->n == before)
		return errf(err, errlen, "%s: no usable RSA or EC P-256/P-384 key", path);
	k->have_jwks = true;
	return ok;
}

static bool set(const char *s)
{
	return s && *s;
}

struct keys *keys_load(const char *secret_file, const char *public_key_file, const char *jwks_file,
                       char *err, size_t errlen)
{
	struct keys *k = xcalloc(1, sizeof(*k));

	if ((set(secret_file) &&
	     !keys_read_secret(secret_file, &k->secret, &k->secret_len, err, errlen)) ||
	    (set(public_key_file) && !load_pem_file(k, public_key_file, err, errlen)) ||
	    (set(jwks_file) && !load_jwks(k, jwks_file, err, errlen))) {
		keys_free(k);
		return NULL;
	}
	return k;
}

void keys_free(struct keys *k)
{
	if (!k)
		return;
	keys_free_secret(k->secret, k->secret_len);
	for (size_t i = 0; i < k->n; i++) {
		free(k->v[i].kid);
		free(k->v[i].alg);
		free(k->v[i].use);
		free(k->v[i].pem);
	}
	free(k->v);
	free(k);
}

size_t keys_secret_len(const struct keys *k)
{
	return k->secret_len;
}

/* Whether key may verify a token signed with alg; why says why not. */
static bool usable(const struct key *key, const char *alg, char *why, size_t whylen)
{
	if (key->family != keys_alg_family(alg))
		return errf(why, whylen, "key type does not match alg");
	if (key->alg && strcmp(key->alg, alg) != 0)
		return errf(why, whylen, "key is restricted to another alg");
	if ((key->use && strcmp(key->use, "sig") != 0) || key->no_verify)
		return errf(why, whylen, "key is not for signature verification");
	return true;
}

bool keys_select(const struct keys *k, const char *alg, const char *kid, const unsigned char **key,
                 size_t *keylen, char *why, size_t whylen)
{
	const struct key *found = NULL;
	size_t matches = 0;

	if (keys_alg_family(alg) == KEY_FAMILY_HMAC) {
		if (!k->secret)
			return errf(why, whylen, "no key for this alg");
		*key = k->secret;
		*keylen = k->secret_len;
		return true;
	}
	if (kid && k->have_jwks) {
		for (size_t i = 0; i < k->n && !found; i++)
			if (k->v[i].kid && strcmp(k->v[i].kid, kid) == 0)
				found = &k->v[i];
		if (!found)
			return errf(why, whylen, "unknown kid");
		if (!usable(found, alg, why, whylen))
			return false;
	} else {
		/* No kid to go by: only an unambiguous key will do. */
		for (size_t i = 0; i < k->n; i++)
			if (usable(&k->v[i], alg, NULL, 0) && matches++ == 0)
				found = &k->v[i];
		if (matches == 0)
			return errf(why, whylen, "no key for this alg");
		if (matches > 1)
			return errf(why, whylen, "token has no kid and several keys match");
	}
	*key = (const unsigned char *)found->pem;
	*keylen = found->pem_len;
	return true;
}
