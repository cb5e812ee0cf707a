/*
 * server: the libmicrohttpd glue. It owns the daemon and the request
 * lifecycle: allocate the request on the first call, collect the body
 * (bounded by max_body_bytes: 413 without buffering more), hand the
 * complete request to the application's handler, queue its response, and
 * free everything in the completion callback.
 *
 * Threading: threads = 0 runs one thread per connection (odsd's default), so
 * a slow handler stalls only its own connection; threads = N runs N epoll
 * event loops, each serving many connections and blocking while its handler
 * waits on PostgreSQL (fewer wakeups per request: faster reads, but head-of-
 * line blocking). bench/http.sh measures both.
 */
#ifndef ODS_SERVER_H
#define ODS_SERVER_H

#include "http/request.h"

#include <microhttpd.h>
#include <stdbool.h>

/* Builds the response for a complete request (or one whose body was too
 * large: req->body_too_large); sets *status. Never returns NULL. */
typedef struct MHD_Response *(*http_handler_fn)(void *cls, struct request *req, int *status);
/* Called once per request when MHD is done with it (log line, metrics). */
typedef void (*http_completed_fn)(void *cls, struct request *req, bool aborted);

struct http_server_opts {
	const char *addr; /* numeric IPv4 or IPv6 address */
	int port;         /* 0: any free port (see http_server_port) */
	int threads;      /* 0: thread per connection */
	int max_connections;
	int connection_timeout_s;
	size_t max_header_bytes; /* per-connection memory for the request head */
	size_t max_body_bytes;
	http_handler_fn handler;
	http_completed_fn completed;
	void *cls;
};

struct http_server;

struct http_server *http_server_start(const struct http_server_opts *o, char *err,
                                      size_t errlen) ODS_MUST_CHECK;
int http_server_port(const struct http_server *s);
/* Stops accepting new connections; requests in flight go on, and each
 * response from now on closes its connection (no next keep-alive request). */
void http_server_quiesce(struct http_server *s);
/* Requests between their first byte and their completion callback. */
int http_server_inflight(const struct http_server *s);
/* Closes every connection and joins the threads. */
void http_server_stop(struct http_server *s);

#endif
