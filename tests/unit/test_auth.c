/*
 * auth suite: token verification, keys/JWKS, the token cache and token_mint.
 *
 * Keys (RSA-2048 x2, RSA-1024, EC P-256, EC P-384) are generated once per run
 * into a temporary directory, with PEM files and two JWKS files. Good tokens
 * come from token_mint; hostile ones are built segment by segment and signed
 * with HMAC by hand. The clock is pinned at NOW through auth_settings.now, so
 * expiry is tested without sleeping.
 */
#include "autoconfig.h"

#include "suites.h"

#include "admin/token.h"
#include "auth/auth.h"
#include "auth/keys.h"
#include "core/util.h"
#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW    1750000000L
#define SECRET "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ROLES  "support_agent,fraud_analyst,ods_admin"

static time_t clock_now = NOW;
static char *dir, *p_secret, *p_secret32, *p_rsa, *p_rsa_pub, *p_rsa2, *p_ec256, *p_ec256_pub,
        *p_ec384, *p_ec384_pub, *p_rsa1024_pub, *p_jwks, *p_jwks_multi, *p_encrypted, *p_cert;
static char *rsa_pub_pem;

static time_t fake_clock(void)
{
	return clock_now;
}

static char *b64url(const void *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);

	for (int i = 0; i < len; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	while (len > 0 && out[len - 1] == '=')
		out[--len] = '\0';
	return out;
}

static char *write_file(const char *name, const char *text)
{
	return tu_write_file(dir, name, text, strlen(text));
}

static char *pem_of(EVP_PKEY *pk, bool private)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	ck_assert(private ? PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)
	                  : PEM_write_bio_PUBKEY(b, pk));
	n = BIO_get_mem_data(b, &data);
	s = xstrndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

static char *write_pem(const char *name, EVP_PKEY *pk, bool private)
{
	char *text = pem_of(pk, private), *path = write_file(name, text);

	free(text);
	return path;
}

static json_t *bn_b64(EVP_PKEY *pk, const char *param, int size)
{
	BIGNUM *bn = NULL;
	unsigned char buf[512];
	int n;

	ck_assert(EVP_PKEY_get_bn_param(pk, param, &bn));
	n = size ? BN_bn2binpad(bn, buf, size) : BN_bn2bin(bn, buf);
	BN_free(bn);
	char *s = b64url(buf, (size_t)n);
	json_t *j = json_string(s);
	free(s);
	return j;
}

/* A public JWK for pk; extra is merged in ({"alg":"RS256"}...). */
static json_t *jwk_of(EVP_PKEY *pk, const char *kid, const char *extra)
{
	json_t *j = json_object();

	if (EVP_PKEY_is_a(pk, "RSA")) {
		json_object_set_new(j, "kty", json_string("RSA"));
		json_object_set_new(j, "n", bn_b64(pk, OSSL_PKEY_PARAM_RSA_N, 0));
		json_object_set_new(j, "e", bn_b64(pk, OSSL_PKEY_PARAM_RSA_E, 0));
	} else {
		int size = EVP_PKEY_get_bits(pk) == 256 ? 32 : 48;
		json_object_set_new(j, "kty", json_string("EC"));
		json_object_set_new(j, "crv", json_string(size == 32 ? "P-256" : "P-384"));
		json_object_set_new(j, "x", bn_b64(pk, OSSL_PKEY_PARAM_EC_PUB_X, size));
		json_object_set_new(j, "y", bn_b64(pk, OSSL_PKEY_PARAM_EC_PUB_Y, size));
	}
	json_object_set_new(j, "kid", json_string(kid));
	if (extra) {
		json_t *x = json_loads(extra, 0, NULL);
		json_object_update(j, x);
		json_decref(x);
	}
	return j;
}

static char *write_jwks(const char *name, json_t *keys)
{
	json_t *root = json_pack("{s:o}", "keys", keys);
	char *text = json_dumps(root, JSON_INDENT(1));
	char *path = write_file(name, text);

	free(text);
	json_decref(root);
	return path;
}

/* A self-signed certificate for pk, as an IdP publishes its signing key. */
static char *write_cert(const char *name, EVP_PKEY *pk)
{
	X509 *x = X509_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *text, *path;

	ck_assert(x && b);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"idp", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	ck_assert(X509_set_pubkey(x, pk) && X509_sign(x, pk, EVP_sha256()));
	ck_assert(PEM_write_bio_X509(b, x));
	long n = BIO_get_mem_data(b, &data);
	text = xstrndup(data, (size_t)n);
	path = write_file(name, text);
	free(text);
	BIO_free(b);
	X509_free(x);
	return path;
}

static void setup_keys(void)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	char *s;
	BIO *b;

	ck_assert(rsa && rsa2 && rsa1024 && ec256 && ec384);
	dir = tu_tmpdir();
	p_secret = write_file("secret", SECRET "\n"); /* the newline is not part of it */
	p_secret32 = write_file("secret32", "0123456789abcdef0123456789abcdef");
	rsa_pub_pem = pem_of(rsa, false);
	p_rsa_pub = write_file("rsa.pub", rsa_pub_pem);
	p_rsa = write_pem("rsa.pem", rsa, true);
	p_rsa2 = write_pem("rsa2.pem", rsa2, true);
	p_rsa1024_pub = write_pem("rsa1024.pub", rsa1024, false);
	p_ec256 = write_pem("ec256.pem", ec256, true);
	p_ec256_pub = write_pem("ec256.pub", ec256, false);
	p_ec384 = write_pem("ec384.pem", ec384, true);
	p_ec384_pub = write_pem("ec384.pub", ec384, false);
	p_cert = write_cert("rsa.crt", rsa);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, ec256, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"pass");
	BIO_write(b, "", 1); /* NUL-terminate the memory buffer */
	BIO_get_mem_data(b, &s);
	p_encrypted = write_file("encrypted.pem", s);
	BIO_free(b);
	/* The main JWKS: one key per family, plus key types we must skip. */
	p_jwks = write_jwks("jwks.json",
	                    json_pack("[o,o,o,{s:s,s:s,s:s},{s:s,s:s,s:s,s:s}]",
	                              jwk_of(rsa, "rsa1", "{\"alg\":\"RS256\",\"use\":\"sig\"}"),
	                              jwk_of(ec256, "ec1", NULL), jwk_of(ec384, "ec2", NULL), "kty",
	                              "oct", "kid", "hmac", "k", "c2VjcmV0", "kty", "OKP", "kid",
	                              "ed", "crv", "Ed25519", "x",
	                              "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"));
	/* Two RSA keys without alg, and keys that may not verify. */
	p_jwks_multi = write_jwks("jwks_multi.json",
	                          json_pack("[o,o,o,o]", jwk_of(rsa, "rsa1", NULL),
	                                    jwk_of(rsa2, "rsa2", NULL),
	                                    jwk_of(rsa, "enc1", "{\"use\":\"enc\"}"),
	                                    jwk_of(rsa, "ops1", "{\"key_ops\":[\"encrypt\"]}")));
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa2);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec384);
}

