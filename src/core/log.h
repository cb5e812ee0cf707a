/*
 * log: levelled logging to stderr. odsctl prints plain lines for humans;
 * odsd switches to one JSON object per line (log_set_json).
 */
#ifndef ODS_LOG_H
#define ODS_LOG_H

#include "core/util.h"

#include <stdatomic.h>
#include <stdbool.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Parses "error", "warn", "info" or "debug"; false when s is none of them. */
bool log_parse_level(const char *s, enum log_level *out) ODS_MUST_CHECK;
void log_set_level(enum log_level level);
void log_set_json(bool json);
bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) ODS_PRINTF(2, 3);
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * At most one message per second from one call site, for failures that
 * every request can hit at once (the database is down): the next message
 * written says how many were skipped. A call site owns a static
 * struct log_limit, zero-initialized.
 */
struct log_limit {
	atomic_llong next_ms;
	atomic_int suppressed;
};
void log_limited(struct log_limit *l, enum log_level level, const char *fmt, ...) ODS_PRINTF(3, 4);

#endif
