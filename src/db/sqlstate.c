/*
 * sqlstate: one table from SQLSTATE to HTTP status and problem code, read
 * top to bottom; the first entry whose pattern is a prefix of the state
 * wins, so exact codes come before the classes they belong to.
 *
 * expose_detail says whether PostgreSQL's primary message may reach the
 * client. It is set only where that message describes the client's own input
 * or is written for the client by a route function (class OD); everything
 * else gets the fixed detail of its entry, so no SQL text, schema name or
 * internal failure leaks. The table is constant: thread-safe.
 */
#include "autoconfig.h"

#include "db/sqlstate.h"

#include "core/util.h"

#include <stddef.h>
#include <string.h>

#define FORBIDDEN_DETAIL   "the role of this token may not do this"
#define UNAVAILABLE_DETAIL "the database is unavailable; retry later"
#define INTERNAL_DETAIL    "the server could not complete the request"

struct entry {
	const char *prefix; /* a full SQLSTATE, or a class / subclass prefix */
	struct sqlstate_map map;
};

static const struct entry table[] = {
        /* Privileges: the database grant is the authority (DESIGN section 4). */
        {"42501", {403, "forbidden", "Forbidden", 0, FORBIDDEN_DETAIL}},
        {"28", {403, "forbidden", "Forbidden", 0, FORBIDDEN_DETAIL}},
        /* Integrity. */
        {"23505", {409, "conflict", "Conflict", 0, "a resource with the same key already exists"}},
        {"23503",
         {422, "unprocessable", "Unprocessable Content", 0, "a referenced entity does not exist"}},
        {"23502", {422, "unprocessable", "Unprocessable Content", 1, NULL}},
        {"23514", {422, "unprocessable", "Unprocessable Content", 1, NULL}},
        /* Bad client input caught by type input functions. */
        {"22P02", {400, "bad_request", "Bad Request", 1, NULL}}, /* invalid text representation */
        {"22003", {400, "bad_request", "Bad Request", 1, NULL}}, /* numeric value out of range */
        {"22007", {400, "bad_request", "Bad Request", 1, NULL}}, /* invalid datetime format */
        {"22008", {400, "bad_request", "Bad Request", 1, NULL}}, /* datetime field overflow */
        {"22023", {400, "bad_request", "Bad Request", 1, NULL}}, /* invalid parameter value */
        {"2202E", {400, "bad_request", "Bad Request", 1, NULL}}, /* array subscript error */
        {"22001", {400, "bad_request", "Bad Request", 1, NULL}}, /* string too long */
        {"22021", {400, "bad_request", "Bad Request", 1, NULL}}, /* bad byte sequence */
        {"22P05", {400, "bad_request", "Bad Request", 1, NULL}}, /* untranslatable character */
        /* Time and availability. */
        {"57014",
         {504, "gateway_timeout", "Gateway Timeout", 0,
          "the query took longer than the statement timeout"}},
        {"57P", {503, "service_unavailable", "Service Unavailable", 0, UNAVAILABLE_DETAIL}},
        {"08", {503, "service_unavailable", "Service Unavailable", 0, UNAVAILABLE_DETAIL}},
        {"53", {503, "service_unavailable", "Service Unavailable", 0, UNAVAILABLE_DETAIL}},
        {"40001",
         {503, "service_unavailable", "Service Unavailable", 0,
          "the request conflicted with a concurrent one; retry it"}},
        {"40P01",
         {503, "service_unavailable", "Service Unavailable", 0,
          "the request conflicted with a concurrent one; retry it"}},
        /* Raised by route functions for the client (their MESSAGE is the detail). */
        {"OD400", {400, "bad_request", "Bad Request", 1, NULL}},
        {"OD404", {404, "not_found", "Not Found", 1, NULL}},
        {"OD409", {409, "conflict", "Conflict", 1, NULL}},
        {"OD412", {412, "precondition_failed", "Precondition Failed", 1, NULL}},
        {"OD422", {422, "unprocessable", "Unprocessable Content", 1, NULL}},
        /* Server bugs or migration lag: a plain RAISE, an undefined function,
	 * table or column. Listed to say so; they map like the default. */
        {"P0001", {500, "internal", "Internal Server Error", 0, INTERNAL_DETAIL}},
        {"42883", {500, "internal", "Internal Server Error", 0, INTERNAL_DETAIL}},
        {"42P01", {500, "internal", "Internal Server Error", 0, INTERNAL_DETAIL}},
        {"42703", {500, "internal", "Internal Server Error", 0, INTERNAL_DETAIL}},
};

static const struct sqlstate_map fallback = {500, "internal", "Internal Server Error", 0,
                                             INTERNAL_DETAIL};

const struct sqlstate_map *sqlstate_to_http(const char *sqlstate)
{
	if (!sqlstate || strlen(sqlstate) != 5)
		return &fallback;
	for (size_t i = 0; i < ODS_ARRAY_LEN(table); i++) {
		if (strncmp(sqlstate, table[i].prefix, strlen(table[i].prefix)) == 0)
			return &table[i].map;
	}
	return &fallback;
}
