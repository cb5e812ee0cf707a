/*
 * demo_load: `odsctl demo load --from DIR`. Every DIR/<table>.csv goes
 * through the real sync loader (full snapshot); DIR/native/<table>.csv seed
 * rows are inserted with ON CONFLICT DO NOTHING, so loading the same DIR
 * twice changes nothing.
 */
#ifndef ODS_DEMO_LOAD_H
#define ODS_DEMO_LOAD_H

#include "core/util.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

bool demo_load(PGconn *conn, const char *dir, FILE *progress, char *err,
               size_t errlen) ODS_MUST_CHECK;

#endif
