/*
 * db: thin helpers over libpq shared by odsctl and odsd: connecting with a
 * useful error, running a command, and turning a failed PGresult into one
 * line for a human (primary message, detail, hint).
 */
#ifndef ODS_DB_H
#define ODS_DB_H

#include "core/util.h"

#include <libpq-fe.h>
#include <stdbool.h>

/* Connects to uri with application_name set; NULL (and err filled) on failure. */
PGconn *db_connect(const char *uri, const char *app_name, char *err, size_t errlen) ODS_MUST_CHECK;

/* Runs sql (no parameters, may hold several statements); false with err on failure. */
bool db_exec(PGconn *conn, const char *sql, char *err, size_t errlen) ODS_MUST_CHECK;

/* Runs a one-parameter-or-more command with bound text parameters. */
bool db_exec_params(PGconn *conn, const char *sql, int nparams, const char *const *params,
                    char *err, size_t errlen) ODS_MUST_CHECK;

/* Formats the error of res (or of conn when res is NULL) into err. Returns false. */
bool db_fail(PGconn *conn, const PGresult *res, char *err, size_t errlen);

/* The SQLSTATE of res, or "" when there is none. */
const char *db_sqlstate(const PGresult *res);

#endif
