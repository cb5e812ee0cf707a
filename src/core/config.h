/*
 * config: odsd's settings (DESIGN §8, §9). One static table in config.c
 * names every key with its type, default, range and whether SIGHUP may
 * change it; parsing, env overrides, reload and dump are all driven by it.
 *
 * Sources, later wins: built-in defaults, the `key = value` file, then the
 * environment variable ODS_<KEY uppercased> (ODS_LISTEN_PORT=9090).
 *
 * A struct ods_config owns its strings; release it with config_free. List
 * keys (jwt_algorithms, app_roles, cors_origins) are kept as one
 * comma-separated string with the items trimmed ("a, b" becomes "a,b").
 */
#ifndef ODS_CONFIG_H
#define ODS_CONFIG_H

#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct ods_config {
	char *listen_addr;
	long listen_port;
	long http_threads; /* 0: a thread per connection */
	long max_connections;
	long connection_timeout_s;
	long max_header_bytes; /* per-connection memory for the request head */
	char *db_uri;
	long db_pool_size;
	long db_pool_timeout_ms;
	long statement_timeout_ms;
	long max_body_bytes;
	char *jwt_algorithms; /* list */
	char *jwt_secret_file;
	char *jwt_public_key_file;
	char *jwt_jwks_file;
	char *jwt_audience;
	char *jwt_issuer;
	long jwt_leeway_s;
	char *jwt_role_claim;
	char *app_roles;    /* list */
	char *cors_origins; /* list; empty: no CORS headers */
	char *log_level;    /* validated: log_parse_level accepts it */
	bool log_json;      /* one JSON object per log line (log_set_json) */
	long shutdown_timeout_ms;
	long freshness_refresh_ms;
	char *openapi_file; /* served as /openapi.yaml */
};

/* Fills c with the built-in defaults (no file, no environment). */
void config_init_defaults(struct ods_config *c);

/*
 * Defaults, then the file at path (NULL: none), then ODS_* variables. On
 * success *out holds the result; on failure *out is not touched, nothing
 * leaks, and err names the file and line ("odsd.conf:7: unknown key
 * \"listen_prot\"") or the variable ("ODS_LISTEN_PORT: ...").
 */
bool config_load(struct ods_config *out, const char *path, char *err, size_t errlen) ODS_MUST_CHECK;

/*
 * SIGHUP: loads path and the environment again into *next, where the
 * reloadable keys take their new values and every other key keeps cur's
 * (each such changed key is logged with log_warn: it needs a restart).
 * cur is only read, so other threads may go on using it while the caller
 * publishes next and frees cur afterwards. On failure *next is not touched
 * and the caller keeps running on cur.
 */
bool config_reload(const struct ods_config *cur, struct ods_config *next, const char *path,
                   char *err, size_t errlen) ODS_MUST_CHECK;

/* Frees the strings of c and zeroes it; safe on a zeroed struct. */
void config_free(struct ods_config *c);

/* The i-th key of the table (for docs and tests), NULL past the last one. */
const char *config_key(size_t i);

/* Whether SIGHUP may change key; false for unknown keys too. */
bool config_key_reloadable(const char *key);

/*
 * Writes every key as a `key = value` line that config_load reads back to
 * the same values (strings quoted). db_uri is printed as is, password
 * included: this is for the operator's terminal, not for logs.
 */
bool config_dump(const struct ods_config *c, FILE *f) ODS_MUST_CHECK;

#endif
