/*
 * cdcprobe: bench/cdc.sh's latency probe, source commit -> visible.
 *
 *   cdcprobe SOURCE_URI ORDER_ID MARKER0 INTERVAL_MS SECONDS MAX_SAMPLES TIMEOUT_MS TARGET...
 *     TARGET = http PORT TOKEN_FILE   poll GET /v1/orders/ORDER_ID through odsd
 *                                     (one keep-alive connection)
 *            | pg URI                 poll SELECT item_count FROM public.order_current
 *                                     (PostgreSQL's subscriber, the reference)
 *
 * Every INTERVAL_MS (or right after the previous sample, when that took
 * longer) it sets item_count of ORDER_ID on the source to the next marker
 * (MARKER0 + 1, + 2, ...) in its own autocommit transaction, takes the
 * monotonic clock when the COMMIT has returned, then polls the target (1 ms
 * pause between polls) until the row carries the marker, and prints the
 * latency in milliseconds, one line per sample. A sample that takes longer
 * than TIMEOUT_MS prints "timeout" and ends the run (the target is behind;
 * later samples would only measure the same backlog). Bounded: at most
 * MAX_SAMPLES samples and SECONDS of wall time. Exit 0 unless something
 * failed (a query, the connection, a non-200 answer).
 *
 *   cdcprobe wait URI TABLE ORDER_ID MARKER TIMEOUT_MS
 *
 * Polls (one connection, a prepared point lookup every 5 ms, so the wait
 * costs the apply it times next to nothing) until TABLE's row ORDER_ID has
 * item_count >= MARKER, then prints the wall clock (epoch seconds) of that
 * moment; exit 1 after TIMEOUT_MS without it.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (time_t)(ms / 1000) * 1000) * 1e6)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "cdcprobe: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

/* ---- HTTP target: one keep-alive connection to odsd ---- */

static int http_fd = -1;
static int http_port;
static char http_req[4096];
static char http_buf[1 << 20];

