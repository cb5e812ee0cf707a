/*
 * token_cache: a fixed-size, direct-mapped table of verified tokens.
 *
 * Model: slot = first 8 bytes of the SHA-256 key modulo the slot count; a
 * slot holds the full key, the identity (one reference owned by the cache)
 * and the validity interval. Under the mutex we only compare and swap slot
 * contents; dropping the reference we took out happens after unlocking, so
 * freeing an identity never extends the critical section.
 */
#include "autoconfig.h"

#include "auth/token_cache.h"

#include "auth/auth.h"
#include "core/util.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	unsigned char key[TOKEN_CACHE_KEYLEN];
	struct auth_identity *id; /* NULL: empty */
	long long not_before, valid_until;
};

struct token_cache {
	pthread_mutex_t mu;
	size_t n;
	struct slot *slots;
};

struct token_cache *token_cache_new(size_t slots)
{
	struct token_cache *c = xcalloc(1, sizeof(*c));

	c->n = slots ? slots : 1;
	c->slots = xcalloc(c->n, sizeof(*c->slots));
	if (pthread_mutex_init(&c->mu, NULL) != 0)
		abort(); /* only fails for lack of memory: our OOM policy */
	return c;
}

void token_cache_free(struct token_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		auth_identity_release(c->slots[i].id);
	pthread_mutex_destroy(&c->mu);
	free(c->slots);
	free(c);
}

static struct slot *slot_for(struct token_cache *c, const unsigned char *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return &c->slots[h % c->n];
}

struct auth_identity *token_cache_get(struct token_cache *c,
                                      const unsigned char key[TOKEN_CACHE_KEYLEN], long long now)
{
	struct slot *s = slot_for(c, key);
	struct auth_identity *hit = NULL, *stale = NULL;

	pthread_mutex_lock(&c->mu);
	if (s->id && CRYPTO_memcmp(s->key, key, TOKEN_CACHE_KEYLEN) == 0) {
		if (now >= s->not_before && now < s->valid_until) {
			hit = s->id;
			auth_identity_retain(hit);
		} else {
			stale = s->id;
			s->id = NULL;
		}
	}
	pthread_mutex_unlock(&c->mu);
	auth_identity_release(stale);
	return hit;
}

void token_cache_put(struct token_cache *c, const unsigned char key[TOKEN_CACHE_KEYLEN],
                     struct auth_identity *id, long long not_before, long long valid_until)
{
	struct slot *s = slot_for(c, key);
	struct auth_identity *old;

	auth_identity_retain(id);
	pthread_mutex_lock(&c->mu);
	old = s->id;
	memcpy(s->key, key, TOKEN_CACHE_KEYLEN);
	s->id = id;
	s->not_before = not_before;
	s->valid_until = valid_until;
	pthread_mutex_unlock(&c->mu);
	auth_identity_release(old);
}