static void teardown_keys(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char *p = xasprintf("%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.')
			unlink(p);
		free(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	char *owned[] = {dir,          p_secret,    p_secret32, p_rsa,       p_rsa_pub,     p_rsa2,
	                 p_ec256,      p_ec256_pub, p_ec384,    p_ec384_pub, p_rsa1024_pub, p_jwks,
	                 p_jwks_multi, p_encrypted, p_cert,     rsa_pub_pem};
	for (size_t i = 0; i < ODS_ARRAY_LEN(owned); i++)
		free(owned[i]);
}

static void reset_clock(void)
{
	clock_now = NOW;
}

static struct auth_settings hs_settings(void)
{
	return (struct auth_settings){.algorithms = "HS256",
	                              .secret_file = p_secret,
	                              .leeway_s = 30,
	                              .app_roles = ROLES,
	                              .now = fake_clock};
}

static struct auth *mk(const struct auth_settings *s)
{
	char err[ODS_ERRLEN];
	struct auth *a = auth_new(s, err, sizeof(err));

	ck_assert_msg(a != NULL, "auth_new: %s", err);
	return a;
}

static struct token_opts hs_opts(void)
{
	return (struct token_opts){.secret_file = p_secret,
	                           .role = "support_agent",
	                           .sub = "agent-7",
	                           .scope = "customers:read cases:write",
	                           .now = NOW};
}

static char *mint(const struct token_opts *o)
{
	char err[ODS_ERRLEN], *jwt;

	ck_assert_msg(token_mint(o, &jwt, err, sizeof(err)), "token_mint: %s", err);
	return jwt;
}

/* An HS256 token from token_mint with one extra "name=value" claim. */
static char *mint_claim(const char *claim)
{
	struct token_opts o = hs_opts();
	const char *c[] = {claim};

	o.claims = c;
	o.nclaims = claim ? 1 : 0;
	return mint(&o);
}

/* A hand-built token: header and payload JSON, HMAC'd with md and key. */
static char *hand_md(const EVP_MD *md, const char *header, const char *payload, const char *key)
{
	char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
	char *input = xasprintf("%s.%s", h, p), *sig, *tok;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen;

	ck_assert(HMAC(md, key, (int)strlen(key), (unsigned char *)input, strlen(input), mac,
	               &maclen));
	sig = b64url(mac, maclen);
	tok = xasprintf("%s.%s", input, sig);
	free(h);
	free(p);
	free(input);
	free(sig);
	return tok;
}

static char *hand(const char *header, const char *payload)
{
	return hand_md(EVP_sha256(), header, payload, SECRET);
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
/* A good payload with the given members prepended. */
#define CLAIMS(extra) "{" extra "\"role\":\"support_agent\",\"exp\":1750003600}"

/* Verifies header; checks the status, that why is one clean line holding
 * why_part, and that an identity is returned exactly on success. */
static void expect(struct auth *a, const char *header, enum auth_status want, const char *why_part)
{
	char why[256] = "";
	struct auth_identity *id = (void *)&why;
	enum auth_status st = auth_verify(a, header, &id, why, sizeof(why));

	ck_assert_msg(st == want, "status %d, want %d (%s) for %.100s", st, want, why,
	              header ? header : "(null)");
	ck_assert(!strpbrk(why, "\r\n"));
	if (want == AUTH_OK) {
		ck_assert_ptr_nonnull(id);
		auth_identity_release(id);
		return;
	}
	ck_assert_ptr_null(id);
	if (why_part)
		ck_assert_msg(strstr(why, why_part), "why \"%s\" lacks \"%s\"", why, why_part);
}

static void expect_tok(struct auth *a, const char *jwt, enum auth_status want, const char *part)
{
	char *h = xasprintf("Bearer %s", jwt);

	expect(a, h, want, part);
	free(h);
}

/* expect_tok, then frees jwt. */
static void expect_free(struct auth *a, char *jwt, enum auth_status want, const char *part)
{
	expect_tok(a, jwt, want, part);
	free(jwt);
}

static struct auth_identity *verify_ok(struct auth *a, const char *jwt)
{
	char why[256], *h = xasprintf("Bearer %s", jwt);
	struct auth_identity *id;
	enum auth_status st = auth_verify(a, h, &id, why, sizeof(why));

	ck_assert_msg(st == AUTH_OK, "rejected: %s", why);
	free(h);
	return id;
}

/* A copy of the main JWKS with keys[idx][member] = value (member NULL:
 * keys[idx] appended once more). */
static char *jwks_variant(const char *name, size_t idx, const char *member, json_t *value)
{
	json_t *root = json_load_file(p_jwks, 0, NULL), *keys = json_object_get(root, "keys");
	json_t *key = json_array_get(keys, idx);
	char *path;

	if (member)
		json_object_set_new(key, member, value);
	else
		json_array_append(keys, key);
	path = write_jwks(name, json_incref(keys));
	json_decref(root);
	return path;
}

START_TEST(test_settings_errors)
{
	char *bad_pem = write_file("bad.pub", "hello\n"), *empty = write_file("empty", "");
	char *shortsec = write_file("short", "tooshort\n");
	char *notjson = write_file("jwks_notjson", "{\"keys\": [");
	char *nokeys = write_file("jwks_nokeys", "{\"k\": []}");
	char *onlyoct = write_file("jwks_oct", "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}");
	char *dup = jwks_variant("jwks_dup", 0, NULL, NULL);
	char *priv = jwks_variant("jwks_priv", 0, "d", json_string("AQAB"));
	char *shortx = jwks_variant("jwks_shortx", 1, "x", json_string("AAAA"));
	char *offcurve = jwks_variant("jwks_offcurve", 1, "y",
	                              json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"));
	char *badn = jwks_variant("jwks_badn", 0, "n", json_string("a+b/"));
	struct {
		struct auth_settings s;
		const char *want;
	} c[] = {
	        {{.algorithms = "none", .secret_file = p_secret}, "\"none\" is not supported"},
	        {{.algorithms = "HS256,foo", .secret_file = p_secret}, "\"foo\" is not supported"},
	        {{.algorithms = "hs256", .secret_file = p_secret}, "not supported"},
	        {{.algorithms = " , ", .secret_file = p_secret}, "no JWT algorithm"},
	        {{.algorithms = NULL, .secret_file = p_secret}, "no JWT algorithm"},
	        {{.algorithms = "HS256"}, "no secret file"},
	        {{.algorithms = "HS256", .secret_file = ""}, "no secret file"},
	        {{.algorithms = "RS256", .secret_file = p_secret}, "neither a public key"},
	        {{.algorithms = "HS256", .secret_file = empty}, "empty"},
	        {{.algorithms = "HS256", .secret_file = shortsec}, "RFC 7518"},
	        {{.algorithms = "HS256,HS512", .secret_file = p_secret32}, "RFC 7518"},
	        {{.algorithms = "HS256", .secret_file = p_rsa_pub}, "PEM key"},
	        {{.algorithms = "HS256", .secret_file = "/nonexistent/s"}, "/nonexistent/s"},
	        {{.algorithms = "RS256", .public_key_file = bad_pem}, "no PEM PUBLIC KEY"},
	        {{.algorithms = "RS256", .public_key_file = p_rsa}, "private key"},
	        {{.algorithms = "RS256", .public_key_file = p_rsa1024_pub}, "at least 2048"},
	        {{.algorithms = "RS256", .jwks_file = notjson}, "jwks_notjson:1"},
	        {{.algorithms = "RS256", .jwks_file = nokeys}, "no \"keys\" array"},
	        {{.algorithms = "RS256", .jwks_file = onlyoct}, "no usable"},
	        {{.algorithms = "RS256", .jwks_file = dup}, "duplicate kid"},
	        {{.algorithms = "RS256", .jwks_file = priv}, "private key material"},
	        {{.algorithms = "ES256", .jwks_file = shortx}, "must be 32 bytes"},
	        {{.algorithms = "ES256", .jwks_file = offcurve}, "not a valid P-256 point"},
	        {{.algorithms = "RS256", .jwks_file = badn}, "not base64url"},
	        {{.algorithms = "HS256", .secret_file = p_secret, .leeway_s = -1}, "leeway"},
	        {{.algorithms = "HS256", .secret_file = p_secret, .role_claim = "a..b"}, "dotted"},
	        {{.algorithms = "HS256", .secret_file = p_secret, .role_claim = "a."}, "dotted"},
	        {{.algorithms = "HS256", .secret_file = p_secret, .app_roles = " , "},
	         "no app role"},
	};

	for (size_t i = 0; i < ODS_ARRAY_LEN(c); i++) {
		char err[ODS_ERRLEN] = "";
		if (!c[i].s.app_roles)
			c[i].s.app_roles = ROLES;
		struct auth *a = auth_new(&c[i].s, err, sizeof(err));
		ck_assert_msg(a == NULL, "case %zu was accepted", i);
		ck_assert_msg(strstr(err, c[i].want), "case %zu: \"%s\" lacks \"%s\"", i, err,
		              c[i].want);
	}
	char *paths[] = {bad_pem, empty, shortsec, notjson,  nokeys, onlyoct,
	                 dup,     priv,  shortx,   offcurve, badn};
	for (size_t i = 0; i < ODS_ARRAY_LEN(paths); i++)
		free(paths[i]);
}
END_TEST

START_TEST(test_b64url)
{
	static const struct {
		const char *in, *out; /* out NULL: rejected */
	} c[] = {
	        {"", ""},
	        {"QQ", "A"},
	        {"QUI", "AB"},
	        {"QUJD", "ABC"},
	        {"QR", NULL},
	        {"QQ=", NULL},
	        {"Q", NULL},
	        {"QU+", NULL},
	        {"QU/", NULL},
	        {"Q Q", NULL},
	        {"-_-_", "\xfb\xff\xbf"},
	};
	unsigned char *out;
	size_t len;

	for (size_t i = 0; i < ODS_ARRAY_LEN(c); i++) {
		bool ok = keys_b64url_decode(c[i].in, strlen(c[i].in), &out, &len);
		ck_assert_msg(ok == (c[i].out != NULL), "case %zu", i);
		if (ok) {
			ck_assert_str_eq((char *)out, c[i].out);
			free(out);
		}
	}
}
END_TEST

START_TEST(test_hs256_ok)
{
	struct auth_settings s = hs_settings();
	struct auth *a = mk(&s);
	struct token_opts o = hs_opts();
	char *jwt = mint(&o);
	struct auth_identity *id = verify_ok(a, jwt);

	ck_assert_str_eq(auth_identity_role(id), "support_agent");
	ck_assert_str_eq(auth_identity_sub(id), "agent-7");
	ck_assert_int_eq(auth_identity_exp(id), NOW + 3600);
	ck_assert(auth_identity_has_scope(id, "customers:read"));
	ck_assert(auth_identity_has_scope(id, "cases:write"));
	ck_assert(!auth_identity_has_scope(id, "admin"));
	ck_assert(!auth_identity_has_scope(id, "customers"));
	ck_assert(!auth_identity_has_scope(id, ""));
	ck_assert_str_eq(auth_identity_claims_json(id),
	                 "{\"exp\":1750003600,\"iat\":1750000000,\"role\":\"support_agent\","
	                 "\"scope\":\"customers:read cases:write\",\"sub\":\"agent-7\"}");
	ck_assert_int_eq(auth_status_http(AUTH_OK), 200);
	auth_identity_release(id);
	/* No sub, no scope: still a valid identity. */
	o.sub = NULL;
	o.scope = NULL;
	free(jwt);
	jwt = mint(&o);
	id = verify_ok(a, jwt);
	ck_assert_ptr_null(auth_identity_sub(id));
	ck_assert(!auth_identity_has_scope(id, "customers:read"));
	auth_identity_release(id);
	free(jwt);
	/* HS384 and HS512 when allowed. */
	auth_free(a);
	s.algorithms = "HS256,HS384,HS512";
	a = mk(&s);
	o.alg = "HS384";
	expect_free(a, mint(&o), AUTH_OK, NULL);
	o.alg = "HS512";
	expect_free(a, mint(&o), AUTH_OK, NULL);
	auth_free(a);
}
END_TEST

START_TEST(test_header_forms)
{
	struct auth_settings s = hs_settings();
	struct auth *a = mk(&s);
	struct token_opts o = hs_opts();
	char *jwt = mint(&o), *h;
	static const char *const good[] = {"Bearer %s",   "bearer %s",  "BEARER %s",
	                                   "Bearer: %s",  "bearer:%s",  "  Bearer \t%s  ",
	                                   "Bearer:  %s", "BeArEr %s\t"};
	static const char *const scheme[] = {
	        "Basic dXNlcjpwYXNz", "Token %s", "Bearer%s", "Bearer-%s", "", "Bear %s", "%s"};

	for (size_t i = 0; i < ODS_ARRAY_LEN(good); i++) {
		h = xasprintf(good[i], jwt);
		expect(a, h, AUTH_OK, NULL);
		free(h);
	}
	for (size_t i = 0; i < ODS_ARRAY_LEN(scheme); i++) {
		h = xasprintf(scheme[i], jwt);
		expect(a, h, AUTH_INVALID, "scheme must be Bearer");
		free(h);
	}
	expect(a, NULL, AUTH_MISSING, "no Authorization header");
	ck_assert_int_eq(auth_status_http(AUTH_MISSING), 401);
	ck_assert_int_eq(auth_status_http(AUTH_INVALID), 401);
	expect(a, "Bearer", AUTH_INVALID, "empty bearer token");
	expect(a, "Bearer    ", AUTH_INVALID, "empty bearer token");
	expect(a, "Bearer: ", AUTH_INVALID, "empty bearer token");
	free(jwt);
	auth_free(a);
}
END_TEST

/* Flips the lowest bit of a base64url digit's value. */
static void flip_unused_bit(char *c)
{
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	*c = alphabet[(strchr(alphabet, *c) - alphabet) ^ 1];
}

START_TEST(test_malformed)
{
	struct auth_settings s = hs_settings();
	struct auth *a = mk(&s);
	char *jwt = mint_claim(NULL), *t;
	char *dot1 = strchr(jwt, '.'), *dot2 = strrchr(jwt, '.');

	expect(a, "Bearer abc.def", AUTH_INVALID, "three segments");
	t = xasprintf("%s.xyz", jwt);
	expect_free(a, t, AUTH_INVALID, "three segments");
	expect(a, "Bearer ..", AUTH_INVALID, "header is not a JSON object");
	expect(a, "Bearer a.b.c.d.e", AUTH_INVALID, "three segments");
	/* Characters outside base64url, padding included. */
	t = xasprintf("%.*s=%s", (int)(dot1 - jwt), jwt, dot1);
	expect_free(a, t, AUTH_INVALID, "not base64url");
	t = xasprintf("%s==", jwt);
	expect_free(a, t, AUTH_INVALID, "not base64url");
	expect(a, "Bearer ey+J.ey/J.abc", AUTH_INVALID, "not base64url");
	expect(a, "Bearer eyJ hbGc.e.e", AUTH_INVALID, "not base64url");
	expect(a, "Bearer eyJhb\x01.e.e", AUTH_INVALID, "not base64url");
	expect(a, "Bearer eyJhb\xc3\xa9.e.e", AUTH_INVALID, "not base64url");
	/* A segment of 4n+1 characters, then non-canonical trailing bits. */
	expect(a, "Bearer eyJhb.e30.abc", AUTH_INVALID, "header is not a JSON object");
	t = xstrdup(jwt);
	flip_unused_bit(&t[dot2 - jwt + 43]); /* the last of 43: 2 bits unused */
	expect_free(a, t, AUTH_INVALID, "signature is not base64url");
	t = xstrdup(jwt);
	t[dot2 - jwt + 20] = t[dot2 - jwt + 20] == 'A' ? 'B' : 'A';
	expect_free(a, t, AUTH_INVALID, "signature is not valid");
	/* Header and payload that are not JSON objects. */
	expect_free(a, hand("not json", CLAIMS("")), AUTH_INVALID, "header is not a JSON object");
	expect_free(a, hand("[\"HS256\"]", CLAIMS("")), AUTH_INVALID, "header is not a JSON");
	expect_free(a, hand("{\"alg\":\"HS256\"", CLAIMS("")), AUTH_INVALID, "header is not");
	expect_free(a, hand("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", CLAIMS("")), AUTH_INVALID,
	            "header is not");
	expect_free(a, hand(HS256, "nope"), AUTH_INVALID, "payload is not a JSON object");
	expect_free(a, hand(HS256, "[1,2]"), AUTH_INVALID, "payload is not a JSON object");
	expect_free(a, hand(HS256, CLAIMS("\"role\":\"ods_admin\",")), AUTH_INVALID,
	            "payload is not a JSON object"); /* duplicate names */
	expect_free(a, hand("{}", CLAIMS("")), AUTH_INVALID, "no alg");
	expect_free(a, hand("{\"alg\":256}", CLAIMS("")), AUTH_INVALID, "no alg");
	expect(a, "Bearer eyJhbGciOiJIUzI1NiJ9.e30.", AUTH_INVALID, "no signature");
	free(jwt);
	auth_free(a);
}
END_TEST

START_TEST(test_alg_policy)
{
	struct auth_settings s = hs_settings();
	struct auth *a = mk(&s);
	struct token_opts o = hs_opts();
	static const char *const nones[] = {"none", "None", "NONE", "nOnE"};

	for (size_t i = 0; i < ODS_ARRAY_LEN(nones); i++) {
		char *h = xasprintf("{\"alg\":\"%s\"}", nones[i]), *p = b64url(h, strlen(h));
		char *c = b64url(CLAIMS(""), strlen(CLAIMS(""))), *t = xasprintf("%s.%s.", p, c);
		expect_tok(a, t, AUTH_INVALID, "alg none");
		free(t);
		t = xasprintf("%s.%s.c2ln", p, c); /* with a "signature" too */
		expect_free(a, t, AUTH_INVALID, "alg none");
		free(h);
		free(p);
		free(c);
	}
	/* Allow-list is exact: HS384 is not HS256, and names are case-sensitive. */
	expect_free(a, hand_md(EVP_sha384(), "{\"alg\":\"HS384\"}", CLAIMS(""), SECRET),
	            AUTH_INVALID, "alg is not allowed");
	expect_free(a, hand("{\"alg\":\"hs256\"}", CLAIMS("")), AUTH_INVALID, "not allowed");
	expect_free(a, hand("{\"alg\":\"HS256\\r\\nX-Evil: 1\"}", CLAIMS("")), AUTH_INVALID,
	            "not allowed");
	o.alg = "RS256";
	o.key_file = p_rsa;
	expect_free(a, mint(&o), AUTH_INVALID, "alg is not allowed");
	o.alg = "ES256";
	o.key_file = p_ec256;
	expect_free(a, mint(&o), AUTH_INVALID, "alg is not allowed");
	/* Header members we refuse or check. */
	expect_free(a, hand("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", CLAIMS("")), AUTH_INVALID,
	            "typ must be JWT");
	expect_free(a, hand("{\"alg\":\"HS256\",\"typ\":7}", CLAIMS("")), AUTH_INVALID, "typ");
	expect_free(a, hand("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", CLAIMS("")), AUTH_OK, NULL);
	expect_free(a, hand("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", CLAIMS("")), AUTH_INVALID,
	            "crit");
	expect_free(a, hand("{\"alg\":\"HS256\",\"kid\":5}", CLAIMS("")), AUTH_INVALID,
	            "kid must be a string");
	/* A wrong secret. */
	expect_free(a, hand_md(EVP_sha256(), HS256, CLAIMS(""), "another secret of 32 bytes.....!"),
	            AUTH_INVALID, "signature is not valid");
	auth_free(a);
}
END_TEST

/* RFC 8725 §2.1: an HS256 token MACed with the RSA public key (which anyone
 * may have) must not verify, even with both families allowed. */
START_TEST(test_key_confusion)
{
	struct auth_settings s = hs_settings();
	struct auth *a;
	char *trimmed = xstrndup(rsa_pub_pem, strlen(rsa_pub_pem) - 1);

	s.algorithms = "HS256,RS256";
	s.public_key_file = p_rsa_pub;
	a = mk(&s);
	expect_free(a, hand(HS256, CLAIMS("")), AUTH_OK, NULL);
	expect_free(a, hand_md(EVP_sha256(), HS256, CLAIMS(""), rsa_pub_pem), AUTH_INVALID,
	            "signature is not valid");
	expect_free(a, hand_md(EVP_sha256(), HS256, CLAIMS(""), trimmed), AUTH_INVALID,
	            "signature is not valid");
	auth_free(a);
	/* With only RS256 allowed the HS256 token never reaches a key at all. */
	s.algorithms = "RS256";
	s.secret_file = NULL;
	a = mk(&s);
	expect_free(a, hand_md(EVP_sha256(), HS256, CLAIMS(""), rsa_pub_pem), AUTH_INVALID,
	            "alg is not allowed");
	auth_free(a);
	free(trimmed);
}
END_TEST

START_TEST(test_tampering)
{
	struct auth_settings s = hs_settings();
	struct token_opts o = hs_opts();
	const char *admin = "{\"role\":\"ods_admin\",\"exp\":1750003600}";
	char *jwt, *forged, *p;
	struct auth *a;

	s.algorithms = "HS256,RS256,ES256";
	s.jwks_file = p_jwks;
	a = mk(&s);
	for (int i = 0; i < 3; i++) {
		o.alg = i == 0 ? "HS256" : i == 1 ? "RS256" : "ES256";
		o.key_file = i == 1 ? p_rsa : p_ec256;
		jwt = mint(&o);
		char *dot1 = strchr(jwt, '.'), *dot2 = strrchr(jwt, '.');
		expect_tok(a, jwt, AUTH_OK, NULL);
		/* The payload swapped for one granting ods_admin, signature kept. */
		p = b64url(admin, strlen(admin));
		forged = xasprintf("%.*s.%s%s", (int)(dot1 - jwt), jwt, p, dot2);
		expect_free(a, forged, AUTH_INVALID, "signature is not valid");
		/* One signature character changed (not just its unused bits). */
		dot2[5] = dot2[5] == 'x' ? 'y' : 'x';
		expect_free(a, jwt, AUTH_INVALID, "signature is not valid");
		free(p);
	}
	auth_free(a);
}
END_TEST

START_TEST(test_times)
{
	struct auth_settings s = hs_settings();
	struct auth *a = mk(&s); /* leeway 30 */
	char c[64];
	static const struct {
		const char *fmt;
		long delta;
		enum auth_status want;
		const char *why;
	} t[] = {
	        {"exp=%ld", -10, AUTH_OK, NULL}, /* expired, but within the leeway */
	        {"exp=%ld", -30, AUTH_INVALID, "expired"},
	        {"exp=%ld", -31, AUTH_INVALID, "expired"},
	        {"exp=%ld", -86400, AUTH_INVALID, "expired"},
	        {"nbf=%ld", 20, AUTH_OK, NULL},
	        {"nbf=%ld", 31, AUTH_INVALID, "not valid yet"},
	        {"nbf=%ld", 3600, AUTH_INVALID, "not valid yet"},
	        {"iat=%ld", 30, AUTH_OK, NULL},
	        {"iat=%ld", 31, AUTH_INVALID, "issued in the future"},
	        {"iat=%ld", -600, AUTH_OK, NULL},
	};

	for (size_t i = 0; i < ODS_ARRAY_LEN(t); i++) {
		snprintf(c, sizeof(c), t[i].fmt, NOW + t[i].delta);
		expect_free(a, mint_claim(c), t[i].want, t[i].why);
	}
	expect_free(a, mint_claim("exp=1750000000.5"), AUTH_OK, NULL);
	expect_free(a, mint_claim("exp=\"1750003600\""), AUTH_INVALID, "NumericDate");
	expect_free(a, mint_claim("exp=1e300"), AUTH_INVALID, "NumericDate");
	expect_free(a, mint_claim("exp=9223372036854775807"), AUTH_INVALID, "NumericDate");
	expect_free(a, mint_claim("nbf=null"), AUTH_INVALID, "NumericDate");
	expect_free(a, mint_claim("iat=[1]"), AUTH_INVALID, "NumericDate");
	expect_free(a, hand(HS256, "{\"role\":\"support_agent\"}"), AUTH_INVALID, "no exp");
	auth_free(a);
	/* Leeway 0: valid up to the second before exp. */
	s.leeway_s = 0;
	a = mk(&s);
	snprintf(c, sizeof(c), "exp=%ld", NOW);
	expect_free(a, mint_claim(c), AUTH_INVALID, "expired");
	snprintf(c, sizeof(c), "exp=%ld", NOW + 1);
	expect_free(a, mint_claim(c), AUTH_OK, NULL);
	snprintf(c, sizeof(c), "nbf=%ld", NOW + 1);
	expect_free(a, mint_claim(c), AUTH_INVALID, "not valid yet");
	auth_free(a);
}
END_TEST

START_TEST(test_aud_iss)
{
	struct auth_settings s = hs_settings();
	struct auth *a = mk(&s);
	static const struct {
		const char *claim;
		enum auth_status want;
	} aud[] = {
	        {"aud=\"ods-api\"", AUTH_OK},
	        {"aud=[\"other\",\"ods-api\"]", AUTH_OK},
	        {"aud=\"ods-api2\"", AUTH_INVALID},
	        {"aud=\"ODS-API\"", AUTH_INVALID},
	        {"aud=[\"other\",\"more\"]", AUTH_INVALID},
	        {"aud=[]", AUTH_INVALID},
	        {"aud=[[\"ods-api\"]]", AUTH_INVALID},
	        {"aud=42", AUTH_INVALID},
	        {NULL, AUTH_INVALID},
	};

	/* Not configured: not checked. */
	expect_free(a, mint_claim("aud=\"anything\""), AUTH_OK, NULL);
	expect_free(a, mint_claim("iss=42"), AUTH_OK, NULL);
	auth_free(a);
	s.audience = "ods-api";
	a = mk(&s);
	for (size_t i = 0; i < ODS_ARRAY_LEN(aud); i++)
		expect_free(a, mint_claim(aud[i].claim), aud[i].want,
		            aud[i].want ? "audience is not accepted" : NULL);
	auth_free(a);
	s.audience = NULL;
	s.issuer = "https://idp.example";
	a = mk(&s);
	expect_free(a, mint_claim("iss=\"https://idp.example\""), AUTH_OK, NULL);
	expect_free(a, mint_claim("iss=\"https://idp.example/\""), AUTH_INVALID, "issuer");
	expect_free(a, mint_claim("iss=\"https://IDP.example\""), AUTH_INVALID, "issuer");
	expect_free(a, mint_claim("iss=[\"https://idp.example\"]"), AUTH_INVALID, "issuer");
	expect_free(a, mint_claim(NULL), AUTH_INVALID, "issuer");
	auth_free(a);
}
END_TEST

START_TEST(test_public_key_file)
{
	struct auth_settings s = {.algorithms = "RS256,RS384,RS512",
	                          .public_key_file = p_rsa_pub,
	                          .app_roles = ROLES,
	                          .now = fake_clock};
	struct token_opts o = hs_opts();
	struct auth *a = mk(&s);
	static const char *const rs[] = {"RS256", "RS384", "RS512"};

	o.key_file = p_rsa;
	for (size_t i = 0; i < ODS_ARRAY_LEN(rs); i++) {
		o.alg = rs[i];
		expect_free(a, mint(&o), AUTH_OK, NULL);
	}
	o.kid = "whatever"; /* no JWKS: a kid has nothing to select from */
	expect_free(a, mint(&o), AUTH_OK, NULL);
	o.kid = NULL;
	o.key_file = p_rsa2; /* the wrong RSA key */
	expect_free(a, mint(&o), AUTH_INVALID, "signature is not valid");
	auth_free(a);
	/* The same key given as an X.509 certificate. */
	s.public_key_file = p_cert;
	a = mk(&s);
	o.key_file = p_rsa;
	expect_free(a, mint(&o), AUTH_OK, NULL);
	auth_free(a);
	/* EC keys, each only for its own curve. */
	s.algorithms = "ES256,ES384";
	s.public_key_file = p_ec256_pub;
	a = mk(&s);
	o.alg = "ES256";
	o.key_file = p_ec256;
	expect_free(a, mint(&o), AUTH_OK, NULL);
	o.alg = "ES384";
	o.key_file = p_ec384;
	expect_free(a, mint(&o), AUTH_INVALID, "no key for this alg");
	auth_free(a);
	s.public_key_file = p_ec384_pub;
	a = mk(&s);
	expect_free(a, mint(&o), AUTH_OK, NULL);
	auth_free(a);
}
END_TEST

START_TEST(test_jwks)
{
	struct auth_settings s = {.algorithms = "RS256,RS384,ES256,ES384",
	                          .jwks_file = p_jwks,
	                          .app_roles = ROLES,
	                          .now = fake_clock};
	struct token_opts o = hs_opts();
	struct auth *a = mk(&s);
	static const struct {
		const char *alg, *key, *kid;
		enum auth_status want;
		const char *why;
	} c[] = {
	        {"RS256", "rsa", "rsa1", AUTH_OK, NULL},
	        {"ES256", "ec256", "ec1", AUTH_OK, NULL},
	        {"ES384", "ec384", "ec2", AUTH_OK, NULL},
	        {"RS256", "rsa", NULL, AUTH_OK, NULL}, /* the only RSA key */
	        {"ES384", "ec384", NULL, AUTH_OK, NULL},
	        {"RS256", "rsa", "nope", AUTH_INVALID, "unknown kid"},
	        {"RS256", "rsa", "hmac", AUTH_INVALID, "unknown kid"}, /* skipped oct key */
	        {"RS256", "rsa", "ec1", AUTH_INVALID, "key type does not match alg"},
	        {"ES384", "ec384", "ec1", AUTH_INVALID, "key type does not match alg"},
	        {"ES256", "ec256", "rsa1", AUTH_INVALID, "key type does not match alg"},
	        {"RS384", "rsa", "rsa1", AUTH_INVALID, "restricted to another alg"},
	        {"RS384", "rsa", NULL, AUTH_INVALID, "no key for this alg"},
	        {"ES256", "ec256", "ec2", AUTH_INVALID, "key type does not match alg"},
	};

	for (size_t i = 0; i < ODS_ARRAY_LEN(c); i++) {
		o.alg = c[i].alg;
		o.kid = c[i].kid;
		o.key_file = strcmp(c[i].key, "rsa") == 0     ? p_rsa
		             : strcmp(c[i].key, "ec256") == 0 ? p_ec256
		                                              : p_ec384;
		expect_free(a, mint(&o), c[i].want, c[i].why);
	}
	auth_free(a);
	/* Several RSA keys: a kid is needed, and must name a signing key. */
	s.jwks_file = p_jwks_multi;
	a = mk(&s);
	o.alg = "RS256";
	o.key_file = p_rsa;
	o.kid = NULL;
	expect_free(a, mint(&o), AUTH_INVALID, "several keys match");
	o.kid = "enc1";
	expect_free(a, mint(&o), AUTH_INVALID, "not for signature verification");
	o.kid = "ops1";
	expect_free(a, mint(&o), AUTH_INVALID, "not for signature verification");
	o.kid = "rsa2"; /* right kid, wrong private key */
	expect_free(a, mint(&o), AUTH_INVALID, "signature is not valid");
	o.key_file = p_rsa2;
	expect_free(a, mint(&o), AUTH_OK, NULL);
	auth_free(a);
}
END_TEST

START_TEST(test_roles)
{
	struct auth_settings s = hs_settings();
	struct auth *a = mk(&s);
	struct auth_identity *id;
	char *jwt;

	expect_free(a, hand(HS256, "{\"exp\":1750003600}"), AUTH_FORBIDDEN, "no role claim");
	ck_assert_int_eq(auth_status_http(AUTH_FORBIDDEN), 403);
	expect_free(a, mint_claim("role=\"postgres\""), AUTH_FORBIDDEN, "not an allowed");
	expect_free(a, mint_claim("role=\"ods_sync\""), AUTH_FORBIDDEN, "not an allowed");
	expect_free(a, mint_claim("role=\"Ods_admin\""), AUTH_FORBIDDEN, "not an allowed");
	expect_free(a, mint_claim("role=42"), AUTH_FORBIDDEN, "not an allowed");
	expect_free(a, mint_claim("role=null"), AUTH_FORBIDDEN, "not an allowed");
	expect_free(a, mint_claim("role=[\"ods_admin\"]"), AUTH_FORBIDDEN, "not an allowed");
	/* An invalid token is 401 even when its role is also wrong. */
	expect_free(a, hand(HS256, "{\"exp\":1,\"role\":\"postgres\"}"), AUTH_INVALID, "expired");
	expect_free(a, hand(HS256, "{\"exp\":1750003600,\"sub\":7}"), AUTH_INVALID,
	            "sub must be a string");
	jwt = mint_claim("role=\"ods_admin\"");
	id = verify_ok(a, jwt);
	ck_assert_str_eq(auth_identity_role(id), "ods_admin");
	auth_identity_release(id);
	free(jwt);
	auth_free(a);
	/* A dotted path, and a namespaced claim whose name holds dots. */
	s.role_claim = "app_metadata.role";
	a = mk(&s);
	jwt = mint_claim("app_metadata={\"role\":\"fraud_analyst\",\"x\":1}");
	id = verify_ok(a, jwt);
	ck_assert_str_eq(auth_identity_role(id), "fraud_analyst");
	auth_identity_release(id);
	free(jwt);
	expect_free(a, mint_claim(NULL), AUTH_FORBIDDEN, "no role claim"); /* top-level role */
	expect_free(a, mint_claim("app_metadata=\"fraud_analyst\""), AUTH_FORBIDDEN, "no role");
	expect_free(a, mint_claim("app_metadata={\"role\":{\"x\":1}}"), AUTH_FORBIDDEN, "not an");
	expect_free(a, mint_claim("app_metadata={\"roles\":\"ods_admin\"}"), AUTH_FORBIDDEN, "no");
	auth_free(a);
	s.role_claim = "https://ods.example/role";
	a = mk(&s);
	expect_free(a, mint_claim("https://ods.example/role=\"ods_admin\""), AUTH_OK, NULL);
	auth_free(a);
}
END_TEST

START_TEST(test_scopes)
{
	struct auth_settings s = hs_settings();
	struct auth *a = mk(&s);
	static const struct {
		const char *claim;
		const char *has, *hasnt;
	} c[] = {
	        {"scope=\"a  b c\"", "b", "a b"},
	        {"scp=[\"x\",\"y\"]", "y", "x y"},
	        {"scp=\"p q\"", "q", "p q"},
	        {"scp=[\"admin\"]", "admin", "customers:read"},
	        {"scp=[\"fraud:read fraud:write\"]", "fraud:write", "fraud:read fraud:write"},
	        {"scp=[]", NULL, "admin"},
	};
	struct token_opts o = hs_opts();
	const char *both[] = {"scp=[\"orders:read\"]"};
	struct auth_identity *id;
	char *jwt;

	for (size_t i = 0; i < ODS_ARRAY_LEN(c); i++) {
		o.scope = NULL;
		o.claims = (const char *[]){c[i].claim};
		o.nclaims = 1;
		jwt = mint(&o);
		id = verify_ok(a, jwt);
		ck_assert_msg(!c[i].has || auth_identity_has_scope(id, c[i].has), "case %zu", i);
		ck_assert_msg(!auth_identity_has_scope(id, c[i].hasnt), "case %zu", i);
		auth_identity_release(id);
		free(jwt);
	}
	o.scope = "customers:read";
	o.claims = both;
	jwt = mint(&o);
	id = verify_ok(a, jwt);
	ck_assert(auth_identity_has_scope(id, "customers:read"));
	ck_assert(auth_identity_has_scope(id, "orders:read"));
	auth_identity_release(id);
	free(jwt);
	expect_free(a, mint_claim("scope=[\"a\"]"), AUTH_INVALID, "scope must be a string");
	expect_free(a, mint_claim("scp=[\"a\",1]"), AUTH_INVALID, "scp must be");
	expect_free(a, mint_claim("scp={}"), AUTH_INVALID, "scp must be");
	auth_free(a);
}
END_TEST

START_TEST(test_cache)
{
	struct auth_settings s = hs_settings();
	struct auth_identity *id1, *id2, *id3;
	struct auth *a;
	char c[64], why[256], *jwt, *h, *t1, *t2;

	s.leeway_s = 0;
	a = mk(&s);
	snprintf(c, sizeof(c), "exp=%ld", NOW + 2);
	jwt = mint_claim(c);
	h = xasprintf("bearer: %s", jwt);
	id1 = verify_ok(a, jwt);
	id2 = verify_ok(a, jwt);
	ck_assert_ptr_eq(id1, id2); /* a hit: the very same identity */
	ck_assert(auth_verify(a, h, &id3, why, sizeof(why)) == AUTH_OK);
	ck_assert_ptr_eq(id3, id1); /* keyed on the token, not the header spelling */
	auth_identity_release(id3);
	clock_now = NOW + 1;
	id3 = verify_ok(a, jwt);
	ck_assert_ptr_eq(id3, id1);
	auth_identity_release(id3);
	clock_now = NOW + 2; /* the cached entry has expired */
	expect_tok(a, jwt, AUTH_INVALID, "expired");
	ck_assert_str_eq(auth_identity_role(id1), "support_agent"); /* still ours */
	auth_identity_release(id1);
	auth_identity_release(id2);
	/* A clock stepping back below iat must not be served from the cache. */
	clock_now = NOW;
	free(jwt);
	jwt = mint_claim(NULL); /* iat = NOW */
	auth_identity_release(verify_ok(a, jwt));
	clock_now = NOW - 1;
	expect_tok(a, jwt, AUTH_INVALID, "issued in the future");
	auth_free(a);
	/* The leeway extends cached entries exactly as it does fresh ones. */
	s.leeway_s = 30;
	a = mk(&s);
	clock_now = NOW;
	free(jwt);
	jwt = mint_claim(c);
	auth_identity_release(verify_ok(a, jwt));
	clock_now = NOW + 31;
	expect_tok(a, jwt, AUTH_OK, NULL);
	clock_now = NOW + 32;
	expect_tok(a, jwt, AUTH_INVALID, "expired");
	auth_free(a);
	/* One slot: two tokens keep replacing each other and still verify. */
	clock_now = NOW;
	s.cache_entries = 1;
	a = mk(&s);
	t1 = mint_claim("sub=\"one\"");
	t2 = mint_claim("sub=\"two\"");
	for (int i = 0; i < 4; i++) {
		id1 = verify_ok(a, i % 2 ? t1 : t2);
		ck_assert_str_eq(auth_identity_sub(id1), i % 2 ? "one" : "two");
		auth_identity_release(id1);
	}
	auth_free(a);
	free(t1);
	free(t2);
	free(jwt);
	free(h);
}
END_TEST

START_TEST(test_huge)
{
	struct auth_settings s = hs_settings();
	struct auth *a = mk(&s);
	size_t n = 1 << 20;
	char *h = xmalloc(n + 16), *pad, *jwt;

	memcpy(h, "Bearer ", 7);
	memset(h + 7, 'A', n);
	h[7 + n] = '\0';
	expect(a, h, AUTH_INVALID, "too long");
	h[7 + 1000] = '.';
	h[7 + 2000] = '.';
	expect(a, h, AUTH_INVALID, "too long");
	h[7 + AUTH_MAX_TOKEN_BYTES + 1] = '\0';
	expect(a, h, AUTH_INVALID, "too long");
	h[7 + AUTH_MAX_TOKEN_BYTES] = '\0';
	expect(a, h, AUTH_INVALID, "header is not a JSON object");
	memset(h, 'x', n);
	h[n] = '\0';
	expect(a, h, AUTH_INVALID, "scheme");
	free(h);
	/* A big but legal token (10 KB of claims) still verifies. */
	pad = xmalloc(10000 + 8);
	memcpy(pad, "pad=", 4);
	memset(pad + 4, 'p', 10000);
	pad[10004] = '\0';
	jwt = mint_claim(pad);
	ck_assert_uint_gt(strlen(jwt), 10000);
	expect_free(a, jwt, AUTH_OK, NULL);
	free(pad);
	auth_free(a);
}
END_TEST

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

START_TEST(test_garbage)
{
	static const char tokchars[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
	struct auth_settings s = hs_settings();
	struct auth *a = mk(&s);
	char *jwt = mint_claim(NULL), *t = xmalloc(strlen(jwt) + 400);
	struct auth_identity *id;
	char why[256];

	for (int i = 0; i < 10000; i++) {
		size_t len = rng() % 300, off = 0;
		unsigned char raw[3][64];
		switch (i % 4) {
		case 0: /* any bytes */
			for (size_t k = 0; k < len; k++)
				t[k] = (char)(1 + rng() % 255);
			t[len] = '\0';
			break;
		case 1: /* token characters, dots anywhere */
			off = (size_t)sprintf(t, "Bearer ");
			for (size_t k = 0; k < len; k++)
				t[off + k] = tokchars[rng() % (sizeof(tokchars) - 1)];
			t[off + len] = '\0';
			break;
		case 2: /* a good token with one to three characters changed */
			off = (size_t)sprintf(t, "Bearer %s", jwt) - strlen(jwt);
			for (int k = 0, m = 1 + (int)(rng() % 3); k < m; k++) {
				size_t pos = off + rng() % strlen(jwt);
				char ch = tokchars[rng() % (sizeof(tokchars) - 1)];
				t[pos] = ch != t[pos] ? ch : '*';
			}
			if (strcmp(t + off, jwt) == 0)
				continue;
			break;
		default: /* three random segments, properly encoded */
			strcpy(t, "Bearer ");
			for (int k = 0; k < 3; k++) {
				size_t m = rng() % sizeof(raw[k]);
				for (size_t j = 0; j < m; j++)
					raw[k][j] = (unsigned char)rng();
				char *seg = b64url(raw[k], m);
				strcat(t, seg);
				strcat(t, k < 2 ? "." : "");
				free(seg);
			}
		}
		enum auth_status st = auth_verify(a, t, &id, why, sizeof(why));
		ck_assert_msg(st == AUTH_INVALID && id == NULL, "case %d accepted (%d)", i, st);
		ck_assert(!strpbrk(why, "\r\n"));
	}
	free(t);
	free(jwt);
	auth_free(a);
}
END_TEST

struct hammer {
	struct auth *a;
	char *tokens[3]; /* HS256 support_agent, HS256 ods_admin, RS256 fraud_analyst */
	char *bad;
	int failures;
};

static void *hammer_run(void *p)
{
	static const char *const roles[] = {"support_agent", "ods_admin", "fraud_analyst"};
	struct hammer *h = p;
	struct auth_identity *id;
	char why[256], hdr[4096];

	for (int i = 0; i < 300; i++) {
		for (int k = 0; k < 3; k++) {
			snprintf(hdr, sizeof(hdr), "Bearer %s", h->tokens[k]);
			if (auth_verify(h->a, hdr, &id, why, sizeof(why)) != AUTH_OK ||
			    strcmp(auth_identity_role(id), roles[k]) != 0)
				h->failures++;
			auth_identity_release(id);
		}
		snprintf(hdr, sizeof(hdr), "Bearer %s", h->bad);
		if (auth_verify(h->a, hdr, &id, why, sizeof(why)) != AUTH_INVALID)
			h->failures++;
	}
	return NULL;
}

/* Many threads on one struct auth, with a cache small enough to thrash. */
START_TEST(test_threads)
{
	struct auth_settings s = hs_settings();
	struct token_opts o = hs_opts();
	struct hammer h[8];
	pthread_t th[8];

	s.algorithms = "HS256,RS256";
	s.jwks_file = p_jwks;
	s.cache_entries = 2;
	h[0].a = mk(&s);
	h[0].tokens[0] = mint(&o);
	o.role = "ods_admin";
	h[0].tokens[1] = mint(&o);
	o.role = "fraud_analyst";
	o.alg = "RS256";
	o.key_file = p_rsa;
	o.kid = "rsa1";
	h[0].tokens[2] = mint(&o);
	h[0].bad = hand_md(EVP_sha256(), HS256, CLAIMS(""), rsa_pub_pem);
	h[0].failures = 0;
	for (int i = 0; i < 8; i++) {
		h[i] = h[0];
		ck_assert(pthread_create(&th[i], NULL, hammer_run, &h[i]) == 0);
	}
	for (int i = 0; i < 8; i++) {
		ck_assert(pthread_join(th[i], NULL) == 0);
		ck_assert_int_eq(h[i].failures, 0);
	}
	for (int k = 0; k < 3; k++)
		free(h[0].tokens[k]);
	free(h[0].bad);
	auth_free(h[0].a);
}
END_TEST

START_TEST(test_mint_errors)
{
	struct {
		struct token_opts o;
		const char *want;
	} c[] = {
	        {{.secret_file = p_secret}, "--role is required"},
	        {{.secret_file = p_secret, .role = ""}, "--role is required"},
	        {{.secret_file = p_secret, .role = "r", .alg = "none"}, "unsupported --alg"},
	        {{.secret_file = p_secret, .role = "r", .alg = "PS256"}, "unsupported --alg"},
	        {{.role = "r"}, "HS256 needs --secret-file"},
	        {{.role = "r", .secret_file = "/nonexistent/s"}, "/nonexistent/s"},
	        {{.role = "r", .secret_file = p_secret32, .alg = "HS384"}, "48 bytes"},
	        {{.role = "r", .secret_file = p_rsa_pub}, "PEM key"},
	        {{.role = "r", .alg = "RS256"}, "--key-file"},
	        {{.role = "r", .alg = "RS256", .key_file = p_ec256}, "cannot sign RS256"},
	        {{.role = "r", .alg = "ES256", .key_file = p_ec384}, "cannot sign ES256"},
	        {{.role = "r", .alg = "ES384", .key_file = p_rsa}, "cannot sign ES384"},
	        {{.role = "r", .alg = "RS256", .key_file = p_rsa_pub}, "no unencrypted PEM"},
	        {{.role = "r", .alg = "ES256", .key_file = p_encrypted}, "no unencrypted PEM"},
	        {{.role = "r", .secret_file = p_secret, .ttl = -5}, "--ttl"},
	        {{.role = "r",
	          .secret_file = p_secret,
	          .claims = (const char *[]){"novalue"},
	          .nclaims = 1},
	         "name=value"},
	        {{.role = "r",
	          .secret_file = p_secret,
	          .claims = (const char *[]){"=x"},
	          .nclaims = 1},
	         "name=value"},
	        {{.role = "r\xff", .secret_file = p_secret}, "UTF-8"},
	};

	for (size_t i = 0; i < ODS_ARRAY_LEN(c); i++) {
		char err[ODS_ERRLEN] = "", *jwt = (char *)err;
		ck_assert_msg(!token_mint(&c[i].o, &jwt, err, sizeof(err)), "case %zu minted", i);
		ck_assert_ptr_null(jwt);
		ck_assert_msg(strstr(err, c[i].want), "case %zu: \"%s\" lacks \"%s\"", i, err,
		              c[i].want);
	}
}
END_TEST

START_TEST(test_mint_claims)
{
	struct auth_settings s = hs_settings();
	struct auth *a = mk(&s);
	struct token_opts o = hs_opts();
	const char *extra[] = {"n=42",   "s=hello", "q=\"42\"",          "obj={\"a\":[1,true]}",
	                       "t=true", "empty=",  "role=\"ods_admin\""};
	struct auth_identity *id;
	json_t *claims, *header;
	unsigned char *raw;
	size_t rawlen;
	char *jwt;

	o.claims = extra;
	o.nclaims = ODS_ARRAY_LEN(extra);
	o.ttl = 60;
	o.kid = "k-1";
	o.aud = "ods-api";
	o.iss = "odsctl";
	jwt = mint(&o);
	id = verify_ok(a, jwt);
	claims = json_loads(auth_identity_claims_json(id), 0, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(claims, "exp")), NOW + 60);
	ck_assert_int_eq(json_integer_value(json_object_get(claims, "n")), 42);
	ck_assert_str_eq(json_string_value(json_object_get(claims, "s")), "hello");
	ck_assert_str_eq(json_string_value(json_object_get(claims, "q")), "42");
	ck_assert(json_is_true(json_object_get(claims, "t")));
	ck_assert(json_is_array(json_object_get(json_object_get(claims, "obj"), "a")));
	ck_assert_str_eq(json_string_value(json_object_get(claims, "empty")), "");
	ck_assert_str_eq(json_string_value(json_object_get(claims, "aud")), "ods-api");
	ck_assert_str_eq(json_string_value(json_object_get(claims, "iss")), "odsctl");
	ck_assert_str_eq(auth_identity_role(id), "ods_admin"); /* --claim wins */
	ck_assert(keys_b64url_decode(jwt, (size_t)(strchr(jwt, '.') - jwt), &raw, &rawlen));
	header = json_loads((char *)raw, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(header, "kid")), "k-1");
	ck_assert_str_eq(json_string_value(json_object_get(header, "alg")), "HS256");
	json_decref(header);
	json_decref(claims);
	free(raw);
	auth_identity_release(id);
	free(jwt);
	auth_free(a);
}
END_TEST

Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *t = tcase_create("auth");

	tcase_add_unchecked_fixture(t, setup_keys, teardown_keys);
	tcase_add_checked_fixture(t, reset_clock, NULL);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_settings_errors);
	tcase_add_test(t, test_b64url);
	tcase_add_test(t, test_hs256_ok);
	tcase_add_test(t, test_header_forms);
	tcase_add_test(t, test_malformed);
	tcase_add_test(t, test_alg_policy);
	tcase_add_test(t, test_key_confusion);
	tcase_add_test(t, test_tampering);
	tcase_add_test(t, test_times);
	tcase_add_test(t, test_aud_iss);
	tcase_add_test(t, test_public_key_file);
	tcase_add_test(t, test_jwks);
	tcase_add_test(t, test_roles);
	tcase_add_test(t, test_scopes);
	tcase_add_test(t, test_cache);
	tcase_add_test(t, test_huge);
	tcase_add_test(t, test_garbage);
	tcase_add_test(t, test_threads);
	tcase_add_test(t, test_mint_errors);
	tcase_add_test(t, test_mint_claims);
	suite_add_tcase(s, t);
	return s;
}
