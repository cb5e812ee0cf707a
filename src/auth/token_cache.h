/*
 * token_cache: remembers tokens that verified, so a client that sends the
 * same JWT on every request pays one SHA-256 and a table lookup instead of a
 * signature check (an RS256 verification costs far more).
 *
 * Entries are keyed by the SHA-256 of the token text (the token itself is
 * never stored) and hold a reference to the verified identity plus the
 * interval [not_before, valid_until) in which it may be served; a lookup
 * outside that interval drops the entry. Only successes are put here: a
 * rejected token is verified again each time, so nobody can plant a result.
 *
 * The table is direct-mapped with a fixed number of slots: an insert that
 * lands on an occupied slot replaces it. Eviction is O(1) and the memory is
 * bounded; since the slot comes from a cryptographic hash, a client cannot
 * push out other clients' entries any faster than by sending fresh tokens.
 *
 * Thread-safe: one mutex guards the slots and is held only to compare and
 * copy a slot; identities are retained or released outside it.
 */
#ifndef ODS_TOKEN_CACHE_H
#define ODS_TOKEN_CACHE_H

#include <stddef.h>

#define TOKEN_CACHE_KEYLEN 32 /* SHA-256 */

struct auth_identity;
struct token_cache;

struct token_cache *token_cache_new(size_t slots);
/* Releases every identity the cache still holds. */
void token_cache_free(struct token_cache *c);

/* The identity cached under key, retained for the caller, when now lies in
 * its interval; NULL otherwise (an expired entry is dropped). */
struct auth_identity *token_cache_get(struct token_cache *c,
                                      const unsigned char key[TOKEN_CACHE_KEYLEN], long long now);

/* Caches id (the cache takes its own reference) for [not_before, valid_until). */
void token_cache_put(struct token_cache *c, const unsigned char key[TOKEN_CACHE_KEYLEN],
                     struct auth_identity *id, long long not_before, long long valid_until);

#endif
