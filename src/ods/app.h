/*
 * app: everything odsd's request threads share, and its lifecycle.
 *
 * Reloadable settings (the config and the auth keys built from it) live in a
 * refcounted app_settings snapshot: a request takes a reference when it
 * starts and keeps its view until it completes, while SIGHUP publishes a new
 * snapshot. The route table and freshness snapshot work the same way (see
 * ods/routes.h, ods/freshness.h); the listener thread refreshes both.
 */
#ifndef ODS_APP_H
#define ODS_APP_H

#include "auth/auth.h"
#include "core/config.h"
#include "db/listener.h"
#include "db/pool.h"
#include "ods/freshness.h"
#include "ods/metrics.h"
#include "ods/routes.h"

#include <pthread.h>
#include <stdbool.h>

struct app_settings {
	int refs;
	struct ods_config cfg;
	struct auth *auth;
};

struct app {
	pthread_mutex_t lock; /* guards settings and its refcounts */
	struct app_settings *settings;
	struct pool *pool;
	struct routes *routes;
	struct freshness *fresh;
	struct listener *listener;
	struct metrics *metrics;
	char *openapi; /* the spec served at /openapi.yaml; NULL when unreadable */
	size_t openapi_len;
};

/* Takes ownership of cfg (on success and failure). Starts the pool and the
 * listener; the catalogs fill in as soon as the database answers. */
struct app *app_new(struct ods_config *cfg, char *err, size_t errlen) ODS_MUST_CHECK;
void app_free(struct app *app);

/* SIGHUP: re-reads path; on failure keeps the running settings and says why. */
bool app_reload(struct app *app, const char *path, char *err, size_t errlen) ODS_MUST_CHECK;

struct app_settings *app_settings_get(struct app *app);
void app_settings_put(struct app *app, struct app_settings *s);

/* Whether the database answers and the route catalog is loaded (/readyz). */
bool app_ready(struct app *app, const char **why);

#endif
