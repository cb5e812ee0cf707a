/*
 * log: levelled logging to stderr. odsctl prints plain lines for humans;
 * odsd switches to one JSON object per line (log_set_json).
 */
#ifndef ODS_LOG_H
#define ODS_LOG_H

#include "core/util.h"

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

#endif
