/*
 * keys: the key material odsd verifies JWTs with, loaded once from the files
 * the operator configured (DESIGN §4): an HMAC secret file, a PEM public key
 * file and a JWKS file. A struct keys is immutable after keys_load, so any
 * number of threads may call keys_select on it at once.
 *
 * The key is chosen by the configured algorithm family, never by the token:
 * HS* tokens verify only with the secret, RS* only with RSA keys, ES256 only
 * with P-256 keys and ES384 only with P-384 keys. Public keys are handed out
 * as canonical SubjectPublicKeyInfo PEM text, the form libjwt verifies with.
 */
#ifndef ODS_KEYS_H
#define ODS_KEYS_H

#include "core/util.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

enum key_family {
	KEY_FAMILY_NONE = 0, /* not an algorithm we accept ("none" included) */
	KEY_FAMILY_HMAC,
	KEY_FAMILY_RSA,
	KEY_FAMILY_EC_P256,
	KEY_FAMILY_EC_P384,
};

/* The family of an algorithm name: "HS384" -> HMAC, "ES256" -> EC_P256.
 * Names are case-sensitive (RFC 7515 §4.1.1): "hs256" is KEY_FAMILY_NONE. */
enum key_family keys_alg_family(const char *alg);

/* The shortest HMAC secret RFC 7518 §3.2 allows for alg (32/48/64 bytes). */
size_t keys_hmac_min_len(const char *alg);

/* Strict base64url (RFC 7515 §2): alphabet A-Z a-z 0-9 - _, no padding, no
 * whitespace, unused trailing bits zero. On success *out is a NUL-terminated
 * buffer the caller frees, *outlen excludes the NUL. */
bool keys_b64url_decode(const char *s, size_t len, unsigned char **out,
                        size_t *outlen) ODS_MUST_CHECK;

/* The family of an OpenSSL key (public or private); false with err for key
 * types and curves we do not support, and for RSA keys under 2048 bits. */
bool keys_pkey_family(EVP_PKEY *pk, enum key_family *fam, char *err, size_t errlen) ODS_MUST_CHECK;

/* Reads an HMAC secret: the file's bytes without trailing CR/LF (so a file
 * written by `echo` works). Refuses an empty secret and PEM text (a public
 * key used as an HMAC secret is the classic algorithm-confusion mistake).
 * Release with keys_free_secret, which wipes it. */
bool keys_read_secret(const char *path, unsigned char **secret, size_t *len, char *err,
                      size_t errlen) ODS_MUST_CHECK;
void keys_free_secret(unsigned char *secret, size_t len);

struct keys;

/*
 * Loads every file given (NULL or "" = not configured). The public key file
 * holds one "PUBLIC KEY" or "CERTIFICATE" PEM block (a private key is
 * refused); the JWKS file holds {"keys": [...]} with RSA (n, e) and EC
 * P-256/P-384 (crv, x, y) keys. JWKs of other types or curves are skipped;
 * a JWKS with no usable key, a duplicate kid, or private key members is an
 * error. Every public key must pass OpenSSL's public key check.
 */
struct keys *keys_load(const char *secret_file, const char *public_key_file, const char *jwks_file,
                       char *err, size_t errlen) ODS_MUST_CHECK;
void keys_free(struct keys *k);

/* The loaded HMAC secret length (0 when no secret file was given). */
size_t keys_secret_len(const struct keys *k);

/*
 * The key a token whose header says alg (already allow-listed) and kid (NULL
 * when absent) must verify with. HMAC: the secret. Otherwise, with a JWKS and
 * a kid: the JWK with that kid, which must agree with alg (kty/crv, and its
 * own "alg", "use" and "key_ops" when present). Without a kid (or without a
 * JWKS): the single key of alg's family; none or several is an error.
 * *key stays owned by k. On failure why is a fixed phrase, safe for clients.
 */
bool keys_select(const struct keys *k, const char *alg, const char *kid, const unsigned char **key,
                 size_t *keylen, char *why, size_t whylen) ODS_MUST_CHECK;

#endif
