/*
 * odsd: the HTTP/JSON API server. This file is the program's entry point
 * only: load the config, start the app and the HTTP server, then handle
 * signals in normal context (sigwait on the main thread; every other thread
 * has them blocked): SIGHUP reloads, SIGTERM/SIGINT drain and exit 0.
 */
#include "autoconfig.h"

#include "core/config.h"
#include "core/log.h"
#include "http/server.h"
#include "ods/api.h"
#include "ods/app.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
        "usage: odsd [--config FILE]\n"
        "  -c, --config FILE   key = value settings; every key also as env "
        "ODS_<KEY>\n"
        "  -h, --help          this text\n"
        "  -V, --version       print the version\n";

/*
 * -1: two event loops per CPU. They read faster (bench/http.sh: 0.87x vs
 * 0.67x of pipelined pgbench for a thread per connection) but a loop blocks
 * while its request waits on PostgreSQL, so one slow query delays every
 * connection on that loop, /healthz included, and writes that wait on a
 * commit cap throughput (286 vs 1281 POST/s). Hence the default 0, a thread
 * per connection, until requests are suspended while they wait (README,
 * "Threading model").
 */
static int http_threads(long configured)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (configured >= 0)
		return (int)configured;
	return (int)(cpus > 0 ? 2 * cpus : 4);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Waits until no request is in flight or the deadline passes; true when none is. */
static bool wait_idle(struct http_server *srv, double deadline)
{
	struct timespec tick = {0, 10 * 1000 * 1000};

	while (http_server_inflight(srv) > 0 && now_ms() < deadline)
		nanosleep(&tick, NULL);
	return http_server_inflight(srv) == 0;
}

/*
 * SIGTERM: stop accepting, let requests in flight finish within timeout_ms,
 * then cancel the statements still running so their requests end with an
 * error response (stopping the server joins their threads, which would
 * otherwise wait for PostgreSQL), and stop.
 */
#define CANCEL_GRACE_MS 2000.0

static void drain(struct http_server *srv, struct app *app, long timeout_ms)
{
	http_server_quiesce(srv);
	log_info("shutting down: %d request(s) in flight, waiting up to %ld ms",
	         http_server_inflight(srv), timeout_ms);
	if (!wait_idle(srv, now_ms() + (double)timeout_ms)) {
		int n = pool_cancel_all(app->pool);
		log_warn("shutdown: %d request(s) still running after %ld ms; cancelled %d "
		         "statement(s)",
		         http_server_inflight(srv), timeout_ms, n);
		if (!wait_idle(srv, now_ms() + CANCEL_GRACE_MS))
			log_warn("shutdown: %d request(s) still running; closing them",
			         http_server_inflight(srv));
	}
	http_server_stop(srv);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {NULL, 0, NULL, 0}};
	const char *path = NULL;
	char err[ODS_ERRLEN];
	struct ods_config cfg;
	struct http_server *srv;
	struct app *app;
	sigset_t sigs;
	int c, sig;

	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'V':
			printf("odsd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (!config_load(&cfg, path, err, sizeof(err))) {
		fprintf(stderr, "odsd: %s\n", err);
		return 1;
	}

	/* Block the signals before any thread starts, so only sigwait sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	app = app_new(&cfg, err, sizeof(err));
	if (!app) {
		fprintf(stderr, "odsd: %s\n", err);
		return 1;
	}
	struct app_settings *s = app_settings_get(app);
	struct http_server_opts ho = {
	        .addr = s->cfg.listen_addr,
	        .port = (int)s->cfg.listen_port,
	        .threads = http_threads(s->cfg.http_threads),
	        .max_connections = (int)s->cfg.max_connections,
	        .connection_timeout_s = (int)s->cfg.connection_timeout_s,
	        .max_header_bytes = (size_t)s->cfg.max_header_bytes,
	        .max_body_bytes = (size_t)s->cfg.max_body_bytes,
	        .handler = api_handle,
	        .completed = api_completed,
	        .cls = app,
	};
	long shutdown_ms = s->cfg.shutdown_timeout_ms;
	srv = http_server_start(&ho, err, sizeof(err));
	if (srv)
		log_info("odsd %s listening on %s port %d (%s, %d)", PACKAGE_VERSION, ho.addr,
		         http_server_port(srv),
		         ho.threads ? "epoll event loops" : "thread per connection", ho.threads);
	app_settings_put(app, s);
	if (!srv) {
		fprintf(stderr, "odsd: %s\n", err);
		app_free(app);
		return 1;
	}

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			if (app_reload(app, path, err, sizeof(err)))
				log_info("configuration reloaded");
			else
				log_error("reload failed, keeping the running configuration: %s",
				          err);
			s = app_settings_get(app);
			shutdown_ms = s->cfg.shutdown_timeout_ms;
			app_settings_put(app, s);
			continue;
		}
		break;
	}
	drain(srv, app, shutdown_ms);
	app_free(app);
	log_info("stopped");
	return 0;
}