static void http_connect(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	http_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (http_fd < 0 || connect(http_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("connect to odsd", strerror(errno));
	int one = 1;
	setsockopt(http_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* One GET; returns item_count of the order in the body, or -1 when absent. */
static long http_poll(void)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (http_fd < 0)
			http_connect();
		size_t len = strlen(http_req), off = 0;
		while (off < len) {
			ssize_t n = write(http_fd, http_req + off, len - off);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		size_t have = 0;
		long clen = -1;
		char *body = NULL;
		while (have < sizeof(http_buf) - 1) {
			ssize_t n = read(http_fd, http_buf + have, sizeof(http_buf) - 1 - have);
			if (n <= 0)
				break;
			have += (size_t)n;
			http_buf[have] = '\0';
			if (!body) {
				char *end = strstr(http_buf, "\r\n\r\n");
				if (!end)
					continue;
				body = end + 4;
				for (char *h = http_buf; h < end; h++)
					if (strncasecmp(h, "\r\nContent-Length:", 17) == 0)
						clen = strtol(h + 17, NULL, 10);
				if (clen < 0)
					die("odsd answered without Content-Length", NULL);
			}
			if (body && (long)(have - (size_t)(body - http_buf)) >= clen)
				break;
		}
		if (!body || (long)(have - (size_t)(body - http_buf)) < clen) {
			/* odsd closed the keep-alive connection: reconnect once. */
			close(http_fd);
			http_fd = -1;
			continue;
		}
		if (strncmp(http_buf, "HTTP/1.1 200", 12) != 0) {
			http_buf[have < 300 ? have : 300] = '\0';
			die("odsd did not answer 200", http_buf);
		}
		body[clen] = '\0';
		char *p = strstr(body, "\"item_count\"");
		if (!p)
			return -1;
		p += strlen("\"item_count\"");
		while (*p == ' ' || *p == ':')
			p++;
		return strtol(p, NULL, 10);
	}
	die("odsd closed the connection twice in a row", NULL);
	return -1;
}

/* ---- PostgreSQL target: the subscriber's table ---- */

static PGconn *pg_target;

static long pg_poll(const char *id)
{
	const char *params[1] = {id};
	PGresult *r = PQexecPrepared(pg_target, "poll", 1, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die("poll", PQerrorMessage(pg_target));
	long v = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ? strtol(PQgetvalue(r, 0, 0), NULL, 10)
	                                                    : -1;
	PQclear(r);
	return v;
}

static int wait_main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: cdcprobe wait URI TABLE ORDER_ID MARKER TIMEOUT_MS\n");
		return 2;
	}
	PGconn *c = PQconnectdb(argv[2]);
	if (PQstatus(c) != CONNECTION_OK)
		die("wait", PQerrorMessage(c));
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT item_count >= %ld FROM %s WHERE order_id = $1",
	         strtol(argv[5], NULL, 10), argv[3]);
	PGresult *r = PQprepare(c, "wait", sql, 1, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die("prepare wait", PQerrorMessage(c));
	PQclear(r);
	double deadline = mono_ms() + strtod(argv[6], NULL);
	const char *params[1] = {argv[4]};
	for (;;) {
		r = PQexecPrepared(c, "wait", 1, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			die("wait", PQerrorMessage(c));
		int done = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		PQclear(r);
		if (done) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			printf("%ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
			PQfinish(c);
			return 0;
		}
		if (mono_ms() > deadline) {
			fprintf(stderr, "cdcprobe wait: %s row %s not at marker %s after %s ms\n", argv[3],
			        argv[4], argv[5], argv[6]);
			PQfinish(c);
			return 1;
		}
		sleep_ms(5);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "wait") == 0)
		return wait_main(argc, argv);
	if (argc < 10) {
		fprintf(stderr, "usage: cdcprobe SOURCE_URI ORDER_ID MARKER0 INTERVAL_MS SECONDS "
		                "MAX_SAMPLES TIMEOUT_MS (http PORT TOKEN_FILE | pg URI)\n");
		return 2;
	}
	const char *id = argv[2];
	long marker = strtol(argv[3], NULL, 10);
	double interval = strtod(argv[4], NULL), secs = strtod(argv[5], NULL);
	long max_samples = strtol(argv[6], NULL, 10);
	double timeout = strtod(argv[7], NULL);
	int http = strcmp(argv[8], "http") == 0;

	PGconn *src = PQconnectdb(argv[1]);
	if (PQstatus(src) != CONNECTION_OK)
		die("source", PQerrorMessage(src));
	PGresult *r = PQprepare(src, "mark",
	                        "UPDATE public.order_current SET item_count = $1 WHERE order_id = $2",
	                        2, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die("prepare", PQerrorMessage(src));
	PQclear(r);

	if (http) {
		if (argc < 11)
			die("http needs PORT TOKEN_FILE", NULL);
		http_port = atoi(argv[9]);
		FILE *f = fopen(argv[10], "r");
		char tok[2048];
		if (!f || !fgets(tok, sizeof(tok), f))
			die("token file", argv[10]);
		fclose(f);
		tok[strcspn(tok, "\r\n")] = '\0';
		snprintf(http_req, sizeof(http_req),
		         "GET /v1/orders/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n",
		         id, tok);
	} else {
		pg_target = PQconnectdb(argv[9]);
		if (PQstatus(pg_target) != CONNECTION_OK)
			die("target", PQerrorMessage(pg_target));
		r = PQprepare(pg_target, "poll",
		              "SELECT item_count FROM public.order_current WHERE order_id = $1", 1, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			die("prepare poll", PQerrorMessage(pg_target));
		PQclear(r);
	}

	double t_end = mono_ms() + secs * 1000, next = mono_ms();
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long i = 0; i < max_samples && mono_ms() < t_end; i++) {
		sleep_ms(next - mono_ms());
		next = mono_ms() + interval;
		char mstr[32];
		snprintf(mstr, sizeof(mstr), "%ld", ++marker);
		const char *params[2] = {mstr, id};
		r = PQexecPrepared(src, "mark", 2, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdTuples(r), "1") != 0)
			die("mark", PQerrorMessage(src));
		PQclear(r);
		double committed = mono_ms(), seen = 0;
		for (;;) {
			long v = http ? http_poll() : pg_poll(id);
			double now = mono_ms();
			if (v == marker) {
				seen = now;
				break;
			}
			if (now - committed > timeout)
				break;
			sleep_ms(1);
		}
		if (!seen) {
			printf("timeout\n");
			break;
		}
		printf("%.2f\n", seen - committed);
	}
	PQfinish(src);
	if (pg_target)
		PQfinish(pg_target);
	if (http_fd >= 0)
		close(http_fd);
	return 0;
}
