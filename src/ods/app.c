/*
 * app: construction, SIGHUP reload and the listener's reload callback.
 * See app.h for the model.
 */
#include "autoconfig.h"

#include "ods/app.h"

#include "core/log.h"

#include <stdlib.h>
#include <string.h>

static void settings_to_auth(const struct ods_config *c, struct auth_settings *a)
{
	memset(a, 0, sizeof(*a));
	a->algorithms = c->jwt_algorithms;
	a->secret_file = c->jwt_secret_file;
	a->public_key_file = c->jwt_public_key_file;
	a->jwks_file = c->jwt_jwks_file;
	a->audience = c->jwt_audience;
	a->issuer = c->jwt_issuer;
	a->leeway_s = c->jwt_leeway_s;
	a->role_claim = c->jwt_role_claim;
	a->app_roles = c->app_roles;
}

/* A settings snapshot over cfg (taken over: freed on failure too). */
static struct app_settings *settings_new(struct ods_config *cfg, char *err, size_t errlen)
{
	struct auth_settings as;
	struct app_settings *s;
	struct auth *auth;
	enum log_level level;

	settings_to_auth(cfg, &as);
	auth = auth_new(&as, err, errlen);
	if (!auth) {
		config_free(cfg);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->refs = 1;
	s->cfg = *cfg;
	s->auth = auth;
	if (log_parse_level(cfg->log_level, &level))
		log_set_level(level);
	log_set_json(cfg->log_json);
	memset(cfg, 0, sizeof(*cfg));
	return s;
}

static void settings_free(struct app_settings *s)
{
	auth_free(s->auth);
	config_free(&s->cfg);
	free(s);
}

struct app_settings *app_settings_get(struct app *app)
{
	struct app_settings *s;

	pthread_mutex_lock(&app->lock);
	s = app->settings;
	s->refs++;
	pthread_mutex_unlock(&app->lock);
	return s;
}

void app_settings_put(struct app *app, struct app_settings *s)
{
	bool last;

	if (!s)
		return;
	pthread_mutex_lock(&app->lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&app->lock);
	if (last)
		settings_free(s);
}

/* Runs on the listener thread: keeps the route table and freshness current. */
static void on_listener(enum listener_event ev, PGconn *conn, void *arg)
{
	struct app *app = arg;
	char err[ODS_ERRLEN];

	if (ev == LISTENER_CONNECTED || ev == LISTENER_ROUTES) {
		struct route_table *t = routes_load(conn, err, sizeof(err));
		if (t) {
			log_info("route catalog loaded: %d routes (generation %u)", t->n,
			         t->generation);
			routes_swap(app->routes, t);
		} else {
			log_warn("route catalog not reloaded: %s", err);
		}
	}
	if (ev != LISTENER_ROUTES && !freshness_refresh(app->fresh, conn, err, sizeof(err)))
		log_warn("freshness not refreshed: %s", err);
}

bool app_reload(struct app *app, const char *path, char *err, size_t errlen)
{
	struct app_settings *cur = app_settings_get(app), *next;
	struct ods_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	bool ok = config_reload(&cur->cfg, &cfg, path, err, errlen);
	app_settings_put(app, cur);
	if (!ok)
		return false;
	next = settings_new(&cfg, err, errlen);
	if (!next)
		return false;
	pthread_mutex_lock(&app->lock);
	cur = app->settings;
	app->settings = next;
	pthread_mutex_unlock(&app->lock);
	listener_set_refresh_ms(app->listener, (int)next->cfg.freshness_refresh_ms);
	app_settings_put(app, cur);
	return true;
}

bool app_ready(struct app *app, const char **why)
{
	struct route_table *t;

	if (!listener_connected(app->listener)) {
		*why = "the database is not reachable";
		return false;
	}
	t = routes_get(app->routes);
	routes_put(app->routes, t);
	if (!t) {
		*why = "the route catalog is not loaded yet";
		return false;
	}
	if (!freshness_loaded(app->fresh)) {
		*why = "the freshness catalog is not loaded yet";
		return false;
	}
	return true;
}

struct app *app_new(struct ods_config *cfg, char *err, size_t errlen)
{
	struct app *app = xcalloc(1, sizeof(*app));
	char ferr[ODS_ERRLEN];

	pthread_mutex_init(&app->lock, NULL);
	app->settings = settings_new(cfg, err, errlen);
	if (!app->settings) {
		pthread_mutex_destroy(&app->lock);
		free(app);
		return NULL;
	}
	app->openapi = util_read_file(app->settings->cfg.openapi_file, &app->openapi_len, ferr,
	                              sizeof(ferr));
	if (!app->openapi)
		log_warn("/openapi.yaml will answer 404: %s", ferr);
	app->metrics = metrics_new();
	app->routes = routes_new();
	app->fresh = freshness_new();
	app->pool = pool_new(app->settings->cfg.db_uri, (int)app->settings->cfg.db_pool_size);
	app->listener =
	        listener_start(app->settings->cfg.db_uri,
	                       (int)app->settings->cfg.freshness_refresh_ms, on_listener, app);
	return app;
}

void app_free(struct app *app)
{
	if (!app)
		return;
	listener_stop(app->listener);
	pool_free(app->pool);
	routes_free(app->routes);
	freshness_free(app->fresh);
	metrics_free(app->metrics);
	app_settings_put(app, app->settings);
	free(app->openapi);
	pthread_mutex_destroy(&app->lock);
	free(app);
}
