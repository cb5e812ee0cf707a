/*
 * mixload: a mixed-traffic HTTP driver for odsd, used by the LeakSanitizer
 * test (tests/integration/check_mixed.c) and by bench/valgrind.sh (through
 * tests/mixload_main.c), so both send the same requests.
 *
 * Several client threads send `requests` requests in total over keep-alive
 * connections, drawn at random from every route family: reads of customers,
 * orders, inventory, work orders, the fraud queue and freshness; list paging
 * that follows the Link cursor; If-None-Match (304); case create, patch and
 * notes with and without Idempotency-Key (replays, 422 on another body),
 * If-Match (412 when stale), delete; Debezium ingest; 400/401/403/404/405/
 * 413/415/422 errors; the ops endpoints; and clients that go away in the
 * middle of a request. Every answer is checked against the statuses its
 * request may get, and every error odsd's handler makes against
 * problem+json. It needs the demo data (`odsctl demo load`) and reads a few
 * ids from the database as the superuser.
 */
#ifndef ODS_MIXLOAD_H
#define ODS_MIXLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct mixload_opts {
	int port;
	const char *secret_file; /* the HS256 secret odsd trusts */
	const char *db_uri;      /* superuser URI of odsd's database, for fixture ids */
	int requests;            /* in total; 0: 10000 */
	int threads;             /* 0: 4 */
	unsigned seed;           /* 0: from the clock */
};

#define MIXLOAD_MAX_STATUS 600

struct mixload_report {
	long requests;                   /* sent, aborted ones included */
	long aborted;                    /* sent on purpose without waiting for an answer */
	long status[MIXLOAD_MAX_STATUS]; /* answers by status (0: none) */
	long unexpected;                 /* answers outside their expected set */
	char first_unexpected[512];      /* what the first one was */
	double seconds;
};

/* Runs the load; false (and err) when it could not start (fixtures, token). */
bool mixload_run(const struct mixload_opts *o, struct mixload_report *rep, char *err,
                 size_t errlen);

/* The value of header name (case-insensitive) in a raw response head
 * ("HTTP/1.1 200 OK\r\nName: value\r\n..."), a copy; NULL when absent. */
char *mixload_header(const char *head, const char *name);

/* One summary line and the status histogram. */
void mixload_print(const struct mixload_report *rep, FILE *f);

#endif
