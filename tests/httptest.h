/*
 * httptest: run a real odsd against the harness's PostgreSQL and talk to it
 * over loopback. Every helper fails the current Check test on error.
 */
#ifndef ODS_HTTPTEST_H
#define ODS_HTTPTEST_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tu_odsd {
	pid_t pid;
	int port;
	char *dir;         /* temp dir with the secret, the config, the log */
	char *secret_file; /* HS256 secret odsd trusts */
	char *db_uri;      /* the superuser URI of odsd's database */
	char *log_file;
};

/*
 * Starts $ODSD on a free port for the migrated database at db_uri (a
 * superuser URI; odsd connects as ods_authenticator), with extra_env
 * ("ODS_KEY=value" strings, NULL-terminated, may be NULL) added to its
 * environment, and waits until /readyz answers 200.
 */
struct tu_odsd *tu_odsd_start(const char *db_uri, const char *const *extra_env);
/* SIGTERM, then asserts odsd exited 0 (sanitizer reports make it non-zero). */
void tu_odsd_stop(struct tu_odsd *o);

struct tu_http_response {
	int status;
	char *head; /* status line and headers, raw */
	char *body;
	size_t body_len;
};

/* One request on a fresh connection. headers: raw "Name: value\r\n" lines or NULL. */
void tu_http(int port, const char *method, const char *path, const char *headers, const char *body,
             struct tu_http_response *out);
/* Sends raw bytes and reads the whole answer (status 0 when none could be parsed). */
void tu_http_raw(int port, const void *bytes, size_t len, struct tu_http_response *out);
/*
 * tu_http_raw for load and failure tests, callable from any thread: never
 * fails the test. Returns 0 when a response arrived, else an errno value:
 * ECONNREFUSED (or another connect error), ECONNRESET, EAGAIN (nothing for
 * timeout_ms), EPROTO (closed before a status line and headers).
 */
int tu_http_try(int port, const void *bytes, size_t len, int timeout_ms,
                struct tu_http_response *out);
/* CLOCK_MONOTONIC in milliseconds. */
double tu_mono_ms(void);
/* The polling tick (10 ms) of bounded waits: poll a condition, tick, until a deadline. */
void tu_tick(void);
/* Waits (bounded) until a backend other than c's runs a statement LIKE like. */
bool tu_wait_backend(PGconn *c, const char *like, int timeout_ms);

/* A header's value (case-insensitive name), caller frees; NULL when absent. */
char *tu_http_header(const struct tu_http_response *r, const char *name);
void tu_http_free(struct tu_http_response *r);

/* An HS256 token for odsd o: role, scope ("a b"), sub; ttl 3600 s. Caller frees. */
char *tu_token(const struct tu_odsd *o, const char *role, const char *scope, const char *sub);
/* "Authorization: Bearer <token>\r\n" for the same arguments. Caller frees. */
char *tu_auth_header(const struct tu_odsd *o, const char *role, const char *scope, const char *sub);

/*
 * Kills (SIGKILL, by pid) and reaps the children of this process: with
 * prctl(PR_SET_CHILD_SUBREAPER) in main(), the odsd processes that failed
 * tests (whose Check child _exit()ed before teardown) left behind.
 */
void tu_kill_orphans(void);

#endif
