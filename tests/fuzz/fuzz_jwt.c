/*
 * libFuzzer target: auth/auth.c, auth/keys.c, auth/token_cache.c through
 * auth_verify. One struct auth is built in LLVMFuzzerInitialize with
 * algorithms "HS256,RS256": a fixed 40-byte HMAC secret (so the seed corpus
 * can hold tokens that really verify; see README.md) and an RSA-2048 public
 * key generated at start-up. The clock is pinned so results do not drift.
 * Each input is verified as `Authorization: Bearer <input>`, except that
 * an input starting with '{' is taken as `<header JSON>\n<claims JSON>`:
 * the target base64url-encodes both and signs them with the HS256 secret,
 * so the fuzzer also reaches the header/claims checks behind the signature.
 */
#include "autoconfig.h"

#include "auth/auth.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Also in README.md and the seed tokens under corpus/jwt/. */
#define FUZZ_SECRET "fuzz-hs256-secret-0123456789abcdefghijkl"
#define FUZZ_NOW    1700000000

static struct auth *auth;
static int verbose; /* FUZZ_JWT_VERBOSE=1: print each status and reason */
static char dir[] = "/tmp/odsd-fuzz-jwt-XXXXXX";
static char secret_path[128], pub_path[128];

static time_t fixed_clock(void)
{
	return (time_t)FUZZ_NOW;
}

static void cleanup(void)
{
	auth_free(auth);
	auth = NULL;
	unlink(secret_path);
	unlink(pub_path);
	rmdir(dir);
}

static void die(const char *what)
{
	fprintf(stderr, "fuzz_jwt init: %s\n", what);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FILE *f;
	EVP_PKEY *pk;
	char err[512];

	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		die("mkdtemp");
	snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
	snprintf(pub_path, sizeof(pub_path), "%s/rsa_pub.pem", dir);

	f = fopen(secret_path, "w");
	if (!f || fputs(FUZZ_SECRET, f) < 0 || fclose(f) != 0)
		die("secret file");

	pk = EVP_RSA_gen(2048);
	if (!pk)
		die("EVP_RSA_gen");
	f = fopen(pub_path, "w");
	if (!f || !PEM_write_PUBKEY(f, pk) || fclose(f) != 0)
		die("public key file");
	EVP_PKEY_free(pk);

	struct auth_settings s = {.algorithms = "HS256,RS256",
	                          .secret_file = secret_path,
	                          .public_key_file = pub_path,
	                          .audience = "odsd",
	                          .issuer = "https://issuer.example",
	                          .leeway_s = 30,
	                          .role_claim = NULL,
	                          .app_roles = "support_agent,fraud_analyst,ods_admin",
	                          .cache_entries = 64,
	                          .now = fixed_clock};
	auth = auth_new(&s, err, sizeof(err));
	if (!auth)
		die(err);
	atexit(cleanup);
	verbose = getenv("FUZZ_JWT_VERBOSE") != NULL;
	return 0;
}

static size_t b64url(char *out, const uint8_t *in, size_t n)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i = 0;

	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
	}
	return o;
}

/* `<header JSON>\n<claims JSON>` -> a newly allocated "h.p.sig" signed with the secret. */
static uint8_t *sign_input(const uint8_t *data, size_t size, size_t *out_len)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t hn = nl ? (size_t)(nl - data) : size;
	const uint8_t *claims = nl ? nl + 1 : data + size;
	size_t cn = (size_t)(data + size - claims);
	uint8_t *tok = malloc(4 * (hn + cn) / 3 + 80);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t o;

	if (!tok)
		abort();
	o = b64url((char *)tok, data, hn);
	tok[o++] = '.';
	o += b64url((char *)tok + o, claims, cn);
	if (!HMAC(EVP_sha256(), FUZZ_SECRET, (int)strlen(FUZZ_SECRET), tok, o, mac, &maclen))
		abort();
	tok[o++] = '.';
	o += b64url((char *)tok + o, mac, maclen);
	*out_len = o;
	return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char prefix[] = "Bearer ";
	uint8_t *signed_tok = NULL;
	char why[256];
	struct auth_identity *id = NULL;
	char *hdr;
	volatile size_t sink = 0;

	if (size > AUTH_MAX_TOKEN_BYTES + 64)
		return 0;
	if (size > 0 && data[0] == '{') {
		signed_tok = sign_input(data, size, &size);
		data = signed_tok;
	}
	hdr = malloc(sizeof(prefix) + size);
	if (!hdr)
		abort();
	memcpy(hdr, prefix, sizeof(prefix) - 1);
	memcpy(hdr + sizeof(prefix) - 1, data, size);
	hdr[sizeof(prefix) - 1 + size] = '\0';

	why[0] = '\0';
	enum auth_status st = auth_verify(auth, hdr, &id, why, sizeof(why));
	if (verbose)
		fprintf(stderr, "fuzz_jwt: status %d (%s) for %s\n", (int)st, why, hdr);
	if (st == AUTH_OK) {
		if (!id)
			abort();
		sink += strlen(auth_identity_role(id));
		if (auth_identity_sub(id))
			sink += strlen(auth_identity_sub(id));
		sink += strlen(auth_identity_claims_json(id));
		sink += (size_t)auth_identity_exp(id);
		sink += auth_identity_has_scope(id, "admin");
		auth_identity_release(id);
	} else if (id) {
		abort(); /* the contract: *out is NULL unless AUTH_OK */
	}
	sink += strnlen(why, sizeof(why)) == sizeof(why); /* why must be NUL-terminated */
	(void)sink;
	free(hdr);
	free(signed_tok);
	return 0;
}
