/*
 * log: one line per message on stderr, written with a single fputs so
 * lines from concurrent threads never interleave. The JSON form escapes the
 * message with jansson rather than by hand.
 */
#include "autoconfig.h"

#include "core/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level current_level = LOG_INFO;
static bool json_output;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

bool log_parse_level(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < ODS_ARRAY_LEN(level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

void log_set_level(enum log_level level)
{
	current_level = level;
}

void log_set_json(bool json)
{
	json_output = json;
}

bool log_enabled(enum log_level level)
{
	return level <= current_level;
}

static void write_line(enum log_level level, const char *msg)
{
	struct strbuf line;

	strbuf_init(&line);
	if (json_output) {
		char ts[32];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_t *o = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", level_names[level],
		                      "msg", msg);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		strbuf_adds(&line, s ? s : "{\"level\":\"error\",\"msg\":\"log encoding failed\"}");
		free(s);
		json_decref(o);
	} else {
		strbuf_addf(&line, "%s: %s", level_names[level], msg);
	}
	strbuf_addc(&line, '\n');
	fputs(line.data, stderr);
	strbuf_free(&line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	struct strbuf msg;
	va_list ap;

	if (!log_enabled(level))
		return;
	strbuf_init(&msg);
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	write_line(level, msg.data ? msg.data : "");
	strbuf_free(&msg);
}

static long long mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void log_limited(struct log_limit *l, enum log_level level, const char *fmt, ...)
{
	long long now = mono_ms(), next = atomic_load(&l->next_ms);
	struct strbuf msg;
	va_list ap;
	int skipped;

	if (!log_enabled(level))
		return;
	/* One thread wins the slot for this second; the others count themselves. */
	if (now < next || !atomic_compare_exchange_strong(&l->next_ms, &next, now + 1000)) {
		atomic_fetch_add(&l->suppressed, 1);
		return;
	}
	skipped = atomic_exchange(&l->suppressed, 0);
	strbuf_init(&msg);
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	if (skipped > 0)
		strbuf_addf(&msg, " (and %d more like it since the last one)", skipped);
	write_line(level, msg.data ? msg.data : "");
	strbuf_free(&msg);
}
